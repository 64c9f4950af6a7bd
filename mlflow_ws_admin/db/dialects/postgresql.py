"""PostgreSQL: table locks with a lock_timeout, and transactional DDL for non-cascading workspace FKs."""

from __future__ import annotations

import datetime as dt
import math
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import BigInteger, ColumnElement, Text, cast, func, literal, text
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from mlflow_ws_admin.db.dialects.base import CONNECT_TIMEOUT_S, Dialect, ErrorKind

if TYPE_CHECKING:
    from mlflow_ws_admin.db.schema import ForeignKey


class PostgreSQLDialect(Dialect):
    name = "postgresql"
    #: SHARE ROW EXCLUSIVE lets other sessions read the locked tables (as committed): apply's artifact check
    #: reads beside the lock on a connection of its own.
    other_sessions_read_locked_tables = True
    #: Cascades fire a trigger per parent row: see ``cheaper_suspended``.
    cascades_are_cheapest = False
    error_codes: ClassVar[Mapping[ErrorKind, frozenset[Any]]] = {
        "lock_timeout": frozenset({"55P03"}),
        "privilege": frozenset({"42501"}),
        "read_only": frozenset({"25006"}),
        "duplicate": frozenset({"23505"}),
    }

    def connect_args(self, *, read_only: bool) -> dict[str, Any]:
        # cursor_tuple_fraction=1: our streamed reports are always read to the end, so plan for total time;
        # the default (0.1) picks nested loops over the conflict aggregates that take minutes at 60k groups.
        options = "-c application_name=mlflow-ws-admin -c cursor_tuple_fraction=1"
        if read_only:
            options += " -c default_transaction_read_only=on"
        return {"connect_timeout": CONNECT_TIMEOUT_S, "options": options}

    def error_code(self, exc: BaseException) -> Any:
        return getattr(getattr(exc, "orig", None) or exc, "pgcode", None)

    def lock_workspace_tables(
        self, conn: Connection, tables: Sequence[str], timeout_s: float, read_tables: Sequence[str] = ()
    ) -> None:
        """SHARE ROW EXCLUSIVE blocks concurrent INSERT/UPDATE/DELETE but not readers, until commit; SHARE (for
        the tables only read) blocks writers too, and needs only SELECT."""
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{max(1, int(timeout_s * 1000))}ms'")
        conn.exec_driver_sql(f"LOCK TABLE {', '.join(self.quote(conn, t) for t in tables)} IN SHARE ROW EXCLUSIVE MODE")
        if read_tables:
            conn.exec_driver_sql(f"LOCK TABLE {', '.join(self.quote(conn, t) for t in read_tables)} IN SHARE MODE")

    def missing_privileges(
        self, conn: Connection, updated: Mapping[str, str], altered: Sequence[str]
    ) -> list[tuple[str, str]]:
        """UPDATE on each table (LOCK ... SHARE ROW EXCLUSIVE needs it too) and ownership of the tables whose
        foreign keys are dropped and re-created, asked before locking so the answer names every table at once."""
        names = list(dict.fromkeys([*updated, *altered]))
        if not names:
            return []
        # One statement for every table (a statement each cost more than the answers); a table that cannot be
        # found has neither.
        allowed = {
            name: (may_update, owns)
            for name, may_update, owns in conn.execute(
                text(
                    "SELECT t.name, has_table_privilege(c.oid, 'UPDATE') IS TRUE, pg_has_role(c.relowner, 'USAGE') "
                    "IS TRUE FROM unnest(CAST(:names AS text[])) AS t(name) "
                    "LEFT JOIN pg_class c ON c.oid = to_regclass(quote_ident(t.name))"
                ),
                {"names": names},
            )
        }
        missing = [("UPDATE privilege", t) for t in updated if not allowed[t][0]]
        return missing + [("ownership (to re-create foreign keys)", t) for t in altered if not allowed[t][1]]

    def describe_lock_holders(self, conn: Connection, tables: Sequence[str]) -> str | None:
        """The other sessions holding locks on these tables, from pg_locks and pg_stat_activity.  Their query
        text is left out: it may carry data (secrets) of another application."""
        rows = conn.execute(
            text(
                "SELECT l.pid, a.usename, a.application_name, a.state, c.relname, l.mode,"
                " CAST(EXTRACT(EPOCH FROM now() - COALESCE(a.xact_start, a.query_start)) AS integer)"
                " FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.granted AND l.pid <> pg_backend_pid() AND c.relname = ANY(:names)"
                " AND pg_table_is_visible(c.oid) ORDER BY l.pid, c.relname"
            ),
            {"names": list(tables)},
        ).all()
        sessions: dict[int, tuple[str, list[str]]] = {}
        for pid, user, app, state, rel, mode, secs in rows:
            who = f"pid {pid} (user {user}, application {app or '-'!r}, {state or 'unknown'} for {secs or 0} s)"
            sessions.setdefault(pid, (who, []))[1].append(f"{rel} {mode}")
        if not sessions:
            return None
        return "; ".join(f"{who} holding {', '.join(locks)}" for who, locks in sessions.values())

    def list_sessions(self, conn: Connection) -> dict[Any, str]:
        # Inside a transaction pg_stat_activity is a snapshot taken at first use; a second look must see now.
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        rows = conn.execute(
            text(
                "SELECT pid, usename, application_name, client_addr, state FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                " ORDER BY pid"
            )
        ).all()
        return {
            pid: f"pid {pid} (application {app or '-'!r}, user {user}, host {addr or 'local'}, {state or 'unknown'})"
            for pid, user, app, addr, state in rows
        }

    def tables_with_triggers(self, conn: Connection) -> set[str]:
        """User triggers and rewrite rules (a foreign key's own triggers are internal; every table has a SELECT
        rule only if it is a view)."""
        return set(
            conn.exec_driver_sql(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind = 'r' AND ("
                " EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)"
                " OR EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = c.oid))"
            ).scalars()
        )

    def suspend_foreign_keys(self, conn: Connection, fks: Sequence[ForeignKey]) -> bool:
        """Drop the FKs that would block moving parent and child (NO ACTION on a workspace column), and the
        cascading ones ``cheaper_suspended`` chose.  DDL is transactional here, so a crash or rollback restores
        them.  Other FKs keep cascading."""
        for fk in fks:
            conn.exec_driver_sql(
                f"ALTER TABLE {self.quote(conn, fk.child)} DROP CONSTRAINT {self.quote(conn, fk.name)}"
            )
        return True

    #: A cascade moves each child row through a trigger fired per parent row (~14 us a row here); a set-based
    #: UPDATE of the child moves it in ~5 us, and re-adding the FK then validates each row of the child table in
    #: ~0.5 us (610k-row migration, 430k child rows: 6.0 s cascaded, 2.4 s suspended).  So suspending pays once
    #: the move cascades more than this fraction of the child's rows.
    SUSPEND_CASCADE_FRACTION = 1 / 16

    def cheaper_suspended(self, conn: Connection, cascading: Sequence[tuple[ForeignKey, int]]) -> list[ForeignKey]:
        """The cascading FKs whose child moves a large share of its rows, on the tables this user owns (only an
        owner may drop and re-create an FK; anyone else keeps the cascade)."""
        chosen = []
        for fk, moving in cascading:
            row = conn.execute(
                text(
                    "SELECT pg_has_role(relowner, 'USAGE'), reltuples FROM pg_class "
                    "WHERE oid = to_regclass(quote_ident(:t))"
                ),
                {"t": fk.child},
            ).first()
            if row is None or not row[0]:  # not this user's table, or not on its search path
                continue
            estimate = row[1]
            # reltuples is -1 until the table is first vacuumed or analyzed: then count it.
            rows = (
                estimate
                if estimate >= 0
                else conn.execute(text(f"SELECT COUNT(*) FROM {self.quote(conn, fk.child)}")).scalar_one()
            )
            if moving >= rows * self.SUSPEND_CASCADE_FRACTION:
                chosen.append(fk)
        return chosen

    def restore_foreign_keys(self, conn: Connection, fks: Sequence[ForeignKey]) -> None:
        """Re-create the dropped FKs exactly; PostgreSQL validates every row as it adds them."""
        for fk in fks:
            cols = ", ".join(self.quote(conn, c) for c in fk.child_columns)
            parent_cols = ", ".join(self.quote(conn, c) for c in fk.parent_columns)
            ddl = (
                f"ALTER TABLE {self.quote(conn, fk.child)} ADD CONSTRAINT {self.quote(conn, fk.name)} "
                f"FOREIGN KEY ({cols}) REFERENCES {self.quote(conn, fk.parent)} ({parent_cols})"
            )
            if fk.on_update:
                ddl += f" ON UPDATE {fk.on_update}"
            if fk.on_delete:
                ddl += f" ON DELETE {fk.on_delete}"
            if fk.deferrable:
                ddl += f" DEFERRABLE INITIALLY {fk.initially or 'IMMEDIATE'}"
            conn.exec_driver_sql(ddl)

    def insert_rows(self, conn: Connection, table: str, width: int, rows: Sequence[tuple[Any, ...]]) -> None:
        """psycopg2's executemany sends one statement per row; execute_values sends pages of many."""
        from psycopg2.extras import execute_values

        cursor = conn.connection.driver_connection.cursor()
        try:
            execute_values(cursor, f"INSERT INTO {table} VALUES %s", rows, page_size=len(rows) or 1)
        finally:
            cursor.close()

    def bulk_insert(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        self.bulk_load(conn, table, columns, [rows])

    def bulk_load(
        self, conn: Connection, table: str, columns: Sequence[str], batches: Iterable[Sequence[tuple[Any, ...]]]
    ) -> None:
        """One ``COPY ... FROM STDIN`` (text format) for every batch, the path pg_dump's output takes.  A thread
        pulls the batches (reading SOURCE) and formats them while the driver sends the previous ones: the
        driver releases the GIL while the server works, so both sides run at once, as in a shell pipe."""
        names = ", ".join(self.quote(conn, c) for c in columns)
        sql = f"COPY {self.quote(conn, table)} ({names}) FROM STDIN"
        driver_error = conn.dialect.loaded_dbapi.Error
        pipe = _CopyPipe(batches)
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.copy_expert(sql, pipe, size=1 << 20)
        except BaseException as exc:
            pipe.stop()
            if pipe.error is not None:
                raise pipe.error from None  # the reading side failed first: its error is the cause
            if isinstance(exc, driver_error):
                # The raw cursor's error, wrapped as SQLAlchemy would: the core translates those.
                raise DBAPIError.instance(sql, None, exc, driver_error) from None
            raise
        finally:
            cursor.close()
        pipe.stop()
        if pipe.error is not None:
            raise pipe.error

    def advance_id_allocator(self, conn: Connection, table: str, column: str) -> None:
        """Serial and identity columns draw from a sequence that explicit ids do not move: set it to the
        highest id, never back."""
        sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column}).scalar()
        if sequence is None:
            return
        conn.execute(
            text(
                f"SELECT setval(:s, GREATEST((SELECT MAX({self.quote(conn, column)}) FROM {self.quote(conn, table)}),"
                f" (SELECT last_value FROM {sequence})))"
            ),
            {"s": sequence},
        )

    def row_hash_sum(self, columns: Sequence[ColumnElement]) -> ColumnElement:
        """SUM over rows of 60 bits of md5(json_build_array(columns)): an order-free digest of the row set,
        computed by the server.  SUM(bigint) is numeric in PostgreSQL, so it cannot overflow."""
        digest = func.md5(cast(func.json_build_array(*columns), Text))
        bits = cast(cast(literal("x") + func.substr(digest, 1, 15), BIT(60)), BigInteger)
        return func.coalesce(func.sum(bits), 0)


#: COPY's text format: backslash escapes for the characters that delimit fields and rows.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _copy_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _copy_other(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\\\x" + bytes(value).hex()  # bytea's hex input, its backslash escaped for COPY
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, str):  # a str subclass
        return _copy_text(value)
    return str(value)


#: One dictionary lookup by exact type per value: the formatting runs for every value of a bulk load.
_COPY_FORMAT: dict[type, Callable[[Any], str]] = {
    str: _copy_text,
    int: str,
    float: _copy_float,
    bool: lambda v: "t" if v else "f",
    type(None): lambda _: "\\N",
}


def _copy_line(row: Sequence[Any]) -> str:
    get = _COPY_FORMAT.get
    return "\t".join([get(type(v), _copy_other)(v) for v in row]) + "\n"


class _CopyPipe:
    """The file COPY reads: formatted batches from a producer thread, through a short queue (memory holds a few
    batches).  ``stop`` ends the producer early (COPY failed) and waits for it."""

    def __init__(self, batches: Iterable[Sequence[tuple[Any, ...]]]) -> None:
        self.error: BaseException | None = None
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=4)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(batches,), name="mwa-copy", daemon=True)
        self._thread.start()

    def _produce(self, batches: Iterable[Sequence[tuple[Any, ...]]]) -> None:
        try:
            for rows in batches:
                if self._stopped.is_set():
                    return
                self._put("".join([_copy_line(r) for r in rows]))
        except BaseException as exc:  # handed to the COPY's side, which raises it
            self.error = exc
        self._put(None)

    def _put(self, item: str | None) -> None:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self, _size: int = -1) -> str:
        item = self._queue.get()
        if item is None:
            if self.error is not None:
                raise self.error  # aborts the COPY
            return ""
        return item

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
