"""Artifact-location findings: experiments whose artifacts would collide once they share one workspace.

Locations are normalized to (scheme, netloc, path segments), so `file:///a/b/`, `file:/a/b` and `/a/b` are one
place and `/a/b` is not a prefix of `/a/bc`.  Overlaps are found by sorting the normalized keys: a location's
descendants then follow it directly, and one pass with a stack of open ancestors finds every overlap in
O(n log n) — never by comparing all pairs.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from sqlalchemy.engine import Connection

from mlflow_ws_admin import knowledge, queries
from mlflow_ws_admin.connect import _mask_userinfo
from mlflow_ws_admin.schema import WorkspaceSchema

BLOCKING = "blocking"
WARNING = "warning"

OVERLAP = "overlap"
RESERVED_COLLISION = "reserved-path-collision"
RESERVED_SQUATTING = "reserved-path-squatting"
PROXIED_PATH = "proxied-path"
WORKSPACE_ROOT_OVERLAP = "workspace-root-overlap"
#: Report order.
KINDS = (OVERLAP, RESERVED_COLLISION, RESERVED_SQUATTING, PROXIED_PATH, WORKSPACE_ROOT_OVERLAP)

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_LOCAL_HOSTS = frozenset({"", "localhost"})
_READ_BATCH = 5000


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
        return f"{self.scheme}://{self.netloc}{path}"


def normalize_location(raw: str) -> Location | None:
    """Normalize a stored artifact location; None for an empty one.  Query and fragment are ignored."""
    text = raw.strip()
    if not text:
        return None
    if _WINDOWS_DRIVE.match(text):
        drive, rest = text[:2].lower(), text[2:].replace("\\", "/")
        return Location("file", "", (drive, *_segments(rest)))
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if not scheme:
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
    normalized = posixpath.normpath("/" + path)
    return tuple(s for s in normalized.split("/") if s)


def _comparable_netloc(netloc: str) -> str:
    """Host names compare case-insensitively; anything before `@` (a user, or an Azure container) does not.
    A password names no place, so it is dropped (and can never reach a report through a normalized key)."""
    user, at, host = netloc.rpartition("@")
    return f"{user.partition(':')[0]}{at}{host.lower()}"


def display_location(raw: str) -> str:
    """A stored location as it may be printed: any `user:password@` has its password masked."""
    return _mask_userinfo(raw)


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
    key: Location
    ident: Any  # experiment id, or None for a workspace root
    group: str | None  # workspace
    raw: str


def find_artifact_findings(
    experiments: Iterable[tuple[Any, str | None, str | None]],
    workspace_roots: Iterable[tuple[str, str | None]] = (),
    default_artifact_root: str | None = None,
) -> tuple[ArtifactFinding, ...]:
    """Every finding for (experiment id, workspace, artifact_location) rows and (workspace, root) catalog rows.

    NULL or empty locations are skipped, but their experiments' ids still count for ROOT/<id> collisions.
    Needs the server's root for the reserved-path kinds."""
    items: list[_Item] = []
    workspace_of: dict[str, str | None] = {}
    for exp_id, ws, raw in experiments:
        workspace_of[str(exp_id)] = ws
        if raw is not None and (key := normalize_location(raw)) is not None:
            items.append(_Item(key, exp_id, ws, raw))
    root = normalize_location(default_artifact_root) if default_artifact_root else None
    found: list[ArtifactFinding] = list(_overlaps(items))
    if root is not None:
        found += _reserved_collisions(items, root, workspace_of)
        found += _squatters(items, root)
    found += _proxied_paths(items)
    found += _workspace_root_overlaps(workspace_roots, root)
    order = {kind: i for i, kind in enumerate(KINDS)}
    return tuple(sorted(found, key=lambda f: order[f.kind]))  # stable: keeps each kind's own order


def nested_pairs(items: Iterable[_Item]) -> Iterator[tuple[_Item, _Item, bool]]:
    """For each item equal to or inside another, one (item, partner, crosses_groups) triple.

    The partner is the nearest enclosing item of another group when there is one (crosses_groups=True),
    else the nearest enclosing item.  Sorted keys make every enclosing item an entry of the stack.  Each
    entry carries two samples of everything at or above it: the nearest item, and the nearest one of another
    group than that.  Whatever the current item's group, one of the two is its answer, so each step is O(1)
    however deep the nesting."""
    stack: list[tuple[Location, tuple[_Item, ...]]] = []
    for item in sorted(items, key=lambda i: (i.key, _id_order(i.ident))):
        while stack and not stack[-1][0].contains(item.key):
            stack.pop()
        if stack:
            samples = stack[-1][1]
            crossing = next((s for s in samples if s.group != item.group), None)
            yield item, crossing or samples[0], crossing is not None
        if stack and stack[-1][0] == item.key:
            key, samples = stack.pop()
            stack.append((key, _two_samples(item, samples)))
        else:
            stack.append((item.key, _two_samples(item, stack[-1][1] if stack else ())))


def _two_samples(nearest: _Item, enclosing: tuple[_Item, ...]) -> tuple[_Item, ...]:
    """The nearest item, and the nearest enclosing item of another group (if any)."""
    other = next((s for s in enclosing if s.group != nearest.group), None)
    return (nearest,) if other is None else (nearest, other)


def _id_order(ident: Any) -> tuple[int, Any]:
    """Numeric ids in numeric order (so the older experiment is the partner), anything else as text."""
    return (0, ident) if isinstance(ident, int) else (1, str(ident))


def _overlaps(items: list[_Item]) -> Iterator[ArtifactFinding]:
    for item, partner, crosses in nested_pairs(items):
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
            detail=f"{where} experiment {partner.ident} ({_ws(partner.group)}); {why}",
            workspace=item.group,
            other_experiment_id=partner.ident,
            other_workspace=partner.group,
        )


def _reserved_collisions(
    items: list[_Item], root: Location, workspace_of: dict[str, str | None]
) -> Iterator[ArtifactFinding]:
    """A location equal to ROOT/<n> for another experiment n: MLflow's own place for n's artifacts."""
    depth = len(root.segments)
    for item in items:
        key = item.key
        if len(key.segments) != depth + 1 or not root.contains(key):
            continue
        n = key.segments[-1]
        if n != str(item.ident) and n in workspace_of:
            yield ArtifactFinding(
                kind=RESERVED_COLLISION,
                severity=BLOCKING,
                experiment_id=item.ident,
                location=display_location(item.raw),
                detail=f"is {root.child(n)}, the default artifact location of experiment {n} ({_ws(workspace_of[n])})",
                workspace=item.group,
                other_experiment_id=n,
                other_workspace=workspace_of[n],
            )


def _squatters(items: list[_Item], root: Location) -> Iterator[ArtifactFinding]:
    """Locations under ROOT/workspaces/<ws>/ for a workspace other than the experiment's own."""
    reserved = root.child(knowledge.RESERVED_ARTIFACT_SEGMENT)
    depth = len(reserved.segments)
    for item in items:
        if not reserved.contains(item.key):
            continue
        own = item.group if item.group is not None else knowledge.DEFAULT_WORKSPACE
        if len(item.key.segments) == depth:
            detail = f"is the reserved directory {reserved} itself, where every workspace's experiments go"
        elif (ws := item.key.segments[depth]) != own:
            detail = f"sits under {reserved.child(ws)}/, reserved for workspace {_q(ws)}'s new experiments"
        else:
            continue
        yield ArtifactFinding(
            kind=RESERVED_SQUATTING,
            severity=WARNING,
            experiment_id=item.ident,
            location=display_location(item.raw),
            detail=detail,
            workspace=item.group,
        )


def _proxied_paths(items: list[_Item]) -> Iterator[ArtifactFinding]:
    """`mlflow-artifacts:` paths under workspaces/<ws>/: the proxy rejects them for `default` while workspaces
    are on."""
    for item in items:
        segs = item.key.segments
        if item.key.scheme != knowledge.PROXIED_ARTIFACT_SCHEME or knowledge.RESERVED_ARTIFACT_SEGMENT not in segs:
            continue
        i = segs.index(knowledge.RESERVED_ARTIFACT_SEGMENT)
        if i + 1 < len(segs) and segs[i + 1] != knowledge.DEFAULT_WORKSPACE:
            yield ArtifactFinding(
                kind=PROXIED_PATH,
                severity=WARNING,
                experiment_id=item.ident,
                location=display_location(item.raw),
                detail=(
                    f"proxied path under workspaces/{segs[i + 1]}/: once in `default`, the artifact proxy rejects "
                    "it while workspaces stay enabled; fix: disable workspaces after the migration"
                ),
                workspace=item.group,
            )


def _workspace_root_overlaps(
    workspace_roots: Iterable[tuple[str, str | None]], root: Location | None
) -> Iterator[ArtifactFinding]:
    """Catalog roots that overlap each other, or overlap ROOT/workspaces/ (where default-layout experiments go)."""
    items = [
        _Item(key, None, ws, raw)
        for ws, raw in workspace_roots
        if raw is not None and (key := normalize_location(raw)) is not None
    ]
    if root is not None:
        reserved = root.child(knowledge.RESERVED_ARTIFACT_SEGMENT)
        items.append(_Item(reserved, None, None, str(reserved)))  # group None marks the reserved tree
    for item, partner, crosses in nested_pairs(items):
        if not crosses:
            continue
        # Report against a workspace's row; the reserved tree is never the subject.
        subject, other = (partner, item) if item.group is None else (item, partner)
        what = f"the reserved {other.raw}/ tree" if other.group is None else f"{_ws(other.group)}'s root"
        relation = "equals" if item.key == partner.key else "overlaps"
        yield ArtifactFinding(
            kind=WORKSPACE_ROOT_OVERLAP,
            severity=WARNING,
            experiment_id=None,
            location=display_location(subject.raw),
            detail=f"{_ws(subject.group)}'s default_artifact_root {relation} {what}",
            workspace=subject.group,
            other_workspace=other.group,
        )


def _ws(workspace: str | None) -> str:
    return "workspace (null)" if workspace is None else f"workspace {_q(workspace)}"


def _q(value: str) -> str:
    """User data JSON-quoted, as every report shows it (escapes visible)."""
    return json.dumps(value, ensure_ascii=False)


def read_artifact_findings(
    conn: Connection, schema: WorkspaceSchema, default_artifact_root: str | None
) -> tuple[ArtifactFinding, ...]:
    """One streamed read of experiments' locations and one of the catalog's roots; only reads."""
    roots: list[tuple[str, str | None]] = []
    if any(c.name == knowledge.CATALOG_ARTIFACT_ROOT_COLUMN for c in schema.catalog.columns):
        roots = [(ws, root) for ws, root in conn.execute(queries.workspace_artifact_roots(schema.catalog))]
    experiments: list[tuple[Any, str | None, str | None]] = []
    wt = next((t for t in schema.tables if t.name == knowledge.EXPERIMENTS_TABLE), None)
    if wt is not None and wt.has_column(knowledge.ARTIFACT_LOCATION_COLUMN):
        result = conn.execution_options(stream_results=True, yield_per=_READ_BATCH).execute(
            queries.experiment_locations(wt)
        )
        experiments = [(exp_id, ws, loc) for exp_id, ws, loc in result]
    return find_artifact_findings(experiments, roots, default_artifact_root)


def count_by_kind(findings: Iterable[ArtifactFinding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return {k: counts[k] for k in KINDS if k in counts}
