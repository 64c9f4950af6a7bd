"""The auth migration's reports (text and the JSON document), from an AuthPlan; no database access."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.text import Text

from mlflow_ws_admin.auth.plan import (
    BLOCKING,
    DEFAULT_PERMISSION_AFTER,
    PER_USER_ROLE_NAME,
    AuthPlan,
    Change,
    gained,
    roles_by_workspace,
)
from mlflow_ws_admin.common.display import quoted, workspace_label
from mlflow_ws_admin.report.json_doc import SCHEMA_VERSION

if TYPE_CHECKING:
    from rich.console import Console

    from mlflow_ws_admin.auth.apply import AuthApplyResult

#: how many changes per user the text report lists without --verbose
SHOWN_CHANGES = 5


def _grant(g: Any) -> str:
    return f"({g.resource_type}, {quoted(g.pattern)}, {g.permission})"


def render_auth_plan(plan: AuthPlan, console: Console, *, verbose: bool, dry_run: bool) -> None:
    out = console.print
    state = plan.state
    if plan.nothing_to_do:
        out(Text(_summary(plan, dry_run)))
        others = sorted(plan.ownership.workspaces() - {"default"})
        if others and plan.state.roles:
            out(
                Text(
                    f"Note: resources are still in {', '.join(workspace_label(w) for w in others)}. Roles in default "
                    "are taken as migrated: if this database never was, its wildcard grants will cover those "
                    "resources once workspaces are off."
                )
            )
        return
    out(Text(f"Roles: {len(state.roles)} in {len(state.workspaces())} workspace(s) -> {len(plan.roles)} in default"))
    for role in plan.roles:
        if role.keep_id is None:
            what = "new"
            origin = ""
        else:
            origin = ", ".join(f"{workspace_label(s.workspace)}/{quoted(s.name)}" for s in role.sources)
            if len(role.sources) > 1:
                what = "merged"
            elif role.sources[0].name != role.name:
                what = "renamed"
            elif role.sources[0].workspace != "default":
                what = "moved"
            else:
                what = "kept"
        line = f"  {what:8} {quoted(role.name)}: {len(role.grants)} grant(s), {len(role.members)} member(s)"
        out(Text(line + (f"  <- {origin}" if origin and what != "kept" else "")))
    if plan.dangling:
        out(Text(f"Dropped {len(plan.dangling)} grant(s) that never applied (no such resource in their workspace):"))
        for role, g in plan.dangling[: None if verbose else SHOWN_CHANGES]:
            out(Text(f"  {workspace_label(role.workspace)}/{quoted(role.name)} {_grant(g)}"))
        if not verbose and len(plan.dangling) > SHOWN_CHANGES:
            out(Text(f"  ... {len(plan.dangling) - SHOWN_CHANGES} more (--verbose lists all)"))
    if plan.findings:
        out(Text("Findings:"))
        for f in plan.findings:
            grant = f" {_grant(f.grant)}" if f.grant else ""
            users = ", ".join(quoted(u) for u in f.users) or "no users"
            if f.grant is None and f.kind != "role-name-conflict":
                out(Text(f"  [{f.resolution}] {f.kind}: {f.detail}"))
                continue
            out(
                Text(
                    f"  [{f.resolution}] {f.kind}: role {quoted(f.role)} of {workspace_label(f.workspace)}{grant}"
                    f" (users: {users}) {f.detail}"
                )
            )
        if plan.blocking:
            out(
                Text(
                    "  Fix: --widen keeps such grants default-wide, --drop removes them, --per-resource turns a "
                    "workspace admin into MANAGE on each of its workspace's resources; role name conflicts need "
                    "--rename-conflicts TEMPLATE (e.g. '{name} ({workspace})')."
                )
            )
    if plan.choices:
        out(Text("The choices for grants that name no resource, side by side (permission changes):"))
        for option, gains, losses in plan.choices:
            out(Text(f"  {option:22} {gains} gained, {losses} lost"))
    _render_changes(plan.changes, console, verbose=verbose)
    if plan.unaccepted_gains:
        out(
            Text(
                f"Blocked: {len(plan.unaccepted_gains)} change(s) give access nobody had (listed above as NOT "
                "ACCEPTED): only --widen, which keeps the grants that prevented it, accepts them."
            )
        )
    if plan.admins:
        admins = ", ".join(quoted(a) for a in plan.admins)
        out(Text(f"Server admins (every permission, before and after; not compared): {admins}"))
    if plan.config.default_permission != DEFAULT_PERMISSION_AFTER:
        out(
            Text(
                f"Required: set default_permission = {DEFAULT_PERMISSION_AFTER} in basic_auth.ini (now "
                f"{plan.config.default_permission}) before restarting without workspaces: with workspaces off it "
                "applies to every resource without a grant. Positive grants below it were raised to it."
            )
        )
    _render_new_users(plan, console)
    for name, rows in plan.legacy:
        if rows:
            out(
                Text(f"Ignored: legacy table {name} ({rows} row(s)): MLflow 3.17.2 no longer reads it; left untouched.")
            )
    out(Text(_summary(plan, dry_run)))


def _render_new_users(plan: AuthPlan, console: Console) -> None:
    """What a user created after the migration gets, and which roles carry each former workspace's grants."""
    console.print(
        Text(
            f"New users: with default_permission = {DEFAULT_PERMISSION_AFTER} a user created after the migration "
            f"gets nothing on existing resources, and MANAGE on what they create (MLflow's creator grant, in their "
            f"own {PER_USER_ROLE_NAME} role of default). To give one what a former workspace's members had, "
            "assign the roles that carry its grants:"
        )
    )
    for workspace, names in roles_by_workspace(plan).items():
        console.print(Text(f"  {workspace_label(workspace)}: {', '.join(quoted(n) for n in names)}"))


def _render_changes(changes: tuple[Change, ...], console: Console, *, verbose: bool) -> None:
    if not changes:
        console.print(Text("Effective permissions: unchanged for every user and resource."))
        return
    console.print(Text("Effective permission changes (who gains or loses what):"))
    per_user: dict[str, list[Change]] = {}
    for c in changes:
        per_user.setdefault(c.username, []).append(c)
    for username, items in sorted(per_user.items()):
        gains = sum(1 for c in items if gained(c))
        console.print(Text(f"  {quoted(username)}: {gains} gained, {len(items) - gains} lost or changed"))
        for c in items[: None if verbose else SHOWN_CHANGES]:
            how = c.accepted_by or "NOT ACCEPTED"
            what = "".join(
                f", {verb} {', '.join(actions)}"
                for verb, actions in (("gains", c.gained), ("loses", c.lost))
                if actions
            )
            console.print(Text(f"    {c.subject}: {c.before} -> {c.after}{what} [{how}]"))
        if not verbose and len(items) > SHOWN_CHANGES:
            console.print(Text(f"    ... {len(items) - SHOWN_CHANGES} more (--verbose lists all)"))


def _summary(plan: AuthPlan, dry_run: bool) -> str:
    blocking = len(plan.blocking)
    bad = len(plan.unaccepted)
    if blocking or plan.unaccepted_gains:
        gains = f"{len(plan.unaccepted_gains)} unaccepted gain(s)" if plan.unaccepted_gains else ""
        what = " and ".join(x for x in (f"{blocking} finding(s)" if blocking else "", gains) if x)
        return f"Blocked: {what} must be resolved (nothing changed)."
    if bad:
        return f"Verification failed: {bad} effective permission(s) would change unaccepted (nothing changed)."
    if plan.nothing_to_do:
        return "Nothing to migrate: every role is in default already."
    accepted = Counter(c.accepted_by for c in plan.changes)
    tail = "".join(f", {n} change(s) accepted by {how}" for how, n in sorted(accepted.items()))
    verb = "Ready" if dry_run else "Plan"
    return (
        f"{verb}: {len(plan.roles)} role(s) into default; {plan.compared} user/resource permission(s) compared{tail}."
    )


def render_auth_applied(result: AuthApplyResult, console: Console) -> None:
    console.print(
        Text(
            f"Applied: {result.roles_written} role(s) in default ({result.roles_deleted} merged away), "
            f"{result.grants_written} grant(s), {result.assignments_written} assignment(s); verified."
        )
    )


def auth_document(
    plan: AuthPlan | None,
    *,
    status: str,
    exit_code: int,
    dry_run: bool,
    database: dict[str, Any],
    tracking_database: dict[str, Any],
    result: AuthApplyResult | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "exit_code": int(exit_code),
        "dry_run": dry_run,
        "database": database,
        "tracking_database": tracking_database,
        "default_permission_after": DEFAULT_PERMISSION_AFTER,
        "roles": [],
        "findings": [],
        "dangling_grants": [],
        "changes": [],
        "compared": 0,
        "choices": [],
        "ignored_legacy_tables": [],
        "new_users": None,
        "applied": None,
    }
    if message is not None:
        doc["message"] = message
    if plan is not None:
        doc["roles"] = [
            {
                "id": r.keep_id,
                "name": r.name,
                "from": [{"id": s.id, "workspace": s.workspace, "name": s.name} for s in r.sources],
                "grants": [
                    {"resource_type": g.resource_type, "resource_pattern": g.pattern, "permission": g.permission}
                    for g in sorted(r.grants)
                ],
                "members": sorted(plan.state.user(u).username for u in r.members),
            }
            for r in plan.roles
        ]
        doc["findings"] = [
            {
                "kind": f.kind,
                "workspace": f.workspace,
                "role": f.role,
                "grant": None
                if f.grant is None
                else {
                    "resource_type": f.grant.resource_type,
                    "resource_pattern": f.grant.pattern,
                    "permission": f.grant.permission,
                },
                "users": list(f.users),
                "detail": f.detail,
                "resolution": f.resolution,
                "blocking": f.resolution == BLOCKING,
            }
            for f in plan.findings
        ]
        doc["dangling_grants"] = [
            {"workspace": r.workspace, "role": r.name, "resource_type": g.resource_type, "resource_pattern": g.pattern}
            for r, g in plan.dangling
        ]
        doc["changes"] = [
            {
                "user": c.username,
                "subject": c.subject,
                "before": c.before,
                "after": c.after,
                "accepted_by": c.accepted_by,
                "gained": list(c.gained),
                "lost": list(c.lost),
            }
            for c in plan.changes
        ]
        doc["compared"] = plan.compared
        doc["choices"] = [{"option": o, "gained": g, "lost": lost} for o, g, lost in plan.choices]
        doc["ignored_legacy_tables"] = [{"table": t, "rows": n} for t, n in plan.legacy]
        doc["new_users"] = {
            "default_permission": DEFAULT_PERMISSION_AFTER,
            "creator_role": PER_USER_ROLE_NAME,
            "roles_by_workspace": roles_by_workspace(plan),
        }
    if result is not None:
        doc["applied"] = {
            "roles": result.roles_written,
            "roles_deleted": result.roles_deleted,
            "grants": result.grants_written,
            "assignments": result.assignments_written,
        }
    return doc
