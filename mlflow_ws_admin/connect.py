"""Turn the URI an MLflow user types into a SQLAlchemy engine, without ever echoing its password.

- Bare ``postgresql://`` / ``mysql://`` resolve (in SQLAlchemy 2.1) to psycopg 3 / mysqlclient, which are
  not our dependencies; map them to the bundled psycopg2 / pymysql when the default driver is missing.
- SQLite files are opened through a ``file:`` URI with ``mode=ro`` (dry run) or ``mode=rw`` (apply), so a
  mistyped path can never create an empty database.
- Server connections fail within ``CONNECT_TIMEOUT_S`` instead of retrying for minutes.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from mlflow_ws_admin.errors import DatabaseError, UsageError

CONNECT_TIMEOUT_S = 10
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
MASK = "***"
#: Connection execution option set by apply: the transaction it begins must hold the write lock.
WRITE_LOCK_OPTION = "mwa_write_lock"

_BACKENDS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
_DEFAULT_DRIVER_MODULE = {"postgresql": "psycopg", "mysql": "MySQLdb"}
_BUNDLED_DRIVER = {"postgresql": "psycopg2", "mysql": "pymysql"}


@dataclass(frozen=True)
class Target:
    """A resolved database location: the URL to connect with and how to show it."""

    url: URL
    backend: str  # sqlite | postgresql | mysql
    sqlite_path: Path | None = None

    @property
    def display(self) -> str:
        """The URL with its password masked: safe to print."""
        return self.url.render_as_string(hide_password=True).replace("***", MASK)

    @property
    def password(self) -> str | None:
        return self.url.password


def resolve_target(uri: str | None, environ: dict[str, str] | None = None) -> Target:
    """Parse the URI (or $MLFLOW_TRACKING_URI) into a Target; UsageError for anything unusable."""
    env = os.environ if environ is None else environ
    raw = uri if uri else env.get(TRACKING_URI_ENV, "")
    if not raw.strip():
        raise UsageError(f"no database URI given and ${TRACKING_URI_ENV} is not set")
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):
        raise UsageError(
            f"not a database URI: {_mask_userinfo(raw)!r} (expected e.g. sqlite:///mlflow.db, "
            "postgresql://user@host/db or mysql://user@host/db)"
        ) from None
    dialect, _, driver = url.drivername.partition("+")
    backend = _BACKENDS.get(dialect)
    if backend is None:
        raise UsageError(
            f"unsupported database scheme {dialect!r}: use sqlite, postgresql or mysql "
            "(a tracking server http(s) URI or a file store is not a database)"
        )
    if backend == "sqlite":
        return Target(url=url, backend=backend, sqlite_path=_sqlite_path(url))
    if not url.database:
        raise UsageError(f"the URI names no database: {Target(url, backend).display}")
    if dialect in ("postgres", "mariadb") and not driver:
        url = url.set(drivername=backend)
    if not driver and importlib.util.find_spec(_DEFAULT_DRIVER_MODULE[backend]) is None:
        url = url.set(drivername=f"{backend}+{_BUNDLED_DRIVER[backend]}")
    return Target(url=url, backend=backend)


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise UsageError("an in-memory SQLite database has nothing to migrate; give a file path")
    path = Path(url.database).expanduser()
    return path


def _mask_userinfo(text: str) -> str:
    """Mask `user:password@` in something that failed to parse as a URL."""
    return re.sub(r"(//[^:/@\s]*:)[^@\s]*@", rf"\1{MASK}@", text)


def create_db_engine(target: Target, *, read_only: bool, busy_timeout_s: float = 30.0) -> Engine:
    """An engine for one short-lived session.  read_only makes the database itself refuse writes."""
    if target.backend == "sqlite":
        return _sqlite_engine(target, read_only=read_only, busy_timeout_s=busy_timeout_s)
    connect_args: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT_S}
    if target.backend == "postgresql":
        # cursor_tuple_fraction=1: our streamed reports are always read to the end, so plan for total time;
        # the default (0.1) picks nested loops over the conflict aggregates that take minutes at 60k groups.
        options = "-c application_name=mlflow-ws-admin -c cursor_tuple_fraction=1"
        if read_only:
            options += " -c default_transaction_read_only=on"
        connect_args["options"] = options
    else:
        connect_args["charset"] = "utf8mb4"
        if read_only:
            connect_args["init_command"] = "SET SESSION TRANSACTION READ ONLY"
    engine = create_engine(target.url, connect_args=connect_args)
    if target.backend == "mysql":
        from mlflow_ws_admin.dialects.mysql import tune_session

        event.listen(engine, "connect", tune_session)
    return engine


SQLITE_APPLY_CACHE_KIB = 64 * 1024


def _sqlite_engine(target: Target, *, read_only: bool, busy_timeout_s: float) -> Engine:
    path = target.sqlite_path
    assert path is not None
    if not path.exists():
        raise DatabaseError(f"SQLite database file not found: {path} (nothing was created)")
    if path.is_dir():
        raise DatabaseError(f"SQLite path is a directory, not a database file: {path}")
    mode = "ro" if read_only else "rw"
    file_uri = f"file:{quote(str(path.resolve()))}?mode={mode}"

    def connect() -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN ourselves, so apply can take BEGIN IMMEDIATE.
        conn = sqlite3.connect(
            file_uri, uri=True, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA foreign_keys = OFF")  # nothing cascades: apply updates every table itself
        if not read_only:
            # A 64 MB page cache (default 2 MB) keeps apply's index updates and conflict sorts in memory: ~8%
            # faster.  Dry runs keep the default, so their memory stays small.
            conn.execute(f"PRAGMA cache_size = -{SQLITE_APPLY_CACHE_KIB}")
        return conn

    # NullPool: every connect() is a connection of its own, closed for real.  SQLAlchemy's default for this
    # database-less URL is the in-memory pool, which keeps one connection per thread and closes other threads'
    # connections when it fills up: fatal with the artifact check's reader thread.
    engine = create_engine("sqlite+pysqlite://", creator=connect, poolclass=NullPool)

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Reads take no lock; apply asks for the write lock up front (BEGIN IMMEDIATE) so no other writer
        # can slip in between its re-check and its commit.
        wants_lock = conn.get_execution_options().get(WRITE_LOCK_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if wants_lock and not read_only else "BEGIN")

    return engine
