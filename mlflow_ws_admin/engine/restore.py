"""``db restore-workspaces``: move journaled rows back to their original workspaces, in one transaction.

The journal is read, never held: once to refuse it unless complete and written for this database
(``journal.check_journal``), then once per pass, table by table in the journal's order (parents first); the
restore itself parses it a few batches ahead, in a thread, while the database works.

``plan_restore`` is the read-only check (the dry run and the preview before the prompt).  It reads the rows in
batches and finds, per row:

- **missing**: the row is no longer where the journal left it (deleted or moved since); it is skipped;
- **replaced**: a row holds the journaled key, but its creation time differs — a new row took the name in the
  meantime, so moving it would move the wrong row (a conflict);
- **occupied**: the original workspace now holds another row with the same per-workspace key (a conflict).

``apply_restore`` runs on the locked-transaction core (``db.transaction``), set-based: each table's journaled rows
are loaded into a temporary table, and one UPDATE joined to it moves them all back.  It re-checks under the lock
as migrate's apply does: "replaced" with one join, "occupied" by the unique indexes that refuse the UPDATE (plus
an explicit test of the keys only MLflow's code keeps unique).  Any conflict rolls everything back and raises
ConflictsAppeared; the caller then reports them with ``plan_restore``.  Pruned catalog rows are re-created,
workspace FKs are suspended (so nothing cascades twice) and re-checked, and the restore's own journal
(``--record-journal``) is sealed before COMMIT: restoring that journal undoes the restore.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import and_, case, column, false, func, literal, or_, select, table, tuple_
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.sql import TableClause

from mlflow_ws_admin.common.errors import ConflictsAppeared, VerificationFailed
from mlflow_ws_admin.common.gc_pause import no_cycle_collection
from mlflow_ws_admin.db.dialects import Dialect
from mlflow_ws_admin.db.schema import UniqueKey, WorkspaceSchema, WorkspaceTable
from mlflow_ws_admin.db.transaction import Locked, locked_transaction
from mlflow_ws_admin.db.translate import translate
from mlflow_ws_admin.engine import queries
from mlflow_ws_admin.engine.journal import JournalSummary, JournalWriter, creation_column, key_columns, read_records
from mlflow_ws_admin.engine.relocate import ArtifactMove, CopiesBeforeCommit, UriColumn

BATCH = 500
MISSING, REPLACED, OCCUPIED, CATALOG = "missing", "replaced", "occupied", "catalog"


@dataclass(frozen=True)
class RestoreConflict:
    table: str
    kind: str  # replaced | occupied | catalog
    key: tuple[tuple[str, Any], ...]
    workspace: str | None  # the workspace the row must return to
    detail: str


@dataclass
class RestoreResult:
    dry_run: bool
    #: table -> destination workspace -> rows moved back (or that would be)
    moves: dict[str, Counter] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    conflict_count: int = 0
    #: the first ``max_conflicts`` conflicts (all when None)
    conflicts: list[RestoreConflict] = field(default_factory=list)
    workspaces_recreated: list[str] = field(default_factory=list)
    catalog_deleted: list[str] = field(default_factory=list)
    #: columns put back to their journaled value (a move's retargeted artifact locations, renamed names)
    columns_restored: int = 0
    #: of those, the values --rename-conflicts changed (the names, in the renamed rows and the rows storing them,
    #: and the digests derived from them)
    names_restored: int = 0
    #: ``--artifact-policy relocate`` undone: each move's objects go back (the journal's records, reversed)
    artifact_moves: list[ArtifactMove] = field(default_factory=list)
    #: objects copied back by this run; old objects deleted after COMMIT
    artifact_objects_copied: int = 0
    artifact_objects_deleted: int = 0
    #: (table, column, rows) of stored URIs rewritten back
    artifact_uris_rewritten: list[UriColumn] = field(default_factory=list)
    applied: bool = False

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.moves.values())

    @property
    def nothing_to_do(self) -> bool:
        return not self.total and not self.workspaces_recreated and not self.catalog_deleted


class _Row(NamedTuple):
    key: list[Any]
    before: list[Any]  # workspace values to restore (journal "from")
    now: list[Any]  # workspace values the journal left ("to")
    created: Any


def plan_restore(
    engine: Engine,
    schema: WorkspaceSchema,
    journal_path: str,
    summary: JournalSummary,
    *,
    max_conflicts: int | None = None,
) -> RestoreResult:
    """Read-only: what a restore of this (accepted) journal would move back, and every conflict."""
    result = RestoreResult(dry_run=True)

    def conflict(c: RestoreConflict) -> None:
        result.conflict_count += 1
        if max_conflicts is None or len(result.conflicts) < max_conflicts:
            result.conflicts.append(c)

    try:
        with engine.connect() as conn:
            _check_catalog(conn, schema, summary.catalog_deleted, result, conflict)
            with no_cycle_collection():
                for wt, rows in _table_runs(journal_path, schema):
                    for batch in _chunks(rows, BATCH):
                        _check_batch(conn, wt, batch, result, conflict)
            result.catalog_deleted.extend(
                r[schema.catalog.name_column] for r in _existing(conn, schema, summary.catalog_inserted)
            )
            result.columns_restored = len(summary.column_sets)
            result.names_restored = sum(1 for c in summary.column_sets if "workspace" in c)
            result.artifact_moves = _artifact_moves_back(summary)
    except SQLAlchemyError as exc:
        raise translate(exc, doing="checking the restore (nothing was changed)") from None
    return result


def apply_restore(
    engine: Engine,
    schema: WorkspaceSchema,
    journal_path: str,
    summary: JournalSummary,
    *,
    out: JournalWriter | None = None,
    lock_timeout_s: float = 30.0,
    ignore_other_sessions: bool = False,
    keep_source_artifacts: bool = False,
    artifact_workers: int = 16,
) -> RestoreResult:
    """Move the journaled rows back on the locked-transaction core, set-based, re-checked under the lock.
    Raises ConflictsAppeared (rolled back) on any conflict."""
    result = RestoreResult(dry_run=False)
    back = _artifact_moves_back(summary)
    tables: Mapping[str, tuple[tuple[str, ...], list[str]]] = {}
    copies = CopiesBeforeCommit()  # undone should the restore fail before its commit, as apply's
    if back:
        from mlflow_ws_admin.engine.relocate import candidate_tables, transfer

        with engine.connect() as conn:
            tables = candidate_tables(conn, schema)
        # Before the lock, as apply does: the database still names the new prefixes, whose objects are intact.
        result.artifact_objects_copied = transfer(back, workers=artifact_workers, landed=copies.landed)
    # All workspace FKs: the journal holds every row that moved, cascaded children too, so nothing may
    # cascade a second time.
    suspendable = [fk for wt in schema.tables for fk in wt.parent_keys]
    with (
        copies,
        locked_transaction(
            engine,
            schema,
            suspendable=suspendable,
            lock_timeout_s=lock_timeout_s,
            journal=out,
            doing="restoring (rolled back: nothing was restored)",
            ignore_other_sessions=ignore_other_sessions,
            write_tables=sorted(tables),
        ) as tx,
    ):
        _recreate_catalog(tx.conn, schema, summary.catalog_deleted, result, out)
        tx.suspend_foreign_keys()
        # The journal pass makes millions of dicts and lists and holds thousands at a time: the cycle collector
        # walking them took 1.7 s of a 580k-row restore's 5.5 s of Python.
        with (
            tx.dialect.index_joins(tx.conn),
            no_cycle_collection(),
            contextlib.closing(_read_ahead(_row_batches(journal_path, schema), _READ_AHEAD)) as batches,
        ):
            for wt, run in itertools.groupby(batches, key=lambda batch: batch[0]):
                _move_back(tx, wt, itertools.chain.from_iterable(rows for _, rows in run), result, out)
        _restore_columns(tx.conn, schema, summary.column_sets, result, out)
        _delete_catalog(tx.conn, schema, summary.catalog_inserted, result, out)
        if back:
            _relocate_back(tx.conn, tables, back, result, out, artifact_workers, copies.landed)
        copies.committing = True
    result.applied = True
    if back and not keep_source_artifacts:
        from mlflow_ws_admin.engine.relocate import delete_sources

        # After COMMIT, as apply does: the old prefixes are complete again and in use.
        result.artifact_objects_deleted = delete_sources(back)
    return result


def _artifact_moves_back(summary: JournalSummary) -> list[ArtifactMove]:
    return [ArtifactMove.from_record(r).reversed() for r in summary.artifact_moves]


def _relocate_back(
    conn: Connection,
    tables: Mapping[str, tuple[tuple[str, ...], list[str]]],
    back: list[ArtifactMove],
    result: RestoreResult,
    out: JournalWriter | None,
    workers: int,
    landed: list[tuple[ArtifactMove, tuple[str, ...]]] | None = None,
) -> None:
    """Under the lock: copy what was logged under the new prefixes meanwhile, then rewrite every stored URI
    back, journaling the reverse moves in this restore's own journal."""
    from mlflow_ws_admin.engine.relocate import rewrite_uris, transfer

    result.artifact_objects_copied += transfer(back, workers=workers, landed=landed)
    for m in back:
        if out:
            out.artifact_move(m.record())
    result.artifact_moves = back
    result.artifact_uris_rewritten = list(rewrite_uris(conn, tables, {m.from_uri: m.to_uri for m in back}))


# --- reading the journal -----------------------------------------------------------------------------------


def _table_runs(path: str, schema: WorkspaceSchema) -> Iterator[tuple[WorkspaceTable, Iterator[_Row]]]:
    """The row records, one run of consecutive rows per table, streamed in journal order."""
    rows = (r for r in read_records(path) if r.get("type") == "row")
    for name, run in itertools.groupby(rows, key=lambda r: r["table"]):
        yield (
            _table(schema, name),
            (_Row(r["key"], r["from"], r["to"], r.get("created")) for r in run),
        )


def _row_batches(path: str, schema: WorkspaceSchema) -> Iterator[tuple[WorkspaceTable, list[_Row]]]:
    """The rows as ``_table_runs`` gives them, in lists of up to ``_LOAD_BATCH`` rows of one table."""
    for wt, rows in _table_runs(path, schema):
        for chunk in _chunks(rows, _LOAD_BATCH):
            yield wt, chunk


class _Failed(NamedTuple):
    error: BaseException


_END = object()


def _read_ahead(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """``items``, computed in a background thread at most ``depth`` items ahead: parsing the journal (its
    Python time) overlaps the database's work, during which the driver releases the GIL.  An error there is
    raised here, when its item is due."""
    ahead: queue.Queue = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stopped.is_set():
                    return
                ahead.put(item)
            ahead.put(_END)
        except BaseException as exc:
            ahead.put(_Failed(exc))

    worker = threading.Thread(target=produce, name="mwa-journal", daemon=True)
    worker.start()
    try:
        while (item := ahead.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stopped.set()
        while worker.is_alive():  # it stops at its next item; make room for the one it may be putting
            with contextlib.suppress(queue.Empty):
                ahead.get(timeout=0.05)


def _chunks(rows: Iterable[_Row], size: int) -> Iterator[list[_Row]]:
    it = iter(rows)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _table(schema: WorkspaceSchema, name: str) -> WorkspaceTable:
    try:
        return schema.table(name)
    except KeyError:
        raise VerificationFailed(f"the journal names table {name}, which is no longer workspace-scoped") from None


# --- catalog ---------------------------------------------------------------------------------------------


def _check_catalog(
    conn: Connection,
    schema: WorkspaceSchema,
    rows: Sequence[dict[str, Any]],
    result: RestoreResult,
    conflict: Callable[[RestoreConflict], None],
) -> None:
    """Read-only: which pruned catalog rows would be re-created, and which exist again with other settings."""
    for row, existing in _pruned_catalog_rows(conn, schema, rows):
        if existing is None:
            result.workspaces_recreated.append(row[schema.catalog.name_column])
        elif _differs(existing, row):
            conflict(_catalog_conflict(schema, row))


def _recreate_catalog(
    conn: Connection,
    schema: WorkspaceSchema,
    rows: Sequence[dict[str, Any]],
    result: RestoreResult,
    out: JournalWriter | None,
) -> None:
    """Under the lock: re-insert pruned catalog rows; an existing row with the same name must be identical."""
    catalog = queries.catalog_table(schema.catalog)
    for row, existing in _pruned_catalog_rows(conn, schema, rows):
        if existing is None:
            conn.execute(catalog.insert().values(row))
            if out:
                out.catalog_inserted(row)
            result.workspaces_recreated.append(row[schema.catalog.name_column])
        elif _differs(existing, row):
            raise _conflicts_under_lock(f"{_catalog_conflict(schema, row).detail}: {row[schema.catalog.name_column]!r}")


def _pruned_catalog_rows(
    conn: Connection, schema: WorkspaceSchema, rows: Sequence[dict[str, Any]]
) -> Iterator[tuple[dict[str, Any], Mapping[str, Any] | None]]:
    for row in rows:
        yield row, _catalog_row(conn, schema, row[schema.catalog.name_column])


def _differs(existing: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    return {k: _norm(v) for k, v in existing.items()} != {k: _norm(v) for k, v in row.items()}


def _catalog_conflict(schema: WorkspaceSchema, row: Mapping[str, Any]) -> RestoreConflict:
    name = row[schema.catalog.name_column]
    return RestoreConflict(
        schema.catalog.table,
        CATALOG,
        ((schema.catalog.name_column, name),),
        name,
        "the workspace exists again with different settings",
    )


def _existing(conn: Connection, schema: WorkspaceSchema, rows: Sequence[dict[str, Any]]) -> list[Mapping[str, Any]]:
    """The catalog rows the journaled run created (the `default` row apply adds when it was missing) that
    are still there."""
    found = (_catalog_row(conn, schema, row[schema.catalog.name_column]) for row in rows)
    return [row for row in found if row is not None]


def _delete_catalog(
    conn: Connection,
    schema: WorkspaceSchema,
    rows: Sequence[dict[str, Any]],
    result: RestoreResult,
    out: JournalWriter | None,
) -> None:
    """Under the lock: remove the catalog rows the journaled run created, journaling each full row first."""
    catalog = queries.catalog_table(schema.catalog)
    name_col = schema.catalog.name_column
    for existing in _existing(conn, schema, rows):
        if out:
            out.catalog_deleted(dict(existing))
        conn.execute(catalog.delete().where(catalog.c[name_col] == existing[name_col]))
        result.catalog_deleted.append(existing[name_col])


def _conflicts_under_lock(detail: str) -> ConflictsAppeared:
    return ConflictsAppeared(f"restore conflicts found under the lock, rolled back, nothing changed: {detail}")


def _catalog_row(conn: Connection, schema: WorkspaceSchema, name: Any) -> Mapping[str, Any] | None:
    """The whole catalog row of one workspace, or None."""
    catalog = queries.catalog_table(schema.catalog)
    return conn.execute(catalog.select().where(catalog.c[schema.catalog.name_column] == name)).mappings().first()


def _norm(value: Any) -> Any:
    return None if value is None else str(value)


# --- columns ---------------------------------------------------------------------------------------------


def _restore_columns(
    conn: Connection,
    schema: WorkspaceSchema,
    sets: Sequence[Mapping[str, Any]],
    result: RestoreResult,
    out: JournalWriter | None,
) -> None:
    """Under the lock, after the rows are back: put each changed column back to its journaled value (found by
    the row's key), recording the reverse change in this restore's own journal."""
    for record in sets:
        wt = _table(schema, record["table"])
        t = queries.table_clause(wt)
        keys = key_columns(wt)
        where = and_(*(t.c[c] == v for c, v in zip(keys, record["key"], strict=True)))
        if (workspace := record.get("workspace")) is not None:
            # A renamed name: its key is unique only within the workspace the row is back in.
            where = and_(where, t.c[wt.workspace_column] == workspace)
        if conn.execute(t.update().where(where).values({record["column"]: record["from"]})).rowcount:
            result.columns_restored += 1
            result.names_restored += workspace is not None
            if out:
                # The reverse change finds the row by its key as this restore leaves it.
                key = [record["from"] if c == record["column"] else v for c, v in zip(keys, record["key"], strict=True)]
                out.column_set(wt.name, key, record["column"], record["to"], record["from"], workspace=workspace)


# --- rows ------------------------------------------------------------------------------------------------


def _check_batch(
    conn: Connection,
    wt: WorkspaceTable,
    rows: list[_Row],
    result: RestoreResult,
    conflict: Callable[[RestoreConflict], None],
) -> None:
    """Read-only: classify one batch of journaled rows as present, missing, replaced or occupied."""
    keys = key_columns(wt)
    created_col = creation_column(wt)
    found = _current_rows(conn, wt, keys, created_col, rows)
    present: list[_Row] = []
    for row in rows:
        current = found.get(_lookup(row.key, row.now[0]))
        if current is None:
            result.missing[wt.name] = result.missing.get(wt.name, 0) + 1
        elif created_col and row.created is not None and _norm(current[created_col]) != _norm(row.created):
            conflict(
                RestoreConflict(
                    wt.name,
                    REPLACED,
                    tuple(zip(keys, row.key, strict=True)),
                    row.before[0],
                    f"a new row took this key in {row.now[0]!r} since the move ({created_col} differs)",
                )
            )
        else:
            present.append(row)
    for key in wt.unique_keys:
        for row, holder in _occupied(conn, wt, key, keys, present, found):
            conflict(
                RestoreConflict(
                    wt.name,
                    OCCUPIED,
                    tuple((c, holder[c]) for c in key.columns),
                    row.before[0],
                    f"{row.before[0]!r} now holds another row with this key ({_describe_key(keys, holder)})",
                )
            )
    moves = result.moves.setdefault(wt.name, Counter())
    moves.update(r.before[0] for r in present)


def _lookup(key: tuple[Any, ...], workspace: Any) -> tuple[str | None, ...]:
    """Matching key: values as text, so a journaled 7 finds the database's 7 whatever the driver returns."""
    return (*(_norm(v) for v in key), _norm(workspace))


def _current_rows(
    conn: Connection, wt: WorkspaceTable, keys: list[str], created_col: str | None, rows: list[_Row]
) -> dict[tuple, Mapping[str, Any]]:
    """The batch's rows as they are now, found by key and the workspace the journal left them in."""
    t = queries.table_clause(wt)
    ws = wt.workspace_column
    wanted = [*keys, ws, *(c for k in wt.unique_keys for c in k.columns)]
    if created_col:
        wanted.append(created_col)
    cols = [t.c[c] for c in dict.fromkeys(wanted)]
    found: dict[tuple, Mapping[str, Any]] = {}
    with_ws = [(*r.key, r.now[0]) for r in rows if r.now[0] is not None]
    without_ws = [tuple(r.key) for r in rows if r.now[0] is None]
    key_cols = [t.c[c] for c in keys]
    conditions = []
    if with_ws:
        conditions.append(tuple_(*key_cols, t.c[ws]).in_(with_ws))
    if without_ws:
        conditions.append(and_(t.c[ws].is_(None), tuple_(*key_cols).in_(without_ws)))
    for cond in conditions:
        for rec in conn.execute(select(*cols).where(cond)).mappings():
            found[_lookup(tuple(rec[c] for c in keys), rec[ws])] = rec
    return found


def _occupied(
    conn: Connection,
    wt: WorkspaceTable,
    key: UniqueKey,
    keys: list[str],
    rows: list[_Row],
    found: Mapping[tuple, Mapping[str, Any]],
) -> Iterable[tuple[_Row, Mapping[str, Any]]]:
    """Rows of ``rows`` whose original workspace now holds another row with the same value of ``key``.
    The database compares (its collation decides, as the unique index would); pairing is by value."""
    t = queries.table_clause(wt)
    ws = wt.workspace_column
    by_workspace: dict[Any, list[tuple[_Row, tuple]]] = defaultdict(list)
    for row in rows:
        current = found[_lookup(row.key, row.now[0])]
        values = tuple(current[c] for c in key.columns)
        if all(v is not None for v in values):
            by_workspace[row.before[0]].append((row, values))
    cols = [t.c[c] for c in key.columns]
    for workspace, items in by_workspace.items():
        where = t.c[ws].is_(None) if workspace is None else t.c[ws] == workspace
        stmt = select(*cols, *(t.c[c] for c in keys if c not in key.columns)).where(
            where, tuple_(*cols).in_([v for _, v in items])
        )
        for holder in conn.execute(stmt).mappings():
            hv = tuple(holder[c] for c in key.columns)
            match = next((r for r, v in items if v == hv), None) or next(
                (r for r, v in items if _fold(v) == _fold(hv)), items[0][0]
            )
            yield match, holder


def _fold(values: tuple) -> tuple:
    return tuple(v.casefold() if isinstance(v, str) else v for v in values)


def _describe_key(keys: list[str], holder: Mapping[str, Any]) -> str:
    return ", ".join(f"{c}={holder[c]!r}" for c in holder if c in keys) or "same key"


# --- moving back, set-based ------------------------------------------------------------------------------

#: The session-private table one table's journaled rows are loaded into.
_LOADED = "mwa_restore_rows"
_LOAD_BATCH = 5000
#: Batches of journal rows read ahead of the database work (~2 MB each).
_READ_AHEAD = 8


class _NotAllThere(Exception):
    """The optimistic UPDATE moved fewer rows than were loaded: undo it and take the exact path."""


def _move_back(
    tx: Locked, wt: WorkspaceTable, rows: Iterator[_Row], result: RestoreResult, out: JournalWriter | None
) -> None:
    """Under the lock: load the table's journaled rows and move them back set-based.  Usually every row is
    where the journal left it and none was replaced, so one UPDATE does it all (its row count proves it);
    otherwise that UPDATE is undone and the exact path counts, checks and moves them."""
    conn = tx.conn
    loaded, destinations, null_spots = _load(conn, tx.dialect, wt, rows)
    total = sum(destinations.values())
    t = queries.table_clause(wt)
    spots = _spots(t, loaded, wt, null_spots)
    moved = None if out or null_spots else _move_all_at_once(tx, wt, t, loaded, spots[0], total)
    if moved is not None:
        result.moves.setdefault(wt.name, Counter()).update(destinations)
    else:
        moved = sum(_move_exactly(tx, wt, t, loaded, spot, result, out) for spot in spots)
    _refuse_code_enforced_duplicates(conn, wt)
    if total - moved:
        result.missing[wt.name] = result.missing.get(wt.name, 0) + total - moved
    # Only on success: a failure rolls the transaction back, which takes the table along (PostgreSQL, SQLite)
    # or leaves it to the session's end (MySQL), and a DROP in an aborted transaction would hide the error.
    tx.dialect.drop_temporary_table(conn, _LOADED)


def _move_all_at_once(
    tx: Locked, wt: WorkspaceTable, t: TableClause, loaded: TableClause, spot: Any, total: int
) -> int | None:
    """One UPDATE of the rows found where the journal left them and not replaced since; the rows moved, or
    None (undone) when that was not every loaded row."""
    try:
        with tx.conn.begin_nested():
            if _update(tx, wt, t, loaded, and_(spot, _not_replaced(wt, t, loaded)), total) != total:
                raise _NotAllThere
    except _NotAllThere:
        return None
    return total


def _move_exactly(
    tx: Locked,
    wt: WorkspaceTable,
    t: TableClause,
    loaded: TableClause,
    spot: Any,
    result: RestoreResult,
    out: JournalWriter | None,
) -> int:
    """Count the found rows per destination and refuse replaced ones, journal them, then move them."""
    back, replaced = _matched(tx.conn, wt, t, loaded, spot)
    if replaced:
        raise _conflicts_under_lock(f"{wt.name}: {replaced} row(s) replaced by a new row since the move")
    if out:
        _journal_move_back(tx.conn, wt, t, loaded, spot, out)
    with tx.conn.begin_nested():
        n = _update(tx, wt, t, loaded, spot, sum(back.values()))
    if n != sum(back.values()):  # the UPDATE's WHERE is the very join that counted them
        raise VerificationFailed(f"{wt.name}: {sum(back.values()) - n} row(s) did not return; rolled back")
    result.moves.setdefault(wt.name, Counter()).update(back)
    return n


def _update(tx: Locked, wt: WorkspaceTable, t: TableClause, loaded: TableClause, where: Any, expected: int) -> int:
    """Set every workspace column of the ``expected`` matched rows to its journaled value; a unique index
    refusing it means the original workspace holds another row with the same key (a conflict)."""
    values = {c: loaded.c[f"before_{i}"] for i, c in enumerate(wt.workspace_columns)}
    try:
        return tx.dialect.update_from(tx.conn, t, where, values, expected_rows=expected)
    except DBAPIError as exc:
        if tx.dialect.is_duplicate_key(exc):
            raise _conflicts_under_lock(f"{wt.name}: the original workspace holds another row with a key") from None
        raise


def _not_replaced(wt: WorkspaceTable, t: TableClause, loaded: TableClause) -> Any:
    created = creation_column(wt)
    if not created:
        return literal(True)
    return or_(loaded.c.created.is_(None), t.c[created] == loaded.c.created)


def _spots(t: TableClause, loaded: TableClause, wt: WorkspaceTable, null_spots: bool) -> list[Any]:
    """Join conditions: a journaled row, found where the journal left it.  Plain equality on the workspace
    column (so the table's (workspace, key) index finds each row); rows left in a NULL workspace, rare, get a
    pass of their own, since IS NOT DISTINCT FROM would keep every index out."""
    keys = [t.c[c] == loaded.c[f"k_{i}"] for i, c in enumerate(key_columns(wt))]
    ws, now = t.c[wt.workspace_column], loaded.c.now_0
    spots = [and_(*keys, ws == now)]
    if null_spots:
        spots.append(and_(*keys, ws.is_(None), now.is_(None)))
    return spots


def _matched(
    conn: Connection, wt: WorkspaceTable, t: TableClause, loaded: TableClause, spot: Any
) -> tuple[dict[Any, int], int]:
    """One pass over the found rows: how many go back to each workspace, and how many were replaced (a row
    with the journaled key, created since the move: a new row took the name, moving it would move the wrong
    row)."""
    created = creation_column(wt)
    replaced = (
        func.sum(
            case(
                (and_(loaded.c.created.is_not(None), or_(t.c[created].is_(None), t.c[created] != loaded.c.created)), 1),
                else_=0,
            )
        )
        if created
        else literal(0)
    )
    rows = conn.execute(
        select(loaded.c.before_0, func.count(), replaced).select_from(loaded).join(t, spot).group_by(loaded.c.before_0)
    ).all()
    return {ws: int(n) for ws, n, _ in rows}, sum(int(r or 0) for _, _, r in rows)


def _load(
    conn: Connection, dialect: Dialect, wt: WorkspaceTable, rows: Iterator[_Row]
) -> tuple[TableClause, Counter, bool]:
    """A temporary table shaped like the journal's rows, with the source columns' own types (so values
    compare as the database compares them), filled with this run of rows.  Also returns how many of them go
    back to each workspace, and whether any sits in a NULL workspace."""
    t = queries.table_clause(wt)
    keys = key_columns(wt)
    created = creation_column(wt)
    shape = [
        *(t.c[c].label(f"k_{i}") for i, c in enumerate(keys)),
        *(t.c[c].label(f"now_{i}") for i, c in enumerate(wt.workspace_columns)),
        *(t.c[c].label(f"before_{i}") for i, c in enumerate(wt.workspace_columns)),
        *([t.c[created].label("created")] if created else []),
    ]
    empty = select(*shape).where(false()).compile(conn, compile_kwargs={"literal_binds": True})
    # Indexed on (key, now): whichever side the database drives the joins from, each row is found by index.
    indexed = [*(f"k_{i}" for i in range(len(keys))), "now_0"]
    dialect.create_temporary_table(conn, _LOADED, str(empty), indexed)
    loaded = table(_LOADED, *(column(c.name) for c in shape))
    with_created = created is not None
    destinations: Counter = Counter()
    null_spots = False
    for chunk in _chunks(rows, _LOAD_BATCH):
        dialect.insert_rows(
            conn,
            _LOADED,
            len(shape),
            [(*r.key, *r.now, *r.before, *((r.created,) if with_created else ())) for r in chunk],
        )
        destinations.update(r.before[0] for r in chunk)
        null_spots = null_spots or any(r.now[0] is None for r in chunk)
    return loaded, destinations, null_spots


def _refuse_code_enforced_duplicates(conn: Connection, wt: WorkspaceTable) -> None:
    """Keys only MLflow's code keeps unique have no index to refuse the UPDATE: test them after it."""
    for key in wt.unique_keys:
        if not key.enforced_by_database and conn.execute(queries.duplicates_within_workspace(wt, key)).first():
            raise _conflicts_under_lock(f"{wt.name}: two rows of one workspace share ({', '.join(key.columns)})")


def _journal_move_back(
    conn: Connection, wt: WorkspaceTable, t: TableClause, loaded: TableClause, joined: Any, out: JournalWriter
) -> None:
    """Record every row about to move back (from where it is to where it goes): the restore's own undo."""
    n_key, n_ws = len(key_columns(wt)), len(wt.workspace_columns)
    cols = [loaded.c[f"k_{i}"] for i in range(n_key)]
    cols += [loaded.c[f"now_{i}"] for i in range(n_ws)] + [loaded.c[f"before_{i}"] for i in range(n_ws)]
    cols.append(loaded.c.created if creation_column(wt) else None)
    stmt = select(*(c for c in cols if c is not None)).select_from(loaded).join(t, joined)
    out.table(wt)
    for record in conn.execute(stmt.execution_options(stream_results=True, yield_per=_LOAD_BATCH)):
        values = list(record)
        created = values[n_key + 2 * n_ws] if creation_column(wt) else None
        out.row(wt.name, values[:n_key], values[n_key : n_key + n_ws], values[n_key + n_ws : n_key + 2 * n_ws], created)
