"""The one locked-transaction core that every change runs on (migrate's apply, restore, and later moves).

It owns, in this order: the privilege pre-check, the write lock and table locks (``--lock-timeout``), FK
suspension and its re-check, the journal's seal + fsync before COMMIT and its ``complete`` mark after,
holding Ctrl-C from COMMIT on, and translating driver errors into the tool's errors.  The caller's body only
reads and moves rows on the locked connection.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from mlflow_ws_admin.common.errors import DatabaseError, LockTimeout, OtherSessions
from mlflow_ws_admin.db.dialects import WRITE_LOCK_OPTION, Dialect, for_backend
from mlflow_ws_admin.db.translate import translate

if TYPE_CHECKING:
    from mlflow_ws_admin.db.schema import ForeignKey, WorkspaceSchema


class Journal(Protocol):
    """What the core needs of a journal (``engine.journal.JournalWriter``): on disk before COMMIT, removed on a
    rollback, marked complete after the commit."""

    def seal(self) -> None: ...

    def abandon(self) -> None: ...

    def complete(self) -> None: ...


@dataclass
class Locked:
    """What the body of a locked transaction works with."""

    conn: Connection
    dialect: Dialect
    schema: WorkspaceSchema | LockScope
    #: the FKs the body may suspend (declared up front: the privilege check needs them)
    suspendable: tuple[ForeignKey, ...]
    suspended: bool = field(default=False)
    cascades: bool = field(default=True)

    def suspend_foreign_keys(self) -> bool:
        """Suspend the declared FKs until just before COMMIT; returns whether the others still cascade.  A
        second call (renames suspend them early) only answers."""
        if not self.suspended:
            self.suspended = True
            self.cascades = self.dialect.suspend_foreign_keys(self.conn, self.suspendable)
        return self.cascades


def locked_tables(schema: WorkspaceSchema) -> list[str]:
    return [t.name for t in schema.tables] + [schema.catalog.table]


@dataclass(frozen=True)
class LockScope:
    """What a change locks and updates, for a database that is no tracking schema (the basic-auth database)."""

    dialect: str
    tables: tuple[str, ...]
    #: table -> a column the change updates there (the privilege check asks for UPDATE on it)
    updated: Mapping[str, str]
    #: tables the body only reads (MySQL's LOCK TABLES must name every table a locked session touches)
    read_tables: tuple[str, ...] = ()


def _scope(schema: WorkspaceSchema | LockScope) -> LockScope:
    if isinstance(schema, LockScope):
        return schema
    updated = {wt.name: wt.workspace_columns[0] for wt in schema.tables}
    updated[schema.catalog.table] = schema.catalog.name_column
    return LockScope(schema.dialect, tuple(locked_tables(schema)), updated)


@contextmanager
def locked_transaction(
    engine: Engine,
    schema: WorkspaceSchema | LockScope,
    *,
    suspendable: Sequence[ForeignKey],
    lock_timeout_s: float,
    journal: Journal | None,
    doing: str,
    ignore_other_sessions: bool = False,
    read_tables: Sequence[str] = (),
    write_tables: Sequence[str] = (),
) -> Iterator[Locked]:
    """Run the body under the locks in one transaction; COMMIT when it returns, roll back when it raises.

    ``doing`` names the operation in error messages, e.g. "applying (rolled back: nothing was applied)".
    Unless ``ignore_other_sessions``, another session connected to the database (a tracking server that still
    runs, with workspaces on) makes it refuse before anything is locked.  ``read_tables``: tables without a
    workspace column that the body reads under the lock (a selective move's references); ``write_tables``:
    tables without one that it updates (the stored artifact URIs ``--artifact-policy relocate`` rewrites)."""
    scope = _scope(schema)
    dialect = for_backend(scope.dialect)
    engine.dispose()  # our own idle connections (the plan's) are not "other sessions"
    try:
        with engine.connect().execution_options(**{WRITE_LOCK_OPTION: True}) as conn:
            try:
                with conn.begin():
                    if not ignore_other_sessions:
                        _refuse_other_sessions(conn, dialect)
                    _check_privileges(conn, dialect, scope, suspendable)
                    dialect.lock_workspace_tables(
                        conn,
                        [*scope.tables, *(t for t in write_tables if t not in scope.tables)],
                        lock_timeout_s,
                        [t for t in (*read_tables, *scope.read_tables) if t not in write_tables],
                    )
                    locked = Locked(conn, dialect, schema, tuple(suspendable))
                    yield locked
                    if locked.suspended:
                        dialect.restore_foreign_keys(conn, locked.suspendable)
                    if journal:
                        journal.seal()  # on disk before the data changes
                    _hold_interrupts()  # only COMMIT is left
            except BaseException:
                if journal:
                    journal.abandon()
                # An interrupt mid-statement may have left the connection unusable; the server drops the
                # session's locks with it, and an error here must not hide the one that got us here.
                with contextlib.suppress(SQLAlchemyError), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a driver's notes on the cursor the interrupt cut short
                    dialect.release_locks(conn)
                raise
            _commits.append(None)  # committed: from here on nothing may say "rolled back"
            with contextlib.suppress(SQLAlchemyError):  # the locks end with the session anyway
                dialect.release_locks(conn)
        if journal:
            journal.complete()
    except SQLAlchemyError as exc:
        if _caused_by_interrupt(exc):
            # Ctrl-C mid-statement broke the connection, and the rollback's own error took its place.
            raise KeyboardInterrupt from None
        error = translate(exc, doing=doing)
        if isinstance(error, LockTimeout):
            error = LockTimeout(error.message + _lock_holders(engine, dialect, scope))
        raise error from None
    finally:
        _release_interrupts()


def _caused_by_interrupt(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _refuse_other_sessions(conn: Connection, dialect: Dialect) -> None:
    others = dialect.other_sessions(conn)
    if others:
        shown = "; ".join(others[:5]) + (f"; and {len(others) - 5} more" if len(others) > 5 else "")
        raise OtherSessions(
            f"{len(others)} other session(s) are connected to this database: {shown}. Stop the tracking server "
            "(and anything else using the database) first, or pass --ignore-other-sessions; nothing was changed"
        )


def _check_privileges(conn: Connection, dialect: Dialect, scope: LockScope, suspendable: Sequence[ForeignKey]) -> None:
    """Refuse before locking anything, naming every missing privilege at once."""
    by_privilege: dict[str, list[str]] = {}
    for privilege, table in dialect.missing_privileges(conn, scope.updated, sorted({fk.child for fk in suspendable})):
        by_privilege.setdefault(privilege, []).append(table)
    if by_privilege:
        needs = "; ".join(f"{p} on {', '.join(sorted(tables))}" for p, tables in by_privilege.items())
        raise DatabaseError(f"the database user needs {needs}; nothing was changed")


def _lock_holders(engine: Engine, dialect: Dialect, scope: LockScope) -> str:
    """Who blocks us, asked on a new connection after the rollback; best effort."""
    try:
        with engine.connect() as conn:
            holders = dialect.describe_lock_holders(conn, scope.tables)
    except SQLAlchemyError:
        return ""
    return f"; blocked by {holders}" if holders else ""


#: How many locked transactions this process committed: an interrupt after one must not say "rolled back".
_commits: list[None] = []


def commit_count() -> int:
    return len(_commits)


#: The SIGINT handler to put back, while the core holds Ctrl-C during COMMIT.
_held_handler: list[Any] = []


def _hold_interrupts() -> None:
    """From COMMIT on, Ctrl-C is ignored: once sent, COMMIT may have succeeded, and an interrupt must never
    be reported as "rolled back" then.  Only the main thread can handle signals."""
    if threading.current_thread() is threading.main_thread():
        _held_handler.append(signal.signal(signal.SIGINT, signal.SIG_IGN))


def _release_interrupts() -> None:
    while _held_handler:
        signal.signal(signal.SIGINT, _held_handler.pop())
