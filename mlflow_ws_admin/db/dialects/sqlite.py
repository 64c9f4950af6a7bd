"""SQLite: one writer at a time, taken with BEGIN IMMEDIATE; foreign keys are not enforced."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Select, create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from mlflow_ws_admin.common.errors import DatabaseError
from mlflow_ws_admin.db.dialects.base import WRITE_LOCK_OPTION, Dialect, ErrorKind
from mlflow_ws_admin.db.sqlite_memstatus import untrack_memory

if TYPE_CHECKING:
    from mlflow_ws_admin.db.schema import ForeignKey
    from mlflow_ws_admin.db.target import Target

#: Apply's page cache (default 2 MB) holds at least this much, and at most the whole database file (below).
#: Dry runs keep the default, so their memory stays small.
SQLITE_APPLY_CACHE_KIB = 64 * 1024
#: ... but never more than this: a bigger database spills dirty pages to disk mid-transaction instead.
SQLITE_APPLY_CACHE_MAX_KIB = 2 * 1024 * 1024


def apply_cache_kib(path: Path) -> int:
    """Apply's page cache: room for every page of the database.  A transaction that dirties more pages than
    the cache holds writes them out mid-transaction and reads them back (a rename-apply that touches 83 MB
    ran its move 1.3x slower with 64 MB); a cache the size of the file keeps each page in memory once, and
    SQLite fills it only with pages actually read, so memory stays within the database's own size."""
    file_kib = path.stat().st_size // 1024
    return min(max(SQLITE_APPLY_CACHE_KIB, file_kib + file_kib // 4), SQLITE_APPLY_CACHE_MAX_KIB)


#: ANALYZE's tables: DROP INDEX deletes an index's rows from each that exists, so they are kept and put back.
STAT_TABLES = ("sqlite_stat1", "sqlite_stat3", "sqlite_stat4")


@dataclass(frozen=True)
class SuspendedIndex:
    """A secondary index dropped for the move, with what re-creates it exactly: its own CREATE INDEX
    statement, and its rows in ANALYZE's tables (table name, rows)."""

    name: str
    sql: str
    stats: tuple[tuple[str, tuple[tuple[Any, ...], ...]], ...]


class SQLiteDialect(Dialect):
    name = "sqlite"
    #: Our connections run with PRAGMA foreign_keys=OFF (SQLite's default), so nothing cascades and apply
    #: updates every workspace table explicitly.
    cascades_on_update = False
    #: Another connection may read while apply holds the write lock (until COMMIT needs it exclusively), and
    #: sees the database as it was when locked: apply's artifact check reads beside it.
    other_sessions_read_locked_tables = True
    #: Unordered, a GROUP BY's sort is merged lazily across the row fetches, each taking the GIL back while the
    #: artifact check's thread wants it: the 60k-collision JSON dry run took 1.05x the time (12 pairs).
    order_streamed_aggregates = True

    def create_engine(self, target: Target, *, read_only: bool, busy_timeout_s: float) -> Engine:
        path = target.sqlite_path
        assert path is not None
        if not path.exists():
            raise DatabaseError(f"SQLite database file not found: {path} (nothing was created)")
        if path.is_dir():
            raise DatabaseError(f"SQLite path is a directory, not a database file: {path}")
        # mode=ro / mode=rw: a mistyped path can never create an empty database.
        file_uri = f"file:{quote(str(path.resolve()))}?mode={'ro' if read_only else 'rw'}"
        untrack_memory()  # before the first connection opens (sqlite_memstatus)

        def connect() -> sqlite3.Connection:
            # isolation_level=None: we issue BEGIN ourselves, so apply can take BEGIN IMMEDIATE.
            conn = sqlite3.connect(
                file_uri, uri=True, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA foreign_keys = OFF")  # nothing cascades: apply updates every table itself
            if not read_only:
                conn.execute(f"PRAGMA cache_size = -{apply_cache_kib(path)}")
            return conn

        # NullPool: every connect() is a connection of its own, closed for real.  SQLAlchemy's default for this
        # database-less URL keeps one connection per thread and closes other threads' connections when it
        # fills up: fatal with the artifact check's reader thread.
        engine = create_engine("sqlite+pysqlite://", creator=connect, poolclass=NullPool)

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Reads take no lock; apply asks for the write lock up front (BEGIN IMMEDIATE) so no other writer
            # can slip in between its re-check and its commit.
            wants_lock = conn.get_execution_options().get(WRITE_LOCK_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if wants_lock and not read_only else "BEGIN")

        return engine

    def stream_rows(self, conn: Connection, stmt: Select, batch: int) -> Iterator[Sequence[Any]]:
        """A statement without parameters straight through the driver, its rows as sqlite3 returns them (the
        values SQLAlchemy would give: it converts no SQLite integer or text): SQLAlchemy's row objects cost
        the artifact check's 140k experiments ~0.07 s of the GIL, and the collision dry run 0.91-0.95x its wall time
        without them (16 pairs).  With parameters, SQLAlchemy binds them."""
        compiled = stmt.compile(dialect=conn.dialect)
        if compiled.params:
            yield from super().stream_rows(conn, stmt, batch)
            return
        cursor = conn.connection.driver_connection.execute(compiled.string)
        try:
            while rows := cursor.fetchmany(batch):
                yield from rows
        finally:
            cursor.close()

    def classify(self, exc: BaseException) -> ErrorKind:
        orig = getattr(exc, "orig", None) or exc
        text = str(orig).lower()
        if "database is locked" in text:
            return "lock_timeout"
        if "readonly database" in text:
            return "read_only"
        if "unique constraint failed" in text:
            return "duplicate"
        if "file is not a database" in text or "malformed" in text:
            return "not_a_database"
        return "other"

    def tables_with_triggers(self, conn: Connection) -> set[str]:
        return set(conn.exec_driver_sql("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'").scalars())

    def suspend_foreign_keys(self, conn: Connection, fks: Sequence[ForeignKey]) -> bool:
        """Foreign keys are off on our connections already.  Returns whether cascades still run: never."""
        return False

    #: An UPDATE of the workspace moves each row in every index on that column: a delete and an insert in the
    #: B-tree, 1.4-1.8 us of CPU a row and index here; CREATE INDEX rebuilds one from a sort in 0.3-0.5 us a row
    #: of the whole table (610k-row migration: experiments 287 -> 169 ms, model_version_tags 729 -> 553 ms, each
    #: with the rebuild).  Rebuilding pays from about a quarter of the table's rows; half leaves a margin.
    REBUILD_INDEX_FRACTION = 1 / 2
    #: Below this many rows the gain is less than the statements that find the indexes.
    REBUILD_INDEX_MIN_ROWS = 2000

    def suspend_indexes(
        self, conn: Connection, table: str, columns: Sequence[str], moving: int
    ) -> tuple[SuspendedIndex, ...]:
        """Drop the plain secondary indexes (CREATE INDEX: not unique, not partial, no expressions) that hold one
        of ``columns``, when the move changes at least ``REBUILD_INDEX_FRACTION`` of the table's rows.  DDL is
        part of the transaction: a rollback or a crash puts them back as they were.  A table with triggers keeps
        its indexes (a trigger's statements may need them for every row it fires on)."""
        if moving < self.REBUILD_INDEX_MIN_ROWS:
            return ()
        if conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)
        ).first():
            return ()
        wanted = {c.lower() for c in columns}  # SQLite's names are case-insensitive
        chosen = []
        for name, unique, origin, partial in conn.exec_driver_sql(
            'SELECT name, "unique", origin, partial FROM pragma_index_list(?) ORDER BY name', (table,)
        ).all():
            if unique or origin != "c" or partial:
                continue
            keys = conn.exec_driver_sql("SELECT cid, name FROM pragma_index_info(?)", (name,)).all()
            if any(cid < 0 for cid, _ in keys) or not any(str(col).lower() in wanted for _, col in keys):
                continue
            chosen.append(name)
        if not chosen:
            return ()
        rows = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {self.quote(conn, table)}").scalar_one()
        if moving < rows * self.REBUILD_INDEX_FRACTION:
            return ()
        stat_tables = [
            t for t in STAT_TABLES if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = ?", (t,)).first()
        ]
        suspended = []
        for name in chosen:
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,))
            stats = tuple(
                (t, tuple(tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {t} WHERE idx = ?", (name,))))
                for t in stat_tables
            )
            suspended.append(SuspendedIndex(name, sql.scalar_one(), stats))
            conn.exec_driver_sql(f"DROP INDEX {self.quote(conn, name)}")
        return tuple(suspended)

    def restore_indexes(self, conn: Connection, suspended: Sequence[SuspendedIndex]) -> None:
        """Each index from its own CREATE statement (one sorted pass over the table), then its statistics."""
        for index in suspended:
            conn.exec_driver_sql(index.sql)
            for table, rows in index.stats:
                if rows:
                    conn.exec_driver_sql(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", list(rows))
