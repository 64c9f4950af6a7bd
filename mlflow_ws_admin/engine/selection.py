"""Selection for ``db move-resources``: which rows of one workspace move into another.  Only reads.

Nothing here is a list of MLflow tables.  From the reflected schema:

- **resource types** are the root workspace tables: workspace-scoped, with no workspace-carrying FK onto
  another one (``experiments``, ``registered_models``, the gateway and MCP tables, any future one);
- **dependents** follow their root through the workspace FKs, which carry the root's key (a model's versions,
  tags and aliases), so selecting a root by key selects them by the same key;
- a root's **tag table** is a table with ``key`` and ``value`` columns and an FK onto the root;
- **references** are FK paths that tie a row of one root table to a row of another, directly
  (``endpoints.experiment_id``) or through tables without a workspace (``endpoint_model_mappings``,
  ``guardrails`` -> ``scorer_versions`` -> ``scorers`` -> ``experiments``).  A moving row pulls the rows it
  references along; a row left behind that references a moving row is a blocking finding, since after the move
  it would point into another workspace.

``select_resources`` resolves the command's filters into a ``Move`` with explicit keys, so everything after it
(plan, apply under the lock, the journal) costs O(selected rows), never O(table).
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, not_, or_, select, table
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import TableClause, column

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.display import quoted
from mlflow_ws_admin.common.errors import UsageError
from mlflow_ws_admin.db.schema import ForeignKey, UniqueKey, WorkspaceSchema, WorkspaceTable
from mlflow_ws_admin.engine import queries
from mlflow_ws_admin.engine.move import Move, TableSelection

#: How far a reference may reach through tables without a workspace column (guardrails -> scorer_versions ->
#: scorers -> experiments is three steps).
MAX_REFERENCE_STEPS = 3
#: Rounds of pulling referenced rows along (each round follows the rows the previous one added).
MAX_PULL_ROUNDS = 20
#: Rows named per finding list in messages.
SAMPLE_NAMES = 10
EXPERIMENTS = mlflow_facts.EXPERIMENTS_TABLE


@dataclass(frozen=True)
class ResourceFilter:
    """What the command line asked for."""

    source: str
    target: str
    types: tuple[str, ...] = ()  # empty: every resource type
    names: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SelectedRoots:
    """The root rows of one resource type that move."""

    table: str
    key_columns: tuple[str, ...]
    #: the primary key (without the workspace) of each selected row, sorted
    keys: tuple[tuple[Any, ...], ...]
    #: every row of the type in the source moves (no filter): dependents are selected by workspace alone
    everything: bool
    #: the rows' names (the type's name column), in key order; empty when the type has none
    names: tuple[Any, ...] = ()
    #: keys added because a moving row references them (not chosen by the filters)
    pulled: tuple[tuple[Any, ...], ...] = ()


@dataclass(frozen=True)
class RowRef:
    table: str
    key: tuple[tuple[str, Any], ...]
    name: Any = None

    def describe(self) -> str:
        ident = ", ".join(f"{c}={quoted(v)}" for c, v in self.key)
        return f"{self.table} {quoted(self.name)} ({ident})" if self.name is not None else f"{self.table} ({ident})"


@dataclass(frozen=True)
class Reference:
    """A row (``holder``) that references another (``target``) through ``via``."""

    holder: RowRef
    target: RowRef
    via: str


@dataclass(frozen=True)
class ResourceSelection:
    """The plan-side record of a selective move: what was chosen, what came along, what blocks it."""

    source: str
    target: str
    selected: tuple[SelectedRoots, ...]
    #: ``--name`` values that matched no row of any selected type
    unmatched_names: tuple[str, ...] = ()
    #: rows pulled into the move because a moving row references them
    pulled_along: tuple[Reference, ...] = ()
    #: rows staying in the source that reference a moving row: each blocks the move
    references_left_behind: tuple[Reference, ...] = ()
    #: the artifact root moved experiments are repointed under (``--artifact-policy retarget``)
    retarget_root: str | None = None
    #: the objects and stored URIs that move with the experiments (``--artifact-policy relocate``): an
    #: ``engine.relocate.Relocation``, which plans with this module's layout helpers (so no import back here)
    relocation: Any = None

    @property
    def root_rows(self) -> int:
        return sum(len(s.keys) for s in self.selected)


# --- the schema's resource types ------------------------------------------------------------------------


def resource_types(schema: WorkspaceSchema) -> dict[str, WorkspaceTable]:
    """The root workspace tables by name: what ``--resource-type`` accepts."""
    return {wt.name: wt for wt in schema.tables if not wt.parent_keys}


def root_key_columns(wt: WorkspaceTable) -> tuple[str, ...]:
    return tuple(c for c in wt.primary_key if c not in wt.workspace_columns)


def name_column(wt: WorkspaceTable) -> str | None:
    """The column ``--name`` matches: ``name``, else the one ``*_name`` column (``jobs.job_name``)."""
    if wt.has_column("name"):
        return "name"
    named = [c for c in wt.column_names if c.endswith("_name")]
    return named[0] if len(named) == 1 else None


@dataclass(frozen=True)
class TagTable:
    name: str
    fk: ForeignKey  # tag table -> root


def tag_table(schema: WorkspaceSchema, root: WorkspaceTable) -> TagTable | None:
    """A table with ``key`` and ``value`` columns whose FK onto the root covers the root's key."""
    wanted = set(root_key_columns(root))
    for fk in schema.all_foreign_keys:
        is_tags = {"key", "value"} <= set(schema.columns_of(fk.child))
        if fk.parent == root.name and fk.child != root.name and is_tags and wanted <= set(fk.parent_columns):
            return TagTable(fk.child, fk)
    return None


def _dependents(schema: WorkspaceSchema, root: WorkspaceTable) -> list[queries.Dependent]:
    """Descendants through workspace FKs that carry the root's whole key (every one does in MLflow)."""
    key = UniqueKey(root_key_columns(root), "primary key")
    found = queries.dependents(schema, root, key)
    missing = sorted(_descendants(schema, root.name) - {d.table for d in found})
    if missing:
        raise UsageError(
            f"cannot move {root.name}: the rows of {', '.join(missing)} cannot be tied to their {root.name} row "
            "by its key (an unexpected schema)"
        )
    return found


def _descendants(schema: WorkspaceSchema, root: str) -> set[str]:
    found: set[str] = set()
    todo = [root]
    while todo:
        for fk in schema.children_of(todo.pop()):
            if fk.child not in found:
                found.add(fk.child)
                todo.append(fk.child)
    return found


# --- references between root rows -----------------------------------------------------------------------


@dataclass(frozen=True)
class Tie:
    """Rows of ``via`` tie a row of ``holder`` (which references) to a row of ``target`` (referenced): two FK
    paths up from ``via``, through tables without a workspace column.  ``holder_path`` is empty when ``via``
    is the holder itself."""

    via: str
    holder: str
    target: str
    holder_path: tuple[ForeignKey, ...]
    target_path: tuple[ForeignKey, ...]


def ties(schema: WorkspaceSchema) -> list[Tie]:
    """Every way a row of one root table references a row of another.  A table without a workspace that
    reaches two root tables is a link: it belongs to the side its FK cascades deletes from (an endpoint's model
    mappings go with the endpoint); when neither or both cascade, each side references the other."""
    roots = resource_types(schema)
    found: list[Tie] = []
    for via in sorted(schema.all_table_names):
        paths = list(_paths_up(schema, via, roots))
        if via in roots:
            found += [Tie(via, via, p[-1].parent, (), p) for p in paths if p[-1].parent != via]
            continue
        if schema.is_workspace_table(via):
            continue  # a dependent: it moves with its root, and its own references are its root's
        for i, p in enumerate(paths):
            for q in paths[i + 1 :]:
                if p[-1].parent == q[-1].parent:
                    continue
                owns_p, owns_q = p[0].cascades_on_delete, q[0].cascades_on_delete
                if owns_p or not owns_q:
                    found.append(Tie(via, p[-1].parent, q[-1].parent, p, q))
                if owns_q or not owns_p:
                    found.append(Tie(via, q[-1].parent, p[-1].parent, q, p))
    return found


def _paths_up(
    schema: WorkspaceSchema, start: str, roots: dict[str, WorkspaceTable]
) -> Iterator[tuple[ForeignKey, ...]]:
    """FK paths from ``start`` up to a root table, through at most MAX_REFERENCE_STEPS tables without a
    workspace column.  Workspace-carrying FKs are the dependents' graph, not references."""

    def walk(table_name: str, path: tuple[ForeignKey, ...]) -> Iterator[tuple[ForeignKey, ...]]:
        for fk in schema.all_foreign_keys:
            if fk.child != table_name or fk.parent in {f.child for f in path} | {start}:
                continue
            if schema.is_workspace_table(fk.child) and _carries_workspace(schema, fk):
                continue
            step = (*path, fk)
            if fk.parent in roots:
                yield step
            elif not schema.is_workspace_table(fk.parent) and len(step) < MAX_REFERENCE_STEPS:
                yield from walk(fk.parent, step)

    yield from walk(start, ())


def _carries_workspace(schema: WorkspaceSchema, fk: ForeignKey) -> bool:
    child = schema.table(fk.child)
    return any(c in child.workspace_columns for c in fk.child_columns)


# --- resolving the filters --------------------------------------------------------------------------------


def select_resources(
    conn: Connection, schema: WorkspaceSchema, wanted: ResourceFilter
) -> tuple[Move, ResourceSelection]:
    """The Move and its record for ``move-resources``: validated filters resolved to explicit root keys, the
    rows they reference pulled along, and the rows left behind that would point into the target."""
    types = _types(schema, wanted)
    roots: dict[str, SelectedRoots] = {}
    matched_names: set[str] = set()
    for wt in types:
        chosen = _chosen_roots(conn, schema, wt, wanted)
        roots[wt.name] = chosen
        matched_names |= {str(n) for n in chosen.names}
    unmatched = tuple(
        n for n in dict.fromkeys(wanted.names) if n not in matched_names and not _folded_in(n, matched_names)
    )
    if wanted.names and len(unmatched) == len(set(wanted.names)):
        raise UsageError(
            f"no {_type_list(types)} named {', '.join(quoted(n) for n in unmatched)} in workspace "
            f"{quoted(wanted.source)}: nothing to move"
        )
    if wanted.tags and not any(r.keys for r in roots.values()):
        tags = " and ".join(f"{k}={v}" for k, v in wanted.tags)
        raise UsageError(f"no {_type_list(types)} in workspace {quoted(wanted.source)} has the tag(s) {tags}")
    all_ties = ties(schema)
    roots, pulled = _pull_referenced(conn, schema, wanted.source, roots, all_ties)
    move = Move(target=wanted.target, source=wanted.source, selection=_table_selections(schema, roots))
    left = tuple(references_left_behind(conn, schema, move, all_ties))
    selection = ResourceSelection(
        source=wanted.source,
        target=wanted.target,
        selected=tuple(roots[name] for name in sorted(roots)),
        unmatched_names=unmatched,
        pulled_along=pulled,
        references_left_behind=left,
    )
    return move, selection


def _folded_in(name: str, matched: set[str]) -> bool:
    """A collation that ignores case matched the name in another case (MySQL)."""
    return name.casefold() in {m.casefold() for m in matched}


def _type_list(types: Sequence[WorkspaceTable]) -> str:
    return "/".join(t.name for t in types) if len(types) <= 3 else "resources"


def _types(schema: WorkspaceSchema, wanted: ResourceFilter) -> list[WorkspaceTable]:
    """The resource types to select from, with the filters' requirements checked (usage errors, exit 2)."""
    known = resource_types(schema)
    unknown = [t for t in wanted.types if t not in known]
    if unknown:
        raise UsageError(
            f"unknown resource type {', '.join(quoted(t) for t in unknown)}; this database has: {', '.join(sorted(known))}"
        )
    types = [known[t] for t in dict.fromkeys(wanted.types)] or list(known.values())
    several_ws = [t.name for t in types if len(t.workspace_columns) > 1]
    if several_ws:
        raise UsageError(f"cannot move {', '.join(several_ws)} selectively: their rows carry several workspaces")
    if wanted.names:
        nameless = [t.name for t in types if name_column(t) is None]
        if wanted.types and nameless:
            raise UsageError(f"--name: {', '.join(nameless)} has no name column to match")
        types = [t for t in types if name_column(t) is not None]
        for t in types:
            bad = [n for n in wanted.names if qualifier_column(t) and parse_qualified_name(n) is None]
            if bad and t.name in wanted.types:
                raise UsageError(
                    f"--name {', '.join(quoted(n) for n in bad)}: MLflow names {t.name} 'name' or "
                    "'@organization/name' (lowercase letters, digits and hyphens)"
                )
    if wanted.tags:
        untagged = [t.name for t in types if tag_table(schema, t) is None]
        if wanted.types and untagged:
            tagged = sorted(n for n, t in known.items() if tag_table(schema, t) is not None)
            raise UsageError(f"--tag: {', '.join(untagged)} has no tags; types with tags: {', '.join(tagged)}")
        types = [t for t in types if tag_table(schema, t) is not None]
    return types


def _chosen_roots(
    conn: Connection, schema: WorkspaceSchema, wt: WorkspaceTable, wanted: ResourceFilter
) -> SelectedRoots:
    t = queries.table_clause(wt)
    keys = root_key_columns(wt)
    name = name_column(wt)
    qualifier = qualifier_column(wt) if name else None
    cols = [*(t.c[k] for k in keys), *([t.c[name]] if name else []), *([t.c[qualifier]] if qualifier else [])]
    stmt = select(*cols).where(t.c[wt.workspace_column] == wanted.source)
    if wanted.names and name and qualifier:
        pairs = [p for n in dict.fromkeys(wanted.names) if (p := parse_qualified_name(n)) is not None]
        stmt = stmt.where(or_(*(and_(t.c[qualifier] == q, t.c[name] == n) for q, n in pairs)) if pairs else false())
    elif wanted.names and name:
        stmt = stmt.where(t.c[name].in_(list(dict.fromkeys(wanted.names))))
    if wanted.tags:
        stmt = stmt.where(_has_tags(schema, wt, t, wanted.tags))
    rows = conn.execute(stmt.order_by(*cols[: len(keys)])).all()
    n = len(keys)
    return SelectedRoots(
        table=wt.name,
        key_columns=keys,
        keys=tuple(tuple(r[:n]) for r in rows),
        everything=not (wanted.names or wanted.tags),
        names=tuple(format_qualified_name(r[n + 1], r[n]) if qualifier else r[n] for r in rows) if name else (),
    )


def qualifier_column(wt: WorkspaceTable) -> str | None:
    """The column that qualifies the table's names (skills' ``organization``), or None."""
    spec = mlflow_facts.QUALIFIED_NAMES.get(wt.name)
    return spec[0] if spec is not None and wt.has_column(spec[0]) else None


_SKILL_NAME = re.compile(mlflow_facts.SKILL_NAME_PATTERN)
_ORGANIZATION_NAME = re.compile(mlflow_facts.ORGANIZATION_NAME_PATTERN)


def parse_qualified_name(raw: str) -> tuple[str, str] | None:
    """(organization, name) from a skill's ``name`` or ``@organization/name``, as MLflow 3.18.0 parses
    ``--name``; None when MLflow would refuse it."""
    organization, name = "", raw
    if raw.startswith("@"):
        organization, separator, name = raw[1:].partition("/")
        if not separator or not organization:
            return None
    limit = mlflow_facts.MAX_SKILL_NAME_LENGTH
    if organization and not (_ORGANIZATION_NAME.fullmatch(organization) and len(organization) <= limit):
        return None
    if not (_SKILL_NAME.fullmatch(name) and len(name) <= limit):
        return None
    return organization, name


def format_qualified_name(qualifier: Any, name: Any) -> str:
    """How MLflow prints a skill: ``@organization/name``, or ``name`` without an organization."""
    return f"@{qualifier}/{name}" if qualifier else str(name)


def _has_tags(
    schema: WorkspaceSchema, wt: WorkspaceTable, t: TableClause, tags: Sequence[tuple[str, str]]
) -> ColumnElement[bool]:
    """Every given tag (AND), each an EXISTS on the discovered tag table joined by its FK."""
    found = tag_table(schema, wt)
    assert found is not None  # _types kept only tagged types
    fk = found.fk
    cols = schema.columns_of(found.name)
    tags_t = table(found.name, *(column(c) for c in cols))
    joined = [tags_t.c[c] == t.c[p] for c, p in zip(fk.child_columns, fk.parent_columns, strict=True)]
    return and_(
        *(
            select(tags_t.c["key"]).where(*joined, tags_t.c["key"] == k, tags_t.c["value"] == v).exists()
            for k, v in dict.fromkeys(tags)
        )
    )


def _table_selections(schema: WorkspaceSchema, roots: dict[str, SelectedRoots]) -> dict[str, TableSelection]:
    """Each selected root and every dependent of it, selected by the root's key carried down."""
    selections: dict[str, TableSelection] = {}
    for name, chosen in roots.items():
        if not chosen.keys and not chosen.everything:
            continue
        root = schema.table(name)
        values = None if chosen.everything and not chosen.pulled else chosen.keys
        selections[name] = TableSelection(chosen.key_columns, values)
        for dep in _dependents(schema, root):
            dep_cols = tuple(dep.columns[k] for k in chosen.key_columns)
            selections[dep.table] = TableSelection(dep_cols, values)
    return selections


# --- references -------------------------------------------------------------------------------------------


def _tie_rows(schema: WorkspaceSchema, tie: Tie) -> tuple[Select, TableClause, TableClause]:
    """The join of one tie: ``via`` up both paths.  Returns the select (no columns chosen yet, the caller
    adds them) and the holder and target tables as they appear in it."""
    aliases: dict[tuple[str, int], TableClause] = {}

    def clause(name: str, occurrence: int) -> TableClause:
        key = (name, occurrence)
        if key not in aliases:
            base = table(name, *(column(c) for c in schema.columns_of(name)))
            used = sum(1 for n, _ in aliases if n == name)
            aliases[key] = base if used == 0 else base.alias(f"mwa_{name}_{used}")  # type: ignore[assignment]
        return aliases[key]

    via = clause(tie.via, 0)
    joined: Any = via
    ends: list[TableClause] = []
    for side, path in enumerate((tie.holder_path, tie.target_path)):
        current = via
        for step, fk in enumerate(path):
            parent = clause(fk.parent, 1 + side * MAX_REFERENCE_STEPS + step)
            joined = joined.join(
                parent,
                and_(*(current.c[c] == parent.c[p] for c, p in zip(fk.child_columns, fk.parent_columns, strict=True))),
            )
            current = parent
        ends.append(current)
    return select().select_from(joined), ends[0], ends[1]


def _ref_columns(schema: WorkspaceSchema, name: str, t: TableClause) -> list[Any]:
    wt = schema.table(name)
    label = name_column(wt)
    return [*(t.c[k] for k in root_key_columns(wt)), *([t.c[label]] if label else [])]


def _row_ref(schema: WorkspaceSchema, name: str, values: Sequence[Any]) -> RowRef:
    wt = schema.table(name)
    keys = root_key_columns(wt)
    label = values[len(keys)] if name_column(wt) else None
    return RowRef(name, tuple(zip(keys, values[: len(keys)], strict=True)), label)


def _moving(schema: WorkspaceSchema, t: TableClause, name: str, move: Move) -> ColumnElement[bool]:
    """``queries.moving`` for one side of a tie, on that side's (possibly aliased) table."""
    wt = schema.table(name)
    ws = t.c[wt.workspace_column]
    selected = (move.selection or {}).get(name)
    if selected is None:
        return false()
    if selected.everything:
        return ws == move.source
    return and_(ws == move.source, queries.selected_keys(t, selected))


def _pull_referenced(
    conn: Connection,
    schema: WorkspaceSchema,
    source: str,
    roots: dict[str, SelectedRoots],
    all_ties: list[Tie],
) -> tuple[dict[str, SelectedRoots], tuple[Reference, ...]]:
    """Add the source's rows that moving rows reference, round after round, until nothing new comes."""
    pulled: list[Reference] = []
    for _ in range(MAX_PULL_ROUNDS):
        move = Move(source=source, target="", selection=_table_selections(schema, roots))
        added: dict[str, dict[tuple, Any]] = {}
        for tie in all_ties:
            if tie.holder not in (move.selection or {}):
                continue
            for ref in _tie_references(conn, schema, tie, move, moving="holder"):
                key = tuple(v for _, v in ref.target.key)
                if key not in added.setdefault(tie.target, {}):
                    added[tie.target][key] = ref.target.name
                    pulled.append(ref)
        if not any(added.values()):
            return roots, tuple(pulled)
        for name, keys in added.items():
            roots[name] = _with_pulled(schema, roots.get(name), name, keys)
    raise UsageError("the selected rows reference each other further than this tool follows; select them explicitly")


def _with_pulled(
    schema: WorkspaceSchema, chosen: SelectedRoots | None, name: str, keys: dict[tuple, Any]
) -> SelectedRoots:
    wt = schema.table(name)
    if chosen is None:
        chosen = SelectedRoots(name, root_key_columns(wt), (), everything=False)
    merged = dict(zip(chosen.keys, chosen.names or (None,) * len(chosen.keys), strict=True)) | keys
    ordered = sorted(merged, key=_sort_key)
    return replace(
        chosen,
        keys=tuple(ordered),
        names=tuple(merged[k] for k in ordered) if name_column(wt) else (),
        pulled=chosen.pulled + tuple(sorted(keys, key=_sort_key)),
    )


def _sort_key(key: tuple) -> tuple:
    return tuple((v is None, str(v)) for v in key)


def references_left_behind(
    conn: Connection, schema: WorkspaceSchema, move: Move, all_ties: Iterable[Tie] | None = None
) -> Iterator[Reference]:
    """Rows staying in the source that reference a moving row: after the move they would point into another
    workspace.  Also run under apply's lock, where a row may have appeared since the plan."""
    for tie in ties(schema) if all_ties is None else all_ties:
        if tie.target in (move.selection or {}):
            yield from _tie_references(conn, schema, tie, move, moving="target")


def _tie_references(
    conn: Connection, schema: WorkspaceSchema, tie: Tie, move: Move, *, moving: str
) -> Iterator[Reference]:
    """The references of one tie between a moving row and a row that stays in the source.  ``moving`` names
    the side that moves: "holder" finds the rows to pull along, "target" the rows left behind."""
    stmt, holder, target = _tie_rows(schema, tie)
    sides = {"holder": (tie.holder, holder), "target": (tie.target, target)}
    (going, going_t), (staying, staying_t) = sides[moving], sides["target" if moving == "holder" else "holder"]
    hcols, tcols = _ref_columns(schema, tie.holder, holder), _ref_columns(schema, tie.target, target)
    stays = staying_t.c[schema.table(staying).workspace_column]
    stmt = stmt.add_columns(*hcols, *tcols).where(
        _moving(schema, going_t, going, move), stays == move.source, not_(_moving(schema, staying_t, staying, move))
    )
    for row in conn.execute(stmt.distinct()):
        n = len(hcols)
        yield Reference(_row_ref(schema, tie.holder, row[:n]), _row_ref(schema, tie.target, row[n:]), tie.via)


def reference_tables(schema: WorkspaceSchema) -> list[str]:
    """The tables without a workspace that references pass through: apply reads them under its lock."""
    return sorted(
        {fk.child for tie in ties(schema) for fk in (*tie.holder_path, *tie.target_path)}
        - {t.name for t in schema.tables}
    )


def describe_references(refs: Sequence[Reference], limit: int | None = SAMPLE_NAMES) -> list[str]:
    shown = refs if limit is None else refs[:limit]
    return [f"{r.holder.describe()} references {r.target.describe()}" + _via(r) for r in shown]


def _via(ref: Reference) -> str:
    return "" if ref.via in (ref.holder.table, ref.target.table) else f" (through {ref.via})"


def workspace_root(default_root: str | None, catalog_root: str | None, target: str) -> str | None:
    """Where the target workspace's new experiments go, as MLflow resolves it: the workspace's own
    ``default_artifact_root`` as is, else the server's root plus ``workspaces/<target>``."""
    if catalog_root:
        return catalog_root
    if not default_root:
        return None
    return append_to_uri_path(default_root, mlflow_facts.RESERVED_ARTIFACT_SEGMENT, target)


def retargeted(root: str, experiment_id: Any) -> str:
    """An experiment's artifact location under ``root``: ``ROOT/<experiment_id>``."""
    return append_to_uri_path(root, str(experiment_id))


def append_to_uri_path(uri: str, *segments: str) -> str:
    """``segments`` appended to the path of ``uri``, as MLflow's ``mlflow.utils.uri.append_to_uri_path`` does
    (how its server and its move-resources build artifact locations): a query string or fragment stays at the
    end (``s3://b/root?region=x`` -> ``s3://b/root/workspaces/t?region=x``), a path without a scheme is joined
    as a POSIX path, and an opaque path (``file:relative``) keeps its scheme in front."""
    suffix = ""
    for segment in segments:
        suffix = _join_posix(suffix, segment)
    parts = urllib.parse.urlparse(uri)
    if not parts.scheme:
        return _join_posix(uri, suffix)
    prefix = ""
    if not parts.path.startswith("/"):
        prefix, parts = parts.scheme + ":", parts._replace(scheme="")
    return prefix + urllib.parse.urlunparse(parts._replace(path=_join_posix(parts.path, suffix)))


def _join_posix(prefix: str, suffix: str) -> str:
    """``posixpath.join``, except that an absolute ``suffix`` is appended rather than replacing ``prefix``."""
    return posixpath.join(prefix, suffix.lstrip("/")) if prefix else suffix


# --- the workspace catalog ----------------------------------------------------------------------------------


def read_workspaces(conn: Connection) -> dict[str, str | None]:
    """Every workspace in the catalog on ``conn`` with its own ``default_artifact_root`` (None when unset, or
    when the catalog has no such column).  Only reads; ``conn`` may be a separate workspace store."""
    from sqlalchemy import inspect

    insp = inspect(conn)
    if not insp.has_table(mlflow_facts.CATALOG_TABLE):
        raise UsageError(f"the workspace store has no `{mlflow_facts.CATALOG_TABLE}` table")
    cols = {c["name"] for c in insp.get_columns(mlflow_facts.CATALOG_TABLE)}
    name = column(mlflow_facts.CATALOG_NAME_COLUMN)
    has_root = mlflow_facts.CATALOG_ARTIFACT_ROOT_COLUMN in cols
    root = column(mlflow_facts.CATALOG_ARTIFACT_ROOT_COLUMN) if has_root else None
    catalog = table(mlflow_facts.CATALOG_TABLE, name, *([root] if root is not None else []))
    stmt = select(name, *([root] if root is not None else [])).select_from(catalog).order_by(name)
    return {row[0]: (row[1] if has_root else None) for row in conn.execute(stmt)}


#: Workspace names listed when a given one does not exist.
LISTED_WORKSPACES = 20


def check_workspaces(workspaces: dict[str, str | None], source: str, target: str) -> None:
    """Both workspaces must exist in the catalog (usage error, exit 2, naming the ones that do)."""
    missing = [w for w in (source, target) if w not in workspaces]
    if not missing:
        return
    known = sorted(workspaces)
    shown = ", ".join(quoted(w) for w in known[:LISTED_WORKSPACES]) or "none"
    more = f" and {len(known) - LISTED_WORKSPACES} more" if len(known) > LISTED_WORKSPACES else ""
    raise UsageError(
        f"no workspace {' or '.join(quoted(w) for w in missing)} in the workspace catalog; it has: {shown}{more}"
    )
