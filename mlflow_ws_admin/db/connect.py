"""Turn the URI an MLflow user types into a SQLAlchemy engine, without ever echoing its password.

- Bare ``postgresql://`` / ``mysql://`` resolve (in SQLAlchemy 2.1) to psycopg 3 / mysqlclient, which are
  not our dependencies; map them to the bundled psycopg2 / pymysql when the default driver is missing.
- How each backend connects (read-only sessions, timeouts, SQLite's ``file:`` URIs that never create a file)
  is its dialect's business (``dialects``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from mlflow_ws_admin.common.errors import UsageError, mask_password_in
from mlflow_ws_admin.db.dialects import for_backend
from mlflow_ws_admin.db.target import Target

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
WORKSPACE_STORE_URI_ENV = "MLFLOW_WORKSPACE_STORE_URI"

_BACKENDS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
_DEFAULT_DRIVER_MODULE = {"postgresql": "psycopg", "mysql": "MySQLdb"}
_BUNDLED_DRIVER = {"postgresql": "psycopg2", "mysql": "pymysql"}


def resolve_target(uri: str | None, environ: dict[str, str] | None = None) -> Target:
    """Parse the URI (or $MLFLOW_TRACKING_URI) into a Target; UsageError for anything unusable, naming the
    variable when the value came from it."""
    env = os.environ if environ is None else environ
    raw = uri if uri else env.get(TRACKING_URI_ENV, "")
    if not raw.strip():
        raise UsageError(f"no database URI given and ${TRACKING_URI_ENV} is not set")
    try:
        return _parse_target(raw)
    except UsageError as exc:
        if uri:
            raise
        raise UsageError(f"${TRACKING_URI_ENV} (used because no URI was given): {exc.message}") from None


def resolve_workspace_store(uri: str | None, environ: dict[str, str] | None = None) -> Target | None:
    """The workspace catalog's database when it is not the tracking database: ``--workspace-store-uri``, else
    $MLFLOW_WORKSPACE_STORE_URI (MLflow's own order), else None (the tracking database's catalog)."""
    env = os.environ if environ is None else environ
    raw = uri if uri else env.get(WORKSPACE_STORE_URI_ENV, "")
    if not raw.strip():
        return None
    try:
        return _parse_target(raw)
    except UsageError as exc:
        where = "--workspace-store-uri" if uri else f"${WORKSPACE_STORE_URI_ENV}"
        raise UsageError(f"{where}: {exc.message}") from None


def _parse_target(raw: str) -> Target:
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):
        raise UsageError(
            f"not a database URI: {mask_password_in(raw)!r} (expected e.g. sqlite:///mlflow.db, "
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


def create_db_engine(target: Target, *, read_only: bool, busy_timeout_s: float = 30.0) -> Engine:
    """An engine for one short-lived session.  read_only makes the database itself refuse writes."""
    return for_backend(target.backend).create_engine(target, read_only=read_only, busy_timeout_s=busy_timeout_s)
