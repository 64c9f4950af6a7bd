"""The auth migration's plan: the RBAC rows translated for workspaces off, computed without writing.

Translation, per role of workspace W (every grant ends up resolved in ``default``):

- a per-id grant (``experiment``, ``42``) is kept, renamed with its resource by the tracking migration, when W
  owned that resource; otherwise it never applied (MLflow resolved it in the resource's own workspace) and is
  dropped, as ``dangling``;
- a wildcard grant of a per-id type becomes per-id grants on exactly the resources W owned, unless W owned every
  resource of that type (then nothing can widen and it stays a wildcard);
- a workspace-scope grant (``workspace``, ``*``) or a wildcard-only sub-resource tier (``run``, ``trace``, ...)
  cannot be narrowed once there is one workspace: a blocking finding, unless W is the only workspace, or
  ``--widen`` keeps it (now default-wide) or ``--drop`` removes it;
- a positive permission below ``default_permission`` is raised to it: MLflow floors positive grants at
  ``default_permission`` (``floor_positive_permission``), and the server must run with ``default_permission =
  NO_PERMISSIONS`` afterwards, because with workspaces off it applies to every resource without a grant.

Roles then collide by name: translated grant sets that are equal merge (assignments follow), the others are
renamed with the ``--rename-conflicts`` template; a role of ``default`` keeps its name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mlflow_ws_admin.auth.rules import (
    DEFAULT_WORKSPACE,
    DENY,
    EMPTY,
    NO_PERMISSIONS,
    PER_ID_TYPES,
    PRIORITY,
    TIER_TYPES,
    WILDCARD,
    WORKSPACE_TYPE,
    AuthConfig,
    Grant,
    GrantIndex,
    floor,
    higher,
    is_admin_grant,
    resource_permission,
    tier_permission,
)
from mlflow_ws_admin.auth.state import JOURNAL, AuthState, Ownership, Role
from mlflow_ws_admin.common.display import quoted
from mlflow_ws_admin.engine.rename_template import RenameTemplate

#: What the server must be configured with once workspaces are off (basic_auth.ini).
DEFAULT_PERMISSION_AFTER = NO_PERMISSIONS
#: The role that keeps grant_default_workspace_access's effect on `default`'s resources.
DEFAULT_ACCESS_ROLE = "default-workspace-access"
ROLE_NAME_LENGTH = 255

WIDEN, DROP, BLOCKING = "widened", "dropped", "blocking"
#: a change a blocking finding would cause if dropped: shown, neither accepted nor a verification failure
PENDING = "blocked: what --drop would do"


@dataclass(frozen=True)
class Finding:
    """A grant that cannot keep its meaning, or a role name that cannot be kept."""

    kind: str  # workspace-scope | wildcard-only | role-name-conflict
    workspace: str
    role: str
    grant: Grant | None
    users: tuple[str, ...]
    detail: str
    resolution: str  # blocking | widened | dropped


@dataclass(frozen=True)
class RoleAfter:
    """One role after the move (its workspace is ``default``)."""

    #: the existing role row kept (None: a new row)
    keep_id: int | None
    name: str
    description: str | None
    #: every role row folded into this one (merged roles are deleted, their assignments follow)
    sources: tuple[Role, ...]
    grants: frozenset[Grant]
    members: frozenset[int]


@dataclass(frozen=True)
class Change:
    """One difference between what a user resolved before and after."""

    username: str
    subject: str
    before: str
    after: str
    accepted_by: str | None  # --widen | --drop | None (a verification failure)


@dataclass(frozen=True)
class AuthPlan:
    state: AuthState
    ownership: Ownership
    config: AuthConfig
    roles: tuple[RoleAfter, ...]
    findings: tuple[Finding, ...]
    dangling: tuple[tuple[Role, Grant], ...]
    changes: tuple[Change, ...]
    widen: bool = False
    drop: bool = False
    compared: int = 0
    admins: tuple[str, ...] = field(default_factory=tuple)

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.resolution == BLOCKING)

    @property
    def unaccepted(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.accepted_by is None)

    @property
    def nothing_to_do(self) -> bool:
        """Every role is in `default` already: migrated (a second run must not re-translate its per-id grants,
        which now name resources of every former workspace)."""
        return all(r.workspace == DEFAULT_WORKSPACE for r in self.state.roles)


# --- translation -----------------------------------------------------------------------------------------------


def _combine(grants: Iterable[Grant]) -> frozenset[Grant]:
    """One grant per (type, pattern), as the unique key wants it: DENY wins, else the highest (the fold's
    result is the same, since MLflow folds every matching grant of a user's roles alike)."""
    best: dict[tuple[str, str], str] = {}
    for g in grants:
        key = (g.resource_type, g.pattern)
        have = best.get(key)
        if have is None:
            best[key] = g.permission
        elif DENY in (have, g.permission):
            best[key] = DENY
        else:
            best[key] = higher(have, g.permission)
    return frozenset(Grant(t, p, perm) for (t, p), perm in best.items())


def _floored(grant: Grant, config: AuthConfig) -> str:
    if grant.resource_type == WORKSPACE_TYPE:
        return grant.permission  # the workspace slot only takes USE or MANAGE, and create ignores the floor
    return floor(grant.permission, config.default_permission)


@dataclass
class _Translated:
    grants: list[Grant] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    dangling: list[Grant] = field(default_factory=list)


def _translate_role(
    role: Role,
    grants: Iterable[Grant],
    usernames: Sequence[str],
    ownership: Ownership,
    present: frozenset[str],
    config: AuthConfig,
    *,
    widen: bool,
    drop: bool,
) -> _Translated:
    out = _Translated()
    others = sorted(present - {role.workspace})
    resolution = WIDEN if widen else DROP if drop else BLOCKING
    for grant in sorted(grants):
        permission = _floored(grant, config)
        if grant.resource_type in PER_ID_TYPES:
            if grant.pattern == WILDCARD:
                if ownership.only_in(grant.resource_type, role.workspace):
                    out.grants.append(Grant(grant.resource_type, WILDCARD, permission))
                else:
                    owned = ownership.in_workspace(grant.resource_type, role.workspace)
                    out.grants.extend(Grant(r.resource_type, r.after_id, permission) for r in owned)
                continue
            match = ownership.find(grant.resource_type, role.workspace, grant.pattern)
            if match is None:
                out.dangling.append(grant)
            else:
                out.grants.append(Grant(grant.resource_type, match.after_id, permission))
            continue
        if grant.pattern != WILDCARD or not others:
            out.grants.append(Grant(grant.resource_type, grant.pattern, permission))
            continue
        kind = "workspace-scope" if grant.resource_type == WORKSPACE_TYPE else "wildcard-only"
        if is_admin_grant(grant):
            widens = f"admin (MANAGE on every resource) of every workspace, also {', '.join(others)}"
        elif grant.resource_type == WORKSPACE_TYPE:
            widens = f"{grant.permission} of the whole server, also of {', '.join(others)}"
        else:
            widens = f"{grant.permission} on every {grant.resource_type}, also in {', '.join(others)}"
        out.findings.append(
            Finding(kind, role.workspace, role.name, grant, tuple(usernames), f"would widen to {widens}", resolution)
        )
        if resolution == WIDEN:
            out.grants.append(Grant(grant.resource_type, grant.pattern, permission))
    return out


def build_auth_plan(
    state: AuthState,
    ownership: Ownership,
    config: AuthConfig,
    *,
    template: RenameTemplate | None = None,
    widen: bool = False,
    drop: bool = False,
    case_insensitive_names: bool = False,
) -> AuthPlan:
    """The translated rows, the findings, and every effective-permission difference (only reads)."""
    names = {u.id: u.username for u in state.users}
    present = ownership.workspaces() | state.workspaces()
    translated: dict[int, frozenset[Grant]] = {}
    findings: list[Finding] = []
    dangling: list[tuple[Role, Grant]] = []
    for role in state.roles:
        members = sorted(names[u] for u in state.members(role.id) if u in names)
        t = _translate_role(
            role, state.grants.get(role.id, ()), members, ownership, present, config, widen=widen, drop=drop
        )
        translated[role.id] = _combine(t.grants)
        findings.extend(t.findings)
        dangling.extend((role, g) for g in t.dangling)

    findings.extend(_resource_collisions(ownership))
    findings.extend(_ownership_unknown(state, ownership))
    fold: Callable[[str], str] = str.casefold if case_insensitive_names else str
    roles, name_findings = _merge_and_rename(state, translated, template, fold)
    findings.extend(name_findings)
    compensation = _default_access_role(state, ownership, config, roles, fold)
    if compensation is not None:
        roles.append(compensation)

    if all(r.workspace == DEFAULT_WORKSPACE for r in state.roles):
        return AuthPlan(state, ownership, config, (), (), (), (), widen, drop)
    changes, compared = compare(view_of(state), _planned_view(roles), state, ownership, config, findings)
    return AuthPlan(
        state=state,
        ownership=ownership,
        config=config,
        roles=tuple(roles),
        findings=tuple(findings),
        dangling=tuple(dangling),
        changes=tuple(changes),
        widen=widen,
        drop=drop,
        compared=compared,
        admins=tuple(sorted(u.username for u in state.users if u.is_admin)),
    )


def _ownership_unknown(state: AuthState, ownership: Ownership) -> list[Finding]:
    """Roles outside `default` while the tracking database, read without its migration's journal, has every
    resource in `default`: which workspace owned what is gone, and every such role would silently lose its
    wildcard grants."""
    if ownership.source == JOURNAL or ownership.workspaces() - {DEFAULT_WORKSPACE}:
        return []
    outside = sorted({r.workspace for r in state.roles} - {DEFAULT_WORKSPACE})
    if not outside:
        return []
    return [
        Finding(
            "ownership-unknown",
            outside[0],
            "",
            None,
            (),
            f"roles of {', '.join(outside)} remain, but the tracking database has every resource in default: "
            "pass the tracking migration's journal (--tracking-journal FILE) so that what each workspace owned "
            "is known",
            BLOCKING,
        )
    ]


def _resource_collisions(ownership: Ownership) -> list[Finding]:
    """Resources of different workspaces that would share one id in `default`: a grant on one would name both.
    The tracking migration renames them (its --rename-conflicts); its journal tells this run the new names."""
    owners: dict[tuple[str, str], set[str]] = {}
    for r in ownership.resources:
        owners.setdefault((r.resource_type, r.after_id), set()).add(r.workspace)
    return [
        Finding(
            "resource-collision",
            sorted(workspaces)[0],
            "",
            None,
            (),
            f"{rtype} {quoted(rid)} exists in {', '.join(sorted(workspaces))}: migrate the tracking database first "
            "(db migrate-to-default-workspace --rename-conflicts ... --journal FILE) and pass --tracking-journal FILE",
            BLOCKING,
        )
        for (rtype, rid), workspaces in sorted(owners.items())
        if len(workspaces) > 1 and rtype != "prompt"  # prompts are registered models: reported once
    ]


def _merge_and_rename(
    state: AuthState,
    translated: Mapping[int, frozenset[Grant]],
    template: RenameTemplate | None,
    fold_name: Callable[[str], str],
) -> tuple[list[RoleAfter], list[Finding]]:
    groups: dict[str, list[Role]] = {}
    for role in state.roles:
        groups.setdefault(fold_name(role.name), []).append(role)
    taken = {fold_name(r.name) for r in state.roles}
    roles: list[RoleAfter] = []
    findings: list[Finding] = []
    names = {u.id: u.username for u in state.users}
    for _key, group in sorted(groups.items()):
        classes: dict[frozenset[Grant], list[Role]] = {}
        for role in sorted(group, key=lambda r: (r.workspace != DEFAULT_WORKSPACE, r.id)):
            classes.setdefault(translated[role.id], []).append(role)
        ordered = sorted(classes.items(), key=lambda kv: (kv[1][0].workspace != DEFAULT_WORKSPACE, kv[1][0].id))
        for index, (grants, sources) in enumerate(ordered):
            keeper = sources[0]
            members = frozenset(u for r in sources for u in state.members(r.id))
            name: str | None = keeper.name
            if len(ordered) > 1 and not (index == 0 and keeper.workspace == DEFAULT_WORKSPACE):
                name, why = None, "no --rename-conflicts template given"
                if template is not None:
                    name, why = template.unique_name(
                        keeper.name, keeper.workspace, taken, fold=fold_name, max_length=ROLE_NAME_LENGTH
                    )
                if name is None:
                    findings.append(
                        Finding(
                            "role-name-conflict",
                            keeper.workspace,
                            keeper.name,
                            None,
                            tuple(sorted(names[u] for u in members if u in names)),
                            f"roles named {quoted(keeper.name)} in {', '.join(sorted({r.workspace for r in group}))} "
                            f"grant different things once translated; cannot rename: {why}",
                            BLOCKING,
                        )
                    )
                    name = keeper.name
                else:
                    taken.add(fold_name(name))
            roles.append(RoleAfter(keeper.id, name, keeper.description, tuple(sources), grants, members))
    return roles, findings


def _default_access_role(
    state: AuthState, ownership: Ownership, config: AuthConfig, roles: list[RoleAfter], fold: Callable[[str], str]
) -> RoleAfter | None:
    """``grant_default_workspace_access`` gave every user ``default_permission`` on `default`'s resources
    without a grant; with ``default_permission = NO_PERMISSIONS`` afterwards, per-id grants keep exactly that."""
    if not config.grant_default_workspace_access or config.default_permission in (NO_PERMISSIONS, DENY):
        return None
    grants = frozenset(
        Grant(r.resource_type, r.after_id, config.default_permission)
        for r in ownership.resources
        if r.workspace == DEFAULT_WORKSPACE
    )
    if not grants:
        return None
    taken = {fold(r.name) for r in roles}
    name, _ = RenameTemplate("{name}-{n}").unique_name(DEFAULT_ACCESS_ROLE, DEFAULT_WORKSPACE, taken, fold=fold)
    if fold(DEFAULT_ACCESS_ROLE) not in taken:
        name = DEFAULT_ACCESS_ROLE
    members = frozenset(u.id for u in state.users if not u.is_admin)
    return RoleAfter(None, name or DEFAULT_ACCESS_ROLE, "grant_default_workspace_access, kept", (), grants, members)


# --- the resolution model: before and after ---------------------------------------------------------------------

#: (workspace, grants, members) per role: what resolution needs of the rows
View = Sequence[tuple[str, frozenset[Grant], frozenset[int]]]
#: what a user resolves: ("resource", type, owner workspace, id before) or ("tier", type, workspace)
Key = tuple[str, str, str, str]


def view_of(state: AuthState) -> View:
    """What resolution needs of RBAC rows as read (before the move, or read back after it)."""
    return [(r.workspace, state.grants.get(r.id, frozenset()), state.members(r.id)) for r in state.roles]


def _planned_view(roles: Iterable[RoleAfter]) -> View:
    return [(DEFAULT_WORKSPACE, r.grants, r.members) for r in roles]


def _indexes(view: View) -> dict[int, dict[str, GrantIndex]]:
    """Per user, per workspace: the grants of all their roles there, folded once."""
    out: dict[int, dict[str, GrantIndex]] = {}
    for workspace, grants, members in view:
        role = GrantIndex.of(grants)
        for user_id in members:
            out.setdefault(user_id, {}).setdefault(workspace, GrantIndex()).merge(role)
    return out


def _user_permissions(
    held: Mapping[str, GrantIndex],
    ownership: Ownership,
    present: Sequence[str],
    config: AuthConfig,
    *,
    workspaces_enabled: bool,
) -> dict[Key, str | None]:
    """One user's permission on every resource, and on each tier per former workspace.  With workspaces off,
    every grant is resolved in ``default``; the keys stay the before-state's, so two answers compare key by key."""
    out: dict[Key, str | None] = {}
    for r in ownership.resources:
        where = r.workspace if workspaces_enabled else DEFAULT_WORKSPACE
        out["resource", r.resource_type, r.workspace, r.before_id] = resource_permission(
            held.get(where, EMPTY),
            r.resource_type,
            r.before_id if workspaces_enabled else r.after_id,
            config=config,
            workspaces_enabled=workspaces_enabled,
            workspace=where,
        )
    for workspace in present:
        index = held.get(workspace if workspaces_enabled else DEFAULT_WORKSPACE, EMPTY)
        for tier in TIER_TYPES:
            out["tier", tier, workspace, WILDCARD] = tier_permission(index, tier, config=config)
    return out


def effective_permissions(
    view: View, state: AuthState, ownership: Ownership, config: AuthConfig, *, workspaces_enabled: bool
) -> dict[tuple[int, Key], str | None]:
    """Every non-admin user's answers (server admins bypass every check, before and after)."""
    present = sorted(ownership.workspaces() | state.workspaces())
    indexes = _indexes(view)
    return {
        (user.id, key): permission
        for user in state.users
        if not user.is_admin
        for key, permission in _user_permissions(
            indexes.get(user.id, {}), ownership, present, config, workspaces_enabled=workspaces_enabled
        ).items()
    }


def compare(
    before_view: View,
    after_view: View,
    state: AuthState,
    ownership: Ownership,
    config: AuthConfig,
    findings: Iterable[Finding],
) -> tuple[list[Change], int]:
    """Every difference between the before-state (workspaces on, ``config``) and the after-state (workspaces off,
    ``default_permission = NO_PERMISSIONS``), user by user so memory holds one user's answers at a time; and how
    many (user, key) pairs were compared."""
    present = sorted(ownership.workspaces() | state.workspaces())
    config_after = AuthConfig(DEFAULT_PERMISSION_AFTER, config.grant_default_workspace_access)
    before_ix, after_ix = _indexes(before_view), _indexes(after_view)
    scopes = _accepted_scopes(findings, state, ownership)
    changes: list[Change] = []
    compared = 0
    for user in state.users:
        if user.is_admin:
            continue
        before = _user_permissions(before_ix.get(user.id, {}), ownership, present, config, workspaces_enabled=True)
        after = _user_permissions(after_ix.get(user.id, {}), ownership, present, config_after, workspaces_enabled=False)
        compared += len(before)
        changes.extend(
            _change(user.username, key, was, after[key], scopes) for key, was in before.items() if was != after[key]
        )
    return changes, compared


def _accepted_scopes(
    findings: Iterable[Finding], state: AuthState, ownership: Ownership
) -> dict[str, list[tuple[frozenset[str], str, str | None, bool]]]:
    """Per username, what a widened or dropped grant may change: (workspaces, how, tier type or None for every
    resource, same workspace only)."""
    scopes: dict[str, list[tuple[frozenset[str], str, str | None, bool]]] = {}
    for f in findings:
        if f.grant is None:
            continue
        # a blocking grant is left out of the translation: what its members lose is shown, pending a choice
        how = {WIDEN: "--widen", DROP: "--drop"}.get(f.resolution, PENDING)
        # --widen changes what the role's members resolve elsewhere; --drop what they resolved in its workspace
        tier = None if is_admin_grant(f.grant) else f.grant.resource_type
        for username in f.users:
            scopes.setdefault(username, []).append((frozenset({f.workspace}), how, tier, f.resolution != WIDEN))
    return scopes


def _change(
    username: str,
    key: Key,
    was: str | None,
    now: str | None,
    scopes: Mapping[str, list[tuple[frozenset[str], str, str | None, bool]]],
) -> Change:
    kind, rtype, workspace, _ = key
    accepted = None
    for workspaces, how, tier, same in scopes.get(username, ()):
        in_scope = (workspace in workspaces) if same else (workspace not in workspaces)
        if in_scope and (tier is None or (kind == "tier" and rtype == tier)):
            accepted = how
            break
    return Change(username, subject(key), _show(was), _show(now), accepted)


def subject(key: Key) -> str:
    """How a report names what was compared."""
    kind, rtype, workspace, rid = key
    if kind == "resource":
        return f"{rtype} {rid} ({workspace})"
    if rtype == WORKSPACE_TYPE:
        return f"workspace grant in {workspace}"
    return f"every {rtype} of {workspace} (tier)"


def _show(permission: str | None) -> str:
    return "inherits" if permission is None else permission


def gained(change: Change) -> bool:
    return PRIORITY.get(change.after, 0) > PRIORITY.get(change.before, 0)
