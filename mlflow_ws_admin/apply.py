"""Execute a Plan in one transaction: lock, re-check, update in FK order, verify, commit.

Any failure rolls the whole transaction back, so the database is either fully moved or untouched.

The plan is re-validated under the lock with cheap checks, never with a second full conflict scan: a
collision on a key the schema enforces (primary key, unique constraint or index) makes the database refuse
the UPDATE itself, and only then is the exact conflict count taken; keys that only MLflow's code keeps
unique have no index to refuse with, so those are re-tested explicitly (they are few and small).  The
artifact locations are read under the lock too, and checked in a thread while the UPDATEs run.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mlflow_ws_admin import artifacts, dialects, knowledge, queries
from mlflow_ws_admin.artifacts import ArtifactFinding
from mlflow_ws_admin.connect import WRITE_LOCK_OPTION
from mlflow_ws_admin.errors import (
    ArtifactFindingsBlock,
    ConflictsAppeared,
    DatabaseError,
    LockTimeout,
    VerificationFailed,
)
from mlflow_ws_admin.failures import translate
from mlflow_ws_admin.plan import Plan, key_has_conflicts
from mlflow_ws_admin.schema import ForeignKey, UniqueKey, WorkspaceSchema, WorkspaceTable

if TYPE_CHECKING:
    from mlflow_ws_admin.journal import JournalWriter

#: Called after each table with (table, rows moved, seconds since apply started).
ProgressHook = Callable[[str, int, float], None]


@dataclass(frozen=True)
class ApplyResult:
    #: (table, rows moved) in update order, counted under lock
    moved: tuple[tuple[str, int], ...]
    created_default_workspace: bool
    #: catalog rows deleted by --prune-workspaces (workspaces the move emptied; never `default`)
    workspaces_pruned: tuple[str, ...] = ()
    #: the artifact findings of the locked rows (warnings, or blocking ones the caller allowed)
    artifact_findings: tuple[ArtifactFinding, ...] = ()

    @property
    def total_moved(self) -> int:
        return sum(n for _, n in self.moved)


@dataclass(frozen=True)
class ApplyExtras:
    """Optional steps inside the same transaction."""

    #: per-table fingerprints from a plan file: apply refuses (exit 4) unless the locked rows still match
    expected_fingerprints: Mapping[str, str] | None = None
    #: records every moved row before COMMIT (sealed + fsynced), marked complete after it
    journal: JournalWriter | None = None
    prune_workspaces: bool = False
    #: the server's root for the artifact checks apply repeats under its lock
    default_artifact_root: str | None = None
    #: go on despite blocking artifact findings (they are still reported)
    allow_artifact_overlap: bool = False


def apply_plan(
    engine: Engine,
    plan: Plan,
    *,
    lock_timeout_s: float = 30.0,
    on_table: ProgressHook | None = None,
    extras: ApplyExtras | None = None,
) -> ApplyResult:
    """Move every row of the plan's tables into `default`.  Raises (after rollback) on any problem: a
    database error comes back as a WsAdminError that says nothing was applied and what is pending."""
    try:
        return _apply(engine, plan, lock_timeout_s, on_table, extras or ApplyExtras())
    except SQLAlchemyError as exc:
        pending = f"{plan.total_rows_to_move:,} row(s) in {sum(1 for m in plan.moves if m.rows_to_move)} table(s)"
        error = translate(exc, doing=f"applying (rolled back: nothing was applied; still pending: {pending})")
        if isinstance(error, LockTimeout):
            error = LockTimeout(error.message + _lock_holders(engine, plan.schema))
        raise error from None
    finally:
        _release_interrupts()


#: The SIGINT handler to put back, while apply holds Ctrl-C during COMMIT.
_held_handler: list[Any] = []


def _hold_interrupts() -> None:
    """From COMMIT on, Ctrl-C is ignored: once sent, COMMIT may have succeeded, and an interrupt must never
    be reported as "rolled back" then.  Only the main thread can handle signals."""
    if threading.current_thread() is threading.main_thread():
        _held_handler.append(signal.signal(signal.SIGINT, signal.SIG_IGN))


def _release_interrupts() -> None:
    while _held_handler:
        signal.signal(signal.SIGINT, _held_handler.pop())


def _locked_tables(schema: WorkspaceSchema) -> list[str]:
    return [t.name for t in schema.tables] + [schema.catalog.table]


def _lock_holders(engine: Engine, schema: WorkspaceSchema) -> str:
    """Who blocks us, asked on a new connection after the rollback; best effort."""
    try:
        with engine.connect() as conn:
            holders = dialects.for_backend(schema.dialect).describe_lock_holders(conn, _locked_tables(schema))
    except SQLAlchemyError:
        return ""
    return f"; blocked by {holders}" if holders else ""


def _check_privileges(conn: Connection, ops: ModuleType, schema: WorkspaceSchema, suspended: list[ForeignKey]) -> None:
    """Refuse before locking anything, naming every missing privilege at once."""
    updated = {wt.name: wt.workspace_columns[0] for wt in schema.tables}
    updated[schema.catalog.table] = schema.catalog.name_column
    by_privilege: dict[str, list[str]] = {}
    for privilege, table in ops.missing_privileges(conn, updated, sorted({fk.child for fk in suspended})):
        by_privilege.setdefault(privilege, []).append(table)
    if by_privilege:
        needs = "; ".join(f"{p} on {', '.join(sorted(tables))}" for p, tables in by_privilege.items())
        raise DatabaseError(f"the database user needs {needs}; nothing was changed")


def _apply(
    engine: Engine, plan: Plan, lock_timeout_s: float, on_table: ProgressHook | None, extras: ApplyExtras
) -> ApplyResult:
    schema = plan.schema
    ops = dialects.for_backend(schema.dialect)
    locked = _locked_tables(schema)
    suspended = _non_cascading_fks(schema)
    journal = extras.journal
    started = time.monotonic()
    with engine.connect().execution_options(**{WRITE_LOCK_OPTION: True}) as conn:
        try:
            with conn.begin():
                _check_privileges(conn, ops, schema, suspended)
                ops.lock_workspace_tables(conn, locked, lock_timeout_s)
                if extras.expected_fingerprints is not None:
                    from mlflow_ws_admin.planfile import verify_fingerprints  # only --plan runs pay its import

                    verify_fingerprints(conn, schema, extras.expected_fingerprints)
                _recheck_conflicts(conn, schema, _code_enforced_keys(schema))
                # The locations are checked in a thread while the UPDATEs run.
                finding = artifacts.start_artifact_check(
                    conn, schema, extras.default_artifact_root, read_beside=ops.OTHER_SESSIONS_READ_LOCKED_TABLES
                )
                emptied = _source_workspaces(conn, schema) if extras.prune_workspaces else set()
                if journal:
                    from mlflow_ws_admin.journal import record_moves  # only --journal runs pay its import

                    record_moves(conn, schema, journal)
                created = _ensure_default_workspace(conn, schema)
                cascades = ops.suspend_foreign_keys(conn, suspended)
                cascaded = {wt.name for wt in schema.tables if cascades and _moved_by_cascade(wt, suspended)}
                counts = _move_all(conn, schema, cascaded, on_table, started)
                findings = _artifact_verdict(finding.result(), extras.allow_artifact_overlap)
                pruned = _prune_catalog(conn, schema, emptied, journal)
                ops.restore_foreign_keys(conn, suspended)
                if journal:
                    if created:
                        journal.catalog_inserted({schema.catalog.name_column: knowledge.DEFAULT_WORKSPACE})
                    journal.seal()  # on disk before the data changes
                _hold_interrupts()  # only COMMIT is left
        except BaseException:
            if journal:
                journal.abandon()
            raise
        finally:
            ops.release_locks(conn)
    if journal:
        journal.complete()
    return ApplyResult(tuple((wt.name, counts[wt.name]) for wt in schema.tables), created, pruned, findings)


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


def _move_all(
    conn: Connection, schema: WorkspaceSchema, cascaded: set[str], on_table: ProgressHook | None, started: float
) -> dict[str, int]:
    """Move every table in FK order and verify; returns rows moved per table.  A duplicate key refused by
    the database rolls back to the savepoint, so the exact conflicts can be counted under the same lock."""
    # A cascade moves these tables' rows without an UPDATE of their own to count them: count first.
    moved = {t: conn.execute(queries.count_outside_default(schema.table(t))).scalar_one() for t in cascaded}
    try:
        with conn.begin_nested():
            for wt in schema.tables:
                if wt.name not in cascaded:
                    moved[wt.name] = _move(conn, wt)
                if on_table:
                    on_table(wt.name, moved[wt.name], time.monotonic() - started)
            _verify_nothing_outside_default(conn, schema, cascaded)
    except IntegrityError:
        _recheck_conflicts(conn, schema, _all_keys(schema))
        raise  # not a collision: the database's own error, rolled back
    return moved


def _move(conn: Connection, wt: WorkspaceTable) -> int:
    """One set-based UPDATE per workspace column, never row by row; returns the rows moved."""
    if len(wt.workspace_columns) == 1:
        return conn.execute(queries.move_statement(wt, wt.workspace_column)).rowcount
    # A row may sit outside `default` in several columns: count rows, not column updates.
    rows = conn.execute(queries.count_outside_default(wt)).scalar_one()
    for col in wt.workspace_columns:
        conn.execute(queries.move_statement(wt, col))
    return rows


TableKeys = list[tuple[WorkspaceTable, UniqueKey]]


def _all_keys(schema: WorkspaceSchema) -> TableKeys:
    return [(wt, key) for wt in schema.tables for key in wt.unique_keys]


def _code_enforced_keys(schema: WorkspaceSchema) -> TableKeys:
    """The keys no index guards (only MLflow's code keeps them unique), so the UPDATE cannot refuse them."""
    return [(wt, key) for wt, key in _all_keys(schema) if not key.enforced_by_database]


def _recheck_conflicts(conn: Connection, schema: WorkspaceSchema, keys: TableKeys) -> None:
    """One existence test per key of ``keys`` (no roll-up joins).  On a hit the exact group counts of every
    key follow, so the message names all that collides, not only what was tested."""
    if not any(key_has_conflicts(conn, wt, key) for wt, key in keys):
        return
    found = []
    for wt, key in _all_keys(schema):
        n = conn.execute(queries.count_groups(queries.conflict_groups(schema, wt, key))).scalar_one()
        if n:
            found.append(f"{wt.name} ({', '.join(key.columns)}): {n}")
    raise ConflictsAppeared("conflicts found under the lock, rolled back, nothing changed: " + "; ".join(found))


def _artifact_verdict(findings: tuple[ArtifactFinding, ...], allowed: bool) -> tuple[ArtifactFinding, ...]:
    blocking = sum(1 for f in findings if f.blocking)
    if blocking and not allowed:
        raise ArtifactFindingsBlock(
            f"{blocking:,} blocking artifact finding(s) under the lock, rolled back, nothing changed; fix them "
            "or pass --allow-artifact-overlap"
        )
    return findings


def _ensure_default_workspace(conn: Connection, schema: WorkspaceSchema) -> bool:
    names = set(conn.execute(queries.catalog_names(schema.catalog)).scalars())
    if knowledge.DEFAULT_WORKSPACE in names:
        return False
    conn.execute(queries.insert_default_workspace(schema.catalog))
    return True


def _source_workspaces(conn: Connection, schema: WorkspaceSchema) -> set[str]:
    """Every workspace that has rows to move (read before the move): the ones it will empty."""
    return {ws for wt in schema.tables for ws, _ in conn.execute(queries.moves_by_workspace(wt)) if ws is not None}


def _prune_catalog(
    conn: Connection, schema: WorkspaceSchema, emptied: set[str], journal: JournalWriter | None
) -> tuple[str, ...]:
    """Delete the catalog rows of the emptied workspaces (never `default`), journaling each full row first."""
    names = sorted(emptied - {knowledge.DEFAULT_WORKSPACE})
    if not names:
        return ()
    catalog = queries.catalog_table(schema.catalog)
    name = catalog.c[schema.catalog.name_column]
    rows = [dict(r._mapping) for r in conn.execute(catalog.select().where(name.in_(names)).order_by(name))]
    for row in rows:
        if journal:
            journal.catalog_deleted(row)
    conn.execute(catalog.delete().where(name.in_(names)))
    return tuple(r[schema.catalog.name_column] for r in rows)


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
