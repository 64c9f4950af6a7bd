"""Reading a Move's artifact locations for the findings (``findings.artifacts``): one streamed read of the
experiments' locations (as they will be after the move) and the catalog's roots, optionally in a background
thread beside the caller's statements; and the moving rows whose content MLflow stores under their workspace
(``findings.stored_content``).  Only reads."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Connection, Engine

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.db.dialects import for_backend
from mlflow_ws_admin.db.schema import WorkspaceSchema
from mlflow_ws_admin.engine import queries
from mlflow_ws_admin.engine.move import MIGRATE, Move
from mlflow_ws_admin.findings.artifacts import ArtifactFinding, display_location, find_artifact_findings
from mlflow_ws_admin.findings.stored_content import StoredContent

_READ_BATCH = 5000


def _find(
    experiments: Iterable[tuple[Any, str | None, str | None]],
    roots: list[tuple[str, str | None]],
    default_artifact_root: str | None,
    move: Move,
) -> tuple[ArtifactFinding, ...]:
    # unique_ids: every row here is one experiment, by its primary key.
    return find_artifact_findings(
        experiments,
        roots,
        default_artifact_root,
        target_workspace=move.target,
        migration=move.is_migration,
        unique_ids=True,
    )


def read_artifact_findings(
    conn: Connection, schema: WorkspaceSchema, default_artifact_root: str | None, move: Move = MIGRATE
) -> tuple[ArtifactFinding, ...]:
    """One streamed read of experiments' locations and one of the catalog's roots; only reads.  The rows go
    from the cursor straight into the finder (see ``find_artifact_findings`` for its memory)."""
    experiments, roots = _artifact_rows(conn, schema, move)
    return _find(experiments, roots, default_artifact_root, move)


def start_artifact_check(
    conn: Connection,
    schema: WorkspaceSchema,
    default_artifact_root: str | None,
    *,
    read_beside: bool,
    move: Move = MIGRATE,
) -> Future[tuple[ArtifactFinding, ...]]:
    """Check every location in a background thread, so the check overlaps the caller's next statements
    (apply's UPDATEs): the drivers release the GIL while the database works.

    read_beside: another session may read the tables now (nothing is locked, or the database lets others read
    what the caller locked, as it was when locked), so the thread streams them on a connection of its own;
    otherwise the rows are read on ``conn`` first."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mwa-artifacts")
    try:
        if read_beside:
            return executor.submit(_read_beside, conn.engine, schema, default_artifact_root, move)
        experiments, roots = _artifact_rows(conn, schema, move)
        rows = list(experiments)  # ``conn`` is needed for other statements from here on
        return executor.submit(lambda: _find(rows, roots, default_artifact_root, move))
    finally:
        executor.shutdown(wait=False)  # the worker ends with its one task


def _read_beside(
    engine: Engine,
    schema: WorkspaceSchema,
    default_artifact_root: str | None,
    move: Move,
) -> tuple[ArtifactFinding, ...]:
    with engine.connect() as conn:  # closed (its read lock released) before the caller can commit
        experiments, roots = _artifact_rows(conn, schema, move)
        return _find(experiments, roots, default_artifact_root, move)


def _artifact_rows(
    conn: Connection, schema: WorkspaceSchema, move: Move
) -> tuple[Iterable[tuple[Any, str | None, str | None]], list[tuple[str, str | None]]]:
    """(experiments' (id, workspace, location) rows streamed from a cursor, catalog (workspace, root) rows).

    A selective move reads only the target's experiments and the moving ones, each moving one as it will be
    after the move (in the target, retargeted); the catalog's roots are not its business."""
    roots: list[tuple[str, str | None]] = []
    if move.is_migration and any(c.name == mlflow_facts.CATALOG_ARTIFACT_ROOT_COLUMN for c in schema.catalog.columns):
        roots = [(ws, root) for ws, root in conn.execute(queries.workspace_artifact_roots(schema.catalog))]
    wt = next((t for t in schema.tables if t.name == mlflow_facts.EXPERIMENTS_TABLE), None)
    if wt is None or not wt.has_column(mlflow_facts.ARTIFACT_LOCATION_COLUMN):
        return (), roots
    result = for_backend(conn.dialect.name).stream_rows(conn, queries.experiment_locations(wt, move), _READ_BATCH)
    if move.is_migration:
        return result, roots
    new = move.retarget
    return ((exp_id, ws, new.get(exp_id, loc) if ws == move.target else loc) for exp_id, ws, loc in result), roots


def read_stored_content(conn: Connection, schema: WorkspaceSchema, move: Move = MIGRATE) -> tuple[StoredContent, ...]:
    """Rows to move whose content MLflow stores under their own workspace's path (``WORKSPACE_STORED_CONTENT``,
    MLflow 3.18.0's skill versions): MLflow's own migrate and move-resources refuse them.  Read on the
    caller's connection: apply reads them under its lock, before it suspends any foreign key."""
    found: list[StoredContent] = []
    for name, (column, value, location_column) in mlflow_facts.WORKSPACE_STORED_CONTENT.items():
        wt = next((t for t in schema.tables if t.name == name), None)
        if wt is None or not wt.has_column(column):
            continue
        stmt, keys = queries.stored_content_rows(wt, column, value, location_column, move)
        for row in conn.execute(stmt):
            workspace, location, ident = row[0], row[1], row[2:]
            key = tuple(zip(keys, ident, strict=True))
            found.append(StoredContent(name, key, workspace, display_location(location or "")))
    return tuple(found)
