"""Artifact-location findings: experiments whose artifacts would collide once they share one workspace.

Locations are normalized to (scheme, netloc, path segments), so `file:///a/b/`, `file:/a/b` and `/a/b` are one
place and `/a/b` is not a prefix of `/a/bc`.  Overlaps are found by sorting the normalized keys: a location's
descendants then follow it directly, and one pass with a stack of open ancestors finds every overlap in
O(n log n) — never by comparing all pairs.  Past ``SPILL_AFTER`` experiments the sort happens in sorted runs
in a temporary file, merged as they are read, so memory stays flat however many experiments there are.
"""

from __future__ import annotations

import array
import heapq
import itertools
import operator
import os
import pickle
import posixpath
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import unquote, urlsplit

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.display import quoted, workspace_order
from mlflow_ws_admin.common.errors import mask_password_in

BLOCKING = "blocking"
WARNING = "warning"

OVERLAP = "overlap"
RESERVED_COLLISION = "reserved-path-collision"
RESERVED_SQUATTING = "reserved-path-squatting"
PROXIED_PATH = "proxied-path"
WORKSPACE_ROOT_OVERLAP = "workspace-root-overlap"
#: Report order.  (Rows whose content MLflow stores itself are a refusal of their own: ``stored_content``.)
KINDS = (OVERLAP, RESERVED_COLLISION, RESERVED_SQUATTING, PROXIED_PATH, WORKSPACE_ROOT_OVERLAP)

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
#: `scheme:[//netloc]path` with nothing urlsplit would treat specially (query, fragment, brackets, the
#: tabs and newlines it strips): the common case, split without urlsplit (10x faster at 100k experiments).
_PLAIN_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(?://([^/?#\[\]\t\r\n]*)(/[^?#\t\r\n]*)?|(?!//)([^?#\t\r\n]*))")
_LOCAL_HOSTS = frozenset({"", "localhost"})
#: Up to this many located experiments the finder sorts them in a list (~300 bytes each); past it, each this many
#: go to a temporary file as one sorted run, and the runs are merged as they are read back: memory stays flat.
SPILL_AFTER = 100_000


class Location(NamedTuple):
    """A normalized location: sorting these puts every location right before the ones nested inside it."""

    scheme: str  # "file" for local paths (and file: URIs), "" for relative local paths
    netloc: str
    segments: tuple[str, ...]

    def contains(self, other: Location) -> bool:
        """True when `other` is this location or sits inside it (segment-wise, so /a/b does not hold /a/bc)."""
        n = len(self.segments)
        return self.scheme == other.scheme and self.netloc == other.netloc and other.segments[:n] == self.segments

    def child(self, *segments: str) -> Location:
        return Location(self.scheme, self.netloc, self.segments + segments)

    def __str__(self) -> str:
        path = "".join("/" + s for s in self.segments)
        if not self.scheme:
            return path[1:] or "."
        if self.scheme == "file" and not self.netloc:
            return path or "/"
        if not self.netloc:  # MLflow's own spelling: mlflow-artifacts:/path, not mlflow-artifacts:///path
            return f"{self.scheme}:{path or '/'}"
        return f"{self.scheme}://{self.netloc}{path}"


def normalize_location(raw: str) -> Location | None:
    """Normalize a stored artifact location; None for an empty one.  Query and fragment are ignored."""
    text = raw.strip()
    if not text:
        return None
    if _WINDOWS_DRIVE.match(text):
        drive, rest = text[:2].lower(), text[2:].replace("\\", "/")
        return Location("file", "", (drive, *_segments(rest)))
    # Two fast paths for the common shapes; they give what _parse_url would (tests/test_artifacts.py).
    if text[0] == "/":
        return Location("file", "", _segments(text))  # a plain absolute path, taken literally
    plain = _PLAIN_URL.fullmatch(text)
    if plain and plain[1].lower() != "file":
        scheme, netloc, path_after_netloc, path = plain.groups()
        return Location(scheme.lower(), _comparable_netloc(netloc or ""), _segments(path_after_netloc or path or ""))
    return _parse_url(text)


#: A last segment that parses the same wherever it ends a location: no character any parser treats specially.
_PLAIN_LEAF = re.compile(r"[A-Za-z0-9_-]+")
#: Leaves tried on each parent: were the leaf read as a host or scheme, the upper-case one would come back lowered.
_PROBE_LEAVES = ("x0", "X-_9")
#: Parents (the text before a location's last `/`) the finder remembers, with the experiments it keeps under each.
MAX_PARENTS = 4096


class _LocationReader:
    """``normalize_location`` and ``_sort_key`` of many locations that share parents (ROOT/<id>,
    ROOT/workspaces/<ws>/<id>): `<parent>/<plain leaf>` is read as the parent's location plus one segment, the
    parent being parsed once.  A parent is taken only when probe leaves come back exactly so; a plain leaf
    is one no parser treats specially, so it reads as the probes do (tests/test_artifacts.py compares the
    two on generated locations)."""

    def __init__(self) -> None:
        self._parents: dict[str, tuple[Location, str] | None] = {}

    def __call__(self, raw: str) -> tuple[Location, str] | None:
        """(location, sort key) of a stored location; None for an empty one."""
        parent, slash, leaf = raw.rpartition("/")
        if slash and _PLAIN_LEAF.fullmatch(leaf) and (known := self.parent(parent)) is not None:
            location, key = known
            return location.child(leaf), f"{key}{_SEP}{leaf}"
        location = normalize_location(raw)
        return None if location is None else (location, _sort_key(location))

    def parent(self, text: str) -> tuple[Location, str] | None:
        """The (location, sort key) a plain leaf under ``text`` extends; None when there is none, or when this
        many parents are known already (each location is then read on its own: memory stays flat)."""
        known = self._parents.get(text, False)
        if known is False:
            if len(self._parents) >= MAX_PARENTS:
                return None
            known = self._parents[text] = _plain_parent(text)
        return known


def _plain_parent(parent: str) -> tuple[Location, str] | None:
    """The parent's (location, sort key) when each probe leaf under it reads as that location plus the leaf."""
    location = normalize_location(parent)
    if location is None:
        return None
    if any(normalize_location(f"{parent}/{leaf}") != location.child(leaf) for leaf in _PROBE_LEAVES):
        return None
    return location, _sort_key(location)


def _parse_url(text: str) -> Location:
    """Any non-empty stripped location other than a Windows drive path, through urlsplit."""
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed `[` in the host: no URL, so a path taken literally
        parts = None
    scheme = parts.scheme.lower() if parts else ""
    if parts is None or not scheme:
        # A plain path, taken literally (no percent-decoding, `?` is part of the name).
        return Location("file" if text.startswith("/") else "", "", _segments(text))
    netloc = _comparable_netloc(parts.netloc)
    if scheme == "file":
        path = unquote(parts.path)  # file: URIs are percent-encoded; plain paths are not
        if netloc in _LOCAL_HOSTS:
            return Location("file" if path.startswith("/") else "", "", _segments(path))
        return Location("file", netloc, _segments(path))
    return Location(scheme, netloc, _segments(parts.path))


def _segments(path: str) -> tuple[str, ...]:
    """Path segments with `.`, `..`, empty segments and trailing slashes resolved away (lexically)."""
    parts = path.split("/")
    if "." not in parts and ".." not in parts:
        return tuple(filter(None, parts))  # what normpath would give, without its per-call cost
    return _normpath_segments(path)


def _normpath_segments(path: str) -> tuple[str, ...]:
    return tuple(filter(None, posixpath.normpath("/" + path).split("/")))


def _comparable_netloc(netloc: str) -> str:
    """Host names compare case-insensitively; anything before `@` (a user, or an Azure container) does not.
    A password names no place, so it is dropped (and can never reach a report through a normalized key)."""
    user, at, host = netloc.rpartition("@")
    return f"{user.partition(':')[0]}{at}{host.lower()}"


def display_location(raw: str) -> str:
    """A stored location as it may be printed: any `user:password@` has its password masked."""
    return mask_password_in(raw)


@dataclass(frozen=True)
class ArtifactFinding:
    kind: str
    severity: str  # BLOCKING | WARNING
    #: None for findings about a workspace's catalog row (workspace-root overlap)
    experiment_id: Any
    location: str  # as stored, password masked
    detail: str
    workspace: str | None = None
    other_experiment_id: Any = None
    other_workspace: str | None = None

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCKING


class _Item(NamedTuple):
    key: str  # the normalized location's ``_sort_key``: compact, and cheap to sort and compare
    ident: Any  # experiment id, or None for a workspace root
    group: str | None  # workspace
    raw: str


def find_artifact_findings(
    experiments: Iterable[tuple[Any, str | None, str | None]],
    workspace_roots: Iterable[tuple[str, str | None]] = (),
    default_artifact_root: str | None = None,
    *,
    spill_after: int | None = SPILL_AFTER,
    target_workspace: str = mlflow_facts.DEFAULT_WORKSPACE,
    migration: bool = True,
    unique_ids: bool = False,
) -> tuple[ArtifactFinding, ...]:
    """Every finding for (experiment id, workspace, artifact_location) rows and (workspace, root) catalog rows.

    NULL or empty locations are skipped, but their experiments' ids still count for ROOT/<id> collisions.
    ``migration``: the rows are checked for migrate-to-default-workspace (whose fix for a proxied path is to
    disable workspaces), else for move-resources (whose fix is ``--artifact-policy relocate``, even into
    `default`).  Needs the server's root for the reserved-path kinds.  One pass over the rows checks each location on its
    own and keeps a compact item per experiment for the overlap sort: in memory up to ``spill_after`` items,
    in sorted runs in a temporary file past that (None: always in memory).  ``unique_ids`` (the experiments'
    primary key): experiments stored at `<parent>/<own id>` are kept as bare ids (``_IdLayout``)."""
    root = normalize_location(default_artifact_root) if default_artifact_root else None
    reserved = root.child(mlflow_facts.RESERVED_ARTIFACT_SEGMENT) if root is not None else None
    unlocated: list[tuple[Any, str | None]] = []  # their ids can still be squatted on as ROOT/<id>
    claims: list[tuple[_Item, str]] = []  # (item, n): the location is ROOT/<n> for an n not its own id
    squatters: list[ArtifactFinding] = []
    proxied: list[ArtifactFinding] = []
    workspaces: dict[str | None, str | None] = {}  # one string object per workspace name, not one per row
    read = _LocationReader()
    own = _IdLayout(read, reserved, target_workspace, migration, spill_after) if unique_ids else None
    with _ItemStore(spill_after) as items:
        for exp_id, ws, raw in experiments:
            ws = workspaces.setdefault(ws, ws)
            if own is not None and own.take(exp_id, ws, raw):
                continue
            located = read(raw) if raw is not None else None
            if located is None:
                unlocated.append((exp_id, ws))
                continue
            location, key = located
            item = _Item(key, exp_id, ws, raw)
            items.add(item)
            if root is not None and reserved is not None:
                if (n := _reserved_id(location, root)) is not None and n != str(exp_id):
                    claims.append((item, n))
                if (finding := _squatter(item, location, reserved)) is not None:
                    squatters.append(finding)
            if (finding := _proxied_path(item, location, target_workspace, migration)) is not None:
                proxied.append(finding)
        if own is not None:
            own.find_overlaps(items.by_key())
            for item in own.promoted():
                items.add(item)  # no claim, squatting or proxied finding: only the overlap sort needs them
        found = list(_overlaps(pairs_in_sorted(items.by_key())))
        if root is not None:
            owners = itertools.chain(((i.ident, i.group) for i in items), own.owners() if own is not None else ())
            found += _reserved_collisions(claims, root, owners, unlocated)
    found += squatters + proxied
    found += _workspace_root_overlaps(workspace_roots, root)
    return tuple(found)  # in KINDS order, each kind in its own order


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class _IdLayout:
    """Experiments stored at `<parent>/<own id>`, as MLflow lays them out (ROOT/<id>, ROOT/workspaces/<ws>/<id>),
    kept as bare ids per (parent, workspace) instead of items: at 140k experiments the per-item work was most of
    the check's second.

    Such a location can give no finding of its own when its parent says so for any id (``_is_quiet``): it is no
    ROOT/<n> claim (n is its own id), sits under its own workspace's reserved directory or outside the reserved
    tree, and is not a proxied path the proxy would refuse.  Two of them never overlap: the ids are a primary
    key's, so one id is one place.  So only the overlap sort can involve them, through an item at or above a
    parent, an item at or inside `<parent>/<id>`, or a parent inside another's experiment: ``find_overlaps`` finds
    those in one pass over the items in key order, and they are ``promoted`` to items; the findings are exactly
    those of the items alone."""

    def __init__(
        self,
        read: _LocationReader,
        reserved: Location | None,
        target: str,
        migration: bool,
        max_pairs: int | None = None,
    ) -> None:
        self._read = read
        self._reserved = reserved
        self._target, self._migration = target, migration
        self._quiet: dict[tuple[str, str | None], bool] = {}  # (parent, workspace) -> whether its experiments are kept
        self._ids: dict[tuple[str, str | None], array.array[int]] = {}  # 8 bytes an experiment: 4.5 MB at 560k
        self._whole: set[str] = set()  # parents all of whose experiments are promoted
        self._pairs: set[tuple[str, str]] = set()  # (parent, id) promoted on its own
        #: past this many pairs, every kept experiment is promoted instead (memory stays flat)
        self._max_pairs = max_pairs

    def take(self, exp_id: Any, ws: str | None, raw: str | None) -> bool:
        """Keep the experiment here when its location is `<parent>/<its own id>` under a quiet parent."""
        if type(exp_id) is not int or raw is None or not _INT64_MIN <= exp_id <= _INT64_MAX:
            return False
        parent, slash, leaf = raw.rpartition("/")
        if not slash or leaf != str(exp_id):
            return False
        group = parent, ws
        ids = self._ids.get(group)
        if ids is None:
            quiet = self._quiet.get(group)
            if quiet is None:
                if len(self._quiet) >= MAX_PARENTS:
                    return False
                quiet = self._quiet[group] = self._is_quiet(parent, ws)
            if not quiet:
                return False
            ids = self._ids[group] = array.array("q")
        ids.append(exp_id)
        return True

    def _is_quiet(self, parent: str, ws: str | None) -> bool:
        """Whether `<parent>/<id>` gives no finding of its own, whatever the id, for an experiment of ``ws``."""
        known = self._read.parent(parent)
        if known is None:
            return False
        location, _ = known
        probe = location.child("1")  # an id is a plain leaf: it reads as this one does
        segs = location.segments
        if location.scheme == mlflow_facts.PROXIED_ARTIFACT_SCHEME:
            if len(segs) == 1 and is_reserved_segment(segs[0]):
                return False  # the proxy would read the id as the workspace
            if _proxied_path(_Item("", None, ws, ""), probe, self._target, self._migration) is not None:
                return False
        reserved = self._reserved
        if reserved is not None and reserved.contains(probe):
            depth = len(reserved.segments)
            own = ws if ws is not None else mlflow_facts.DEFAULT_WORKSPACE
            # ROOT/workspaces/<id> would read the id as a workspace; another workspace's directory is squatting
            return len(segs) > depth and segs[depth] == own
        return True

    def find_overlaps(self, ordered: Iterable[_Item]) -> None:
        """Which kept experiments an item could overlap, from the items in key order with each kept parent's key
        among them: an item at or above a parent (all of its experiments), an item at or inside `<parent>/<id>`
        (that one), a parent inside another's `<parent>/<id>` (that one, and all of the inner parent's)."""
        markers: dict[str, list[str]] = {}
        for parent, _ws in self._ids:
            known = self._read.parent(parent)
            assert known is not None  # a kept parent is a known one
            markers.setdefault(known[1], []).append(parent)
        if not markers:
            return
        stack: list[tuple[str, str, list[str] | None]] = []  # (key, its descendants' prefix, a marker's parents)
        markers_open: list[tuple[str, list[str]]] = []  # the markers among them: each step looks at these only
        items_open = 0
        entries = heapq.merge(
            ((item.key, None) for item in ordered), sorted(markers.items()), key=operator.itemgetter(0)
        )
        for key, parents in entries:
            while stack and key != stack[-1][0] and not key.startswith(stack[-1][1]):
                if stack.pop()[2] is None:
                    items_open -= 1
                else:
                    markers_open.pop()
            for above, above_parents in markers_open:  # every parent at or above this entry
                if above == key:
                    # Another spelling of this parent: their ids differ, so do their places.  (An item at a parent's
                    # place comes before it, as merge takes equal keys from the items first: it is open below.)
                    continue
                segment = key[len(above) + 1 :].split(_SEP, 1)[0]
                if not _is_id_text(segment):
                    continue  # no experiment is kept there (ROOT/workspaces/<ws> under ROOT)
                self._pairs.update((p, segment) for p in above_parents)
                if parents is not None:
                    self._whole.update(parents)  # a parent inside another's experiment: all of it
            if parents is not None and items_open:
                self._whole.update(parents)  # an item at or above this parent holds all it keeps
            stack.append((key, key + _SEP, parents))
            if parents is None:
                items_open += 1
            else:
                markers_open.append((key, parents))
            if self._max_pairs is not None and len(self._pairs) > self._max_pairs:
                self._whole.update(p for p, _ in self._ids)
                self._pairs.clear()

    def promoted(self) -> Iterator[_Item]:
        """The kept experiments ``find_overlaps`` named, as items (their location rebuilt as stored)."""
        paired = {p for p, _ in self._pairs}
        for (parent, ws), ids in self._ids.items():
            whole = parent in self._whole
            if not whole and parent not in paired:
                continue
            known = self._read.parent(parent)
            assert known is not None
            kept = array.array("q")
            for exp_id in ids:
                leaf = str(exp_id)
                if whole or (parent, leaf) in self._pairs:
                    yield _Item(f"{known[1]}{_SEP}{leaf}", exp_id, ws, f"{parent}/{leaf}")
                else:
                    kept.append(exp_id)
            self._ids[parent, ws] = kept

    def owners(self) -> Iterator[tuple[int, str | None]]:
        """(id, workspace) of the experiments still kept here."""
        for (_parent, ws), ids in self._ids.items():
            for exp_id in ids:
                yield exp_id, ws


def _is_id_text(segment: str) -> bool:
    """Whether the segment is how an integer id is written (``str(id)``): only such a one can hold a kept experiment."""
    digits = segment[1:] if segment.startswith("-") else segment
    return digits.isascii() and digits.isdigit() and str(int(segment)) == segment


class _ItemStore:
    """The finder's items: a list while there are few; past ``spill_after``, sorted runs of that many in a
    temporary file, merged as they are read back in key order, so memory holds one batch per run however many
    items there are.

    Key order: key, then ``_id_order``, then input order.  Each run is sorted stably, and the merge takes equal
    items from earlier runs first, so the order is exactly the in-memory sort's."""

    #: items per pickled record of a run: what the merge holds in memory per run
    _RECORD = 2000

    def __init__(self, spill_after: int | None) -> None:
        self._spill_after = spill_after
        self._buffer: list[_Item] = []
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._file: BinaryIO | None = None
        self._runs: list[tuple[int, int]] = []  # (offset in the file, records)

    def __enter__(self) -> _ItemStore:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
        if self._dir is not None:
            self._dir.cleanup()

    def add(self, item: _Item) -> None:
        self._buffer.append(item)
        if self._spill_after is not None and len(self._buffer) >= self._spill_after:
            self._spill()

    def by_key(self) -> Iterator[_Item]:
        if self._file is None:
            return iter(_sorted_items(self._buffer))
        if self._buffer:
            self._spill()
        return heapq.merge(*(self._read(run) for run in self._runs), key=_merge_key)

    def __iter__(self) -> Iterator[_Item]:
        """Every item (once spilled, run by run rather than in input order)."""
        if self._file is None:
            return iter(self._buffer)
        return itertools.chain(*(self._read(run) for run in self._runs), self._buffer)

    def _spill(self) -> None:
        """The buffer, sorted, as one run at the end of the file."""
        f = self._file or self._open()
        f.seek(0, os.SEEK_END)
        run = _sorted_items(self._buffer)
        offset, records = f.tell(), 0
        for i in range(0, len(run), self._RECORD):
            pickle.dump([tuple(item) for item in run[i : i + self._RECORD]], f, pickle.HIGHEST_PROTOCOL)
            records += 1
        self._runs.append((offset, records))
        self._buffer.clear()

    def _open(self) -> BinaryIO:
        # A file in a directory of its own, both removed on exit.  (Sorted runs merged in Python: a temporary
        # SQLite table sorted by ORDER BY cost 3x more at 140k experiments.)
        self._dir = tempfile.TemporaryDirectory(prefix="mwa-artifacts-")
        self._file = open(os.path.join(self._dir.name, "items.pickle"), "w+b")  # noqa: SIM115 (closed on exit)
        return self._file

    def _read(self, run: tuple[int, int]) -> Iterator[_Item]:
        assert self._file is not None
        offset, records = run
        for _ in range(records):
            # Runs are read in turn by the merge: each record is found by its own offset.
            self._file.seek(offset)
            batch = pickle.load(self._file)
            offset = self._file.tell()
            for values in batch:
                yield _Item(*values)


def _merge_key(item: _Item) -> tuple[str, tuple[int, Any]]:
    return item.key, _id_order(item.ident)


def nested_pairs(items: Iterable[_Item]) -> Iterator[tuple[_Item, _Item, bool]]:
    """For each item equal to or inside another, one (item, partner, crosses_groups) triple.

    The partner is the nearest enclosing item of another group when there is one (crosses_groups=True),
    else the nearest enclosing item.  Sorted keys make every enclosing item an entry of the stack.  Each
    entry carries two samples of everything at or above it: the nearest item, and the nearest one of another
    group than that.  Whatever the current item's group, one of the two is its answer, so each step is O(1)
    however deep the nesting."""
    return pairs_in_sorted(_sorted_items(items))


def pairs_in_sorted(ordered: Iterable[_Item]) -> Iterator[tuple[_Item, _Item, bool]]:
    """``nested_pairs`` of items already in key order (equal keys by id): one pass, streamed."""
    stack: list[tuple[str, str, tuple[_Item, ...]]] = []  # (sort key, its descendants' prefix, samples)
    for item in ordered:
        key = item.key
        while stack and key != stack[-1][0] and not key.startswith(stack[-1][1]):
            stack.pop()
        if stack:
            samples = stack[-1][2]
            crossing = next((s for s in samples if s.group != item.group), None)
            yield item, crossing or samples[0], crossing is not None
        if stack and stack[-1][0] == key:
            _, prefix, samples = stack.pop()
            stack.append((key, prefix, _two_samples(item, samples)))
        else:
            stack.append((key, key + _SEP, _two_samples(item, stack[-1][2] if stack else ())))


def _item_key(item: _Item) -> str:
    return item.key


def _sorted_items(items: Iterable[_Item]) -> list[_Item]:
    """Items in key order, equal keys by id (so the older experiment is the partner), then input order."""
    ordered = sorted(items, key=_item_key)  # stable: equal keys stay in input order...
    _order_ties_by_id(ordered)  # ...then go by id
    return ordered


def _order_ties_by_id(ordered: list[_Item]) -> None:
    """Sort each run of equal keys by id, in place (runs are rare and short)."""
    start = 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i].key != ordered[start].key:
            if i - start > 1:
                ordered[start:i] = sorted(ordered[start:i], key=lambda item: _id_order(item.ident))
            start = i


_SEP = "\x00"


def _sort_key(loc: Location) -> str:
    """The location as one string whose order is the Location tuple order: parts joined by NUL, which sorts
    below every other character, so everything nested in a location follows it directly and starts with
    key + NUL.  Comparing strings is what makes sorting 100k locations cheap."""
    parts = (loc.scheme, loc.netloc, *loc.segments)
    key = _SEP.join(parts)
    if key.count(_SEP) == len(parts) - 1 and "\x01" not in key:
        return key
    # NUL or \x01 inside a part: escape both (order-preserving) so NUL stays a pure separator.
    return _SEP.join(p.replace("\x01", "\x01\x02").replace(_SEP, "\x01\x01") for p in parts)


def _two_samples(nearest: _Item, enclosing: tuple[_Item, ...]) -> tuple[_Item, ...]:
    """The nearest item, and the nearest enclosing item of another group (if any)."""
    other = next((s for s in enclosing if s.group != nearest.group), None)
    return (nearest,) if other is None else (nearest, other)


def _id_order(ident: Any) -> tuple[int, Any]:
    """Numeric ids in numeric order (so the older experiment is the partner), anything else as text."""
    return (0, ident) if isinstance(ident, int) else (1, str(ident))


def _overlaps(pairs: Iterable[tuple[_Item, _Item, bool]]) -> Iterator[ArtifactFinding]:
    for item, partner, crosses in pairs:
        where = "the same location as" if item.key == partner.key else "inside the location of"
        why = (
            "different workspaces: once merged, deleting or garbage-collecting one destroys the other's artifacts"
            if crosses
            else "same workspace: deleting one destroys the other's artifacts"
        )
        yield ArtifactFinding(
            kind=OVERLAP,
            severity=BLOCKING if crosses else WARNING,
            experiment_id=item.ident,
            location=display_location(item.raw),
            detail=f"{where} experiment {partner.ident} ({workspace_phrase(partner.group)}); {why}",
            workspace=item.group,
            other_experiment_id=partner.ident,
            other_workspace=partner.group,
        )


def _reserved_id(location: Location, root: Location) -> str | None:
    """n when the location is ROOT/<n>: where MLflow puts experiment n's artifacts by default."""
    if len(location.segments) == len(root.segments) + 1 and root.contains(location):
        return location.segments[-1]
    return None


def _reserved_collisions(
    claims: list[tuple[_Item, str]],
    root: Location,
    owners: Iterable[tuple[Any, str | None]],
    unlocated: list[tuple[Any, str | None]],
) -> Iterator[ArtifactFinding]:
    """A location equal to ROOT/<n> for another experiment n: MLflow's own place for n's artifacts.  ``owners``:
    (id, workspace) of every located experiment."""
    if not claims:
        return
    wanted = {n for _, n in claims}
    workspace_of: dict[str, str | None] = {}
    for i, ws in itertools.chain(owners, unlocated):
        # Rows that spell one id twice (7 and "7"; never one primary key's) name the least workspace, so that
        # the answer does not depend on the order the owners arrive in (spilled runs come back reordered).
        if (n := str(i)) in wanted and (
            n not in workspace_of or workspace_order(ws) < workspace_order(workspace_of[n])
        ):
            workspace_of[n] = ws
    for item, n in claims:
        if n in workspace_of:
            yield ArtifactFinding(
                kind=RESERVED_COLLISION,
                severity=BLOCKING,
                experiment_id=item.ident,
                location=display_location(item.raw),
                detail=f"is {root.child(n)}, the default artifact location of experiment {n} ({workspace_phrase(workspace_of[n])})",
                workspace=item.group,
                other_experiment_id=n,
                other_workspace=workspace_of[n],
            )


def _squatter(item: _Item, location: Location, reserved: Location) -> ArtifactFinding | None:
    """A location under ROOT/workspaces/<ws>/ for a workspace other than the experiment's own."""
    if not reserved.contains(location):
        return None
    own = item.group if item.group is not None else mlflow_facts.DEFAULT_WORKSPACE
    depth = len(reserved.segments)
    if len(location.segments) == depth:
        detail = f"is the reserved directory {reserved} itself, where every workspace's experiments go"
    elif (ws := location.segments[depth]) != own:
        detail = f"sits under {reserved.child(ws)}/, reserved for workspace {quoted(ws)}'s new experiments"
    else:
        return None
    return ArtifactFinding(
        kind=RESERVED_SQUATTING,
        severity=WARNING,
        experiment_id=item.ident,
        location=display_location(item.raw),
        detail=detail,
        workspace=item.group,
    )


def _proxied_path(item: _Item, location: Location, target: str, migration: bool) -> ArtifactFinding | None:
    """A `mlflow-artifacts:` path under workspaces/<ws>/: the proxy rejects it for the target workspace
    (`default`, or a move's target) while workspaces are on.  As MLflow 3.18.0's proxy reads a path: its first
    segment, in any case (`WORKSPACES/` too), then the workspace name exactly.  A legacy path (no workspaces/ first
    segment, from before workspaces) is served only to `default`: elsewhere its listing is silently empty."""
    segs = location.segments
    if location.scheme != mlflow_facts.PROXIED_ARTIFACT_SCHEME or not segs:
        return None
    if not is_reserved_segment(segs[0]):
        return _legacy_proxied_path(item, target)
    if len(segs) < 2 or segs[1] == target:
        return None
    if migration:
        fix = "disable workspaces after the migration"
    else:
        fix = f"move it with --artifact-policy relocate, which moves its objects under workspaces/{target}/"
    return _proxied_finding(
        item,
        f"proxied path under workspaces/{segs[1]}/: once in `{target}`, the artifact proxy rejects "
        f"it while workspaces stay enabled; fix: {fix}",
    )


def is_reserved_segment(segment: str) -> bool:
    """The proxy's reserved `workspaces` prefix, compared case-insensitively as MLflow 3.18.0 does (a
    case-insensitive local store serves `WORKSPACES/` as `workspaces/`)."""
    return segment.lower() == mlflow_facts.RESERVED_ARTIFACT_SEGMENT


def _legacy_proxied_path(item: _Item, target: str) -> ArtifactFinding | None:
    if target == mlflow_facts.DEFAULT_WORKSPACE:
        return None
    return _proxied_finding(
        item,
        f"legacy proxied path (no workspaces/ segment): the artifact proxy serves it only to `default`, so in "
        f"`{target}` its artifacts list as empty; fix: move it with --artifact-policy relocate",
    )


def _proxied_finding(item: _Item, detail: str) -> ArtifactFinding:
    return ArtifactFinding(
        kind=PROXIED_PATH,
        severity=WARNING,
        experiment_id=item.ident,
        location=display_location(item.raw),
        detail=detail,
        workspace=item.group,
    )


def _workspace_root_overlaps(
    workspace_roots: Iterable[tuple[str, str | None]], root: Location | None
) -> Iterator[ArtifactFinding]:
    """Catalog roots that overlap each other, or overlap ROOT/workspaces/ (where default-layout experiments go)."""
    items = [
        _Item(_sort_key(key), None, ws, raw)
        for ws, raw in workspace_roots
        if raw is not None and (key := normalize_location(raw)) is not None
    ]
    if root is not None:
        reserved = root.child(mlflow_facts.RESERVED_ARTIFACT_SEGMENT)
        items.append(_Item(_sort_key(reserved), None, None, str(reserved)))  # group None marks the reserved tree
    for item, partner, crosses in nested_pairs(items):
        if not crosses:
            continue
        # Report against a workspace's row; the reserved tree is never the subject.
        subject, other = (partner, item) if item.group is None else (item, partner)
        what = f"the reserved {other.raw}/ tree" if other.group is None else f"{workspace_phrase(other.group)}'s root"
        relation = "equals" if item.key == partner.key else "overlaps"
        yield ArtifactFinding(
            kind=WORKSPACE_ROOT_OVERLAP,
            severity=WARNING,
            experiment_id=None,
            location=display_location(subject.raw),
            detail=f"{workspace_phrase(subject.group)}'s default_artifact_root {relation} {what}",
            workspace=subject.group,
            other_workspace=other.group,
        )


def workspace_phrase(workspace: str | None) -> str:
    return "workspace (null)" if workspace is None else f"workspace {quoted(workspace)}"


def count_by_kind(findings: Iterable[ArtifactFinding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return {k: counts[k] for k in KINDS if k in counts}
