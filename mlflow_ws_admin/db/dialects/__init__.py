"""The places where SQLite, PostgreSQL and MySQL/MariaDB truly differ: one class per backend.

``Dialect`` holds the generic behaviour; each backend's subclass overrides what its database does
differently (in the style of alembic's ``DefaultImpl``).  ``for_backend`` returns an instance.
"""

from __future__ import annotations

from mlflow_ws_admin.db.dialects.base import (
    CONNECT_TIMEOUT_S,
    SESSION_SETTLE_S,
    WRITE_LOCK_OPTION,
    Dialect,
    ErrorKind,
)

__all__ = [
    "CONNECT_TIMEOUT_S",
    "SESSION_SETTLE_S",
    "WRITE_LOCK_OPTION",
    "Dialect",
    "ErrorKind",
    "for_backend",
    "for_driver_error",
]


def for_backend(backend: str) -> Dialect:
    """The dialect for 'sqlite', 'postgresql' or 'mysql'."""
    if backend == "sqlite":
        from mlflow_ws_admin.db.dialects.sqlite import SQLiteDialect as cls
    elif backend == "postgresql":
        from mlflow_ws_admin.db.dialects.postgresql import PostgreSQLDialect as cls
    elif backend == "mysql":
        from mlflow_ws_admin.db.dialects.mysql import MySQLDialect as cls
    else:
        raise ValueError(f"unsupported backend {backend!r}")
    return cls()


_DRIVER_BACKENDS = {"sqlite3": "sqlite", "psycopg2": "postgresql", "pymysql": "mysql"}


def for_driver_error(exc: BaseException) -> Dialect:
    """The dialect whose driver raised ``exc`` (the generic one when no known driver did)."""
    orig = getattr(exc, "orig", None) or exc
    package = type(orig).__module__.split(".")[0]
    backend = _DRIVER_BACKENDS.get(package)
    return for_backend(backend) if backend else Dialect()
