"""MySQL/MariaDB: LOCK TABLES inside the transaction, FK checks switched off for non-cascading FKs, and the
session settings the conflict queries need."""

from __future__ import annotations

import base64
import json
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import ColumnElement, Integer, Select, bindparam, cast, column, exists, func, select, table, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import TableClause, visitors
from sqlalchemy.sql.expression import ColumnClause

from mlflow_ws_admin.common.errors import VerificationFailed
from mlflow_ws_admin.db.dialects.base import CONNECT_TIMEOUT_S, Dialect, ErrorKind

if TYPE_CHECKING:
    from mlflow_ws_admin.db.schema import ForeignKey
    from mlflow_ws_admin.db.target import Target

#: Room for the in-memory temporary tables of GROUP BY / window queries over wide utf8mb4 keys, which spill to
#: disk at the 16 MB default (2-3x slower).  Session-only; the server allocates it only while a query runs.
MYSQL_TMP_TABLE_BYTES = 256 * 1024 * 1024
#: Hash joins for the conflict queries' derived tables (see ``tune_session``).
MARIADB_JOIN_CACHE_LEVEL = 4
#: Names weighed per statement by ``name_weights`` (each batch is one JSON payload, well under max_allowed_packet).
_WEIGHT_BATCH = 5000
#: Collations under which two printable ASCII strings are equal only when they are equal ignoring case (and, under
#: PAD SPACE, trailing spaces): what the renames' name fold equates.  Checked character by character on MariaDB
#: 10.11 (tests/test_rename_conflicts.py); e.g. utf8mb4_roman_ci (I = J) and utf8mb4_lithuanian_ci (I = Y) are not.
ASCII_FOLD_COLLATIONS = frozenset(
    f"{charset}_{collation}"
    for charset in ("utf8mb4", "utf8mb3")
    for collation in (
        "general_ci",
        "general_nopad_ci",
        "bin",
        "nopad_bin",
        "unicode_ci",
        "unicode_nopad_ci",
        "unicode_520_ci",
        "unicode_520_nopad_ci",
    )
)

#: What PyMySQL warns when a command follows a streamed result that was not read to its end.
_ABANDONED_STREAM_WARNING = "Previous unbuffered result was left incomplete"


class MySQLDialect(Dialect):
    name = "mysql"
    #: LOCK TABLES ... WRITE keeps every other session out, readers too: apply's artifact check reads on the
    #: locking connection.
    other_sessions_read_locked_tables = False
    #: Grouping wide utf8mb4 keys makes big temporary tables; CRC32s of their collation weights are 20x smaller.
    hashed_conflict_prefilter = True
    error_codes: ClassVar[Mapping[ErrorKind, frozenset[Any]]] = {
        "lock_timeout": frozenset({1205}),
        # table, column, database access denied; "you need (at least one of) the ... privilege"
        "privilege": frozenset({1142, 1143, 1044, 1227}),
        "read_only": frozenset({1792}),
        # a duplicate entry, or (MariaDB 1761/1762) an ON UPDATE CASCADE that would make one in a child table,
        # which PyMySQL raises as OperationalError rather than IntegrityError
        "duplicate": frozenset({1062, 1586, 1761, 1762}),
    }

    def create_engine(self, target: Target, *, read_only: bool, busy_timeout_s: float) -> Engine:
        # A Ctrl-C or an error that cuts a streamed read short makes PyMySQL warn on the next command, the
        # rollback: "Previous unbuffered result was left incomplete".  The rollback discards that result anyway,
        # and the warning would print a second line under the one-line error.
        warnings.filterwarnings("ignore", message=_ABANDONED_STREAM_WARNING, category=UserWarning)
        return super().create_engine(target, read_only=read_only, busy_timeout_s=busy_timeout_s)

    def connect_args(self, *, read_only: bool) -> dict[str, Any]:
        args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S, "charset": "utf8mb4"}
        if read_only:
            args["init_command"] = "SET SESSION TRANSACTION READ ONLY"
        return args

    def error_code(self, exc: BaseException) -> Any:
        orig = getattr(exc, "orig", None) or exc
        args = getattr(orig, "args", ())
        return args[0] if args and isinstance(args[0], int) else None

    def tune_session(self, dbapi_conn: Any, _record: Any) -> None:
        """Session settings for the conflict queries.  MariaDB joins derived tables (conflict groups to their
        dependent-row counts) by nested loops unless hash joins are allowed: minutes instead of seconds at 20k
        groups.  MySQL 8 hash-joins by default and has no such setting."""
        cur = dbapi_conn.cursor()
        try:
            cur.execute(
                f"SET SESSION tmp_table_size = {MYSQL_TMP_TABLE_BYTES}, max_heap_table_size = {MYSQL_TMP_TABLE_BYTES}"
            )
            cur.execute("SELECT VERSION()")
            if "mariadb" in str(cur.fetchone()[0]).lower():
                cur.execute(f"SET SESSION join_cache_level = {MARIADB_JOIN_CACHE_LEVEL}")
        finally:
            cur.close()

    def lock_workspace_tables(
        self, conn: Connection, tables: Sequence[str], timeout_s: float, read_tables: Sequence[str] = ()
    ) -> None:
        """WRITE locks block other sessions' reads and writes of these tables until UNLOCK TABLES, which we
        issue only after COMMIT/ROLLBACK (the documented way to combine LOCK TABLES with InnoDB).

        While the locks are held, every query may reference each table only by its own name (no aliases)."""
        seconds = max(1, int(timeout_s))
        conn.exec_driver_sql(f"SET SESSION lock_wait_timeout = {seconds}")
        conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {seconds}")
        locks = [f"{self.quote(conn, t)} WRITE" for t in tables] + [f"{self.quote(conn, t)} READ" for t in read_tables]
        conn.exec_driver_sql("LOCK TABLES " + ", ".join(locks))

    def release_locks(self, conn: Connection) -> None:
        conn.exec_driver_sql("UNLOCK TABLES")

    def create_temporary_table(self, conn: Connection, name: str, select_sql: str, index: Sequence[str]) -> None:
        """The index inside CREATE: a CREATE INDEX, even on a temporary table, would commit implicitly."""
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} (INDEX ({', '.join(index)})) AS {select_sql}")

    @contextmanager
    def index_joins(self, conn: Connection) -> Iterator[None]:
        """MariaDB: the hash joins ``tune_session`` allows for the conflict queries take ~50x longer than
        index lookups to join a loaded key list to its table (1.1 s vs 0.02 s for 15k tags): back to the
        default join cache level meanwhile."""
        if not conn.dialect.is_mariadb:
            yield
            return
        conn.exec_driver_sql("SET SESSION join_cache_level = 2")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SET SESSION join_cache_level = {MARIADB_JOIN_CACHE_LEVEL}")

    def insert_rows(self, conn: Connection, table: str, width: int, rows: Sequence[tuple[Any, ...]]) -> None:
        """PyMySQL's executemany escapes every value in Python (~11 µs a row); one JSON array per batch,
        unpacked by the server's JSON_TABLE, costs one string, in base64 so that nothing in it needs escaping
        (PyMySQL's escaping of the JSON took 0.6 s for 580k rows).  The columns arrive as text and take the
        temporary table's types on INSERT, as the driver's literals would."""
        columns = ", ".join(f"c{i} LONGTEXT PATH '$[{i}]'" for i in range(width))
        payload = base64.b64encode(json.dumps(rows, default=str, ensure_ascii=False).encode()).decode("ascii")
        conn.exec_driver_sql(
            f"INSERT INTO {table} SELECT * FROM JSON_TABLE(CONVERT(FROM_BASE64('{payload}') USING utf8mb4),"
            f" '$[*]' COLUMNS ({columns})) AS loaded"
        )

    def bulk_insert(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """An explicit 0 in an AUTO_INCREMENT column would be replaced by the next id (MLflow's Default
        experiment is 0): NO_AUTO_VALUE_ON_ZERO keeps it, as MLflow sets it to create that experiment."""
        conn.exec_driver_sql("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')")
        super().bulk_insert(conn, table, columns, rows)

    def drop_temporary_table(self, conn: Connection, name: str) -> None:
        """TEMPORARY: a plain DROP TABLE would commit the transaction implicitly."""
        conn.exec_driver_sql(f"DROP TEMPORARY TABLE {self.quote(conn, name)}")

    def update_from(
        self,
        conn: Connection,
        target: TableClause,
        match: ColumnElement[bool],
        values: Mapping[str, ColumnElement],
        *,
        expected_rows: int,
    ) -> int:
        """MariaDB's multi-table UPDATE copies every row it changes to a temporary table (on disk for long
        primary keys) and changes them afterwards, unless it reads the target first and by no index holding a
        changed column, which a primary key holding the workspace rules out: ~1.4x the server time of a
        single-table UPDATE.  So when at least half the target is to change, one single-table UPDATE scans
        it and finds each row's values by correlated subqueries; fewer rows keep the join, which reads only
        them.  (MySQL cannot open one temporary table twice in a statement: it keeps the join.)"""
        if not conn.dialect.is_mariadb or 2 * expected_rows < self._estimated_rows(conn, target.name):
            return super().update_from(conn, target, match, values, expected_rows=expected_rows)
        # Assignments run left to right, each seeing the columns set before it: the columns the match reads
        # go last, so every subquery pairs the row as it was.  LIMIT 1: a row the join would pair twice is set
        # once, as the join sets it.
        read = {c.name for c in visitors.iterate(match) if isinstance(c, ColumnClause) and c.table is target}
        ordered = sorted(values.items(), key=lambda item: item[0] in read)
        stmt = (
            target.update()
            .where(exists().where(match))
            .ordered_values(*((target.c[c], select(v).where(match).limit(1).scalar_subquery()) for c, v in ordered))
        )
        return conn.execute(stmt).rowcount

    @staticmethod
    def _estimated_rows(conn: Connection, name: str) -> int:
        """The server's estimate of a table's rows (InnoDB counts inserts and deletes, and samples)."""
        rows = conn.execute(
            text(
                "SELECT table_rows FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = :t"
            ),
            {"t": name},
        ).scalar()
        return int(rows or 0)

    def missing_privileges(
        self, conn: Connection, updated: Mapping[str, str], altered: Sequence[str]
    ) -> list[tuple[str, str]]:
        """EXPLAIN UPDATE checks the UPDATE privilege exactly as the server would (grants, roles, wildcards)
        and changes nothing.  (`altered` is unused: FK checks are switched off per session, which needs no
        privilege.)"""
        missing = []
        for t, col in updated.items():
            try:
                conn.exec_driver_sql(
                    f"EXPLAIN UPDATE {self.quote(conn, t)} SET {self.quote(conn, col)} = NULL WHERE 1 = 0"
                )
            except DBAPIError as exc:
                if self.classify(exc) != "privilege":
                    raise
                missing.append(("UPDATE privilege", t))
        return missing

    def describe_lock_holders(self, conn: Connection, tables: Sequence[str]) -> str | None:
        """Sessions holding metadata locks on these tables (MariaDB's metadata_lock_info plugin), or else the
        other sessions on this database with what they are doing.  Never their statement text."""
        try:
            rows = conn.execute(
                text(
                    "SELECT m.thread_id, p.user, p.host, p.command, p.time, m.table_name, m.lock_mode"
                    " FROM information_schema.metadata_lock_info m"
                    " JOIN information_schema.processlist p ON p.id = m.thread_id"
                    " WHERE m.table_schema = DATABASE() AND m.table_name IN :tables AND m.thread_id <> CONNECTION_ID()"
                ).bindparams(bindparam("tables", expanding=True)),
                {"tables": list(tables)},
            ).all()
        except DBAPIError:  # the plugin is not installed
            rows = None
        if rows:
            sessions: dict[int, tuple[str, list[str]]] = {}
            for tid, user, host, command, secs, table_name, mode in rows:
                sessions.setdefault(tid, (f"connection {tid} ({user}@{host}, {command} for {secs} s)", []))[1].append(
                    f"{table_name} {mode}"
                )
            return "; ".join(f"{who} holding {', '.join(locks)}" for who, locks in sessions.values())
        others = conn.execute(
            text(
                "SELECT p.id, p.user, p.host, p.command, p.time, p.state, t.trx_started IS NOT NULL"
                " FROM information_schema.processlist p"
                " LEFT JOIN information_schema.innodb_trx t ON t.trx_mysql_thread_id = p.id"
                " WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID() ORDER BY p.time DESC LIMIT 5"
            )
        ).all()
        if not others:
            return None
        described = [
            f"connection {tid} ({user}@{host}, {command} for {secs} s{', in a transaction' if in_trx else ''}"
            f"{', ' + state if state else ''})"
            for tid, user, host, command, secs, state, in_trx in others
        ]
        return "other sessions on this database: " + "; ".join(described)

    def list_sessions(self, conn: Connection) -> dict[Any, str]:
        rows = conn.execute(
            text(
                "SELECT id, user, host, command, state FROM information_schema.processlist"
                " WHERE db = DATABASE() AND id <> CONNECTION_ID() ORDER BY id"
            )
        ).all()
        return {
            tid: f"connection {tid} (user {user}, host {host}, {command}{', ' + state if state else ''})"
            for tid, user, host, command, state in rows
        }

    def tables_with_triggers(self, conn: Connection) -> set[str]:
        return set(
            conn.exec_driver_sql(
                "SELECT event_object_table FROM information_schema.triggers WHERE trigger_schema = DATABASE()"
            ).scalars()
        )

    def suspend_foreign_keys(self, conn: Connection, fks: Sequence[ForeignKey]) -> bool:
        """MySQL has no transactional DDL, so switch FK checks off for this session instead; apply verifies
        the suspended FKs itself before commit.  With checks off InnoDB does not cascade either."""
        if not fks:
            return True
        conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
        return False

    def restore_foreign_keys(self, conn: Connection, fks: Sequence[ForeignKey]) -> None:
        """Switch checks back on, after proving what MySQL will not re-check: every suspended FK resolves."""
        if not fks:
            return
        broken = [
            f"{fk.child} -> {fk.parent}: {n}" for fk in fks if (n := conn.execute(self._dangling(fk)).scalar_one())
        ]
        if broken:
            raise VerificationFailed(f"foreign keys would dangle after the move ({'; '.join(broken)}); rolled back")
        conn.exec_driver_sql("SET SESSION foreign_key_checks = 1")

    @staticmethod
    def _dangling(fk: ForeignKey) -> Select:
        """Child rows whose (non-NULL) FK columns match no parent row.  Tables by name only: LOCK TABLES."""
        child = table(fk.child, *(column(c) for c in fk.child_columns))
        parent = table(fk.parent, *(column(c) for c in fk.parent_columns))
        match = exists().where(
            *(parent.c[p] == child.c[c] for c, p in zip(fk.child_columns, fk.parent_columns, strict=True))
        )
        return (
            select(func.count()).select_from(child).where(*(child.c[c].is_not(None) for c in fk.child_columns), ~match)
        )

    def collation_keys(self, conn: Connection, t: TableClause, columns: Sequence[str]) -> list[ColumnElement]:
        """Each column's collation weight (``WEIGHT_STRING``): equal weights are equal values under the column's
        collation, whatever it ignores (case, accents, 'ß' against 's').  A PAD SPACE collation also ignores
        trailing spaces, which the weight keeps, so those are trimmed first; a NO PAD one (MySQL 8's default)
        does not.  Which one the column has is asked of the column itself, on one row."""
        keys = []
        for name in columns:
            c = t.c[name]
            keys.append(func.weight_string(func.rtrim(c) if self._pads(conn, c) else c))
        return keys

    def name_weights(self, conn: Connection, t: TableClause, column: str, values: Sequence[str]) -> list[Any]:
        """The same weights for names not stored yet: each value converted to the column's character set and
        collation (from information_schema), trimmed under PAD SPACE, in batches sent as JSON like
        ``insert_rows``.  Only reads."""
        charset, collation = self._collation(conn, t, column)
        if not (re.fullmatch(r"\w+", charset or "") and re.fullmatch(r"\w+", collation or "")):
            raise VerificationFailed(f"{t.name}.{column} has no character set and collation to weigh names by")
        value = f"CONVERT(loaded.v USING {charset}) COLLATE {collation}"
        if self._pads(conn, t.c[column]):
            value = f"RTRIM({value})"
        weights: list[Any] = []
        for i in range(0, len(values), _WEIGHT_BATCH):
            batch = list(enumerate(values[i : i + _WEIGHT_BATCH]))
            payload = base64.b64encode(json.dumps(batch, ensure_ascii=False).encode()).decode("ascii")
            rows = conn.exec_driver_sql(
                f"SELECT loaded.i, WEIGHT_STRING({value}) FROM JSON_TABLE(CONVERT(FROM_BASE64('{payload}') USING"
                " utf8mb4), '$[*]' COLUMNS (i INT PATH '$[0]', v LONGTEXT PATH '$[1]')) AS loaded ORDER BY loaded.i"
            ).all()
            weights += [w for _, w in rows]
        return weights

    def ascii_names_fold(self, conn: Connection, t: TableClause, column: str) -> bool:
        """Whether the column's collation equates printable ASCII names only as the name fold does (case and
        trailing spaces), so that names of printable ASCII need no weighing."""
        return self._collation(conn, t, column)[1] in ASCII_FOLD_COLLATIONS

    @staticmethod
    def _collation(conn: Connection, t: TableClause, column: str) -> tuple[str | None, str | None]:
        """(character set, collation) of the column, from information_schema."""
        row = conn.execute(
            text(
                "SELECT character_set_name, collation_name FROM information_schema.columns"
                " WHERE table_schema = DATABASE() AND table_name = :t AND column_name = :c"
            ),
            {"t": t.name, "c": column},
        ).one()
        return row[0], row[1]

    @staticmethod
    def _pads(conn: Connection, c: ColumnElement) -> bool:
        """Whether the column's collation ignores trailing spaces (PAD SPACE), asked of the column on one row."""
        return bool(conn.execute(select(func.concat(c, " ") == c).where(c.is_not(None)).limit(1)).scalar())

    def row_hash_sum(self, columns: Sequence[ColumnElement]) -> ColumnElement:
        """SUM over rows of 60 bits of MD5(JSON_ARRAY(columns)); SUM of integers is an exact DECIMAL here."""
        digest = func.md5(func.json_array(*columns))
        return func.coalesce(func.sum(cast(func.conv(func.substr(digest, 1, 15), 16, 10), Integer)), 0)
