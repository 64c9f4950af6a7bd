"""The local filesystem as a store: keys are absolute paths without their leading ``/``.

Within one filesystem a copy is a hard link: instant, no extra space, and the source stays intact until it is
deleted after the commit (a rename would leave the old URIs dangling if the run died before committing).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from mlflow_ws_admin.stores.base import ObjectInfo, Store, StoreError

#: how the temporary file of a copy in flight begins; it lands under its real name by an atomic rename
_PARTIAL = ".mwa-"
#: link() errors that mean "no hard links here" (another filesystem, a filesystem without them): copy instead
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


def _path(key: str) -> Path:
    return Path("/" + key.lstrip("/"))


class LocalStore:
    label = "file:///"

    def __init__(self) -> None:
        #: directories this store made or found (a set is safe to share between the copy threads under the GIL)
        self._made: set[Path] = set()

    def list(self, prefix: str) -> dict[str, ObjectInfo]:
        root = _path(prefix)
        found: dict[str, ObjectInfo] = {}
        if root.is_file():
            raise StoreError(f"{root} is a file, not a directory of artifacts")
        # os.walk skips an unreadable directory silently: onerror makes it an error instead.
        for here, _dirs, files in os.walk(root, onerror=_raise):
            for name in files:
                if name.startswith(_PARTIAL):
                    continue  # a copy in flight (or killed): not an object
                full = os.path.join(here, name)
                try:
                    size = os.stat(full).st_size
                except FileNotFoundError:
                    continue  # deleted while we listed
                found[os.path.relpath(full, root).replace(os.sep, "/")] = ObjectInfo(size)
        return found

    def copy_from(self, source: Store, source_key: str, key: str) -> None:
        dst = _path(key)
        try:
            self._directory(dst.parent)
            if isinstance(source, LocalStore):
                self._link_or_copy(_path(source_key), dst)
            else:
                _land(dst, lambda tmp: source.download(source_key, tmp))
        except FileNotFoundError:
            raise StoreError(f"{_path(source_key)} vanished while it was being copied; nothing was committed") from None
        except OSError as exc:
            raise StoreError(f"copying to {dst} failed: {exc.strerror or exc}") from None

    def _directory(self, path: Path) -> None:
        """Make ``path`` once per store: 10,000 files in 100 run directories need 100 mkdirs, not 10,000."""
        if path not in self._made:
            path.mkdir(parents=True, exist_ok=True)
            self._made.add(path)

    @staticmethod
    def _link_or_copy(src: Path, dst: Path) -> None:
        try:
            os.link(src, dst)
            return
        except FileExistsError:
            # A copy torn by a crash cannot exist (copies land by rename), so this is a finished one.
            if os.path.samefile(src, dst):
                return
            raise
        except OSError as exc:
            if exc.errno not in _NO_LINK:
                raise
        _land(dst, lambda tmp: shutil.copyfile(src, tmp))

    def download(self, key: str, path: str) -> None:
        try:
            shutil.copyfile(_path(key), path)
        except FileNotFoundError:
            raise StoreError(f"{_path(key)} vanished while it was being copied; nothing was committed") from None
        except OSError as exc:
            raise StoreError(f"reading {_path(key)} failed: {exc.strerror or exc}") from None

    def upload(self, path: str, key: str) -> None:
        dst = _path(key)
        try:
            self._directory(dst.parent)
            _land(dst, lambda tmp: shutil.copyfile(path, tmp))
        except OSError as exc:
            raise StoreError(f"writing {dst} failed: {exc.strerror or exc}") from None

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            try:
                _path(key).unlink(missing_ok=True)
            except OSError as exc:
                raise StoreError(f"deleting {_path(key)} failed: {exc.strerror or exc}") from None

    def tidy(self, prefix: str) -> None:
        root = _path(prefix)
        for here, _dirs, _files in os.walk(root, topdown=False):
            # Not empty: something was written there meanwhile, and stays.
            with contextlib.suppress(OSError):
                os.rmdir(here)
                self._made.discard(Path(here))  # made again by the next copy that needs it

    def clean_partial(self, prefix: str) -> None:
        for here, _dirs, files in os.walk(_path(prefix)):
            for name in files:
                if name.startswith(_PARTIAL):
                    Path(here, name).unlink(missing_ok=True)


def _raise(exc: OSError) -> None:
    if isinstance(exc, FileNotFoundError):
        return  # no directory: no objects
    raise StoreError(f"cannot list {exc.filename}: {exc.strerror or exc}")


def _land(dst: Path, fill: Callable[[str], object]) -> None:
    """Write ``dst`` through a temporary file beside it and rename it into place: a crash never leaves a torn
    object under the key, so an existing object is always a finished copy."""
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=_PARTIAL)
    os.close(fd)
    try:
        fill(tmp)
        os.replace(tmp, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)
