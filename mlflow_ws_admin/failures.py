"""Turn driver exceptions into one-line, password-free errors with the right exit code."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from mlflow_ws_admin.connect import MASK
from mlflow_ws_admin.errors import DatabaseError, LockTimeout, WsAdminError

_PG_LOCK_NOT_AVAILABLE = "55P03"
_PG_INSUFFICIENT_PRIVILEGE = "42501"
_PG_READ_ONLY = "25006"
_MYSQL_LOCK_WAIT_TIMEOUT = 1205
_MYSQL_PRIVILEGE = {1142, 1143, 1044, 1227}
_MYSQL_READ_ONLY = 1792


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret, raw or URL-encoded, with the mask."""
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, MASK)
    return text


def driver_message(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's statement dump and background links."""
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, BaseException) and len(orig.args) >= 2 and isinstance(orig.args[0], int):
        text = str(orig.args[1])  # pymysql: (code, message)
    else:
        text = str(orig)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(orig).__name__


def translate(exc: SQLAlchemyError, *, doing: str) -> WsAdminError:
    """Map a SQLAlchemy/driver error to the error the CLI reports (the message is not yet scrubbed)."""
    message = driver_message(exc)
    orig = getattr(exc, "orig", None) if isinstance(exc, DBAPIError) else None
    pgcode = getattr(orig, "pgcode", None)
    mysql_code = orig.args[0] if orig is not None and orig.args and isinstance(orig.args[0], int) else None
    lowered = message.lower()
    if pgcode == _PG_LOCK_NOT_AVAILABLE or mysql_code == _MYSQL_LOCK_WAIT_TIMEOUT or "database is locked" in lowered:
        return LockTimeout(f"timed out waiting for table locks while {doing}: {message}")
    if pgcode == _PG_INSUFFICIENT_PRIVILEGE or mysql_code in _MYSQL_PRIVILEGE:
        return DatabaseError(f"the database user lacks a privilege needed for {doing}: {message}")
    if pgcode == _PG_READ_ONLY or mysql_code == _MYSQL_READ_ONLY or "readonly database" in lowered:
        return DatabaseError(f"the database refused a write while {doing}: {message}")
    if "file is not a database" in lowered or "malformed" in lowered:
        return DatabaseError(f"not a usable SQLite database ({message})")
    return DatabaseError(f"database error while {doing}: {message}")
