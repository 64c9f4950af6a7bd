"""Apply an AuthPlan on the transaction core: re-read under the lock, rewrite the RBAC rows, read them back,
recompute every user's effective permissions from what was written and compare them with the before-state.
Any difference the plan did not accept (``--widen`` / ``--drop``) rolls everything back (exit 4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import column, delete, insert, select, table, update
from sqlalchemy.engine import Connection, Engine

from mlflow_ws_admin.auth.plan import (
    PENDING,
    AuthPlan,
    Change,
    compare,
    view_of,
)
from mlflow_ws_admin.auth.rules import DEFAULT_WORKSPACE
from mlflow_ws_admin.auth.state import AuthState, read_auth_state
from mlflow_ws_admin.common.errors import ExitStatus, WsAdminError
from mlflow_ws_admin.db.transaction import LockScope, locked_transaction

if TYPE_CHECKING:
    from mlflow_ws_admin.engine.journal import JournalWriter

ROLES = table("roles", column("id"), column("name"), column("workspace"), column("description"))
GRANTS = table(
    "role_permissions",
    column("id"),
    column("role_id"),
    column("resource_type"),
    column("resource_pattern"),
    column("permission"),
)
ASSIGNMENTS = table("user_role_assignments", column("id"), column("user_id"), column("role_id"))
#: every row the migration rewrites, per table, for the journal and restore (FK order: parents first)
JOURNALED = (ROLES, GRANTS, ASSIGNMENTS)


class AuthVerificationFailed(WsAdminError):
    """What was written does not resolve as the before-state did; rolled back."""

    exit_status = ExitStatus.VERIFICATION_FAILED

    def __init__(self, message: str, changes: tuple[Change, ...]) -> None:
        super().__init__(message)
        self.changes = changes


class AuthDrifted(WsAdminError):
    exit_status = ExitStatus.VERIFICATION_FAILED


@dataclass(frozen=True)
class AuthApplyResult:
    roles_written: int
    grants_written: int
    assignments_written: int
    roles_deleted: int


def lock_scope(dialect: str) -> LockScope:
    return LockScope(
        dialect,
        ("roles", "role_permissions", "user_role_assignments"),
        {"roles": "name", "role_permissions": "permission", "user_role_assignments": "role_id"},
        read_tables=("users",),
    )


def apply_auth_plan(
    engine: Engine,
    plan: AuthPlan,
    dialect: str,
    *,
    lock_timeout_s: float,
    journal: JournalWriter | None = None,
    ignore_other_sessions: bool = False,
    check: Callable[[Connection], None] | None = None,
) -> AuthApplyResult:
    """``check``: a hook run on the written rows before verification (tests use it to corrupt them)."""
    with locked_transaction(
        engine,
        lock_scope(dialect),
        suspendable=(),
        lock_timeout_s=lock_timeout_s,
        journal=journal,
        doing="migrating the auth database (rolled back: nothing was changed)",
        ignore_other_sessions=ignore_other_sessions,
    ) as tx:
        current = read_auth_state(tx.conn, check_tables=False)
        if current != plan.state:
            raise AuthDrifted("the auth database changed since it was read; rolled back, nothing changed: run again")
        if journal is not None:
            _journal_rows(tx.conn, journal, "before")
        result = _write(tx.conn, plan)
        if check is not None:
            check(tx.conn)
        written = read_auth_state(tx.conn, check_tables=False)
        verify(plan, written)
        if journal is not None:
            _journal_rows(tx.conn, journal, "after")
    return result


def _write(conn: Connection, plan: AuthPlan) -> AuthApplyResult:
    conn.execute(delete(GRANTS))
    conn.execute(delete(ASSIGNMENTS))
    kept = {r.keep_id for r in plan.roles if r.keep_id is not None}
    gone = [r.id for r in plan.state.roles if r.id not in kept]
    if gone:
        conn.execute(delete(ROLES).where(ROLES.c.id.in_(gone)))
    # Two steps, so that no intermediate state collides on (workspace, name): first a name no role can have.
    for role in plan.roles:
        if role.keep_id is not None:
            conn.execute(
                update(ROLES).where(ROLES.c.id == role.keep_id).values(name=f"mlflow-ws-admin renaming {role.keep_id}")
            )
    ids: dict[int, int] = {}
    for index, role in enumerate(plan.roles):
        if role.keep_id is not None:
            conn.execute(
                update(ROLES)
                .where(ROLES.c.id == role.keep_id)
                .values(name=role.name, workspace=DEFAULT_WORKSPACE, description=role.description)
            )
            ids[index] = role.keep_id
        else:
            conn.execute(
                insert(ROLES).values(name=role.name, workspace=DEFAULT_WORKSPACE, description=role.description)
            )
            ids[index] = int(
                conn.execute(
                    select(ROLES.c.id).where(ROLES.c.workspace == DEFAULT_WORKSPACE, ROLES.c.name == role.name)
                ).scalar_one()
            )
    grants = [
        {"role_id": ids[i], "resource_type": g.resource_type, "resource_pattern": g.pattern, "permission": g.permission}
        for i, role in enumerate(plan.roles)
        for g in sorted(role.grants)
    ]
    assignments = [{"user_id": u, "role_id": ids[i]} for i, role in enumerate(plan.roles) for u in sorted(role.members)]
    if grants:
        conn.execute(insert(GRANTS), grants)
    if assignments:
        conn.execute(insert(ASSIGNMENTS), assignments)
    return AuthApplyResult(len(plan.roles), len(grants), len(assignments), len(gone))


def verify(plan: AuthPlan, written: AuthState) -> None:
    """Recompute from the rows as written, with workspaces off; refuse any difference nobody accepted."""
    if any(r.workspace != DEFAULT_WORKSPACE for r in written.roles):
        raise AuthVerificationFailed("verification failed: a role is still outside `default`; rolled back", ())
    changes, _ = compare(view_of(plan.state), view_of(written), plan.state, plan.ownership, plan.config, plan.findings)
    bad = tuple(c for c in changes if c.accepted_by in (None, PENDING))
    if bad:
        first = bad[0]
        raise AuthVerificationFailed(
            f"verification failed: {len(bad)} effective permission(s) would change unaccepted (first: "
            f"{first.username} on {first.subject}: {first.before} -> {first.after}); rolled back, nothing changed",
            bad,
        )


def _journal_rows(conn: Connection, journal: JournalWriter, when: str) -> None:
    for t in JOURNALED:
        for row in conn.execute(select(t).order_by(t.c.id)).mappings():
            journal.write({"type": "auth_row", "when": when, "table": t.name, "row": dict(row)})
