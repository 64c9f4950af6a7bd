"""Driver errors translated into the tool's errors: the dialect of the driver that raised one says what its
codes mean (lock timeout, privilege, read-only, not a database)."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from mlflow_ws_admin.common.errors import DatabaseError, LockTimeout, WsAdminError, driver_message
from mlflow_ws_admin.db.dialects import for_driver_error


def translate(exc: SQLAlchemyError, *, doing: str) -> WsAdminError:
    """Map a SQLAlchemy/driver error to the error the CLI reports (the message is not yet scrubbed).  The
    dialect of the driver that raised it says what its codes mean."""
    message = driver_message(exc)
    kind = for_driver_error(exc).classify(exc)
    if kind == "lock_timeout":
        return LockTimeout(f"timed out waiting for table locks while {doing}: {message}")
    if kind == "privilege":
        return DatabaseError(f"the database user lacks a privilege needed for {doing}: {message}")
    if kind == "read_only":
        return DatabaseError(f"the database refused a write while {doing}: {message}")
    if kind == "not_a_database":
        return DatabaseError(f"not a usable SQLite database ({message})")
    return DatabaseError(f"database error while {doing}: {message}")
