"""SQL builders shared by planning and apply.  Every comparison runs in the database, so collations decide
what collides exactly as the unique indexes would (MySQL's `Churn` = `churn`, PostgreSQL's not).

While MySQL holds LOCK TABLES, a query may name each table only once and without an alias; the builders
here that apply uses keep to that.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Insert, Select, Update, and_, column, distinct, func, or_, select, table
from sqlalchemy.sql.expression import TableClause

from mlflow_ws_admin import knowledge
from mlflow_ws_admin.schema import Catalog, ForeignKey, UniqueKey, WorkspaceSchema, WorkspaceTable

GROUP_SIZE = "_mwa_rows"


@functools.cache
def table_clause(wt: WorkspaceTable) -> TableClause:
    """One clause object per table, so every builder's columns refer to the same FROM element."""
    return table(wt.name, *(column(c) for c in wt.column_names))


def outside_default(wt: WorkspaceTable, ws_column: str) -> ColumnElement[bool]:
    """Rows this column moves.  A NULL in the table's own `workspace` column is outside `default` too;
    a NULL in an FK-derived workspace column means "no reference" and stays NULL."""
    col = table_clause(wt).c[ws_column]
    if ws_column == knowledge.WORKSPACE_COLUMN and wt.is_nullable(ws_column):
        return or_(col.is_(None), col != knowledge.DEFAULT_WORKSPACE)
    return col != knowledge.DEFAULT_WORKSPACE


def rows_outside_default(wt: WorkspaceTable) -> ColumnElement[bool]:
    return or_(*(outside_default(wt, c) for c in wt.workspace_columns))


def moves_by_workspace(wt: WorkspaceTable) -> Select:
    """(source workspace, rows) for the rows that must move."""
    ws = table_clause(wt).c[wt.workspace_column]
    return select(ws, func.count()).select_from(table_clause(wt)).where(rows_outside_default(wt)).group_by(ws)


def count_outside_default(wt: WorkspaceTable) -> Select:
    return select(func.count()).select_from(table_clause(wt)).where(rows_outside_default(wt))


def move_statement(wt: WorkspaceTable, ws_column: str) -> Update:
    t = table_clause(wt)
    return t.update().where(outside_default(wt, ws_column)).values({ws_column: knowledge.DEFAULT_WORKSPACE})


def catalog_names(catalog: Catalog) -> Select:
    name = column(catalog.name_column)
    return select(name).select_from(table(catalog.table, name)).order_by(name)


def insert_default_workspace(catalog: Catalog) -> Insert:
    name = column(catalog.name_column)
    return table(catalog.table, name).insert().values({catalog.name_column: knowledge.DEFAULT_WORKSPACE})


# --- conflicts -----------------------------------------------------------------------------------------


def _raw_conflict_keys(wt: WorkspaceTable, key: UniqueKey) -> Select:
    """Key values held by rows of more than one workspace (NULLs never collide in a unique index)."""
    t = table_clause(wt)
    cols = [t.c[c] for c in key.columns]
    return (
        select(*cols, func.count().label(GROUP_SIZE))
        .where(and_(*(c.is_not(None) for c in cols)))
        .group_by(*cols)
        .having(func.count(distinct(t.c[wt.workspace_column])) > 1)
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


def conflict_groups(schema: WorkspaceSchema, wt: WorkspaceTable, key: UniqueKey) -> Select:
    """Root conflict groups of one key: groups implied by a colliding parent are rolled up under it."""
    groups = _raw_conflict_keys(wt, key)
    parents = rollup_parents(schema, wt, key)
    if not parents:
        return groups
    g = groups.subquery("mwa_groups")
    stmt = select(*g.c)
    for i, (fk, parent_key) in enumerate(parents):
        pc = _raw_conflict_keys(schema.table(fk.parent), parent_key).subquery(f"mwa_parent_{i}")
        mapping = fk.column_map()
        on = and_(*(g.c[mapping[pcol]] == pc.c[pcol] for pcol in parent_key.columns))
        stmt = stmt.outerjoin(pc, on).where(pc.c[parent_key.columns[0]].is_(None))
    return stmt


def count_groups(stmt: Select) -> Select:
    return select(func.count()).select_from(stmt.subquery("mwa_count"))


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
    if wt.has_column(knowledge.LIFECYCLE_COLUMN):
        cols.append(knowledge.LIFECYCLE_COLUMN)
    return [c for c in cols if c not in knowledge.SENSITIVE_COLUMNS]


def conflict_rows(
    schema: WorkspaceSchema, wt: WorkspaceTable, key: UniqueKey, limit: int | None
) -> tuple[Select, list[str], list[Dependent]]:
    """One streaming query: every row of the first `limit` groups (all groups when None), ordered by group,
    each carrying the group's representative key and its dependent-row counts."""
    groups = conflict_groups(schema, wt, key)
    g = groups.subquery("mwa_g")
    ordered = select(*g.c).order_by(*(g.c[c] for c in key.columns))
    if limit is not None:
        ordered = ordered.limit(limit)
    top = ordered.subquery("mwa_top")

    deps = dependents(schema, wt, key)
    dep_counts: list[ColumnElement] = []
    joined = top
    for i, dep in enumerate(deps):
        dt = table_clause(schema.table(dep.table))
        dcols = [dt.c[dep.columns[k]] for k in key.columns]
        agg = select(*(c.label(k) for c, k in zip(dcols, key.columns, strict=True)), func.count().label("n"))
        a = agg.group_by(*dcols).subquery(f"mwa_dep_{i}")
        joined = joined.outerjoin(a, and_(*(top.c[k] == a.c[k] for k in key.columns)))
        dep_counts.append(func.coalesce(a.c.n, 0).label(f"mwa_dep_{i}"))
    with_deps = select(*top.c, *dep_counts).select_from(joined).subquery("mwa_gd")

    t = table_clause(wt)
    ident = identity_columns(wt, key)
    stmt = (
        select(
            *(with_deps.c[c].label(f"mwa_key_{i}") for i, c in enumerate(key.columns)),
            with_deps.c[GROUP_SIZE],
            *(with_deps.c[f"mwa_dep_{i}"] for i in range(len(deps))),
            *(t.c[c] for c in ident),
        )
        .select_from(with_deps.join(t, and_(*(t.c[c] == with_deps.c[c] for c in key.columns))))
        .order_by(*(with_deps.c[c] for c in key.columns), *(t.c[c] for c in ident))
    )
    return stmt, ident, deps
