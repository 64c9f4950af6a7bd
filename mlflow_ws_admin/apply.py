"""Execute a Plan in one transaction: lock, re-check, update in FK order, verify, commit.

Any failure rolls the whole transaction back, so the database is either fully moved or untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from mlflow_ws_admin import dialects, knowledge, queries
from mlflow_ws_admin.connect import WRITE_LOCK_OPTION
from mlflow_ws_admin.errors import ConflictsAppeared, VerificationFailed
from mlflow_ws_admin.failures import translate
from mlflow_ws_admin.plan import Plan
from mlflow_ws_admin.schema import ForeignKey, WorkspaceSchema, WorkspaceTable

#: Called after each table with (table, rows moved, seconds since apply started).
ProgressHook = Callable[[str, int, float], None]


@dataclass(frozen=True)
class ApplyResult:
    #: (table, rows moved) in update order, counted under lock
    moved: tuple[tuple[str, int], ...]
    created_default_workspace: bool

    @property
    def total_moved(self) -> int:
        return sum(n for _, n in self.moved)


def apply_plan(
    engine: Engine, plan: Plan, *, lock_timeout_s: float = 30.0, on_table: ProgressHook | None = None
) -> ApplyResult:
    """Move every row of the plan's tables into `default`.  Raises (after rollback) on any problem: a
    database error comes back as a WsAdminError that says nothing was applied and what is pending."""
    try:
        return _apply(engine, plan, lock_timeout_s, on_table)
    except SQLAlchemyError as exc:
        pending = f"{plan.total_rows_to_move:,} row(s) in {sum(1 for m in plan.moves if m.rows_to_move)} table(s)"
        raise translate(exc, doing=f"applying (rolled back: nothing was applied; still pending: {pending})") from None


def _apply(engine: Engine, plan: Plan, lock_timeout_s: float, on_table: ProgressHook | None) -> ApplyResult:
    schema = plan.schema
    ops = dialects.for_backend(schema.dialect)
    locked = [t.name for t in schema.tables] + [schema.catalog.table]
    suspended = _non_cascading_fks(schema)
    started = time.monotonic()
    with engine.connect().execution_options(**{WRITE_LOCK_OPTION: True}) as conn:
        try:
            with conn.begin():
                ops.lock_workspace_tables(conn, locked, lock_timeout_s)
                counts = {wt.name: conn.execute(queries.count_outside_default(wt)).scalar_one() for wt in schema.tables}
                _recheck_conflicts(conn, schema)
                created = _ensure_default_workspace(conn, schema)
                cascades = ops.suspend_foreign_keys(conn, suspended)
                cascaded = set()
                for wt in schema.tables:
                    if cascades and _moved_by_cascade(wt, suspended):
                        cascaded.add(wt.name)
                    elif counts[wt.name]:
                        _move(conn, wt)
                    if on_table:
                        on_table(wt.name, counts[wt.name], time.monotonic() - started)
                _verify_nothing_outside_default(conn, schema, cascaded)
                ops.restore_foreign_keys(conn, suspended)
        finally:
            ops.release_locks(conn)
    return ApplyResult(tuple((wt.name, counts[wt.name]) for wt in schema.tables), created)


def _non_cascading_fks(schema: WorkspaceSchema) -> list[ForeignKey]:
    """Workspace FKs that would refuse (NO ACTION/RESTRICT) or damage (SET NULL) a parent's move."""
    return [fk for wt in schema.tables for fk in wt.parent_keys if not fk.cascades_on_update]


def _moved_by_cascade(wt: WorkspaceTable, suspended: list[ForeignKey]) -> bool:
    """Every workspace column of this table follows a parent through an enforced ON UPDATE CASCADE FK whose
    columns are NOT NULL, so updating the parents already moved every row."""
    cascading = [fk for fk in wt.parent_keys if fk.cascades_on_update and fk not in suspended]
    return all(
        any(col in fk.child_columns and not any(wt.is_nullable(c) for c in fk.child_columns) for fk in cascading)
        for col in wt.workspace_columns
    )


def _move(conn: Connection, wt: WorkspaceTable) -> None:
    # One set-based UPDATE per workspace column; never row by row.
    for col in wt.workspace_columns:
        conn.execute(queries.move_statement(wt, col))


def _recheck_conflicts(conn: Connection, schema: WorkspaceSchema) -> None:
    found = []
    for wt in schema.tables:
        for key in wt.unique_keys:
            n = conn.execute(queries.count_groups(queries.conflict_groups(schema, wt, key))).scalar_one()
            if n:
                found.append(f"{wt.name} ({', '.join(key.columns)}): {n}")
    if found:
        raise ConflictsAppeared(
            "conflicts found in the locked re-check, rolled back, nothing changed: " + "; ".join(found)
        )


def _ensure_default_workspace(conn: Connection, schema: WorkspaceSchema) -> bool:
    names = set(conn.execute(queries.catalog_names(schema.catalog)).scalars())
    if knowledge.DEFAULT_WORKSPACE in names:
        return False
    conn.execute(queries.insert_default_workspace(schema.catalog))
    return True


def _rows_left(conn: Connection, tables: list[WorkspaceTable]) -> dict[str, int]:
    left = {wt.name: conn.execute(queries.count_outside_default(wt)).scalar_one() for wt in tables}
    return {t: n for t, n in left.items() if n}


def _verify_nothing_outside_default(conn: Connection, schema: WorkspaceSchema, cascaded: set[str]) -> None:
    """One counting pass over every table.  A cascade moves only rows whose parent exists, so orphans that
    the schema let in are moved explicitly, then recounted."""
    left = _rows_left(conn, list(schema.tables))
    orphaned = [wt for wt in schema.tables if wt.name in left and wt.name in cascaded]
    for wt in orphaned:
        _move(conn, wt)
    left = {t: n for t, n in left.items() if t not in cascaded} | _rows_left(conn, orphaned)
    if left:
        detail = ", ".join(f"{t}: {n}" for t, n in left.items())
        raise VerificationFailed(f"rows still outside `default` before commit ({detail}); rolled back")
