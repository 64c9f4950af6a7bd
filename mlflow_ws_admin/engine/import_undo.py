"""Undo a journaled ``db import-database``: delete exactly the rows it inserted, in one transaction.

``db restore-workspaces --journal`` runs this for a journal whose operation is ``import``.  Tables are emptied of
the journaled keys children first (the reverse of the import's order), so no foreign key ever points at a
deleted row; a key already gone is counted, not an error.  A row added since that references an imported row
(a new run in an imported experiment) makes the database refuse the delete: everything rolls back (exit 3).
The workspace the import created is deleted too, once nothing is left in it.

An import with ``--artifact-policy relocate`` journaled its artifact copies (``artifact_move``): after the
COMMIT, the objects under each new prefix that are identical to SOURCE's objects (the import never touches
those) are deleted; anything else there (written since, or SOURCE's objects no longer readable) is kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import MetaData, delete, func, or_, select, tuple_
from sqlalchemy.engine import Connection, Engine

from mlflow_ws_admin.db.schema import WorkspaceSchema, shared_row_tables
from mlflow_ws_admin.db.transaction import LockScope, locked_transaction
from mlflow_ws_admin.engine.journal import JournalSummary, inserted_keys, inserted_tables
from mlflow_ws_admin.engine.relocate import ArtifactMove, delete_sources, leftovers
from mlflow_ws_admin.stores.base import StoreError

#: Keys deleted per statement.
BATCH = 1000


@dataclass
class UndoResult:
    dry_run: bool
    #: table -> journaled rows still present (deleted by the run, or that would be)
    present: dict[str, int] = field(default_factory=dict)
    #: table -> journaled rows already gone
    missing: dict[str, int] = field(default_factory=dict)
    #: the workspace the import created, and whether it goes too (nothing else is left in it)
    workspace: str | None = None
    workspace_deleted: bool = False
    applied: bool = False
    #: relocate: the copied artifact objects under the import's new prefixes (deleted by the run, or that would be)
    artifact_objects: int = 0

    @property
    def total(self) -> int:
        return sum(self.present.values())


def plan_undo(engine: Engine, schema: WorkspaceSchema, journal_path: str, summary: JournalSummary) -> UndoResult:
    """Read-only: how many journaled rows are still there, per table."""
    result = UndoResult(dry_run=True, workspace=_created_workspace(summary, schema))
    meta = _reflect(engine, schema)
    with engine.connect() as conn:
        for name in inserted_tables(journal_path):
            table = meta.tables[name]
            present = journaled = 0
            for keys in _batches(inserted_keys(journal_path, name)):
                journaled += len(keys)
                present += conn.execute(
                    select(func.count()).select_from(table).where(_matches(table, keys))
                ).scalar_one()
            _count(result, name, present, journaled)
    result.artifact_objects = sum(leftovers(_copies(summary)).values())
    return result


def apply_undo(
    engine: Engine,
    schema: WorkspaceSchema,
    journal_path: str,
    summary: JournalSummary,
    *,
    lock_timeout_s: float,
    ignore_other_sessions: bool,
) -> UndoResult:
    """Delete the journaled rows, children first, in one locked transaction."""
    result = UndoResult(dry_run=False, workspace=_created_workspace(summary, schema))
    meta = _reflect(engine, schema)
    tables = inserted_tables(journal_path)
    scope = LockScope(
        dialect=schema.dialect,
        tables=(*tables, *(t.name for t in schema.tables if t.name not in tables), schema.catalog.table),
        updated={schema.catalog.table: schema.catalog.name_column},
    )
    with locked_transaction(
        engine,
        scope,
        suspendable=(),
        lock_timeout_s=lock_timeout_s,
        journal=None,
        doing="undoing the import (rolled back: nothing was deleted)",
        ignore_other_sessions=ignore_other_sessions,
    ) as tx:
        for name in reversed(tables):
            table = meta.tables[name]
            deleted = journaled = 0
            for keys in _batches(inserted_keys(journal_path, name)):
                journaled += len(keys)
                deleted += tx.conn.execute(delete(table).where(_matches(table, keys))).rowcount
            _count(result, name, deleted, journaled)
        if result.workspace is not None and _empty(tx.conn, meta, schema, result.workspace):
            catalog = meta.tables[schema.catalog.table]
            tx.conn.execute(delete(catalog).where(catalog.c[schema.catalog.name_column] == result.workspace))
            result.workspace_deleted = True
    result.applied = True
    # After the COMMIT: objects the deleted rows named go last, so a failed undo never loses a readable artifact.
    try:
        result.artifact_objects = delete_sources(_copies(summary))
    except StoreError as exc:
        raise StoreError(
            f"the imported rows were deleted, but not the copied artifacts: {exc.message}; once the stores answer, "
            f"`db finish-relocation TARGET_URI --journal {journal_path}` deletes them"
        ) from None
    return result


def _copies(summary: JournalSummary) -> list[ArtifactMove]:
    """Each journaled copy as a move from its new prefix back to SOURCE's: ``leftovers``/``delete_sources`` then
    see exactly the objects at the new prefix identical to SOURCE's."""
    return [ArtifactMove.from_record(r).reversed() for r in summary.artifact_moves]


def _created_workspace(summary: JournalSummary, schema: WorkspaceSchema) -> str | None:
    return next((r.get(schema.catalog.name_column) for r in summary.catalog_inserted), None)


def _reflect(engine: Engine, schema: WorkspaceSchema) -> MetaData:
    with engine.connect() as conn:
        return shared_row_tables(conn, sorted(schema.all_table_names))


def _batches(keys: Iterator[list[Any]]) -> Iterator[list[list[Any]]]:
    while batch := list(itertools.islice(keys, BATCH)):
        yield batch


def _matches(table: Any, keys: list[list[Any]]) -> Any:
    pk = list(table.primary_key.columns)
    if len(pk) == 1:
        return pk[0].in_([k[0] for k in keys])
    return tuple_(*pk).in_([tuple(k) for k in keys])


def _count(result: UndoResult, table: str, present: int, journaled: int) -> None:
    result.present[table] = present
    if journaled > present:
        result.missing[table] = journaled - present


def _empty(conn: Connection, meta: MetaData, schema: WorkspaceSchema, workspace: str) -> bool:
    for wt in schema.tables:
        t = meta.tables[wt.name]
        condition = or_(*(t.c[c] == workspace for c in wt.workspace_columns))
        if conn.execute(select(t.c[wt.workspace_column]).where(condition).limit(1)).first() is not None:
            return False
    return True
