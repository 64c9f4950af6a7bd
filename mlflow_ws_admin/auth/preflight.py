"""`db preflight --auth-uri`: what the auth migration would block on, as preflight checks (only reads)."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from mlflow_ws_admin.auth.plan import DEFAULT_PERMISSION_AFTER, build_auth_plan
from mlflow_ws_admin.auth.rules import AuthConfig
from mlflow_ws_admin.auth.state import read_auth_state, read_ownership
from mlflow_ws_admin.common.display import quoted, workspace_label
from mlflow_ws_admin.common.errors import NotAWorkspaceDatabase
from mlflow_ws_admin.engine.rename_template import RenameTemplate
from mlflow_ws_admin.findings.checks import FAIL, MAX_DETAILS, PASS, WARN, Check


def auth_checks(
    auth_conn: Connection,
    tracking_conn: Connection,
    config: AuthConfig,
    template: RenameTemplate | None = None,
    case_insensitive_names: bool = False,
    tracking_journal: str | None = None,
) -> list[Check]:
    """The auth migration's plan as checks: its blocking findings fail (exactly what makes
    ``auth migrate-to-default-workspace`` exit 1 without --widen/--drop), the config it needs warns."""
    try:
        state = read_auth_state(auth_conn)
    except NotAWorkspaceDatabase as exc:
        return [Check("auth database", FAIL, exc.message)]
    plan = build_auth_plan(
        state,
        read_ownership(tracking_conn, tracking_journal),
        config,
        template=template,
        case_insensitive_names=case_insensitive_names,
    )
    outside = sum(1 for r in state.roles if r.workspace != "default")
    checks = [Check("auth roles", PASS, f"{len(state.roles)} role(s), {outside} outside default")]
    blocking = plan.blocking
    if blocking:
        details = tuple(
            f"{f.kind}: {f.detail}"
            if f.grant is None and f.kind != "role-name-conflict"
            else f"{f.kind}: role {quoted(f.role)} of {workspace_label(f.workspace)} "
            f"(users: {', '.join(quoted(u) for u in f.users) or 'none'}) {f.detail}"
            for f in blocking[:MAX_DETAILS]
        )
        checks.append(
            Check(
                "auth findings",
                FAIL,
                f"{len(blocking)} blocking finding(s): resolve with --widen or --drop (grants), "
                "--rename-conflicts (role names), or the tracking migration first (resources)",
                details,
            )
        )
    else:
        checks.append(Check("auth findings", PASS, "no workspace-scope or wildcard-only grant to widen or drop"))
    if plan.unaccepted:
        checks.append(Check("auth verification", FAIL, f"{len(plan.unaccepted)} permission(s) would change"))
    if config.default_permission != DEFAULT_PERMISSION_AFTER:
        checks.append(
            Check(
                "auth default_permission",
                WARN,
                f"set default_permission = {DEFAULT_PERMISSION_AFTER} in basic_auth.ini (now "
                f"{config.default_permission}) before restarting without workspaces",
            )
        )
    return checks
