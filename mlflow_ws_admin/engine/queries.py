"""SQL builders shared by planning and apply.  Every comparison runs in the database, so collations decide
what collides exactly as the unique indexes would (MySQL's `Churn` = `churn`, PostgreSQL's not).

While MySQL holds LOCK TABLES, a query may name each table only once and without an alias; the builders
here that apply uses keep to that.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    Update,
    and_,
    case,
    column,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    table,
    tuple_,
)
from sqlalchemy.sql.expression import TableClause

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.db.schema import Catalog, ForeignKey, UniqueKey, WorkspaceSchema, WorkspaceTable
from mlflow_ws_admin.engine.move import MIGRATE, Move, TableSelection

GROUP_SIZE = "_mwa_rows"
SPAN_FIRST, SPAN_LAST = "_mwa_ws_first", "_mwa_ws_last"


@functools.cache
def table_clause(wt: WorkspaceTable) -> TableClause:
    """One clause object per table, so every builder's columns refer to the same FROM element."""
    return table(wt.name, *(column(c) for c in wt.column_names))


def moving(wt: WorkspaceTable, ws_column: str, move: Move = MIGRATE, *, as_ranges: bool = False) -> ColumnElement[bool]:
    """Rows this column moves.

    A migration moves every value but the target.  A NULL in the table's own `workspace` column is outside
    `default` too; a NULL in an FK-derived workspace column means "no reference" and stays NULL.  as_ranges
    spells `<> 'default'` as `< 'default' OR > 'default'`: the same rows under any collation, but an index on
    the column answers a count at once (the check after the move).  UPDATEs keep `<>`, which SQLite runs
    faster.

    A selective move (``move.selection``) moves the selected rows of its source workspace: an equality, and
    an IN list of keys where the selection names rows, so the indexes keep it O(selected rows)."""
    t = table_clause(wt)
    col = t.c[ws_column]
    if move.selection is None:
        target = move.target
        differs = or_(col < target, col > target) if as_ranges else col != target
        if ws_column == mlflow_facts.WORKSPACE_COLUMN and wt.is_nullable(ws_column):
            return or_(col.is_(None), differs)
        return differs
    selected = move.selection.get(wt.name)
    if selected is None:
        return false()
    in_source = col == move.source
    return in_source if selected.everything else and_(in_source, selected_keys(t, selected))


def selected_keys(t: TableClause, selected: TableSelection) -> ColumnElement[bool]:
    assert selected.values is not None
    if len(selected.columns) == 1:
        return t.c[selected.columns[0]].in_([v[0] for v in selected.values])
    return tuple_(*(t.c[c] for c in selected.columns)).in_(list(selected.values))


def rows_moving(wt: WorkspaceTable, move: Move = MIGRATE, *, as_ranges: bool = False) -> ColumnElement[bool]:
    return or_(*(moving(wt, c, move, as_ranges=as_ranges) for c in wt.workspace_columns))


def moves_by_workspace(wt: WorkspaceTable, move: Move = MIGRATE) -> Select:
    """(source workspace, rows) for the rows that must move."""
    ws = table_clause(wt).c[wt.workspace_column]
    return select(ws, func.count()).select_from(table_clause(wt)).where(rows_moving(wt, move)).group_by(ws)


def count_moving(wt: WorkspaceTable, move: Move = MIGRATE) -> Select:
    return select(func.count()).select_from(table_clause(wt)).where(rows_moving(wt, move, as_ranges=True))


def move_statement(wt: WorkspaceTable, ws_column: str, move: Move = MIGRATE) -> Update:
    t = table_clause(wt)
    return t.update().where(moving(wt, ws_column, move)).values({ws_column: move.target})


def conflict_domain(wt: WorkspaceTable, move: Move) -> ColumnElement[bool] | None:
    """The rows that share the target after the move: for a migration every row (None: no filter), for a
    selective move the target's rows and the moving ones.  Rows left behind never collide."""
    if move.selection is None:
        return None
    ws = table_clause(wt).c[wt.workspace_column]
    return or_(ws == move.target, rows_moving(wt, move))


def _in_domain(stmt: Select, wt: WorkspaceTable, move: Move) -> Select:
    domain = conflict_domain(wt, move)
    return stmt if domain is None else stmt.where(domain)


def stored_content_rows(
    wt: WorkspaceTable, column: str, value: str, location_column: str, move: Move = MIGRATE
) -> tuple[Select, list[str]]:
    """(workspace, location, *key) of the rows to move whose ``column`` is ``value``; and the key columns."""
    t = table_clause(wt)
    keys = [c for c in wt.primary_key if c not in wt.workspace_columns]
    location = t.c[location_column] if wt.has_column(location_column) else literal(None)
    stmt = (
        select(t.c[wt.workspace_column], location, *(t.c[k] for k in keys))
        .where(rows_moving(wt, move), t.c[column] == value)
        .order_by(t.c[wt.workspace_column], *(t.c[k] for k in keys))
    )
    return stmt, keys


def catalog_names(catalog: Catalog) -> Select:
    name = column(catalog.name_column)
    return select(name).select_from(table(catalog.table, name)).order_by(name)


def insert_default_workspace(catalog: Catalog) -> Insert:
    name = column(catalog.name_column)
    return table(catalog.table, name).insert().values({catalog.name_column: mlflow_facts.DEFAULT_WORKSPACE})


# --- conflicts -----------------------------------------------------------------------------------------


def _raw_conflict_keys(wt: WorkspaceTable, key: UniqueKey, move: Move, *, spans: bool = False) -> Select:
    """Key values held by rows of more than one workspace (NULLs never collide in a unique index); with
    ``spans``, each group's first and last workspace too (``root_group_spans``).

    MIN <> MAX means the same as COUNT(DISTINCT) > 1 (both ignore NULLs and compare by the column's
    collation), but lets PostgreSQL hash-aggregate instead of sorting every row: 2-3x faster."""
    t = table_clause(wt)
    cols = [t.c[c] for c in key.columns]
    ws = t.c[wt.workspace_column]
    stmt = select(*cols, func.count().label(GROUP_SIZE)).where(and_(*(c.is_not(None) for c in cols)))
    if spans:
        stmt = stmt.add_columns(func.min(ws).label(SPAN_FIRST), func.max(ws).label(SPAN_LAST))
    return _in_domain(stmt, wt, move).group_by(*cols).having(func.min(ws) != func.max(ws))


def has_raw_conflicts(wt: WorkspaceTable, key: UniqueKey, move: Move = MIGRATE) -> Select:
    """Whether any key value is held by two workspaces.  No roll-up: a child's collision always sits under
    a colliding parent or is a root group itself, so "none here" for every key means "no conflicts"."""
    return select(exists(_raw_conflict_keys(wt, key, move)))


def duplicates_within_workspace(wt: WorkspaceTable, key: UniqueKey) -> Select:
    """Key values held twice inside one workspace: what a unique index would refuse, for keys without one."""
    t = table_clause(wt)
    cols = [t.c[c] for c in key.columns]
    ws = t.c[wt.workspace_column]
    return (
        select(ws, *cols)
        .where(and_(*(c.is_not(None) for c in cols)))
        .group_by(ws, *cols)
        .having(func.count() > 1)
        .limit(1)
    )


def rollup_parents(schema: WorkspaceSchema, wt: WorkspaceTable, key: UniqueKey) -> list[tuple[ForeignKey, UniqueKey]]:
    """Parents whose own collision implies this key's collision: the FK's non-workspace columns all sit in
    the key, and they form a per-workspace key of the parent (model_versions → registered_models)."""
    result = []
    for fk in wt.parent_keys:
        parent = schema.table(fk.parent)
        mapping = fk.column_map()
        parent_key = tuple(c for c in fk.parent_columns if c not in parent.workspace_columns)
        child_cols = {mapping[c] for c in parent_key}
        match = next((k for k in parent.unique_keys if k.columns == parent_key), None)
        if match is not None and parent_key and child_cols <= set(key.columns):
            result.append((fk, match))
    return result


def may_have_raw_conflicts(wt: WorkspaceTable, key: UniqueKey, move: Move = MIGRATE, *, hashed: bool) -> Select:
    """A cheap superset of ``has_raw_conflicts``: is any key value held by two rows at all?  Where the schema
    makes the key unique per workspace that is the same question, without the per-group MIN/MAX work.

    hashed (MySQL): group by two CRC32s of each column's collation weight, trailing spaces trimmed (PAD SPACE
    collations ignore them), so values equal under the collation always share a group.  Grouping the wide
    utf8mb4 columns themselves fills a temporary table 20x bigger: 1.3 s instead of 0.06 s at 150k rows.  A
    hit (or a hash collision) only sends the caller to the exact test."""
    t = table_clause(wt)
    cols = [t.c[c] for c in key.columns]
    if hashed:
        weights = [func.weight_string(func.rtrim(c)) for c in cols]
        groups_by = [h for w in weights for h in (func.crc32(w), func.crc32(func.reverse(w)))]
    else:
        groups_by = cols
    groups = _in_domain(select(literal(1)).where(and_(*(c.is_not(None) for c in cols))), wt, move).group_by(*groups_by)
    return select(exists(groups.having(func.count() > 1)))


def conflict_groups(
    schema: WorkspaceSchema, wt: WorkspaceTable, key: UniqueKey, move: Move = MIGRATE, *, spans: bool = False
) -> Select:
    """Root conflict groups of one key: groups implied by a colliding parent are rolled up under it.
    ``spans``: each group's row count, first and last workspace too (``root_group_spans``)."""
    groups = _raw_conflict_keys(wt, key, move, spans=spans)
    parents = rollup_parents(schema, wt, key)
    if not parents:
        return groups
    g = groups.subquery("mwa_groups")
    keys = {c: g.c[c] for c in key.columns}
    return select(*g.c).where(*(_not_rolled_up(schema, fk, pk, keys, i, move) for i, (fk, pk) in enumerate(parents)))


def _not_rolled_up(
    schema: WorkspaceSchema,
    fk: ForeignKey,
    parent_key: UniqueKey,
    keys: dict[str, ColumnElement],
    i: int,
    move: Move,
) -> ColumnElement[bool]:
    """The child's key is not under a colliding parent key.  NOT IN (not an outer join): MariaDB
    materializes the subquery with an index instead of nested-looping two derived tables (20 s at 20k)."""
    mapping = fk.column_map()
    pc = _raw_conflict_keys(schema.table(fk.parent), parent_key, move).subquery(f"mwa_parent_{i}")
    child = tuple_(*(keys[mapping[p]] for p in parent_key.columns))
    return child.not_in(select(*(pc.c[p] for p in parent_key.columns)))


def has_orphans(schema: WorkspaceSchema, wt: WorkspaceTable, key: UniqueKey, fk: ForeignKey) -> Select | None:
    """Whether a row holding the whole key has no parent row in its own workspace through ``fk`` (a roll-up
    parent, ``rollup_parents``); None when the FK does not carry the table's own workspace column, so the
    question proves nothing.

    Without such a row, every child group spanning two workspaces sits under a parent key held in both of
    them: a colliding parent, so the key has no root groups at all (for a migration, where every row shares
    the target).  An anti-join on the parent's key index, cheaper than the GROUP BY the roll-up costs.  Only
    SQLite (no enforced FKs) can hold such rows; a NULL workspace counts as one, which only costs the fast
    path."""
    parent = schema.table(fk.parent)
    mapping = fk.column_map()
    if mapping.get(parent.workspace_column) != wt.workspace_column:
        return None
    t, p = table_clause(wt), table_clause(parent).alias("mwa_parent")
    cols = [t.c[c] for c in key.columns]
    has_parent = exists(select(literal(1)).select_from(p).where(*(p.c[pc] == t.c[cc] for pc, cc in mapping.items())))
    return select(exists(select(literal(1)).select_from(t).where(*(c.is_not(None) for c in cols), ~has_parent)))


def count_groups(stmt: Select) -> Select:
    return select(func.count()).select_from(stmt.subquery("mwa_count"))


def root_group_spans(
    schema: WorkspaceSchema, wt: WorkspaceTable, key: UniqueKey, move: Move = MIGRATE, *, ordered: bool
) -> Select:
    """(*key, rows, first workspace, last workspace) of every root conflict group of one key, in key order
    when ``ordered``.  One aggregation gives the caller both the per-workspace counts and the first groups
    of the sample (``conflict_rows``' ``first_keys``), instead of a second GROUP BY in ``_first_groups``.
    A group of two rows holds exactly its first and last workspace (they differ); only wide groups (more
    than two rows) need ``groups_by_workspace``.  Streamed: 40k groups cost ~20 ms of Python on SQLite."""
    g = conflict_groups(schema, wt, key, move, spans=True).subquery("mwa_spans")
    keys = [g.c[c] for c in key.columns]
    stmt = select(*keys, g.c[GROUP_SIZE], g.c[SPAN_FIRST], g.c[SPAN_LAST])
    # The database's order, under the column's collation: what conflict_rows ranks groups by.
    return stmt.order_by(*keys) if ordered else stmt


def groups_by_workspace(schema: WorkspaceSchema, wt: WorkspaceTable, key: UniqueKey, move: Move = MIGRATE) -> Select:
    """(workspace, root conflict groups of more than two rows holding a row of it) for one key: a group of
    rows from two workspaces counts once for each, two rows of one workspace in a group (where the schema
    allows that) once.  Two-row groups are counted from ``root_group_spans`` alone.

    The rows whose key is such a group's key, grouped by (workspace, key) under the column's collation, then
    counted per workspace.  A semi-join rather than conflict_rows' window pass: 3x faster on MariaDB, as fast
    elsewhere (60k groups)."""
    t = table_clause(wt)
    cols = [t.c[c] for c in key.columns]
    ws = t.c[wt.workspace_column]
    roots = conflict_groups(schema, wt, key, move).subquery("mwa_roots")
    root_keys = select(*(roots.c[c] for c in key.columns)).where(roots.c[GROUP_SIZE] > 2)
    in_root_group = (cols[0] if len(cols) == 1 else tuple_(*cols)).in_(root_keys)
    pairs = _in_domain(select(ws.label("mwa_ws")).where(in_root_group), wt, move)
    pairs = pairs.group_by(ws, *cols).subquery("mwa_pairs")
    return select(pairs.c.mwa_ws, func.count()).group_by(pairs.c.mwa_ws)


@dataclass(frozen=True)
class Dependent:
    """Rows of a descendant table that share a root key (they move and collide with their parent)."""

    table: str
    #: root key column -> this table's column
    columns: dict[str, str]


def dependents(schema: WorkspaceSchema, root: WorkspaceTable, key: UniqueKey) -> list[Dependent]:
    """Descendants reachable through workspace FKs that carry every root key column, at any depth."""
    found: list[Dependent] = []

    def walk(table: str, mapping: dict[str, str], seen: frozenset[str]) -> None:
        for fk in schema.children_of(table):
            if fk.child in seen:
                continue
            fk_map = fk.column_map()
            if all(mapping[k] in fk_map for k in key.columns):
                child_map = {k: fk_map[mapping[k]] for k in key.columns}
                found.append(Dependent(fk.child, child_map))
                walk(fk.child, child_map, seen | {fk.child})

    walk(root.name, {c: c for c in key.columns}, frozenset({root.name}))
    # A table reachable by two FK paths is counted once, through its first path.
    unique: dict[str, Dependent] = {}
    for d in found:
        unique.setdefault(d.table, d)
    return list(unique.values())


def identity_columns(wt: WorkspaceTable, key: UniqueKey) -> list[str]:
    """What a reader needs to find a row of a conflict group: its workspace, the rest of its primary key,
    and its lifecycle stage.  Never a sensitive column."""
    cols = [wt.workspace_column]
    cols += [c for c in wt.primary_key if c not in key.columns and c not in cols]
    if wt.has_column(mlflow_facts.LIFECYCLE_COLUMN):
        cols.append(mlflow_facts.LIFECYCLE_COLUMN)
    return [c for c in cols if c not in mlflow_facts.SENSITIVE_COLUMNS]


def conflict_rows(
    schema: WorkspaceSchema,
    wt: WorkspaceTable,
    key: UniqueKey,
    limit: int | None,
    move: Move = MIGRATE,
    *,
    first_keys: list[tuple] | None = None,
) -> tuple[Select, list[str], list[Dependent]]:
    """One streaming query: every row of the first `limit` groups (all groups when None), ordered by group,
    each carrying the group's representative key and its dependent-row counts.  ``first_keys``: those
    groups' keys, already known to be root groups (``root_group_spans``), bound as parameters.

    Window functions over one sorted pass find the colliding rows; joining the table back to a grouped
    subquery instead makes MariaDB scan the table once per group (minutes at 40k groups)."""
    t = table_clause(wt)
    cols = [t.c[c] for c in key.columns]
    ws = t.c[wt.workspace_column]
    # Each row's own stored key too: under a case-insensitive collation the group's key is one spelling of many.
    ident = [*identity_columns(wt, key), *key.columns]

    def per_group(fn: ColumnElement) -> ColumnElement:
        return fn.over(partition_by=cols)

    # MIN(key) per group: one spelling for every row of a group that collation folds together (MySQL `Churn`
    # and `churn`), so the caller can tell groups apart by value.
    windowed = _in_domain(
        select(
            *(per_group(func.min(c)).label(f"mwa_key_{i}") for i, c in enumerate(cols)),
            per_group(func.count()).label(GROUP_SIZE),
            per_group(func.min(ws)).label("mwa_ws_min"),
            per_group(func.max(ws)).label("mwa_ws_max"),
            *(t.c[c].label(f"mwa_id_{i}") for i, c in enumerate(ident)),
        ).where(and_(*(c.is_not(None) for c in cols))),
        wt,
        move,
    )
    first: Select | list[tuple] | None
    if first_keys is not None:
        first = first_keys
    else:
        first = None if limit is None else _first_groups(schema, wt, key, limit, move)
    if first is not None:
        # Only the rows of the first `limit` groups enter the windows and the dependent counts: a sample of
        # 5 groups no longer sorts every row of the table (SQLite 0.6 s -> 0.15 s at 40k groups).
        windowed = windowed.where(_key_in(cols, first))
    windowed = windowed.subquery("mwa_w")
    w_keys = [windowed.c[f"mwa_key_{i}"] for i in range(len(cols))]
    by_name = dict(zip(key.columns, w_keys, strict=True))
    rows = select(*windowed.c).where(
        windowed.c.mwa_ws_min != windowed.c.mwa_ws_max,
        # Groups under a colliding parent are reported with the parent (first_keys are root groups already).
        *(
            _not_rolled_up(schema, fk, pk, by_name, i, move)
            for i, (fk, pk) in enumerate(rollup_parents(schema, wt, key) if first_keys is None else ())
        ),
    )
    if limit is not None:
        ranked = rows.add_columns(func.dense_rank().over(order_by=w_keys).label("mwa_rank")).subquery("mwa_r")
        rows = select(*(ranked.c[c.name] for c in windowed.c)).where(ranked.c.mwa_rank <= limit)
    top = rows.subquery("mwa_top")
    top_keys = [top.c[f"mwa_key_{i}"] for i in range(len(cols))]

    deps = dependents(schema, wt, key)
    dep_counts: list[ColumnElement] = []
    joined = top
    for i, dep in enumerate(deps):
        dwt = schema.table(dep.table)
        dt = table_clause(dwt)
        dcols = [dt.c[dep.columns[k]] for k in key.columns]
        agg = select(*(c.label(f"mwa_key_{j}") for j, c in enumerate(dcols)), func.count().label("n"))
        agg = _in_domain(agg, dwt, move)
        if first is not None:
            agg = agg.where(_key_in(dcols, first))
        a = agg.group_by(*dcols).subquery(f"mwa_dep_{i}")
        joined = joined.outerjoin(a, and_(*(tk == a.c[f"mwa_key_{j}"] for j, tk in enumerate(top_keys))))
        dep_counts.append(func.coalesce(a.c.n, 0).label(f"mwa_dep_{i}"))
    id_cols = [top.c[f"mwa_id_{i}"] for i in range(len(ident))]
    stmt = select(*top_keys, top.c[GROUP_SIZE], *dep_counts, *id_cols).select_from(joined).order_by(*top_keys, *id_cols)
    return stmt, ident, deps


def _first_groups(schema: WorkspaceSchema, wt: WorkspaceTable, key: UniqueKey, limit: int, move: Move) -> Select:
    """The keys of the first ``limit`` root groups in key order (the order conflict_rows ranks them in),
    selected from a CTE: MySQL refuses LIMIT directly inside IN."""
    g = conflict_groups(schema, wt, key, move).subquery("mwa_g")
    keys = [g.c[c] for c in key.columns]
    # A CTE: read once for the rows and for every dependent count (databases materialize a CTE used twice).
    firsts = select(*keys).order_by(*keys).limit(limit).cte("mwa_first")
    return select(*(firsts.c[c] for c in key.columns))


def _key_in(cols: list[ColumnElement], keys: Select | list[tuple]) -> ColumnElement[bool]:
    """The columns' values are among ``keys``: a subquery, or key tuples bound as parameters (compared under
    the column's collation, like the subquery's values)."""
    if len(cols) == 1:
        return cols[0].in_([k[0] for k in keys] if isinstance(keys, list) else keys)
    return tuple_(*cols).in_(keys)


# --- artifact locations ----------------------------------------------------------------------------------


def experiment_locations(wt: WorkspaceTable, move: Move = MIGRATE) -> Select:
    """(experiment id, workspace, artifact location) of every experiment; the location may be NULL.  For a
    selective move: of the target's experiments and the moving ones, these with the target as workspace."""
    t = table_clause(wt)
    ws: ColumnElement = t.c[wt.workspace_column]
    if not move.is_migration:
        ws = case((rows_moving(wt, move), literal(move.target)), else_=ws)
    stmt = select(t.c[mlflow_facts.EXPERIMENT_ID_COLUMN], ws, t.c[mlflow_facts.ARTIFACT_LOCATION_COLUMN])
    return _in_domain(stmt, wt, move)


def workspace_artifact_roots(catalog: Catalog) -> Select:
    """(workspace, default_artifact_root) of every catalog row that sets its own root."""
    name, root = column(catalog.name_column), column(mlflow_facts.CATALOG_ARTIFACT_ROOT_COLUMN)
    return select(name, root).select_from(table(catalog.table, name, root)).where(root.is_not(None)).order_by(name)


def catalog_table(catalog: Catalog) -> TableClause:
    """The catalog with every column: pruning and restore copy whole rows (`default_artifact_root` included)."""
    return table(catalog.table, *(column(c.name) for c in catalog.columns))


# --- renames (--rename-conflicts) --------------------------------------------------------------------------


def rows_by_key(
    wt: WorkspaceTable,
    key: UniqueKey,
    move: Move,
    row_columns: list[str],
    collation_keys: list[ColumnElement] | None = None,
) -> Select:
    """Every row a rename must know of, ordered by ``key`` so that each key value's rows come together:
    ``(workspace, *row_columns[, in_domain][, *collation_keys])``.

    The rows are those whose names a new name must not take: every row for a migration (all end in `default`,
    and a row is renamed where it is, before it moves), the source's and the target's for a selective move.
    ``in_domain`` (selective moves only) marks the rows that will share the target, the ones that can collide.
    ``collation_keys`` (``Dialect.collation_keys``) say which rows' keys the database finds equal, where
    Python's comparison would not.  One sorted scan that names the table once, so it also runs under MySQL's
    LOCK TABLES; it replaces a window query per key and a second read of the names (2-3x slower on MariaDB)."""
    t = table_clause(wt)
    cols = [t.c[c] for c in key.columns]
    ws = t.c[wt.workspace_column]
    selected: list[ColumnElement] = [ws, *(t.c[c] for c in row_columns)]
    if move.selection is not None:
        selected.append(case((conflict_domain(wt, move), 1), else_=0))
    selected.extend(collation_keys or ())
    stmt = select(*selected).where(and_(*(c.is_not(None) for c in cols)))
    if move.selection is not None:
        stmt = stmt.where(ws.in_([move.target, move.source]))
    return stmt.order_by(*cols, ws, *(t.c[c] for c in row_columns if c not in key.columns))


def prompt_models(schema: WorkspaceSchema) -> Select | None:
    """(workspace, name) of the registered models that are prompts: MLflow's own test is the tag
    ``mlflow.prompt.is_prompt`` = 'true' (store/model_registry/sqlalchemy_store.py).  None without the table."""
    if not schema.is_workspace_table(mlflow_facts.MODEL_TAGS_TABLE):
        return None
    wt = schema.table(mlflow_facts.MODEL_TAGS_TABLE)
    t = table_clause(wt)
    return select(t.c[wt.workspace_column], t.c.name).where(
        t.c.key == mlflow_facts.PROMPT_TAG_KEY, t.c.value == mlflow_facts.PROMPT_TAG_VALUE
    )
