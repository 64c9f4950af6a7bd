"""The ``Store`` interface and the prefix operations every caller uses: list, copy (idempotent, never
overwriting), verify, delete.

A store is a namespace of objects named by ``/``-separated keys (a filesystem, an S3 bucket); a *prefix* is a
key without its trailing slash, and the objects "under" it are those whose key starts with ``prefix/``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mlflow_ws_admin.common.errors import ExitStatus, WsAdminError

#: Copies in flight at once: enough to hide a round-trip per object, few enough not to throttle the store.
DEFAULT_WORKERS = 16


class StoreError(WsAdminError):
    """An object store refused or failed (unreachable, no permission, an object vanished): exit 3."""


class TargetOccupied(StoreError):
    """The target prefix holds an object the copy would have to overwrite: never done.  Blocking, like a
    conflict: exit 1, nothing changed."""

    exit_status = ExitStatus.CONFLICTS


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    #: the store's content tag (S3's ETag) when it gives one; equal tags mean equal content
    etag: str | None = None


class Store(Protocol):
    """One object namespace.  Keys are relative to the store, ``/``-separated, never starting with ``/``."""

    #: how messages name the store, e.g. ``s3://bucket`` or ``file:///``
    label: str

    def list(self, prefix: str) -> dict[str, ObjectInfo]:
        """Every object under ``prefix``, by its key relative to the prefix."""
        ...

    def copy_from(self, source: Store, source_key: str, key: str) -> None:
        """Copy one object of ``source`` to ``key`` here, atomically (a reader sees all of it or nothing).
        Within one store this is the cheapest copy it has (a hard link, a server-side copy)."""
        ...

    def download(self, key: str, path: str) -> None:
        """Write one object to a local file (a copy between two kinds of store goes through a file)."""
        ...

    def upload(self, path: str, key: str) -> None:
        """Store a local file as one object, atomically."""
        ...

    def delete(self, keys: Iterable[str]) -> None:
        """Delete these objects (absent ones are fine)."""
        ...

    def tidy(self, prefix: str) -> None:
        """Remove what deleting every object under ``prefix`` left behind (empty directories); no-op for S3."""
        ...

    def clean_partial(self, prefix: str) -> None:
        """Remove what a copy killed half-way left under ``prefix`` (a temporary file); no-op for S3, whose
        uploads are atomic."""
        ...


def join(prefix: str, relative: str) -> str:
    return f"{prefix.rstrip('/')}/{relative}" if prefix.strip("/") else relative


@dataclass(frozen=True)
class Location:
    """A prefix in a store: where one experiment's artifacts live."""

    store: Store
    prefix: str

    def __str__(self) -> str:
        return self.store.label + self.prefix  # labels end with "/"

    def list(self) -> dict[str, ObjectInfo]:
        return self.store.list(self.prefix)


@dataclass(frozen=True)
class CopyResult:
    objects: int  # objects under the source prefix
    bytes: int
    copied: int  # objects this run copied (the others were already there)
    #: the target keys (relative to the prefix) this run copied: what ``undo_copies`` removes again
    keys: tuple[str, ...] = ()
    #: the source objects as this run listed them: what ``verify_copy`` checks without listing them again
    listed: Mapping[str, ObjectInfo] | None = field(default=None, compare=False, repr=False)


#: progress: (objects done, bytes done)
Progress = Callable[[int, int], None]


def pending_copies(source: Mapping[str, ObjectInfo], target: Mapping[str, ObjectInfo], where: Location) -> list[str]:
    """The source keys still to copy.  An object already at the target with the same size (and tag, when both
    stores give one) is a finished copy; any other object there would be overwritten: refused."""
    todo = []
    for key, info in source.items():
        there = target.get(key)
        if there is None:
            todo.append(key)
        elif not same_object(info, there):
            raise TargetOccupied(f"{join(str(where), key)} already exists with other content; refusing to overwrite it")
    return todo


def same_object(a: ObjectInfo, b: ObjectInfo) -> bool:
    """Same size, and the same content tag when both have a plain one.  A multipart upload's tag (``...-N``)
    depends on its part sizes, which a copy need not keep, so it is not compared."""
    if a.size != b.size:
        return False
    tags = (a.etag, b.etag)
    return any(t is None or "-" in t for t in tags) or a.etag == b.etag


def copy_prefix(
    source: Location,
    target: Location,
    *,
    workers: int = DEFAULT_WORKERS,
    on_progress: Progress | None = None,
) -> CopyResult:
    """Copy every object under ``source`` to the same relative key under ``target``, ``workers`` at a time.
    Idempotent: objects already copied are skipped, so a re-run after a crash finishes the job; an object in
    the way is refused before anything is copied (``TargetOccupied``).  A copy that fails (a refused
    permission, an object gone) stops the rest and removes what this call copied, so the target is as it was."""
    objects = source.list()
    target.store.clean_partial(target.prefix)
    todo = pending_copies(objects, target.list(), target)
    total = sum(i.size for i in objects.values())
    done_objects, done_bytes = len(objects) - len(todo), total - sum(objects[k].size for k in todo)
    lock = threading.Lock()
    landed: list[str] = []

    def one(key: str) -> None:
        nonlocal done_objects, done_bytes
        target.store.copy_from(source.store, join(source.prefix, key), join(target.prefix, key))
        with lock:
            landed.append(key)
            done_objects += 1
            done_bytes += objects[key].size
            if on_progress:
                on_progress(done_objects, done_bytes)

    if workers > 1 and _links(source, target):
        # A hard link is ~25 us of kernel work under the directory's lock: threads only contend for it (16 of
        # them made 10,000 links 2x slower than one thread did).  Threads pay where a copy waits: S3, bytes.
        workers = 1
    try:
        if workers <= 1 or len(todo) <= 1:
            for key in todo:
                one(key)
        else:
            run_parallel(one, todo, workers)
    except Exception as exc:
        raise undo_copies(target, landed, exc) from None
    return CopyResult(len(objects), total, len(todo), tuple(landed), objects)


def _links(source: Location, target: Location) -> bool:
    links_from = getattr(target.store, "links_from", None)  # optional: only the local store links
    return bool(links_from and links_from(source.store, source.prefix, target.prefix))


def run_parallel(work: Callable[[str], None], keys: Sequence[str], workers: int) -> None:
    """``work`` on every key, ``workers`` threads at a time, each taking the next key when it is free.  The
    first failure stops the rest (the calls in flight finish first) and is raised.  Threads pulling from one
    iterator rather than a pool's futures: a future per key costs as much as a hard link."""
    pending = iter(keys)
    take = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []

    def worker() -> None:
        while not stop.is_set():
            with take:
                key = next(pending, None)
            if key is None:
                return
            try:
                work(key)
            except BaseException as exc:  # raised again by the caller's thread
                failures.append(exc)
                stop.set()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(workers, len(keys)))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except BaseException:
        stop.set()  # an interrupt: no new copy starts, the ones in flight finish
        for t in threads:
            t.join()
        raise
    if failures:
        raise failures[0]


def undo_copies(target: Location, keys: Iterable[str], failure: Exception) -> Exception:
    """Delete the objects a failed copy landed under ``target`` (``keys`` relative to it), and return the
    failure to raise.  Should the undo fail too, the failure says what stays (a re-run reuses it)."""
    landed = list(keys)
    try:
        target.store.delete([join(target.prefix, k) for k in landed])
        target.store.tidy(target.prefix)
    except StoreError:
        if isinstance(failure, StoreError):
            return StoreError(f"{failure.message}; {len(landed):,} copied object(s) stay under {target}")
    return failure


def verify_copy(
    source: Location, target: Location, objects: Mapping[str, ObjectInfo] | None = None
) -> dict[str, ObjectInfo]:
    """Every source object is at the target with the same size (and tag where both have one).  Returns the
    verified source objects: exactly the ones a later delete may remove.  ``objects``: the source as the copy
    listed it (``CopyResult.listed``), to verify what was copied without listing the source again; by default
    it is listed now."""
    objects = dict(source.list() if objects is None else objects)
    there = target.list()
    bad = [k for k, info in objects.items() if k not in there or not same_object(info, there[k])]
    if bad:
        raise StoreError(
            f"verifying the copy {source} -> {target} failed: {len(bad):,} object(s) missing or different "
            f"(first: {sorted(bad)[0]})"
        )
    return objects


def delete_copied(source: Location, target: Location, keys: Iterable[str] | None = None) -> int:
    """Delete the source objects among ``keys`` (None: every one) whose copy is at the target (checked again: a
    delete never loses the only copy).  Returns how many were deleted."""
    here, there = source.list(), target.list()
    wanted = here if keys is None else keys
    gone = [k for k in wanted if k in here and k in there and same_object(here[k], there[k])]
    source.store.delete([join(source.prefix, k) for k in gone])
    if len(gone) == len(here):
        source.store.tidy(source.prefix)
    return len(gone)
