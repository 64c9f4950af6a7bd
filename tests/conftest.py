"""One suite, every backend.

Tests that take the ``backend`` fixture run on SQLite, PostgreSQL and MySQL/MariaDB.  Servers come from
MWA_TEST_POSTGRES_URL / MWA_TEST_MYSQL_URL (defaults: trust-auth postgres and password-less root on
127.0.0.1).  An unreachable server skips its backend, unless MWA_REQUIRE_BACKENDS names it (CI), in which
case it fails.  Each test gets a scratch database of its own, as new (on a server: one wiped back to new, see below).

Speed (the whole suite runs on a 2-core machine): replaying a schema snapshot costs a second or more (SQLite
and MariaDB commit every DDL statement), so each test worker replays each snapshot once into a template and
every test gets a fresh copy of it: a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL.
MariaDB has no template databases: a build there is the same replay.  On both servers a worker thread wipes each
test's database after it so that the next test takes it instead of a new build, when the wipe shows it is again
exactly a new build; when it is not, the same thread drops it and builds the next one while tests run on
(``_ServerDatabases``).  Dropping a server database (a checkpoint on PostgreSQL) happens on a worker thread
too, and the worker waits for every drop at the end of its session.
"""

from __future__ import annotations

import atexit
import compileall
import contextlib
import functools
import gc
import hashlib
import importlib
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool

import mlflow_ws_admin
from mlflow_ws_admin.db import sqlite_memstatus
from mlflow_ws_admin.db.sample_data import load_snapshot, read_snapshot

# The S3 server fixtures live here, not in the modules that use them: a session-scoped fixture imported into
# several test modules is a fixture of each, so a worker started one moto server per module and each start
# pointed MLFLOW_S3_ENDPOINT_URL (which in-process CLI runs read) at its own server, away from the buckets of
# the modules started before it (NoSuchBucket, depending on which tests a worker drew).  One server per worker.
from .helpers import schema_digest
from .s3_server import bucket, iam_s3, s3_endpoint  # noqa: F401 - fixtures

# No CA bundle for the suite's processes, nor the CLI processes they start (they inherit os.environ): PyMySQL makes
# a TLS context for every connection without ssl options, and loading the system bundle into it costs ~25 ms of CPU
# per connection, for nothing (it verifies no certificate then; the suite's servers speak plain TCP and http).
_NO_CA_DIR = tempfile.mkdtemp(prefix="mwa-no-ca-")
atexit.register(shutil.rmtree, _NO_CA_DIR, True)
os.environ["SSL_CERT_FILE"] = os.devnull
os.environ["SSL_CERT_DIR"] = _NO_CA_DIR

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "schemas"
BACKENDS = ("sqlite", "postgresql", "mysql")
SERVER_URLS = {
    "postgresql": os.environ.get("MWA_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"),
    "mysql": os.environ.get("MWA_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"),
}
REQUIRED = {b.strip() for b in os.environ.get("MWA_REQUIRE_BACKENDS", "").split(",") if b.strip()}
#: Every captured MLflow schema (fixtures/schemas/mlflow-<version>), oldest first.  Schema-driven tests run on
#: each; `mlflow_db` (most of the suite) uses NEWEST.
VERSIONS = ("3.10.0", "3.17.2", "3.18.0")
OLDEST, NEWEST = VERSIONS[0], VERSIONS[-1]
#: MLflow's basic-auth database (fixtures/schemas/mlflow-auth-3.17.2), made by its own auth migrations.
AUTH_SCHEMA = "auth-3.17.2"


def snapshot(version: str, backend: str) -> dict:
    return read_snapshot(FIXTURES / f"mlflow-{version}" / f"{backend}.json")


@functools.cache
def _server_problem(backend: str) -> str | None:
    url = _admin_url(backend)
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the server means "not available"
        return f"{backend} server at {url.render_as_string(hide_password=True)} unreachable: {type(exc).__name__}"
    finally:
        engine.dispose()
    return None


def _admin_url(backend: str) -> URL:
    url = make_url(SERVER_URLS[backend])
    if backend == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    if backend == "mysql" and url.drivername == "mysql":
        url = url.set(drivername="mysql+pymysql")
    return url


def suite_connect_args(url: URL) -> dict[str, object]:
    """Driver options for the suite's own connections (never the CLI's: it connects as a user would).

    PyMySQL builds a TLS context for every connection unless told not to, even when the server offers no TLS
    and it falls back to plain TCP: ~20 ms of CPU per connection, and the suite's helpers make thousands."""
    if url.get_backend_name() == "mysql" and not any(key.startswith("ssl") for key in url.query):
        return {"ssl_disabled": True}
    return {}


def require_backend(backend: str) -> None:
    if backend == "sqlite":
        return
    problem = _server_problem(backend)
    if problem:
        if backend in REQUIRED:
            pytest.fail(f"required backend missing: {problem}")
        pytest.skip(problem)


@dataclass
class ScratchDB:
    backend: str
    url: URL  # driver-qualified URL of the scratch database
    path: Path | None = None  # SQLite file

    @property
    def uri(self) -> str:
        """The URI a user would type (password included, if any)."""
        if self.backend == "sqlite":
            return f"sqlite:///{self.path}"
        return self.url.render_as_string(hide_password=False)

    @functools.cached_property
    def engine(self) -> Engine:
        # NullPool: the test's own reads and writes leave no idle session behind, which apply would (rightly)
        # take for a tracking server still connected to the database.
        return create_engine(self.url, poolclass=NullPool, connect_args=suite_connect_args(self.url))

    def load(self, version: str = NEWEST) -> ScratchDB:
        if self.backend == "sqlite" and not (self.path.exists() and self.path.stat().st_size):
            # Nothing written yet: the worker's template file holds exactly what the replay would write.
            self.engine.dispose()
            shutil.copyfile(_sqlite_template(version), self.path)
            return self
        with self.engine.begin() as conn:
            load_snapshot(conn, snapshot(version, self.backend))
        return self

    def execute(self, sql: str, **params: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql), params)

    def scalar(self, sql: str, **params: object) -> object:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def dump(self) -> dict[str, list[tuple]]:
        """Every row of every table: the "nothing changed" witness."""
        with self.engine.connect() as conn:
            return dump_rows(conn)

    def fingerprint(self) -> object:
        """A full dump, plus the file's bytes on SQLite (byte-for-byte unchanged)."""
        if self.backend == "sqlite":
            self.engine.dispose()
            return hashlib.sha256(self.path.read_bytes()).hexdigest(), self.dump()
        return self.dump()

    def outside_default(self, table: str, column: str = "workspace") -> int:
        return int(self.scalar(f"SELECT COUNT(*) FROM {table} WHERE {column} <> 'default'"))


def row_counts(conn: Connection) -> dict[str, int]:
    """Every table's row count, in one round trip (two on PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        # A table whose file is empty holds no row, and learning that opens the table alone: planning a count of
        # every table opens each one's indexes too, on the new connection each check makes (~10 ms of the
        # server's CPU for MLflow's tables, 1,200 times a run).  So only the others are counted.
        tables = conn.exec_driver_sql(_PG_TABLES_AND_EMPTY).all()
        names = sorted(name for name, empty in tables if not empty)
        counts = {name: 0 for name, empty in tables if empty}
    else:
        names, counts = sorted(inspect(conn).get_table_names()), {}
    if names:
        quote = conn.dialect.identifier_preparer.quote
        union = " UNION ALL ".join(f"SELECT {i}, COUNT(*) FROM {quote(name)}" for i, name in enumerate(names))
        counts.update((names[i], n) for i, n in conn.execute(text(union)))
    return dict(sorted(counts.items()))


#: The tables the Inspector lists (ordinary and partitioned, in the current schema), each with whether its file is
#: empty (a partitioned table has no file of its own: always counted).
_PG_TABLES_AND_EMPTY = """
SELECT c.relname, c.relkind = 'r' AND pg_relation_size(c.oid) = 0
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
"""


def dump_rows(conn: Connection) -> dict[str, list[tuple]]:
    """Every row of every table as the driver returns it, sorted, in a few round trips.

    Raw driver values, not typed by reflection: a "nothing changed" witness compares a database with itself (or
    with a twin on the same backend), and a raw value is at least as strict (a datetime stored as another string
    is a change); reflecting each table's columns for their types cost more than reading the rows."""
    out: dict[str, list[tuple]] = {}
    quote = conn.dialect.identifier_preparer.quote
    for name, n in row_counts(conn).items():  # most tables are empty: only those that hold rows are read
        rows = conn.exec_driver_sql(f"SELECT * FROM {quote(name)}") if n else ()
        out[name] = sorted((tuple(r) for r in rows), key=repr)
    return out


# --- scratch databases: per-worker templates, a MariaDB builder thread, drops on a thread ---------------------


@functools.cache
def _admin_engine(backend: str) -> Engine:
    url = _admin_url(backend)
    return create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args=suite_connect_args(url))


def _create_database(backend: str, name: str, template: str | None = None) -> None:
    with _admin_engine(backend).connect() as conn:
        if backend == "postgresql":
            copy = f' TEMPLATE "{template}"' if template else ""
            if template and conn.dialect.server_version_info >= (15,):
                # PostgreSQL 15's default copy writes every block of the template (its catalogs: ~5 MB) to the WAL,
                # and each test's DROP then checkpoints them: copying the files, as every release before 15 does,
                # took a fifth to two fifths less of the server's CPU over 69 PostgreSQL tests (and of their time).
                copy += " STRATEGY FILE_COPY"
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        else:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))


def _drop_database(backend: str, name: str) -> None:
    with _admin_engine(backend).connect() as conn:
        if backend == "postgresql":
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        else:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))


def _new_name(kind: str = "test") -> str:
    return f"mwa_{kind}_{uuid.uuid4().hex[:12]}"


def _database_engine(backend: str, name: str) -> Engine:
    """The suite's own engine on one of its server databases."""
    url = _admin_url(backend).set(database=name)
    return create_engine(url, poolclass=NullPool, connect_args=suite_connect_args(url))


def _load_server_database(backend: str, name: str, version: str) -> None:
    engine = _database_engine(backend, name)
    try:
        with engine.begin() as conn:
            load_snapshot(conn, snapshot(version, backend))
    finally:
        engine.dispose()


class _Dropper:
    """Drops server databases on a thread, so that no test waits for the previous one's DROP."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._errors: list[str] = []
        self._thread: threading.Thread | None = None

    def drop(self, backend: str, name: str) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mwa-dropper", daemon=True)
            self._thread.start()
        self._queue.put((backend, name))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                _drop_database(*item)
            except Exception as exc:  # reported at the end of the session
                self._errors.append(f"DROP DATABASE {item[1]} on {item[0]}: {exc!r}")

    def finish(self) -> list[str]:
        """Wait for every queued drop; the drops that failed."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        return self._errors


_DROPPER = _Dropper()
_TEMPLATE_DIR: list[Path] = []  # this worker's SQLite templates, made on first use
_SERVER_TEMPLATES: dict[tuple[str, str], str] = {}  # (backend, version) -> template database
_LOCK = threading.Lock()


@functools.cache
def _sqlite_template(version: str) -> Path:
    if not _TEMPLATE_DIR:
        _TEMPLATE_DIR.append(Path(tempfile.mkdtemp(prefix="mwa-templates-")))
        atexit.register(shutil.rmtree, _TEMPLATE_DIR[0], True)
    path = _TEMPLATE_DIR[0] / f"mlflow-{version}.db"
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with engine.begin() as conn:
            load_snapshot(conn, snapshot(version, "sqlite"))
    finally:
        engine.dispose()
    return path


def _postgresql_template(version: str) -> str:
    with _LOCK:
        if ("postgresql", version) not in _SERVER_TEMPLATES:
            name = _new_name("tpl")
            _create_database("postgresql", name)
            try:
                _load_server_database("postgresql", name, version)
            except BaseException:
                _DROPPER.drop("postgresql", name)
                raise
            _SERVER_TEMPLATES["postgresql", version] = name
        return _SERVER_TEMPLATES["postgresql", version]


#: What a fresh MariaDB test database is, besides its rows: schema, keys, triggers, routines, grants on it, and the
#: AUTO_INCREMENT counters and row estimates the engine reads (its MariaDB UPDATE path reads `table_rows`).
_MYSQL_SHAPE = (
    "SELECT default_character_set_name, default_collation_name FROM information_schema.schemata "
    "WHERE schema_name = DATABASE()",
    "SELECT table_name, table_type, engine, table_collation, create_options, table_comment, auto_increment, "
    "table_rows FROM information_schema.tables WHERE table_schema = DATABASE()",
    "SELECT table_name, column_name, ordinal_position, column_default, is_nullable, column_type, collation_name, "
    "extra, generation_expression, column_comment FROM information_schema.columns WHERE table_schema = DATABASE()",
    "SELECT table_name, index_name, non_unique, seq_in_index, column_name, sub_part, index_type, index_comment "
    "FROM information_schema.statistics WHERE table_schema = DATABASE()",
    "SELECT constraint_name, table_name, referenced_table_name, update_rule, delete_rule "
    "FROM information_schema.referential_constraints WHERE constraint_schema = DATABASE()",
    "SELECT constraint_name, table_name, column_name, ordinal_position, referenced_table_name, "
    "referenced_column_name FROM information_schema.key_column_usage WHERE table_schema = DATABASE()",
    "SELECT constraint_name, table_name, check_clause FROM information_schema.check_constraints "
    "WHERE constraint_schema = DATABASE()",
    "SELECT trigger_name, event_manipulation, event_object_table, action_statement, action_timing "
    "FROM information_schema.triggers WHERE trigger_schema = DATABASE()",
    "SELECT routine_name, routine_type, routine_definition FROM information_schema.routines "
    "WHERE routine_schema = DATABASE()",
    "SELECT event_name FROM information_schema.events WHERE event_schema = DATABASE()",
    "SELECT grantee, privilege_type FROM information_schema.schema_privileges WHERE table_schema = DATABASE()",
    "SELECT grantee, table_name, privilege_type FROM information_schema.table_privileges "
    "WHERE table_schema = DATABASE()",
    "SELECT grantee, table_name, column_name, privilege_type FROM information_schema.column_privileges "
    "WHERE table_schema = DATABASE()",
)
_MYSQL_TABLES = 1  # the index in _MYSQL_SHAPE of the tables query (AUTO_INCREMENT and row estimate last)


def _mysql_digest_sql(index: int, sql: str) -> str:
    """One of `_MYSQL_SHAPE`'s queries as its index, row count and a digest of its rows (each row's fields QUOTE()d,
    so NULL stays bare), made by the server."""
    columns, source = sql.removeprefix("SELECT ").split(" FROM ", 1)
    fields = ", ".join(f"QUOTE({column})" for column in columns.split(", "))
    return (
        f"SELECT {index}, COUNT(*), SHA2(GROUP_CONCAT(x ORDER BY CAST(x AS BINARY) SEPARATOR '\\n'), 256) "
        f"FROM (SELECT CONCAT_WS(',', {fields}) AS x FROM {source}) AS rows_{index}"
    )


#: Every shape query but the tables one (the wipe puts the counters back from its rows), in one round trip: reading
#: their ~1,200 rows of information_schema cost ~8 ms of PyMySQL's CPU a wipe.
_MYSQL_SHAPE_DIGESTS = " UNION ALL ".join(
    _mysql_digest_sql(i, sql) for i, sql in enumerate(_MYSQL_SHAPE) if i != _MYSQL_TABLES
)
_SYSTEM_SCHEMAS = "'^(pg_|information_schema$)'"  # a pattern: every other schema is the user's
_PG_SEQUENCES = f"SELECT schemaname, sequencename, last_value FROM pg_sequences WHERE schemaname !~ {_SYSTEM_SCHEMAS}"
#: What a fresh PostgreSQL test database is, besides its rows and what reflection reads (``schema_digest``):
#: indexes, owners, grants, options and the row estimates the engine reads (`reltuples`), sequences' positions,
#: triggers, routines, policies, rules, schemas, extensions, the database's own settings and grants.
_PG_SHAPE = (
    # Each index's whole pg_index row (keys, operator classes, options, expression and predicate trees) and access
    # method: what pg_get_indexdef prints, without deparsing every index (~6 ms of the server's CPU a wipe).
    "SELECT c.oid::regclass::text, c.relam, i::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname !~ {_SYSTEM_SCHEMAS}",
    "SELECT c.oid::regclass::text, c.relowner::regrole::text, c.relacl::text, c.reloptions::text, c.reltuples, "
    "c.relpages, c.relrowsecurity, c.relforcerowsecurity, c.relreplident "
    f"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname !~ {_SYSTEM_SCHEMAS}",
    "SELECT a.attrelid::regclass::text, a.attname, a.attacl::text FROM pg_attribute a "
    "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    f"WHERE nspname !~ {_SYSTEM_SCHEMAS} AND a.attacl IS NOT NULL",
    _PG_SEQUENCES,
    "SELECT tgrelid::regclass::text, tgname, tgenabled, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal",
    "SELECT p.oid::regprocedure::text, md5(p.prosrc), p.proowner::regrole::text, p.proacl::text FROM pg_proc p "
    f"JOIN pg_namespace n ON n.oid = p.pronamespace WHERE nspname !~ {_SYSTEM_SCHEMAS}",
    f"SELECT nspname, nspowner::regrole::text, nspacl::text FROM pg_namespace WHERE nspname !~ {_SYSTEM_SCHEMAS}",
    "SELECT polrelid::regclass::text, polname, polcmd, polroles::text, pg_get_expr(polqual, polrelid) FROM pg_policy",
    f"SELECT schemaname, tablename, rulename, definition FROM pg_rules WHERE schemaname !~ {_SYSTEM_SCHEMAS}",
    "SELECT extname, extversion FROM pg_extension",
    "SELECT defaclrole::regrole::text, defaclnamespace::regnamespace::text, defaclobjtype, defaclacl::text "
    "FROM pg_default_acl",
    "SELECT evtname FROM pg_event_trigger",
    "SELECT pubname FROM pg_publication",
    "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()",
    "SELECT count(*) FROM pg_largeobject_metadata",
    "SELECT datdba::regrole::text, datacl::text, datconnlimit, datallowconn FROM pg_database "
    "WHERE datname = current_database()",
    "SELECT setrole::regrole::text, setconfig::text FROM pg_db_role_setting "
    "WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())",
)
#: A database holding more rows than this is dropped, not wiped: deleting them costs more than a new build.
_WIPE_MAX_ROWS = 2000
#: Who else is connected to the database being wiped: a session left behind by a test means no hand-on.
_OTHER_SESSIONS = {
    "mysql": "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()",
    "postgresql": "SELECT COUNT(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()",
}


class _ServerDatabases:
    """One backend's databases with a snapshot, for the tests, made ahead on a worker thread while tests run.

    A PostgreSQL build copies the worker's template (``CREATE DATABASE ... TEMPLATE``: ~0.1 s of the server's CPU
    with its DROP, which checkpoints); a MariaDB build replays every CREATE TABLE (a file each), ~0.15-0.4 s of the
    server's CPU and most of a second.  So a test's database is wiped after it and handed to the next test, but
    only when the wipe shows it is again exactly what a build makes: the same shape (`_MYSQL_SHAPE`, or
    ``schema_digest`` and `_PG_SHAPE`) and the snapshot's rows, nothing else.  Anything else (a test added a
    trigger or a grant, dropped a key, left a session connected, filled it with a big crash-test dataset) drops it,
    and starts the new build the next test will take.  The thread does builds and wipes one at a time, in order."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._pool: ThreadPoolExecutor | None = None
        self._next: dict[str, list[Future[str]]] = {}  # built after a failed wipe, oldest first
        self._wiped: dict[str, list[Future[str | None]]] = {}  # handed back, oldest first: a name, or None if dropped
        self._fresh: dict[str, tuple[tuple, dict]] = {}  # version -> (shape, rows) of a new build
        # The thread's engine on each database, kept while it is: a new engine's first connection asks the server for
        # its version and settings (~2 ms of PostgreSQL's CPU and 1-2 ms of the worker's, each wipe).
        self._engines: dict[str, Engine] = {}

    def _submit(self, fn, *args) -> Future:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mwa-{self.backend}-databases")
        return self._pool.submit(fn, *args)

    def take(self, version: str) -> str:
        wiped = self._wiped.get(version, [])
        while wiped:
            if name := wiped.pop(0).result():
                return name
        # A build that a failed wipe started (queued before that wipe's result, so it is seen here), or a first one.
        built = self._next.get(version)
        return (built.pop(0) if built else self._submit(self._build, version)).result()

    def give_back(self, version: str, name: str) -> None:
        self._wiped.setdefault(version, []).append(self._submit(self._wipe, version, name))

    def _build(self, version: str) -> str:
        name = _new_name()
        if self.backend == "postgresql":
            _create_database("postgresql", name, _postgresql_template(version))
        else:
            _create_database("mysql", name)
        try:
            if self.backend == "mysql":
                with self._engine(name).begin() as conn:
                    load_snapshot(conn, snapshot(version, "mysql"))
            if version not in self._fresh:  # every build of a version is the same: the first one is the reference
                with self._engine(name).connect() as conn:
                    self._fresh[version] = self._shape(conn), dump_rows(conn)
        except BaseException:
            self._drop(name)
            raise
        return name

    def _engine(self, name: str) -> Engine:
        if name not in self._engines:
            self._engines[name] = _database_engine(self.backend, name)
        return self._engines[name]

    def _drop(self, name: str) -> None:
        self._engines.pop(name, None)
        _DROPPER.drop(self.backend, name)

    def _wipe(self, version: str, name: str) -> str | None:
        """The database wiped back to a new build's state, or None (dropped) if that cannot be shown."""
        try:
            if self._wiped_back(version, name):
                return name
        except Exception:  # whatever went wrong, a new build is always right
            pass
        self._drop(name)
        # The next test of this version needs a new build: start it now, behind this wipe on the same thread.  (One
        # built ahead at each worker's first take of a version was dropped unused unless a wipe failed.)
        self._next.setdefault(version, []).append(self._submit(self._build, version))
        return None

    def _wiped_back(self, version: str, name: str) -> bool:
        shape, rows = self._fresh[version]
        with self._engine(name).connect() as conn:
            if not _alone(conn, self.backend):
                return False
            filled = {t: n for t, n in row_counts(conn).items() if n}
            if sum(filled.values()) > _WIPE_MAX_ROWS:
                return False
            self._delete_rows(conn, filled, version)
            self._reset_counters(conn, shape)
            conn.commit()
            return self._shape(conn) == shape and dump_rows(conn) == rows

    def _delete_rows(self, conn: Connection, filled: Iterable[str], version: str) -> None:
        """Every row gone, then the snapshot's own rows back, with the foreign keys not checked meanwhile."""
        quote = conn.dialect.identifier_preparer.quote
        if self.backend == "mysql":
            conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
        else:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # no FK triggers
        for table in filled:
            conn.exec_driver_sql(f"DELETE FROM {quote(table)}")
        for statement in snapshot(version, self.backend)["statements"]:
            if statement.startswith("INSERT"):
                conn.exec_driver_sql(statement)
        if self.backend == "mysql":
            conn.exec_driver_sql("SET SESSION foreign_key_checks = 1")

    def _reset_counters(self, conn: Connection, shape: tuple) -> None:
        """What deleting rows leaves behind: ids counted on, row estimates, statistics."""
        if self.backend == "postgresql":
            quote = conn.dialect.identifier_preparer.quote
            fresh = {(schema, seq): last for schema, seq, last in shape[1 + _PG_SHAPE.index(_PG_SEQUENCES)]}
            for schema, seq, last in conn.exec_driver_sql(_PG_SEQUENCES):
                if fresh.get((schema, seq), last) != last:
                    name = f"{quote(schema)}.{quote(seq)}"
                    if fresh[schema, seq] is None:  # never used: RESTART gives its first value next
                        conn.exec_driver_sql(f"ALTER SEQUENCE {name} RESTART")
                    else:
                        conn.exec_driver_sql(f"SELECT setval('{name}', {int(fresh[schema, seq])})")
            # The deletes' dead rows would bring autovacuum, whose ANALYZE changes the row estimates mid-test.
            conn.exec_driver_sql("SELECT pg_stat_reset()")
            return
        tables = sorted(tuple(r) for r in conn.exec_driver_sql(_MYSQL_SHAPE[_MYSQL_TABLES]))
        for table, fresh_table in zip(tables, shape[_MYSQL_TABLES], strict=False):
            if table[:-2] == fresh_table[:-2] and table[-2] != fresh_table[-2]:
                # Deleting rows leaves the counter where it was; on an empty table this sets it back.
                conn.exec_driver_sql(f"ALTER TABLE `{table[0]}` AUTO_INCREMENT = {int(fresh_table[-2])}")
            if table[:-1] == fresh_table[:-1] and table[-1] != fresh_table[-1]:
                conn.exec_driver_sql(f"ANALYZE TABLE `{table[0]}`").all()

    def _shape(self, conn: Connection) -> tuple:
        return _mysql_shape(conn) if self.backend == "mysql" else _pg_shape(conn)

    def finish(self) -> None:
        # The wipes first: one that fails queues a build, which is in ``_next`` once the wipe's result is.
        for pending in (self._wiped, self._next):
            for future in [f for futures in pending.values() for f in futures]:
                with contextlib.suppress(Exception):  # a build that failed dropped its database itself
                    if name := future.result():
                        self._drop(name)
        self._next.clear()
        self._wiped.clear()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _mysql_shape(conn: Connection) -> tuple:
    conn.exec_driver_sql("SET SESSION group_concat_max_len = 4294967295")  # the default cuts the digests' input
    shape = {index: (count, digest) for index, count, digest in conn.exec_driver_sql(_MYSQL_SHAPE_DIGESTS)}
    shape[_MYSQL_TABLES] = tuple(sorted(tuple(r) for r in conn.exec_driver_sql(_MYSQL_SHAPE[_MYSQL_TABLES])))
    return tuple(shape[index] for index in range(len(_MYSQL_SHAPE)))


def _pg_shape(conn: Connection) -> tuple:
    return (schema_digest(conn), *(tuple(sorted(tuple(r) for r in conn.exec_driver_sql(sql))) for sql in _PG_SHAPE))


def _alone(conn: Connection, backend: str) -> bool:
    """No other session on the database, after a moment for the test's closed sessions to finish ending."""
    for _ in range(10):
        if not conn.exec_driver_sql(_OTHER_SESSIONS[backend]).scalar():
            return True
        time.sleep(0.02)
    return False


_SERVER_DATABASES = {backend: _ServerDatabases(backend) for backend in ("postgresql", "mysql")}


def pytest_configure(config: pytest.Config) -> None:
    # The tests press Ctrl-C on real CLI processes (SIGINT).  A shell starts a background job with SIGINT ignored,
    # the workers inherit that, and so would every CLI they start: Python then installs no KeyboardInterrupt
    # handler and the CLI runs on as if nothing was pressed.  A terminal's Ctrl-C is what the tests mean.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # Each worker is the suite alone, and no connection is open yet: its in-process CLI runs get the SQLite the
    # command's own process gets (memory statistics off; 0.93-0.96x the time of the SQLite migrate, JSON, move,
    # rename and journal tests, paired).  test_sqlite_memstatus checks both kinds of process in fresh interpreters.
    # (Only speed depends on it here; where the library refuses, the tests run as before.)
    sqlite_memstatus.claim_process()
    sqlite_memstatus.untrack_memory()
    if not hasattr(config, "workerinput"):  # once, before any worker or CLI process starts
        _compile_package()
        if getattr(config.option, "numprocesses", None):
            _rewrite_test_modules()


def _compile_package() -> None:
    """The package's bytecode, written before the run: the CLI processes the tests start (crash tests, recipes,
    exit codes) then load it, as an installed CLI does (pip compiles what it installs), instead of compiling every
    module again in each process where PYTHONDONTWRITEBYTECODE is set (~45 ms of CPU a process, paired)."""
    compileall.compile_dir(Path(mlflow_ws_admin.__file__).parent, quiet=1)


def _rewrite_test_modules() -> None:
    """Every test module's assertion-rewritten bytecode, written once by the controller before the workers start:
    each worker then loads it at collection instead of rewriting and compiling every module again.  pytest writes
    that cache only where bytecode may be written, so under PYTHONDONTWRITEBYTECODE (set on the CI machines) each
    of the four workers rewrote every module at each run: from a fresh clone, collecting the suite took 6.2-6.7 s
    and 11.6 core-seconds, and 4.4-4.7 s and 6.1 with this (3.2 s and 5 on later runs).  The bytecode goes to
    ``tests/__pycache__``, which git ignores."""
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = False
    try:
        for module in sorted(Path(__file__).parent.glob("test_*.py")):
            try:
                importlib.import_module(f"{__package__}.{module.stem}")
            except (Exception, pytest.skip.Exception):  # the workers' collection reports it, as it always did
                continue
    finally:
        sys.dont_write_bytecode = dont_write


def pytest_sessionfinish(session: pytest.Session) -> None:
    for databases in _SERVER_DATABASES.values():
        databases.finish()
    for (backend, _), name in _SERVER_TEMPLATES.items():
        _DROPPER.drop(backend, name)
    _SERVER_TEMPLATES.clear()
    errors = _DROPPER.finish()
    if errors:
        raise RuntimeError("scratch databases left behind:\n" + "\n".join(errors))


def _create_scratch(
    backend: str, tmp_path: Path, version: str | None = None, filename: str = "mlflow.db"
) -> Iterator[ScratchDB]:
    """A scratch database: empty, or (with a version) holding that MLflow version's captured schema."""
    if backend == "sqlite":
        db = ScratchDB(backend, make_url(f"sqlite:///{tmp_path / filename}"), tmp_path / filename)
        if version:
            db.load(version)
        yield db
        db.engine.dispose()
        return
    require_backend(backend)
    if version:
        name = _SERVER_DATABASES[backend].take(version)
    else:
        name = _new_name()
        _create_database(backend, name)
    db = ScratchDB(backend, _admin_url(backend).set(database=name))
    try:
        yield db
    finally:
        db.engine.dispose()
        if version:
            _SERVER_DATABASES[backend].give_back(version, name)
        else:
            _DROPPER.drop(backend, name)


#: Tests that run far longer than the rest, longest first.  They start first, so that no worker is still in one of
#: them long after the others have run out of tests.  The optional real-MLflow tests lead (they skip without
#: MWA_MLFLOW_PYTHON; with it, their 23 tests add minutes of worker time, tens of seconds each on average).  The
#: rest as measured in a whole `pytest --durations` run (4 workers on the 2 cores): the move-resources and restore
#: crash tests 11-22 s, the apply crash test 9-18 s, the import kill 6-15 s, the relocate delete-window kill 13 s,
#: the import relocate kill 8-13 s, the other relocate kills 7-11 s, the property test 4-6 s.
LONG_TESTS = (
    "test_auth_mlflow_server.py::",
    "test_mlflow_relocate.py::",
    "test_import_mlflow.py::",
    "test_mlflow_move_compat.py::test_move_resources_agrees_with_mlflow",
    "test_mlflow_compat.py::test_probe_reads_a_real_mlflow_server",
    "test_mlflow_compat.py::test_server_without_workspaces",
    "test_mlflow_compat.py::test_mlflow_without_workspaces",
    "test_auth_mlflow_compat.py::test_a_real_basic_auth_server",
    "test_auth_mlflow_compat.py::test_permissions_match_mlflow",
    "test_crash.py::test_sigkill_during_move_resources",
    "test_crash.py::test_sigint_during_restore",
    "test_crash.py::test_sigkill_and_sigint_during_apply",
    "test_import_database.py::test_sigkill_mid_import",
    "test_relocate_crash.py::test_sigkill_during_the_deletes",
    "test_import_relocate.py::test_sigkill_mid_copy",
    "test_relocate_crash.py::",
    "test_properties.py::",
)


def pytest_collection_finish(session: pytest.Session) -> None:
    # What is alive now (modules, fixtures' definitions, the collected items) stays alive for the whole run: the
    # cycle collector need not walk it again at every full collection.  0.91-0.94x the CPU of the SQLite migrate,
    # rename, auth and journal tests (three calls of 4-10 pairs of runs, 2 workers).
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, name in enumerate(LONG_TESTS) if name in item.nodeid), len(LONG_TESTS))

    long = sorted((item for item in items if rank(item) < len(LONG_TESTS)), key=rank)
    rest = [item for item in items if rank(item) == len(LONG_TESTS)]
    # xdist's load scheduler (with --maxschedchunk 1) hands each worker two tests to begin with, then one
    # more whenever it finishes one: give each worker one long test and one short one to begin with, and the
    # remaining long ones to whichever worker is free first.
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    head = []
    for item in long[:workers]:
        head.append(item)
        if rest:
            head.append(rest.pop(0))
    items[:] = head + long[workers:] + rest


_ONLY_MARKS = {"sqlite_only": "sqlite", "postgresql_only": "postgresql", "mysql_only": "mysql"}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    for mark, only in _ONLY_MARKS.items():
        if request.node.get_closest_marker(mark) and request.param != only:
            pytest.skip(f"{mark}: not for {request.param}")
    return request.param


@pytest.fixture
def scratch_db(backend: str, tmp_path: Path) -> Iterator[ScratchDB]:
    """An empty scratch database on the current backend."""
    yield from _create_scratch(backend, tmp_path)


@pytest.fixture
def mlflow_db(backend: str, tmp_path: Path) -> Iterator[ScratchDB]:
    """A scratch database with the newest captured MLflow schema."""
    yield from _create_scratch(backend, tmp_path, NEWEST)


@pytest.fixture
def source_db(backend: str, tmp_path: Path) -> Iterator[ScratchDB]:
    """An import's SOURCE: a second database with the newest MLflow schema, on the same backend as ``mlflow_db``."""
    yield from _create_scratch(backend, tmp_path, NEWEST, filename="source.db")


@pytest.fixture
def auth_db(backend: str, tmp_path: Path) -> Iterator[ScratchDB]:
    """A second scratch database on the same backend, with MLflow 3.17.2's basic-auth schema."""
    yield from _create_scratch(backend, tmp_path, AUTH_SCHEMA, filename="basic_auth.db")
