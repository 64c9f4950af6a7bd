"""Execute a migrate Plan on the locked-transaction core (``db.transaction``): re-check, update in FK order, verify.

Any failure rolls the whole transaction back, so the database is either fully moved or untouched.

The plan is re-validated under the lock with cheap checks, never with a second full conflict scan: a
collision on a key the schema enforces (primary key, unique constraint or index) makes the database refuse
the UPDATE itself, and only then is the exact conflict count taken; keys that only MLflow's code keeps
unique have no index to refuse with, so those are re-tested explicitly (they are few and small).  The
artifact locations are read under the lock too, and checked in a thread while the UPDATEs run.  With
``--rename-conflicts`` the renames are read again and applied first (``renames``), so that the journal and the
move see the new names.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.errors import (
    ArtifactFindingsBlock,
    ConflictsAppeared,
    StoredContentRefused,
    VerificationFailed,
)
from mlflow_ws_admin.db.dialects import for_backend
from mlflow_ws_admin.db.schema import ForeignKey, UniqueKey, WorkspaceSchema, WorkspaceTable
from mlflow_ws_admin.db.transaction import Locked, locked_transaction
from mlflow_ws_admin.engine import artifact_scan, queries
from mlflow_ws_admin.engine.move import Move
from mlflow_ws_admin.engine.plan import Plan, key_has_conflicts, unresolved_findings
from mlflow_ws_admin.engine.relocate import ArtifactMove, CopiesBeforeCommit, UriColumn
from mlflow_ws_admin.engine.selection import describe_references, reference_tables, references_left_behind
from mlflow_ws_admin.findings import stored_content
from mlflow_ws_admin.findings.artifacts import ArtifactFinding

if TYPE_CHECKING:
    from mlflow_ws_admin.engine.journal import JournalWriter
    from mlflow_ws_admin.engine.relocate import Relocation
    from mlflow_ws_admin.engine.renames import RenamePlan

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
    #: experiments whose artifact_location was repointed (``--artifact-policy retarget``)
    artifact_locations_retargeted: int = 0
    #: (table, rows renamed) by ``--rename-conflicts``: the renamed rows and every row that stores their names
    renamed: tuple[tuple[str, int], ...] = ()
    #: the renames read and applied under the lock (``--rename-conflicts``)
    renames: RenamePlan | None = None
    #: ``--artifact-policy relocate``: what moved, objects copied (this run), stored URIs rewritten per column,
    #: old objects deleted after COMMIT (None: kept by --keep-source-artifacts)
    relocated: Relocated | None = None

    @property
    def total_moved(self) -> int:
        return sum(n for _, n in self.moved)


@dataclass(frozen=True)
class Relocated:
    moves: tuple[ArtifactMove, ...]
    objects_copied: int
    uris_rewritten: tuple[UriColumn, ...]
    objects_deleted: int | None


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
    #: apply even while other sessions (a tracking server) are connected to the database
    ignore_other_sessions: bool = False
    #: checks again, under the lock, that a selective move's workspaces still exist (raises UsageError)
    check_workspaces: Callable[[Connection], None] | None = None
    #: ``--artifact-policy relocate``: keep the old objects after COMMIT (``--keep-source-artifacts``)
    keep_source_artifacts: bool = False
    #: copies in flight at once
    artifact_workers: int = 16
    #: progress of the copy: (objects done, bytes done)
    on_copy: Callable[[int, int], None] | None = None


def apply_plan(
    engine: Engine,
    plan: Plan,
    *,
    lock_timeout_s: float = 30.0,
    on_table: ProgressHook | None = None,
    extras: ApplyExtras | None = None,
) -> ApplyResult:
    """Run the plan's Move (every row into `default`, or a selection into its target) on the locked-transaction
    core.  Raises (after rollback) on any problem: a database error says nothing was applied and what is
    pending."""
    extras = extras or ApplyExtras()
    schema, move = plan.schema, plan.move
    suspendable = _non_cascading_fks(schema) + _cascades_to_suspend(engine, plan)
    journal = extras.journal
    pending = f"{plan.total_rows_to_move:,} row(s) in {sum(1 for m in plan.moves if m.rows_to_move)} table(s)"
    started = time.monotonic()
    relocation = plan.resources.relocation if plan.resources else None
    moves = relocation.moves if relocation else ()
    copied = 0
    copies = CopiesBeforeCommit()  # undone should the run fail before its commit
    if moves:
        from mlflow_ws_admin.engine.relocate import transfer

        # Before the lock: the slow part, while the database still names the old objects (intact).
        copied = transfer(moves, workers=extras.artifact_workers, on_progress=extras.on_copy, landed=copies.landed)
    with (
        copies,
        locked_transaction(
            engine,
            schema,
            suspendable=suspendable,
            lock_timeout_s=lock_timeout_s,
            journal=journal,
            doing=f"applying (rolled back: nothing was applied; still pending: {pending})",
            ignore_other_sessions=extras.ignore_other_sessions,
            read_tables=_read_tables(plan),
            write_tables=sorted(relocation.tables) if relocation else (),
        ) as tx,
    ):
        conn = tx.conn
        if extras.expected_fingerprints is not None:
            from mlflow_ws_admin.engine.planfile import verify_fingerprints  # only --plan runs pay its import

            verify_fingerprints(conn, schema, extras.expected_fingerprints)
        renamed: dict[str, int] = {}
        renames = None
        if move.rename:
            renames, renamed, move = _rename_conflicts(tx, plan, journal)
            plan = dataclasses.replace(plan, move=move)
        _recheck_conflicts(conn, schema, _code_enforced_keys(schema), move)
        _refuse_stored_content(conn, schema, move)
        if plan.resources:
            if extras.check_workspaces:
                extras.check_workspaces(conn)
            _refuse_new_references(conn, schema, move)
        # The locations are checked in a thread while the UPDATEs run.
        finding = artifact_scan.start_artifact_check(
            conn,
            schema,
            extras.default_artifact_root,
            read_beside=tx.dialect.other_sessions_read_locked_tables,
            move=move,
        )
        emptied = _source_workspaces(conn, schema) if extras.prune_workspaces else set()
        if journal:
            from mlflow_ws_admin.engine.journal import record_moves  # only --journal runs pay its import

            record_moves(conn, schema, journal, move)
        retargeted = _retarget_artifacts(conn, schema, move, journal)
        if moves:
            from mlflow_ws_admin.engine.relocate import transfer

            # Under the lock: only what was logged since the first pass, then checked once more.
            copied += transfer(moves, workers=extras.artifact_workers, landed=copies.landed)
        rewritten = _relocate(conn, relocation, journal) if relocation else ()
        created = _ensure_default_workspace(conn, schema) if move.is_migration else False
        cascades = tx.suspend_foreign_keys()
        cascaded = {wt.name for wt in _moving_tables(plan) if cascades and _moved_by_cascade(wt, suspendable)}
        counts = _move_all(tx, plan, cascaded, on_table, started)
        findings = _artifact_verdict(
            unresolved_findings(finding.result(), plan.resources), extras.allow_artifact_overlap
        )
        pruned = _prune_catalog(conn, schema, emptied, journal)
        if journal and created:
            journal.catalog_inserted({schema.catalog.name_column: mlflow_facts.DEFAULT_WORKSPACE})
        copies.committing = True
    moved = tuple((wt.name, counts[wt.name]) for wt in _moving_tables(plan))
    relocated = None
    if relocation:
        from mlflow_ws_admin.engine.relocate import delete_sources

        # After COMMIT: the new objects are complete and in use; only now may the old ones go.
        deleted = None if extras.keep_source_artifacts else delete_sources(moves)
        relocated = Relocated(moves, copied, rewritten, deleted)
    return ApplyResult(moved, created, pruned, findings, retargeted, tuple(renamed.items()), renames, relocated)


def _relocate(conn: Connection, relocation: Relocation, journal: JournalWriter | None) -> tuple[UriColumn, ...]:
    """Rewrite every stored URI under a moved prefix, journaling each object move first."""
    from mlflow_ws_admin.engine.relocate import rewrite_uris

    for m in relocation.moves:
        if journal:
            journal.artifact_move(m.record())
    return rewrite_uris(conn, relocation.tables, {m.from_uri: m.to_uri for m in relocation.moves})


def _rename_conflicts(tx: Locked, plan: Plan, journal: JournalWriter | None) -> tuple[RenamePlan, dict[str, int], Move]:
    """Under the lock, before anything is journaled or moved: read the renames again and apply them.  They
    must be the ones the plan showed (with -y, apply's own reading is the plan); rows that cannot be renamed
    block.  Foreign keys are suspended first, so a rename cannot be refused by one that does not cascade.
    Returns the renames, the rows renamed per table, and the move with its selection under the new names."""
    from mlflow_ws_admin.engine.renames import apply_renames, plan_renames, renameable, renamed_selection

    conn, schema, move = tx.conn, tx.schema, plan.move
    assert move.rename is not None
    # Every key a rename can resolve, without a conflict test first: planning reads each key's rows once
    # anyway and finds its groups there (the test cost as much again on MariaDB).
    keys = [(wt.name, key) for wt in _moving_tables(plan) for key in wt.unique_keys if renameable(schema, wt, key)]
    current = plan_renames(conn, schema, move, move.rename, keys)
    if current.refused:
        raise ConflictsAppeared(
            f"{len(current.refused):,} colliding row(s) cannot be renamed (found under the lock); rolled back, "
            "nothing changed"
        )
    if plan.renames is not None and current.renames != plan.renames.renames:
        raise ConflictsAppeared(
            "the colliding rows changed since the plan, so its renames no longer hold; rolled back, nothing changed"
        )
    cascades = tx.suspend_foreign_keys()
    renamed = apply_renames(conn, schema, current, journal, cascades=cascades)
    return current, renamed, renamed_selection(schema, move, current)


def _read_tables(plan: Plan) -> list[str]:
    """Tables without a workspace that apply reads under its lock: a selection's references, the by-name
    references a rename must not break."""
    tables = set(reference_tables(plan.schema)) if plan.resources else set()
    if plan.move.rename:
        from mlflow_ws_admin.engine.renames import NAME_REFERENCE_TABLES

        tables |= set(NAME_REFERENCE_TABLES) & plan.schema.all_table_names
    return sorted(tables - {t.name for t in plan.schema.tables})


def _refuse_new_references(conn: Connection, schema: WorkspaceSchema, move: Move) -> None:
    """A row that stays behind may have started to reference a moving row since the plan."""
    left = list(references_left_behind(conn, schema, move))
    if left:
        shown = "; ".join(describe_references(left, 3))
        raise ConflictsAppeared(
            f"{len(left):,} row(s) staying in `{move.source}` reference moving rows (found under the lock: {shown}); "
            "rolled back, nothing changed"
        )


def _moving_tables(plan: Plan) -> list[WorkspaceTable]:
    """The tables the move touches, parents first."""
    return [wt for wt in plan.schema.tables if plan.move.moves_table(wt.name)]


def _retarget_artifacts(conn: Connection, schema: WorkspaceSchema, move: Move, journal: JournalWriter | None) -> int:
    """Repoint the moving experiments' artifact_location (``--artifact-policy retarget``), journaling each
    old value so that a restore puts it back.  Only rows still in the source and selected are touched."""
    if not move.retarget:
        return 0
    wt = schema.table(mlflow_facts.EXPERIMENTS_TABLE)
    t = queries.table_clause(wt)
    ident, location = t.c[mlflow_facts.EXPERIMENT_ID_COLUMN], t.c[mlflow_facts.ARTIFACT_LOCATION_COLUMN]
    current = dict(conn.execute(select(ident, location).where(queries.rows_moving(wt, move))).all())
    changes = [(i, old, move.retarget[i]) for i, old in current.items() if i in move.retarget]
    for experiment_id, old, new in changes:
        if journal:
            journal.column_set(wt.name, [experiment_id], mlflow_facts.ARTIFACT_LOCATION_COLUMN, old, new)
    if changes:
        conn.execute(
            t.update().where(ident == bindparam("mwa_id")).values({location: bindparam("mwa_location")}),
            [{"mwa_id": i, "mwa_location": new} for i, _, new in changes],
        )
    return len(changes)


def _non_cascading_fks(schema: WorkspaceSchema) -> list[ForeignKey]:
    """Workspace FKs that would refuse (NO ACTION/RESTRICT) or damage (SET NULL) a parent's move."""
    return [fk for wt in schema.tables for fk in wt.parent_keys if not fk.cascades_on_update]


def _cascades_to_suspend(engine: Engine, plan: Plan) -> list[ForeignKey]:
    """The cascading FKs whose child rows move faster with an UPDATE of their own (``cheaper_suspended``): asked
    before the lock, since the privilege check needs every FK to suspend."""
    moving = {m.table: m.rows_to_move for m in plan.moves}
    cascading = [
        (fk, moving[fk.child])
        for wt in plan.schema.tables
        for fk in wt.parent_keys
        if fk.cascades_on_update and moving.get(fk.child)
    ]
    dialect = for_backend(plan.dialect)
    if not cascading or dialect.cascades_are_cheapest:
        return []
    with engine.connect() as conn:
        return dialect.cheaper_suspended(conn, cascading)


def _moved_by_cascade(wt: WorkspaceTable, suspended: list[ForeignKey]) -> bool:
    """Every workspace column of this table follows a parent through an enforced ON UPDATE CASCADE FK whose
    columns are NOT NULL, so updating the parents already moved every row."""
    cascading = [fk for fk in wt.parent_keys if fk.cascades_on_update and fk not in suspended]
    return all(
        any(col in fk.child_columns and not any(wt.is_nullable(c) for c in fk.child_columns) for fk in cascading)
        for col in wt.workspace_columns
    )


def _move_all(
    tx: Locked, plan: Plan, cascaded: set[str], on_table: ProgressHook | None, started: float
) -> dict[str, int]:
    """Move every table in FK order and verify; returns rows moved per table.  A duplicate key refused by
    the database (directly, or through a cascade into a child's key: MariaDB's error 1761) rolls back to the
    savepoint, so the exact conflicts can be counted under the same lock."""
    conn, schema, move = tx.conn, tx.schema, plan.move
    tables = _moving_tables(plan)
    # A cascade moves these tables' rows without an UPDATE of their own to count them: count first.
    moved = {t: conn.execute(queries.count_moving(schema.table(t), move)).scalar_one() for t in cascaded}
    planned = {m.table: m.rows_to_move for m in plan.moves}
    try:
        with conn.begin_nested():
            for wt in tables:
                if wt.name not in cascaded:
                    # Indexes cheaper to rebuild than to update row by row (SQLite) are dropped and re-created
                    # inside the savepoint: a refused UPDATE rolls them back with everything else.
                    suspended = tx.dialect.suspend_indexes(conn, wt.name, wt.workspace_columns, planned.get(wt.name, 0))
                    moved[wt.name] = _move(conn, wt, move)
                    tx.dialect.restore_indexes(conn, suspended)
                if on_table:
                    on_table(wt.name, moved[wt.name], time.monotonic() - started)
            _verify_nothing_left(conn, _to_recount(tx, tables, cascaded), cascaded, move)
    except DBAPIError as exc:
        if tx.dialect.is_duplicate_key(exc):
            _recheck_conflicts(conn, schema, _all_keys(schema), move)
        raise  # not a collision (or none left to count): the database's own error, rolled back
    return moved


def _move(conn: Connection, wt: WorkspaceTable, move: Move) -> int:
    """One set-based UPDATE per workspace column, never row by row; returns the rows moved."""
    if len(wt.workspace_columns) == 1:
        return conn.execute(queries.move_statement(wt, wt.workspace_column, move)).rowcount
    # A row may sit outside the target in several columns: count rows, not column updates.
    rows = conn.execute(queries.count_moving(wt, move)).scalar_one()
    for col in wt.workspace_columns:
        conn.execute(queries.move_statement(wt, col, move))
    return rows


TableKeys = list[tuple[WorkspaceTable, UniqueKey]]


def _all_keys(schema: WorkspaceSchema) -> TableKeys:
    return [(wt, key) for wt in schema.tables for key in wt.unique_keys]


def _code_enforced_keys(schema: WorkspaceSchema) -> TableKeys:
    """The keys no index guards (only MLflow's code keeps them unique), so the UPDATE cannot refuse them."""
    return [(wt, key) for wt, key in _all_keys(schema) if not key.enforced_by_database]


def _recheck_conflicts(conn: Connection, schema: WorkspaceSchema, keys: TableKeys, move: Move) -> None:
    """One existence test per key of ``keys`` (no roll-up joins).  On a hit the exact group counts of every
    key follow, so the message names all that collides, not only what was tested."""
    keys = [(wt, key) for wt, key in keys if move.moves_table(wt.name)]
    if not any(key_has_conflicts(conn, wt, key, move) for wt, key in keys):
        return
    found = []
    for wt, key in _all_keys(schema):
        if not move.moves_table(wt.name):
            continue
        n = conn.execute(queries.count_groups(queries.conflict_groups(schema, wt, key, move))).scalar_one()
        if n:
            found.append(f"{wt.name} ({', '.join(key.columns)}): {n}")
    raise ConflictsAppeared("conflicts found under the lock, rolled back, nothing changed: " + "; ".join(found))


def _refuse_stored_content(conn: Connection, schema: WorkspaceSchema, move: Move) -> None:
    """Under the lock, before anything moves: no --allow-* option lifts this (MLflow has none either)."""
    found = artifact_scan.read_stored_content(conn, schema, move)
    if found:
        raise StoredContentRefused(
            f"{len(found):,} row(s) to move have their content stored by MLflow under their workspace "
            f"(first: {found[0].describe()}): {stored_content.refusal(move.target)}; rolled back, nothing changed"
        )


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
    if mlflow_facts.DEFAULT_WORKSPACE in names:
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
    names = sorted(emptied - {mlflow_facts.DEFAULT_WORKSPACE})
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


def _to_recount(tx: Locked, tables: list[WorkspaceTable], cascaded: set[str]) -> list[WorkspaceTable]:
    """The tables whose rows left behind only a count can show.  A table moved by its own UPDATE needs none:
    under the write lock, that UPDATE's WHERE clause is the very test, so only a trigger could leave a selected
    row where it was.  (Counting every table cost a full scan of each where no index leads with the workspace.)"""
    triggered = tx.dialect.tables_with_triggers(tx.conn)
    return [wt for wt in tables if wt.name in cascaded or triggered is None or wt.name in triggered]


def _rows_left(conn: Connection, tables: list[WorkspaceTable], move: Move) -> dict[str, int]:
    left = {wt.name: conn.execute(queries.count_moving(wt, move)).scalar_one() for wt in tables}
    return {t: n for t, n in left.items() if n}


def _verify_nothing_left(conn: Connection, tables: list[WorkspaceTable], cascaded: set[str], move: Move) -> None:
    """One counting pass over ``tables`` (``_to_recount``): no row the move selects may remain where it was.  A
    cascade moves only rows whose parent exists, so orphans that the schema let in are moved explicitly, then
    recounted."""
    left = _rows_left(conn, tables, move)
    orphaned = [wt for wt in tables if wt.name in left and wt.name in cascaded]
    for wt in orphaned:
        _move(conn, wt, move)
    left = {t: n for t, n in left.items() if t not in cascaded} | _rows_left(conn, orphaned, move)
    if left:
        detail = ", ".join(f"{t}: {n}" for t, n in left.items())
        where = "outside `default`" if move.is_migration else f"in `{move.source}`"
        raise VerificationFailed(f"rows still {where} before commit ({detail}); rolled back")
