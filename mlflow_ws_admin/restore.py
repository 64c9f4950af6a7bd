"""``db restore-workspaces``: move journaled rows back to their original workspaces, in one transaction.

The journal is read twice, never held: once to refuse it unless complete and written for this database
(``journal.check_journal``), once to restore.  Rows are handled in batches per table, in the journal's order
(parents first, as apply wrote them).  Each batch is first checked:

- **missing**: the row is no longer where the journal left it (deleted or moved since); it is skipped;
- **replaced**: a row holds the journaled key, but its creation time differs — a new row took the name in the
  meantime, so moving it would move the wrong row (a conflict);
- **occupied**: the original workspace now holds another row with the same per-workspace key (a conflict).

Any conflict rolls everything back.  Otherwise the pruned catalog rows are re-created, the rows move back with
workspace FKs suspended (so nothing cascades twice), the FKs are restored and verified, and the restore's own
journal (``--journal OUT``) is sealed before COMMIT: restoring that journal undoes the restore.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, select, tuple_
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from mlflow_ws_admin import dialects, queries
from mlflow_ws_admin.connect import WRITE_LOCK_OPTION
from mlflow_ws_admin.errors import VerificationFailed
from mlflow_ws_admin.failures import translate
from mlflow_ws_admin.journal import JournalWriter, creation_column, key_columns, read_records
from mlflow_ws_admin.schema import UniqueKey, WorkspaceSchema, WorkspaceTable

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
    applied: bool = False

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.moves.values())

    @property
    def nothing_to_do(self) -> bool:
        return not self.total and not self.workspaces_recreated and not self.catalog_deleted


@dataclass(frozen=True)
class _Row:
    key: tuple[Any, ...]
    before: tuple[Any, ...]  # workspace values to restore (journal "from")
    now: tuple[Any, ...]  # workspace values the journal left ("to")
    created: Any


def restore_journal(
    engine: Engine,
    schema: WorkspaceSchema,
    journal_path: str,
    *,
    dry_run: bool,
    out: JournalWriter | None = None,
    lock_timeout_s: float = 30.0,
    max_conflicts: int | None = None,
) -> RestoreResult:
    """Check (and unless dry_run, apply) a journal that ``check_journal`` accepted."""
    try:
        return _restore(engine, schema, journal_path, dry_run, out, lock_timeout_s, max_conflicts)
    except SQLAlchemyError as exc:
        raise translate(exc, doing="restoring (rolled back: nothing was restored)") from None


def _restore(
    engine: Engine,
    schema: WorkspaceSchema,
    journal_path: str,
    dry_run: bool,
    out: JournalWriter | None,
    lock_timeout_s: float,
    max_conflicts: int | None,
) -> RestoreResult:
    ops = dialects.for_backend(schema.dialect)
    result = RestoreResult(dry_run=dry_run, conflicts=[])
    fks = [fk for wt in schema.tables for fk in wt.parent_keys]  # all of them: nothing may cascade twice
    write = not dry_run
    conn_opts = {WRITE_LOCK_OPTION: True} if write else {}

    def conflict(c: RestoreConflict) -> None:
        result.conflict_count += 1
        if max_conflicts is None or len(result.conflicts) < max_conflicts:
            result.conflicts.append(c)

    with engine.connect().execution_options(**conn_opts) as conn:
        try:
            trans = conn.begin()
            if write:
                ops.lock_workspace_tables(
                    conn, [t.name for t in schema.tables] + [schema.catalog.table], lock_timeout_s
                )
            deleted_rows, inserted_rows = _catalog_records(journal_path)
            _recreate_catalog(conn, schema, deleted_rows, result, conflict, out, write)
            if write:
                ops.suspend_foreign_keys(conn, fks)
            for wt, rows in _batches(journal_path, schema):
                _restore_batch(conn, wt, rows, result, conflict, out, write and not result.conflict_count)
            _delete_catalog(conn, schema, inserted_rows, result, out, write)
            if write and not result.conflict_count:
                ops.restore_foreign_keys(conn, fks)
                if out:
                    out.seal()
                trans.commit()
                result.applied = True
            else:
                trans.rollback()
        except BaseException:
            if out:
                out.abandon()
            raise
        finally:
            if write:
                ops.release_locks(conn)
    if out:
        if result.applied:
            out.complete()
        else:
            out.abandon()
    return result


# --- reading the journal -----------------------------------------------------------------------------------


def _catalog_records(path: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Catalog rows are few (one per workspace): the only records held in memory."""
    deleted, inserted = [], []
    for record in read_records(path):
        if record.get("type") == "catalog_deleted":
            deleted.append(record["row"])
        elif record.get("type") == "catalog_inserted":
            inserted.append(record["row"])
    return deleted, inserted


def _batches(path: str, schema: WorkspaceSchema) -> Iterator[tuple[WorkspaceTable, list[_Row]]]:
    """Row records grouped into batches of one table, in journal order."""
    current: WorkspaceTable | None = None
    batch: list[_Row] = []
    for record in read_records(path):
        if record.get("type") != "row":
            continue
        if current is None or record["table"] != current.name or len(batch) >= BATCH:
            if batch and current is not None:
                yield current, batch
            current, batch = _table(schema, record["table"]), []
        batch.append(_Row(tuple(record["key"]), tuple(record["from"]), tuple(record["to"]), record.get("created")))
    if batch and current is not None:
        yield current, batch


def _table(schema: WorkspaceSchema, name: str) -> WorkspaceTable:
    try:
        return schema.table(name)
    except KeyError:
        raise VerificationFailed(f"the journal names table {name}, which is no longer workspace-scoped") from None


# --- catalog ---------------------------------------------------------------------------------------------


def _recreate_catalog(
    conn: Connection,
    schema: WorkspaceSchema,
    rows: list[dict[str, Any]],
    result: RestoreResult,
    conflict: Callable[[RestoreConflict], None],
    out: JournalWriter | None,
    write: bool,
) -> None:
    """Re-insert pruned catalog rows; an existing row with the same name must be identical."""
    catalog = queries.catalog_table(schema.catalog)
    name_col = schema.catalog.name_column
    for row in rows:
        name = row[name_col]
        existing = _catalog_row(conn, schema, name)
        if existing is None:
            if write:
                conn.execute(catalog.insert().values(row))
                if out:
                    out.catalog_inserted(row)
            result.workspaces_recreated.append(name)
        elif {k: _norm(v) for k, v in existing.items()} != {k: _norm(v) for k, v in row.items()}:
            conflict(
                RestoreConflict(
                    schema.catalog.table,
                    CATALOG,
                    ((name_col, name),),
                    name,
                    "the workspace exists again with different settings",
                )
            )


def _delete_catalog(
    conn: Connection,
    schema: WorkspaceSchema,
    rows: list[dict[str, Any]],
    result: RestoreResult,
    out: JournalWriter | None,
    write: bool,
) -> None:
    """Remove catalog rows the journaled run created (the `default` row apply adds when it was missing)."""
    catalog = queries.catalog_table(schema.catalog)
    name_col = schema.catalog.name_column
    for row in rows:
        existing = _catalog_row(conn, schema, row[name_col])
        if existing is None:
            continue
        if write and not result.conflict_count:
            if out:
                out.catalog_deleted(dict(existing))
            conn.execute(catalog.delete().where(catalog.c[name_col] == row[name_col]))
        result.catalog_deleted.append(row[name_col])


def _catalog_row(conn: Connection, schema: WorkspaceSchema, name: Any) -> Mapping[str, Any] | None:
    """The whole catalog row of one workspace, or None."""
    catalog = queries.catalog_table(schema.catalog)
    return conn.execute(catalog.select().where(catalog.c[schema.catalog.name_column] == name)).mappings().first()


def _norm(value: Any) -> Any:
    return None if value is None else str(value)


# --- rows ------------------------------------------------------------------------------------------------


def _restore_batch(
    conn: Connection,
    wt: WorkspaceTable,
    rows: list[_Row],
    result: RestoreResult,
    conflict: Callable[[RestoreConflict], None],
    out: JournalWriter | None,
    write: bool,
) -> None:
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
    if write and present and not result.conflict_count:
        _move_back(conn, wt, keys, present, out)


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
    without_ws = [r.key for r in rows if r.now[0] is None]
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


def _move_back(
    conn: Connection, wt: WorkspaceTable, keys: list[str], rows: list[_Row], out: JournalWriter | None
) -> None:
    """One executemany UPDATE per NULL pattern: WHERE key = :k AND workspace = :now, SET workspaces = :before."""
    t = queries.table_clause(wt)
    ws = wt.workspace_column
    setters = {c: bindparam(f"b_{i}") for i, c in enumerate(wt.workspace_columns)}
    key_match = [t.c[c] == bindparam(f"k_{i}") for i, c in enumerate(keys)]
    for null_ws in (False, True):
        group = [r for r in rows if (r.now[0] is None) == null_ws]
        if not group:
            continue
        ws_match = t.c[ws].is_(None) if null_ws else t.c[ws] == bindparam("n_ws")
        stmt = t.update().where(*key_match, ws_match).values(setters)
        params = [
            {
                **{f"k_{i}": v for i, v in enumerate(r.key)},
                **{f"b_{i}": v for i, v in enumerate(r.before)},
                **({} if null_ws else {"n_ws": r.now[0]}),
            }
            for r in group
        ]
        conn.execute(stmt, params)
    if out:
        out.table(wt)
        for r in rows:
            out.row(wt.name, list(r.key), list(r.now), list(r.before), r.created)
    _verify_moved(conn, wt, keys, rows)


def _verify_moved(conn: Connection, wt: WorkspaceTable, keys: list[str], rows: list[_Row]) -> None:
    """Every row of the batch must now sit in its original workspace."""
    back = _current_rows(conn, wt, keys, None, [_Row(r.key, r.now, r.before, r.created) for r in rows])
    if len(back) != len(rows):
        raise VerificationFailed(
            f"{wt.name}: {len(rows) - len(back)} row(s) did not return to their workspace; rolled back"
        )
