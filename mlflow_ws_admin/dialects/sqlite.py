"""SQLite: one writer at a time, taken with BEGIN IMMEDIATE; foreign keys are not enforced."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import ColumnElement
from sqlalchemy.engine import Connection

from mlflow_ws_admin.schema import ForeignKey

#: Our connections run with PRAGMA foreign_keys=OFF (SQLite's default), so nothing cascades and apply
#: updates every workspace table explicitly.
CASCADES_ON_UPDATE = False
#: Another connection may read while apply holds the write lock (until COMMIT needs it exclusively), and
#: sees the database as it was when locked: apply's artifact check reads beside it.
OTHER_SESSIONS_READ_LOCKED_TABLES = True


def lock_workspace_tables(conn: Connection, tables: Sequence[str], timeout_s: float) -> None:
    """Nothing to do: the engine begins apply transactions with BEGIN IMMEDIATE (the write lock), and the
    connection's busy timeout bounds the wait."""


def release_locks(conn: Connection) -> None:
    """The lock ends with the transaction."""


def missing_privileges(conn: Connection, updated: Mapping[str, str], altered: Sequence[str]) -> list[tuple[str, str]]:
    """SQLite has no privileges: a read-only file fails at BEGIN IMMEDIATE with its own clear error."""
    return []


def describe_lock_holders(conn: Connection, tables: Sequence[str]) -> str | None:
    """SQLite cannot tell which process holds its lock."""
    return None


def suspend_foreign_keys(conn: Connection, fks: Sequence[ForeignKey]) -> bool:
    """Foreign keys are off on our connections already.  Returns whether cascades still run: never."""
    return False


def restore_foreign_keys(conn: Connection, fks: Sequence[ForeignKey]) -> None:
    """Nothing was suspended."""


def row_hash_sum(columns: Sequence[ColumnElement]) -> ColumnElement | None:
    """SQLite has no md5(): the caller streams the rows and hashes them in Python."""
    return None
