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
from collections.abc import Callable, Iterable, Iterator

from mlflow_ws_admin.stores.base import ObjectInfo, Store, StoreError

#: how the temporary file of a copy in flight begins; it lands under its real name by an atomic rename
_PARTIAL = ".mwa-"
#: link() errors that mean "no hard links here" (another filesystem, a filesystem without them): copy instead
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


def _path(key: str) -> str:
    # Plain strings, not pathlib: building a Path costs more than the link() it names (10,000 per experiment).
    return "/" + key.lstrip("/")


class LocalStore:
    label = "file:///"

    def __init__(self) -> None:
        #: directories this store made or found (a set is safe to share between the copy threads under the GIL)
        self._made: set[str] = set()

    def list(self, prefix: str) -> dict[str, ObjectInfo]:
        root = _path(prefix).rstrip("/") or "/"
        if os.path.isfile(root):
            raise StoreError(f"{root} is a file, not a directory of artifacts")
        found: dict[str, ObjectInfo] = {}
        for key, entry in _files(root, ""):
            if entry.name.startswith(_PARTIAL):
                continue  # a copy in flight (or killed): not an object
            try:
                size = entry.stat().st_size
            except FileNotFoundError:
                continue  # deleted while we listed
            found[key] = ObjectInfo(size)
        return found

    def copy_from(self, source: Store, source_key: str, key: str) -> None:
        dst = _path(key)
        try:
            self._directory(os.path.dirname(dst))
            if isinstance(source, LocalStore):
                self._link_or_copy(_path(source_key), dst)
            else:
                _land(dst, lambda tmp: source.download(source_key, tmp))
        except FileNotFoundError:
            raise StoreError(f"{_path(source_key)} vanished while it was being copied; nothing was committed") from None
        except OSError as exc:
            raise StoreError(f"copying to {dst} failed: {exc.strerror or exc}") from None

    def links_from(self, source: Store, source_prefix: str, prefix: str) -> bool:
        """Whether copying ``source_prefix`` of ``source`` to ``prefix`` here makes hard links: both on one
        local filesystem (the target's nearest existing directory on the source's device)."""
        if not isinstance(source, LocalStore):
            return False
        place = _path(prefix)
        while not os.path.exists(place) and place != "/":
            place = os.path.dirname(place)
        try:
            return os.stat(_path(source_prefix)).st_dev == os.stat(place).st_dev
        except OSError:
            return False  # the copy itself will say what is wrong

    def _directory(self, path: str) -> None:
        """Make ``path`` once per store: 10,000 files in 100 run directories need 100 mkdirs, not 10,000."""
        if path not in self._made:
            os.makedirs(path, exist_ok=True)
            self._made.add(path)

    @staticmethod
    def _link_or_copy(src: str, dst: str) -> None:
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
            self._directory(os.path.dirname(dst))
            _land(dst, lambda tmp: shutil.copyfile(path, tmp))
        except OSError as exc:
            raise StoreError(f"writing {dst} failed: {exc.strerror or exc}") from None

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            try:
                os.unlink(_path(key))
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StoreError(f"deleting {_path(key)} failed: {exc.strerror or exc}") from None

    def tidy(self, prefix: str) -> None:
        root = _path(prefix)
        for here, _dirs, _files in os.walk(root, topdown=False):
            # Not empty: something was written there meanwhile, and stays.
            with contextlib.suppress(OSError):
                os.rmdir(here)
                self._made.discard(here)  # made again by the next copy that needs it

    def clean_partial(self, prefix: str) -> None:
        for _key, entry in _files(_path(prefix), ""):
            if entry.name.startswith(_PARTIAL):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _files(directory: str, relative: str) -> Iterator[tuple[str, os.DirEntry]]:
    """(key relative to the listed root, entry) of every file under ``directory``, as ``os.walk`` finds them
    (a symbolic link to a file is a file; one to a directory is not followed).  No directory: no files; one
    that cannot be read is an error, never skipped."""
    try:
        entries = os.scandir(directory)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot list {directory}: {exc.strerror or exc}") from None
    subdirectories = []
    with entries:
        for entry in entries:
            key = f"{relative}/{entry.name}" if relative else entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                yield key, entry
            elif not entry.is_symlink():
                subdirectories.append((entry.path, key))
    for path, key in subdirectories:
        yield from _files(path, key)


def _land(dst: str, fill: Callable[[str], object]) -> None:
    """Write ``dst`` through a temporary file beside it and rename it into place: a crash never leaves a torn
    object under the key, so an existing object is always a finished copy."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dst), prefix=_PARTIAL)
    os.close(fd)
    try:
        fill(tmp)
        os.replace(tmp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
