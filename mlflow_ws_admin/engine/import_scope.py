"""``db import-database --from-workspace S``: which of SOURCE's rows are workspace S's.

- A **workspace table**'s row is S's when its own workspace column holds S (and any other workspace column, an
  FK-derived one, holds S or NULL).
- A **table without a workspace column** (runs, metrics, params, spans, trace tags, ...) has no workspace of its
  own: its row is S's when its references lead to S's rows and to nothing outside S, i.e. at least one reference
  is set and every set one points at a row that is copied.  The references are the FK graph
  (``schema.all_foreign_keys``) plus the ones no foreign key declares (``mlflow_facts.UNCONSTRAINED_ID_REFERENCES``
  and ``UNCONSTRAINED_ROW_REFERENCES``: a run's dataset inputs, the entity associations, the trace rollups).  A
  row that also references a row of another workspace stays behind, so TARGET never gets a dangling reference.
- A table that no reference ties to a workspace table holds rows of no workspace: with ``--from-workspace`` none
  of them is copied, and the plan lists the table (``unscoped_tables``).

Everything is one predicate per table, evaluated by SOURCE as nested ``IN (subquery)`` (a semi-join each
database answers in one pass), so the counts, the id offsets, the key checks and the copy all read exactly the
same rows, and nothing is held in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, MetaData, String, Table, and_, cast, false, or_, select, tuple_
from sqlalchemy import types as sqltypes

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.db.schema import WorkspaceSchema


@dataclass(frozen=True)
class Reference:
    """Columns of a child row that hold a parent row's key (when ``condition``'s type column says so)."""

    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    condition: tuple[str, str] | None = None


def references(schema: WorkspaceSchema, meta: MetaData, tables: Iterable[str]) -> dict[str, list[Reference]]:
    """child table -> its references onto the given tables: foreign keys, then the known unconstrained ones."""
    names = set(tables)
    found: dict[str, list[Reference]] = {}

    def add(child: str, ref: Reference) -> None:
        have = meta.tables[child].c if child in meta.tables else {}
        wanted = [*ref.columns, *([ref.condition[0]] if ref.condition else [])]
        if child in names and ref.parent in names and child != ref.parent and all(c in have for c in wanted):
            found.setdefault(child, []).append(ref)

    for fk in schema.all_foreign_keys:
        add(fk.child, Reference(fk.child_columns, fk.parent, fk.parent_columns))
    for (parent, column), refs in mlflow_facts.UNCONSTRAINED_ID_REFERENCES.items():
        for child, child_column, condition in refs:
            add(child, Reference((child_column,), parent, (column,), condition))
    for child, child_column, condition, parent, column in mlflow_facts.UNCONSTRAINED_ROW_REFERENCES:
        add(child, Reference((child_column,), parent, (column,), condition))
    return found


def workspace_filters(
    schema: WorkspaceSchema, meta: MetaData, workspace: str, tables: Iterable[str]
) -> tuple[dict[str, ColumnElement[bool]], tuple[str, ...]]:
    """(table -> the WHERE clause of workspace ``workspace``'s rows, the tables no reference ties to a workspace
    table: their filter is FALSE)."""
    names = list(tables)
    refs = references(schema, meta, names)
    done: dict[str, ColumnElement[bool] | None] = {}

    def rows_of(name: str, visiting: frozenset[str]) -> ColumnElement[bool] | None:
        # Memoised across paths: MLflow's reference graph has no cycle among tables without a workspace column,
        # so a table's predicate does not depend on the path that reached it.
        if name in done:
            return done[name]
        t = meta.tables[name]
        if schema.is_workspace_table(name):
            own, *others = schema.table(name).workspace_columns
            found: ColumnElement[bool] | None = and_(
                t.c[own] == workspace, *(or_(t.c[c].is_(None), t.c[c] == workspace) for c in others)
            )
        else:
            parts = []
            for ref in refs.get(name, ()):
                if ref.parent in visiting:
                    continue
                parent = rows_of(ref.parent, visiting | {name})
                if parent is not None:
                    parts.append((_applies(t, ref), _not_applies(t, ref), _points_into(t, meta, ref, parent)))
            if not parts:
                found = None
            elif len(parts) == 1:
                found = and_(parts[0][0], parts[0][2])
            else:
                found = and_(or_(*(a for a, _, _ in parts)), *(or_(n, inside) for _, n, inside in parts))
        done[name] = found
        return found

    filters: dict[str, ColumnElement[bool]] = {}
    unscoped = []
    for name in names:
        where = rows_of(name, frozenset({name}))
        if where is None:
            unscoped.append(name)
            where = false()
        filters[name] = where
    return filters, tuple(unscoped)


def _applies(t: Table, ref: Reference) -> ColumnElement[bool]:
    """The row holds this reference: its columns set, and its type column naming the parent's kind."""
    parts = [t.c[c].is_not(None) for c in ref.columns]
    if ref.condition:
        parts.append(t.c[ref.condition[0]] == ref.condition[1])
    return and_(*parts)


def _not_applies(t: Table, ref: Reference) -> ColumnElement[bool]:
    # Spelled out rather than NOT(...): a NULL type column must count as "does not apply", not as unknown.
    parts = [t.c[c].is_(None) for c in ref.columns]
    if ref.condition:
        type_column = t.c[ref.condition[0]]
        parts += [type_column.is_(None), type_column != ref.condition[1]]
    return or_(*parts)


def _points_into(t: Table, meta: MetaData, ref: Reference, parent_rows: ColumnElement[bool]) -> ColumnElement[bool]:
    p = meta.tables[ref.parent]
    keys = []
    for child_column, parent_column in zip(ref.columns, ref.parent_columns, strict=True):
        key = p.c[parent_column]
        if isinstance(key.type, sqltypes.Integer) and isinstance(t.c[child_column].type, sqltypes.String):
            key = cast(key, String)  # an experiment id stored as text (entity_associations.source_id)
        keys.append(key)
    # correlate(None): the subquery reads its own copy of the parent table, never the enclosing query's rows
    subquery = select(*keys).where(parent_rows).correlate(None)
    if len(ref.columns) == 1:
        return t.c[ref.columns[0]].in_(subquery)
    return tuple_(*(t.c[c] for c in ref.columns)).in_(subquery)
