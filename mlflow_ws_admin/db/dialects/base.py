"""The generic ``Dialect``: what every backend does unless its subclass says otherwise, and the constants the
transaction core and the subclasses share."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Select
    from sqlalchemy.engine import Engine
    from sqlalchemy.sql import TableClause

    from mlflow_ws_admin.db.schema import ForeignKey
    from mlflow_ws_admin.db.target import Target

#: Connection execution option set by the transaction core: the transaction it begins must hold the write lock
#: (SQLite begins it with BEGIN IMMEDIATE; the servers lock tables explicitly).
WRITE_LOCK_OPTION = "mwa_write_lock"
#: Server connections fail within this many seconds instead of retrying for minutes.
CONNECT_TIMEOUT_S = 10
#: How long a just-closed connection may stay listed as another session before it counts.
SESSION_SETTLE_S = 1.0

#: What a driver error means, as far as the tool's messages and exit codes care.
ErrorKind = str  # "lock_timeout" | "privilege" | "read_only" | "duplicate" | "not_a_database" | "other"


class Dialect:
    """The generic case; subclasses override only what their database does differently."""

    name: ClassVar[str] = ""
    #: Enforced ON UPDATE CASCADE FKs move child rows along with their parents on our connections.
    cascades_on_update: ClassVar[bool] = True
    #: An ON UPDATE CASCADE moves child rows at least as fast as an UPDATE of the child would (else
    #: ``cheaper_suspended`` picks the FKs to suspend instead).
    cascades_are_cheapest: ClassVar[bool] = True
    #: Another session may read the tables while apply holds its locks (so checks can read beside the lock).
    other_sessions_read_locked_tables: ClassVar[bool] = True
    #: Conflict pre-checks group by hashes of the key (cheaper temporary tables) instead of the key itself.
    hashed_conflict_prefilter: ClassVar[bool] = False
    #: Streamed aggregations are cheaper ordered: the database then finishes the aggregation before the first row
    #: (inside one call that releases the GIL) instead of piece by piece across the fetches.
    order_streamed_aggregates: ClassVar[bool] = False
    #: Driver error codes (SQLSTATE or numeric) by what they mean.
    error_codes: ClassVar[Mapping[ErrorKind, frozenset[Any]]] = {}

    # --- connecting -----------------------------------------------------------------------------------------

    def create_engine(self, target: Target, *, read_only: bool, busy_timeout_s: float) -> Engine:
        """An engine for one short-lived session; read_only makes the database itself refuse writes."""
        from sqlalchemy import create_engine, event

        engine = create_engine(target.url, connect_args=self.connect_args(read_only=read_only))
        event.listen(engine, "connect", self.tune_session)
        return engine

    def connect_args(self, *, read_only: bool) -> dict[str, Any]:
        return {}

    def tune_session(self, dbapi_conn: Any, _record: Any) -> None:
        """Session settings run on every new connection."""

    # --- errors ---------------------------------------------------------------------------------------------

    def error_code(self, exc: BaseException) -> Any:
        return None

    def classify(self, exc: BaseException) -> ErrorKind:
        code = self.error_code(exc)
        for kind, codes in self.error_codes.items():
            if code is not None and code in codes:
                return kind
        return "other"

    def is_duplicate_key(self, exc: BaseException) -> bool:
        """The database refused a write because a unique key (or a cascade into one) would be duplicated."""
        return self.classify(exc) == "duplicate"

    # --- identifiers ----------------------------------------------------------------------------------------

    @staticmethod
    def quote(conn: Connection, name: str) -> str:
        return conn.dialect.identifier_preparer.quote(name)

    # --- locks and privileges -------------------------------------------------------------------------------

    def lock_workspace_tables(
        self, conn: Connection, tables: Sequence[str], timeout_s: float, read_tables: Sequence[str] = ()
    ) -> None:
        """Keep other writers out of these tables (and of ``read_tables``, which the body only reads) until the
        transaction ends."""

    def release_locks(self, conn: Connection) -> None:
        """Locks end with the transaction."""

    def missing_privileges(
        self, conn: Connection, updated: Mapping[str, str], altered: Sequence[str]
    ) -> list[tuple[str, str]]:
        """(privilege, table) pairs this user lacks to update ``updated`` and re-create FKs of ``altered``."""
        return []

    def describe_lock_holders(self, conn: Connection, tables: Sequence[str]) -> str | None:
        """Who holds locks on these tables, without their statement text; None when unknown."""
        return None

    def other_sessions(self, conn: Connection) -> list[str] | None:
        """The other sessions connected to this database (application, user, host, state; never their
        statements), or None when the database cannot tell.

        A client that has just disconnected (this tool's own planning connection, a test's) stays listed
        until its server process exits, a few milliseconds later: only sessions still there after a short
        settle count, so a closing connection never blocks a run while a tracking server always does."""
        listed = self.list_sessions(conn)
        if listed is None:
            return None
        deadline = time.monotonic() + SESSION_SETTLE_S
        while listed and time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.list_sessions(conn) or {}
            # the latest description (its state may have changed), for the sessions still there
            listed = {session: now[session] for session in listed if session in now}
        return list(listed.values())

    def list_sessions(self, conn: Connection) -> dict[Any, str] | None:
        """One look at the other sessions, by session id (``other_sessions`` settles it); None when the
        database cannot tell."""
        return None

    # --- foreign keys ---------------------------------------------------------------------------------------

    def suspend_foreign_keys(self, conn: Connection, fks: Sequence[ForeignKey]) -> bool:
        """Stop ``fks`` from refusing the move; returns whether the other FKs still cascade."""
        return self.cascades_on_update

    def restore_foreign_keys(self, conn: Connection, fks: Sequence[ForeignKey]) -> None:
        """Put back what ``suspend_foreign_keys`` suspended, proving every suspended FK still resolves."""

    def tables_with_triggers(self, conn: Connection) -> set[str] | None:
        """The tables that have a trigger of their own (not a foreign key's), which could change what an UPDATE
        wrote; None when the database cannot tell."""
        return None

    def cheaper_suspended(self, conn: Connection, cascading: Sequence[tuple[ForeignKey, int]]) -> list[ForeignKey]:
        """Of these cascading FKs, each with the child rows a move would cascade through it, the ones whose child
        rows move faster on their own (the FK suspended, one set-based UPDATE of the child, the FK re-checked)
        than through the cascade (only asked where ``cascades_are_cheapest`` is False)."""
        return []

    # --- secondary indexes ------------------------------------------------------------------------------------

    def suspend_indexes(self, conn: Connection, table: str, columns: Sequence[str], moving: int) -> tuple[Any, ...]:
        """Drop the secondary indexes on ``columns`` of ``table`` that cost less to rebuild after a move of
        ``moving`` rows than to update row by row during it; ``restore_indexes`` puts them back before COMMIT.
        Never a unique index: those refuse the collisions apply relies on them to find."""
        return ()

    def restore_indexes(self, conn: Connection, suspended: Sequence[Any]) -> None:
        """Re-create exactly what ``suspend_indexes`` dropped."""

    # --- reading ---------------------------------------------------------------------------------------------

    def stream_rows(self, conn: Connection, stmt: Select, batch: int) -> Iterator[Sequence[Any]]:
        """A large read's rows, streamed from a server-side cursor ``batch`` at a time.  Statement options, not
        connection options: those would stay on the connection (apply's UPDATEs)."""
        yield from conn.execute(stmt.execution_options(stream_results=True, yield_per=batch))

    # --- scratch tables ------------------------------------------------------------------------------------

    def create_temporary_table(self, conn: Connection, name: str, select_sql: str, index: Sequence[str]) -> None:
        """A session-private table shaped (and typed) like ``select_sql``'s result, indexed on ``index``."""
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} AS {select_sql}")
        conn.exec_driver_sql(f"CREATE INDEX {name}_idx ON {name} ({', '.join(index)})")

    @contextmanager
    def index_joins(self, conn: Connection) -> Iterator[None]:
        """Joins of a loaded temporary table to a workspace table by its key: let the database look each row
        up by index (the default everywhere but MariaDB as this tool tunes it)."""
        yield

    def insert_rows(self, conn: Connection, table: str, width: int, rows: Sequence[tuple[Any, ...]]) -> None:
        """Many positional rows in one go, straight to the driver: Core's per-row dicts cost more than the
        database's work for a bulk load."""
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(f"INSERT INTO {table} VALUES ({', '.join([mark] * width)})", list(rows))

    def bulk_insert(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Copy rows into a real table (``db import-database``): one multi-row executemany (sqlite3 runs it in C,
        PyMySQL rewrites it into multi-row INSERTs).  Values are the driver's own types."""
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        names = ", ".join(self.quote(conn, c) for c in columns)
        sql = f"INSERT INTO {self.quote(conn, table)} ({names}) VALUES ({', '.join([mark] * len(columns))})"
        conn.exec_driver_sql(sql, list(rows))

    def bulk_load(
        self, conn: Connection, table: str, columns: Sequence[str], batches: Iterable[Sequence[tuple[Any, ...]]]
    ) -> None:
        """Every batch of ``batches`` (pulled as it goes: reading them may read another database) into a table."""
        for rows in batches:
            self.bulk_insert(conn, table, columns, rows)

    def advance_id_allocator(self, conn: Connection, table: str, column: str) -> None:
        """After ids were inserted explicitly: make the database's next id follow them.  SQLite and MySQL move
        their counters past an explicit id themselves."""

    def drop_temporary_table(self, conn: Connection, name: str) -> None:
        conn.exec_driver_sql(f"DROP TABLE {self.quote(conn, name)}")

    def update_from(
        self,
        conn: Connection,
        target: TableClause,
        match: ColumnElement[bool],
        values: Mapping[str, ColumnElement],
        *,
        expected_rows: int,
    ) -> int:
        """UPDATE the rows of ``target`` that ``match`` pairs with a row of another table, setting each column
        of ``values`` to that row's expression; returns the rows updated.  ``expected_rows``: how many should
        be (a hint for the statement's shape)."""
        return conn.execute(target.update().where(match).values(dict(values))).rowcount

    # --- comparing keys -----------------------------------------------------------------------------------

    def collation_keys(self, conn: Connection, t: TableClause, columns: Sequence[str]) -> list[ColumnElement] | None:
        """Expressions equal exactly where the unique index finds these columns' values equal, for a read
        that groups rows in Python; None where the values themselves are (byte-wise comparison)."""
        return None

    def name_weights(self, conn: Connection, t: TableClause, column: str, values: Sequence[str]) -> list[Any]:
        """``collation_keys``' key of each value as if stored in ``column``, for a dialect that has them."""
        raise NotImplementedError(f"{self.name} compares key values as Python does: it has no collation keys")

    def ascii_names_fold(self, conn: Connection, t: TableClause, column: str) -> bool:
        """Whether printable ASCII values of ``column`` are equal exactly when the renames' name fold says so."""
        return True

    # --- digests --------------------------------------------------------------------------------------------

    def row_hash_sum(self, columns: Sequence[ColumnElement]) -> ColumnElement | None:
        """An order-free digest of a row set computed in SQL, or None when the caller must hash in Python."""
        return None
