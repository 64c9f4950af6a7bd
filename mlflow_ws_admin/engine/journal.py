"""The move journal: JSON Lines (gzip when the name ends in ``.gz``) recording every row a run moved.

Records, one JSON object per line, in this order:

- ``header``: format, operation (``migrate`` | ``restore``), database identity (no password), schema signature;
- per table, a ``table`` record (key and workspace column names) followed by its ``row`` records:
  ``{"type": "row", "table", "key": [...], "from": [...], "to": [...], "created": v}`` — the primary key
  without workspace columns, every workspace column before (``from``) and after (``to``) the move, and the
  row's creation time when the table has one;
- ``catalog_deleted`` / ``catalog_inserted``: full catalog rows the run deleted (pruned) or created;
- ``column_set``: a non-workspace column the run changed (``move-resources --artifact-policy retarget``:
  ``artifact_location``; ``--rename-conflicts``: a renamed name, in the renamed row and every row that stores it),
  ``{"table", "key", "column", "from", "to"}`` plus ``workspace`` for a renamed name (the key is the row's key
  after the change, which is unique only within that workspace);
- ``artifact_move``: one experiment's artifact objects copied for ``--artifact-policy relocate``:
  ``{"experiment_id", "from", "to", "source", "target", "objects", "bytes"}`` — the stored URI prefix before and
  after (every stored URI under ``from`` was rewritten to ``to``) and where the objects were and are; restore
  copies them back and rewrites the prefix back;
- ``inserted``: a row ``db import-database`` inserted, ``{"type": "inserted", "table", "key": [...]}`` (its primary
  key in TARGET, after the remap; the ``table`` record before it names the key columns); undone by deleting it;
- ``sealed``: written and fsynced inside the transaction, right before COMMIT, with the record counts;
- ``complete``: written and fsynced after COMMIT returned.

A journal without ``complete`` is visibly incomplete (the run crashed or its commit failed) and restore refuses
it.  A run that rolls back before sealing deletes its journal: nothing happened.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import case, literal, select
from sqlalchemy.engine import Connection

from mlflow_ws_admin import __version__
from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.errors import UsageError, WsAdminError
from mlflow_ws_admin.db.schema import WorkspaceSchema, WorkspaceTable
from mlflow_ws_admin.engine import queries
from mlflow_ws_admin.engine.move import MIGRATE, Move

JOURNAL_FORMAT = "mlflow-ws-admin/journal"
JOURNAL_VERSION = 1
_STREAM_BATCH = 5000


class JournalRefused(UsageError):
    """The journal cannot be used: unreadable, incomplete, or written for another database (exit 2)."""


class JournalError(WsAdminError):
    """Writing the journal failed; the transaction is rolled back (exit 3)."""


def _json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":")) + "\n"


def key_columns(wt: WorkspaceTable) -> list[str]:
    """The primary key minus workspace columns: with the workspace, it finds the row after the move."""
    return [c for c in wt.primary_key if c not in wt.workspace_columns]


def creation_column(wt: WorkspaceTable) -> str | None:
    return next((c for c in mlflow_facts.CREATION_COLUMNS if wt.has_column(c)), None)


def header(operation: str, database: Mapping[str, Any], signature: str) -> dict[str, Any]:
    return {
        "type": "header",
        "format": JOURNAL_FORMAT,
        "version": JOURNAL_VERSION,
        "operation": operation,
        "tool_version": __version__,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "database": dict(database),
        "schema_signature": signature,
    }


def _open_text(path: Path, mode: str) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


class JournalWriter:
    """Appends records; never overwrites an existing file (it may be the only way back)."""

    def __init__(self, path: str | Path, head: Mapping[str, Any]) -> None:
        self.path = Path(path)
        try:
            self._raw = open(self.path, "xb")  # noqa: SIM115 - closed in complete()/abandon()
        except FileExistsError:
            raise UsageError(f"journal file {self.path} already exists; refusing to overwrite it") from None
        except OSError as exc:
            raise UsageError(f"cannot create journal file {self.path}: {exc.strerror or exc}") from None
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb") if self.path.name.endswith(".gz") else None
        self._out: IO[bytes] = self._gzip or self._raw
        self.rows = 0
        self.catalog_deleted_rows = 0
        self.catalog_inserted_rows = 0
        self.column_sets = 0
        self.artifact_moves = 0
        self.inserted_rows = 0
        self.sealed = False
        self._tables: set[str] = set()
        self.write(head)

    def write(self, record: Mapping[str, Any]) -> None:
        try:
            self._out.write(_json(record).encode("utf-8"))
        except OSError as exc:
            raise JournalError(f"writing the journal {self.path} failed: {exc.strerror or exc}") from None

    def table(self, wt: WorkspaceTable) -> None:
        """Announce a table once, before its first row."""
        if wt.name not in self._tables:
            self._tables.add(wt.name)
            self.write(
                {
                    "type": "table",
                    "table": wt.name,
                    "key_columns": key_columns(wt),
                    "workspace_columns": list(wt.workspace_columns),
                    "created_column": creation_column(wt),
                }
            )

    def row(self, table: str, key: list[Any], before: list[Any], after: list[Any], created: Any) -> None:
        self.rows += 1
        self.write({"type": "row", "table": table, "key": key, "from": before, "to": after, "created": created})

    def table_keys(self, table: str, key_columns: list[str]) -> None:
        """Announce a table of inserted rows once, before its first ``inserted`` record."""
        if table not in self._tables:
            self._tables.add(table)
            self.write({"type": "table", "table": table, "key_columns": key_columns})

    def inserted(self, table: str, keys: list[list[Any]]) -> None:
        """Rows an import inserted, by their primary keys."""
        self.inserted_rows += len(keys)
        try:
            self._out.write(
                "".join(_json({"type": "inserted", "table": table, "key": k}) for k in keys).encode("utf-8")
            )
        except OSError as exc:
            raise JournalError(f"writing the journal {self.path} failed: {exc.strerror or exc}") from None

    def column_set(
        self, table: str, key: list[Any], column: str, before: Any, after: Any, *, workspace: Any = None
    ) -> None:
        """``workspace``: where restore finds the row once the rows are back (a renamed name is unique only per
        workspace); omitted for a key that is unique on its own."""
        self.column_sets += 1
        record = {"type": "column_set", "table": table, "key": key, "column": column, "from": before, "to": after}
        if workspace is not None:
            record["workspace"] = workspace
        self.write(record)

    def artifact_move(self, record: Mapping[str, Any]) -> None:
        self.artifact_moves += 1
        self.write({"type": "artifact_move", **record})

    def catalog_deleted(self, row: Mapping[str, Any]) -> None:
        self.catalog_deleted_rows += 1
        self.write({"type": "catalog_deleted", "row": dict(row)})

    def catalog_inserted(self, row: Mapping[str, Any]) -> None:
        self.catalog_inserted_rows += 1
        self.write({"type": "catalog_inserted", "row": dict(row)})

    def sync(self) -> None:
        """Everything written so far on disk now (an import's artifact copies are journaled before they start)."""
        self._sync()

    def _sync(self) -> None:
        try:
            if self._gzip is not None:
                self._gzip.flush(zlib.Z_SYNC_FLUSH)  # readable up to here even if the process dies now
            self._raw.flush()
            os.fsync(self._raw.fileno())
        except OSError as exc:
            raise JournalError(f"syncing the journal {self.path} failed: {exc.strerror or exc}") from None

    def seal(self) -> None:
        """Called inside the transaction right before COMMIT: everything is on disk before the data changes."""
        self.write(
            {
                "type": "sealed",
                "rows": self.rows,
                "catalog_deleted": self.catalog_deleted_rows,
                "catalog_inserted": self.catalog_inserted_rows,
                "column_sets": self.column_sets,
                "artifact_moves": self.artifact_moves,
                "inserted": self.inserted_rows,
            }
        )
        self._sync()
        self.sealed = True

    def complete(self) -> None:
        """Called after COMMIT returned."""
        self.write({"type": "complete", "committed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
        self._sync()
        self._close()

    def abandon(self) -> None:
        """The transaction failed.  Before the seal nothing was committed, so the journal goes; after it the
        commit's outcome is unknown, so the file stays, visibly incomplete."""
        self._close()
        if not self.sealed:
            self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._gzip is not None:
            self._gzip.close()
        self._raw.close()


# --- what apply writes -----------------------------------------------------------------------------------


def record_moves(conn: Connection, schema: WorkspaceSchema, journal: JournalWriter, move: Move = MIGRATE) -> None:
    """Stream every row the move will touch, with its workspace values before and after, into the journal.
    Runs inside apply's transaction, before the UPDATEs; ``to`` uses the very predicate the UPDATE uses."""
    for wt in schema.tables:
        if not move.moves_table(wt.name):
            continue
        t = queries.table_clause(wt)
        keys = key_columns(wt)
        if not keys:
            raise JournalError(f"cannot journal {wt.name}: it has no primary key to find its rows by")
        created = creation_column(wt)
        after = [case((queries.moving(wt, c, move), literal(move.target)), else_=t.c[c]) for c in wt.workspace_columns]
        cols = [
            *(t.c[c] for c in keys),
            *(t.c[c] for c in wt.workspace_columns),
            *after,
            t.c[created] if created else literal(None),
        ]
        stmt = select(*cols).where(queries.rows_moving(wt, move))
        n_key, n_ws = len(keys), len(wt.workspace_columns)
        # Per statement: Connection.execution_options would switch streaming on for the UPDATEs too.
        result = conn.execute(stmt.execution_options(stream_results=True, yield_per=_STREAM_BATCH))
        for record in result:
            values = list(record)
            journal.table(wt)
            journal.row(
                wt.name,
                values[:n_key],
                values[n_key : n_key + n_ws],
                values[n_key + n_ws : n_key + 2 * n_ws],
                values[-1],
            )


# --- reading ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalSummary:
    header: dict[str, Any]
    rows: int
    #: the full catalog rows the run deleted (pruned) and created: few, one per workspace, so kept
    catalog_deleted: tuple[dict[str, Any], ...]
    catalog_inserted: tuple[dict[str, Any], ...]
    #: the ``column_set`` records: one per retargeted experiment, so kept
    column_sets: tuple[dict[str, Any], ...] = ()
    #: the ``artifact_move`` records (``--artifact-policy relocate``): one per experiment, so kept
    artifact_moves: tuple[dict[str, Any], ...] = ()
    #: rows an import inserted (``inserted`` records)
    inserted: int = 0


#: How every row record's line begins (``_json`` keeps the dict's order and no spaces): check_journal counts
#: these without parsing them; restore parses them when it reads the rows.
_ROW_LINE = '{"type":"row",'
#: How every ``inserted`` record's line begins: counted unparsed, like the rows.
INSERTED_LINE = '{"type":"inserted",'


def _lines(path: Path) -> Iterator[str]:
    """Every line; a truncated gzip stream or a torn last line ends the iteration as 'incomplete'."""
    try:
        with _open_text(path, "r") as f:
            for line in f:
                if not line.endswith("\n"):
                    raise JournalRefused(f"journal {path} is incomplete: its last line is torn; refusing it")
                yield line
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise JournalRefused(f"journal {path} is incomplete or corrupt ({exc}); refusing it") from None
    except UnicodeDecodeError:
        raise JournalRefused(f"journal {path} is not a text journal; refusing it") from None
    except FileNotFoundError:
        raise JournalRefused(f"journal file not found: {path}") from None
    except OSError as exc:
        raise JournalRefused(f"cannot read journal {path}: {exc.strerror or exc}") from None


def _parse(path: Path, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise JournalRefused(f"journal {path} is not JSON Lines (line error: {exc.msg}); refusing it") from None
    if not isinstance(record, dict):
        raise JournalRefused(f"journal {path} is malformed: a line is not a JSON object; refusing it")
    return record


#: Lines parsed per json.loads call: one call for a batch costs a fraction of one call per line.
_PARSE_BATCH = 2000


def _records(path: Path) -> Iterator[dict[str, Any]]:
    batch: list[str] = []
    for line in _lines(path):
        batch.append(line)
        if len(batch) >= _PARSE_BATCH:
            yield from _parse_batch(path, batch)
            batch = []
    yield from _parse_batch(path, batch)


def _parse_batch(path: Path, lines: list[str]) -> list[dict[str, Any]]:
    """The batch's records, parsed as one JSON array.  Anything but one object per line (a line holding two
    values parses as an array too) is parsed line by line instead, which names the fault."""
    try:
        records = json.loads("[" + ",".join(lines) + "]")
    except json.JSONDecodeError:
        records = None
    if records is None or len(records) != len(lines) or not all(type(r) is dict for r in records):
        return [_parse(path, line) for line in lines]
    return records


def check_journal(path: str | Path, identity: Mapping[str, Any], signature: str) -> JournalSummary:
    """Read the whole journal once (constant memory) and refuse it unless it is complete, consistent, and was
    written for this database and schema."""
    path = Path(path)
    lines = _lines(path)
    first = next(lines, None)
    head = _parse(path, first) if first is not None else None
    if not head or head.get("type") != "header" or head.get("format") != JOURNAL_FORMAT:
        raise JournalRefused(f"{path} is not an mlflow-ws-admin journal")
    if head.get("version") != JOURNAL_VERSION:
        raise JournalRefused(f"journal {path} has version {head.get('version')}; this tool reads {JOURNAL_VERSION}")
    counts = {"row": 0, "catalog_deleted": 0, "catalog_inserted": 0, "column_set": 0, "artifact_move": 0, "inserted": 0}
    kept: dict[str, list[dict[str, Any]]] = {
        "catalog_deleted": [],
        "catalog_inserted": [],
        "column_set": [],
        "artifact_move": [],
    }
    sealed: dict[str, Any] | None = None
    complete = False
    for line in lines:
        if line.startswith(_ROW_LINE):
            counts["row"] += 1  # parsed, and its shape checked, when restore reads the rows
            continue
        if line.startswith(INSERTED_LINE):
            counts["inserted"] += 1  # parsed when the undo reads them
            continue
        record = _parse(path, line)
        kind = record.get("type")
        if kind in counts:
            counts[kind] += 1
            _check_shape(path, kind, record)
            if kind in kept:
                kept[kind].append(record if kind in ("column_set", "artifact_move") else record["row"])
        elif kind == "sealed":
            sealed = record
        elif kind == "complete":
            complete = True
    if not complete or sealed is None:
        raise JournalRefused(
            f"journal {path} is incomplete (no completion mark: the run crashed or its commit failed); refusing it"
        )
    sealed_counts = (
        sealed.get("rows"),
        sealed.get("catalog_deleted"),
        sealed.get("catalog_inserted"),
        sealed.get("column_sets", 0),  # absent from journals written before move-resources
        sealed.get("artifact_moves", 0),  # absent from journals written before relocate
        sealed.get("inserted", 0),  # absent from journals written before import-database
    )
    if sealed_counts != tuple(counts.values()):
        raise JournalRefused(f"journal {path} is inconsistent: its record counts do not match its seal")
    theirs = (head.get("database") or {}).get("identity")
    if theirs != dict(identity):
        raise JournalRefused(f"journal {path} belongs to another database ({_describe(theirs)}); refusing it")
    if head.get("schema_signature") != signature:
        raise JournalRefused(f"journal {path} was written for a different schema (MLflow upgraded since?); refusing it")
    return JournalSummary(
        head,
        counts["row"],
        tuple(kept["catalog_deleted"]),
        tuple(kept["catalog_inserted"]),
        tuple(kept["column_set"]),
        tuple(kept["artifact_move"]),
        counts["inserted"],
    )


def _check_shape(path: Path, kind: str, record: Mapping[str, Any]) -> None:
    """A row needs its table, key and workspace lists; a catalog record its row: refuse anything else here,
    before restore reads the journal again."""
    if kind == "row":  # spelled out: this runs for every row restore reads
        ok = (
            isinstance(record.get("table"), str)
            and isinstance(record.get("key"), list)
            and isinstance(record.get("from"), list)
            and isinstance(record.get("to"), list)
        )
    elif kind == "column_set":
        ok = all(isinstance(record.get(k), str) for k in ("table", "column")) and isinstance(record.get("key"), list)
    elif kind == "artifact_move":
        ok = all(isinstance(record.get(k), str) for k in ("from", "to", "source", "target"))
    else:
        ok = isinstance(record.get("row"), dict)
    if not ok:
        raise JournalRefused(f"journal {path} is malformed: a {kind} record lacks its fields; refusing it")


def _describe(identity: Any) -> str:
    if not isinstance(identity, dict):
        return "unknown"
    if identity.get("path"):
        return f"sqlite {identity['path']}"
    return f"{identity.get('dialect')} {identity.get('host')}:{identity.get('port')}/{identity.get('database')}"


#: How every ``artifact_move`` record's line begins: the only lines ``artifact_move_records`` parses.
_ARTIFACT_MOVE_LINE = '{"type":"artifact_move",'


def artifact_move_records(path: str | Path, identity: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``artifact_move`` records of a journal written for this database, complete or not: a run killed
    after its COMMIT may not have marked the journal complete, and what it committed is read from the database
    (``db finish-relocation``), not from the journal.  A killed run's journal may also end torn (a half-written
    line, a gzip stream without its end): the records before the tear count, as everything they name is checked
    against the database and the stores again."""
    path = Path(path)
    lines = _lines(path)
    first = next(lines, None)
    head = _parse(path, first) if first is not None else None
    if not head or head.get("type") != "header" or head.get("format") != JOURNAL_FORMAT:
        raise JournalRefused(f"{path} is not an mlflow-ws-admin journal")
    theirs = (head.get("database") or {}).get("identity")
    if theirs != dict(identity):
        raise JournalRefused(f"journal {path} belongs to another database ({_describe(theirs)}); refusing it")
    found = []
    while True:
        try:
            line = next(lines, None)
        except JournalRefused:
            break  # the torn end of a killed run's journal
        if line is None:
            break
        if line.startswith(_ARTIFACT_MOVE_LINE):
            record = _parse(path, line)
            _check_shape(path, "artifact_move", record)
            found.append(record)
    return found


def journal_header(path: str | Path) -> dict[str, Any]:
    """The header of a journal (complete or not); its first line only (a killed run's journal may end torn)."""
    path = Path(path)
    first = next(_lines(path), None)
    head = _parse(path, first) if first is not None else None
    if not head or head.get("type") != "header" or head.get("format") != JOURNAL_FORMAT:
        raise JournalRefused(f"{path} is not an mlflow-ws-admin journal")
    return head


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records after the header (call ``check_journal`` first); row records have their shape checked."""
    path = Path(path)
    records = _records(path)
    next(records, None)
    for record in records:
        if record.get("type") == "row":
            _check_shape(path, "row", record)
        yield record


def inserted_tables(path: str | Path) -> list[str]:
    """The tables an import journal inserted into, in the order it inserted (parents first)."""
    prefix = '{"type":"table",'
    return [_parse(Path(path), line)["table"] for line in _lines(Path(path)) if line.startswith(prefix)]


def inserted_keys(path: str | Path, table: str) -> Iterator[list[Any]]:
    """The keys of one table's ``inserted`` records (call ``check_journal`` first); other lines go unparsed."""
    prefix = INSERTED_LINE + _json({"table": table})[1:-2] + ","
    path = Path(path)
    for line in _lines(path):
        if line.startswith(prefix):
            key = _parse(path, line).get("key")
            if not isinstance(key, list):
                raise JournalRefused(f"journal {path} is malformed: an inserted record lacks its key; refusing it")
            yield key
