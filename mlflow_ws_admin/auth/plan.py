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

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mlflow_ws_admin.auth.rules import (
    ACTIONS,
    DEFAULT_WORKSPACE,
    DELETE_CASCADE,
    DENY,
    EMPTY,
    MANAGE,
    NO_PERMISSIONS,
    PER_ID_TYPES,
    PRIORITY,
    TIER_PARENT,
    WILDCARD,
    WORKSPACE_TYPE,
    AuthConfig,
    Grant,
    GrantIndex,
    allowed,
    floor,
    governing,
    higher,
    is_admin_grant,
    resource_permission,
)
from mlflow_ws_admin.auth.state import JOURNAL, AuthState, Ownership, Role
from mlflow_ws_admin.common.display import quoted
from mlflow_ws_admin.engine.rename_template import RenameTemplate

#: What the server must be configured with once workspaces are off (basic_auth.ini).
DEFAULT_PERMISSION_AFTER = NO_PERMISSIONS
#: The role that keeps grant_default_workspace_access's effect on `default`'s resources.
DEFAULT_ACCESS_ROLE = "default-workspace-access"
ROLE_NAME_LENGTH = 255

WIDEN, DROP, BLOCKING, PER_RESOURCE = "widened", "dropped", "blocking", "per-resource"
#: a per-user role's clash on one key, kept most restrictive
MERGED, MERGED_BY = "most restrictive kept", "per-user merge"
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
    accepted_by: str | None  # --widen | --drop | --per-resource | per-user merge | PENDING | None
    #: the actions (read, use, update, delete, manage) allowed after and not before, and the reverse
    gained: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    #: what was compared (not reported: ``subject`` names it)
    key: Key | None = field(default=None, compare=False, repr=False)


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
    #: what each choice for the grants that cannot keep their meaning would change: (option, gains, losses)
    choices: tuple[tuple[str, int, int], ...] = ()
    #: the legacy per-resource tables MLflow no longer reads, with their row counts (left untouched)
    legacy: tuple[tuple[str, int], ...] = ()
    per_resource: bool = False

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.resolution == BLOCKING)

    @property
    def unaccepted(self) -> tuple[Change, ...]:
        """Losses nothing accepted: the translation is wrong (verification failure)."""
        return tuple(c for c in self.changes if c.accepted_by is None and not c.gained)

    @property
    def unaccepted_gains(self) -> tuple[Change, ...]:
        """Access nobody had before, not accepted by --widen: blocking."""
        return tuple(c for c in self.changes if c.accepted_by is None and c.gained)

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
    per_resource: bool = False,
    keep_vetoes: bool = False,
) -> _Translated:
    """``keep_vetoes``: keep the wildcards that veto a delete (``_vetoes_delete``) instead of narrowing them."""
    out = _Translated()
    others = sorted(present - {role.workspace})
    resolution = WIDEN if widen else DROP if drop else BLOCKING
    for grant in sorted(grants):
        permission = _floored(grant, config)
        if grant.resource_type in PER_ID_TYPES:
            if grant.pattern == WILDCARD:
                if ownership.only_in(grant.resource_type, role.workspace):
                    out.grants.append(Grant(grant.resource_type, WILDCARD, permission))
                elif keep_vetoes and _vetoes_delete(grant.resource_type, permission):
                    out.findings.append(_kept_veto(role, grant, permission, usernames, others))
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
        if per_resource and grant.resource_type == WORKSPACE_TYPE:
            out.findings.append(_per_resource(role, grant, usernames, ownership, out.grants))
            continue
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


#: per-id types whose wildcard is also a tier of a parent's delete: deleting an experiment needs delete on the
#: ``scorer`` wildcard, which MLflow reads as a wildcard only (per-id scorer grants veto nothing)
_CASCADE_PER_ID_TYPES = frozenset(t for cascade in DELETE_CASCADE.values() for t in cascade if t in PER_ID_TYPES)
#: the parent types whose delete such a wildcard can veto
_VETOED_TYPES = frozenset(p for p, cascade in DELETE_CASCADE.items() if _CASCADE_PER_ID_TYPES.intersection(cascade))


def _vetoes_delete(resource_type: str, permission: str) -> bool:
    """A wildcard of this type and permission vetoes deleting its parents (and narrowed, would no longer)."""
    return resource_type in _CASCADE_PER_ID_TYPES and "delete" not in allowed(permission)


def _kept_veto(role: Role, grant: Grant, permission: str, usernames: Sequence[str], others: Sequence[str]) -> Finding:
    """``--widen``: a vetoing wildcard kept whole, because narrowed to per-id grants it would let its members
    delete what they could not."""
    parents = " and ".join(sorted(p for p, cascade in DELETE_CASCADE.items() if grant.resource_type in cascade))
    return Finding(
        "wildcard-only",
        role.workspace,
        role.name,
        grant,
        tuple(usernames),
        f"vetoes deleting its {parents}s, which per-id grants cannot: kept, it widens to {permission} on every "
        f"{grant.resource_type}, also in {', '.join(others)}",
        WIDEN,
    )


def _lost_vetoes(changes: Iterable[Change]) -> frozenset[str]:
    """The workspaces whose resources a user may newly delete, without a finding that accepts it: where a
    narrowed wildcard's veto may have been lost."""
    return frozenset(
        c.key[2]
        for c in changes
        if c.key is not None and c.key[0] == "resource" and c.key[1] in _VETOED_TYPES
        if "delete" in c.gained and c.accepted_by is None
    )


def _per_resource(
    role: Role, grant: Grant, usernames: Sequence[str], ownership: Ownership, into: list[Grant]
) -> Finding:
    """``--per-resource``: a workspace admin's MANAGE becomes per-id MANAGE on every resource its workspace owned
    (what a wildcard gets); any other level of the workspace slot gates creation only (``create`` checks its
    ``can_use``), and creation is open with workspaces off, so it is no longer needed."""
    if not is_admin_grant(grant):
        return Finding(
            "workspace-scope",
            role.workspace,
            role.name,
            grant,
            tuple(usernames),
            "gates creation only, which is open with workspaces off: no longer needed, removed",
            PER_RESOURCE,
        )
    owned = [r for t in PER_ID_TYPES for r in ownership.in_workspace(t, role.workspace)]
    into.extend(Grant(r.resource_type, r.after_id, MANAGE) for r in owned)
    return Finding(
        "workspace-scope",
        role.workspace,
        role.name,
        grant,
        tuple(usernames),
        f"becomes MANAGE on each of the {len(owned)} resource(s) of {role.workspace}",
        PER_RESOURCE,
    )


def build_auth_plan(
    state: AuthState,
    ownership: Ownership,
    config: AuthConfig,
    *,
    template: RenameTemplate | None = None,
    widen: bool = False,
    drop: bool = False,
    per_resource: bool = False,
    case_insensitive_names: bool = False,
    with_choices: bool = True,
    keep_vetoes: frozenset[str] = frozenset(),
) -> AuthPlan:
    """The translated rows, the findings, and every effective-permission difference (only reads).
    ``keep_vetoes``: the workspaces whose vetoing wildcards stay whole (``--widen`` plans again with those whose
    narrowing let someone delete what they could not)."""
    names = {u.id: u.username for u in state.users}
    present = ownership.workspaces() | state.workspaces()
    translated: dict[int, frozenset[Grant]] = {}
    findings: list[Finding] = []
    dangling: list[tuple[Role, Grant]] = []
    for role in state.roles:
        members = sorted(names[u] for u in state.members(role.id) if u in names)
        t = _translate_role(
            role,
            state.grants.get(role.id, ()),
            members,
            ownership,
            present,
            config,
            widen=widen,
            drop=drop,
            per_resource=per_resource,
            keep_vetoes=role.workspace in keep_vetoes,
        )
        translated[role.id] = _combine(t.grants)
        findings.extend(t.findings)
        dangling.extend((role, g) for g in t.dangling)

    findings.extend(_resource_collisions(ownership))
    findings.extend(_ownership_unknown(state, ownership))
    fold: Callable[[str], str] = str.casefold if case_insensitive_names else str
    roles, name_findings = _merge_and_rename(state, translated, template, fold)
    per_user, clashes = _merge_per_user_roles(state, translated)
    roles.extend(per_user)
    findings.extend(name_findings)
    findings.extend(clashes)
    compensation = _default_access_role(state, ownership, config, roles, fold)
    if compensation is not None:
        roles.append(compensation)

    if all(r.workspace == DEFAULT_WORKSPACE for r in state.roles):
        return AuthPlan(state, ownership, config, (), (), (), (), widen, drop)
    changes, compared = compare(view_of(state), _planned_view(roles), state, ownership, config, findings)
    if widen and (lost := _lost_vetoes(changes) - keep_vetoes):
        return build_auth_plan(
            state,
            ownership,
            config,
            template=template,
            widen=widen,
            drop=drop,
            per_resource=per_resource,
            case_insensitive_names=case_insensitive_names,
            with_choices=with_choices,
            keep_vetoes=keep_vetoes | lost,
        )
    choices: tuple[tuple[str, int, int], ...] = ()
    if with_choices and any(f.kind in ("workspace-scope", "wildcard-only") for f in findings):
        choices = tuple(
            _choice(
                option,
                build_auth_plan(
                    state,
                    ownership,
                    config,
                    template=template,
                    with_choices=False,
                    case_insensitive_names=case_insensitive_names,
                    **flags,
                ),
            )
            for option, flags in CHOICES
        )
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
        choices=choices,
        per_resource=per_resource,
    )


#: The three choices for a grant that names no resource, compared side by side in the report.
CHOICES: tuple[tuple[str, dict[str, bool]], ...] = (
    ("--widen", {"widen": True}),
    ("--drop", {"drop": True}),
    ("--per-resource --drop", {"per_resource": True, "drop": True}),
)


def _choice(option: str, plan: AuthPlan) -> tuple[str, int, int]:
    return option, sum(1 for c in plan.changes if c.gained), sum(1 for c in plan.changes if c.lost)


def roles_by_workspace(plan: AuthPlan) -> dict[str, list[str]]:
    """Per former workspace, the roles (after the move) that carry its grants: what to add a new user to, to
    give them what that workspace's members had.  Per-user roles are left out (they belong to one user)."""
    out: dict[str, set[str]] = {}
    for role in plan.roles:
        if is_per_user_role(role.name):
            continue
        for source in role.sources:
            out.setdefault(source.workspace, set()).add(role.name)
    return {w: sorted(names) for w, names in sorted(out.items())}


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
        # a prompt is a registered model: one name space
        rtype = "registered_model" if r.resource_type == "prompt" else r.resource_type
        owners.setdefault((rtype, r.after_id), set()).add(r.workspace)
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
        if len(workspaces) > 1
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
    for key, group in sorted(groups.items()):
        if is_per_user_role(key):
            continue  # merged by _merge_per_user_roles, never renamed
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


#: MLflow's per-user role (``SqlAlchemyStore._SYNTHETIC_ROLE_NAME_RE``): its revoke, rename-follow and delete
#: clean-up only touch roles so named, and ``grant_user_permission`` writes into the active workspace's one.
PER_USER_ROLE = re.compile(r"^__user_\d+__$")
PER_USER_ROLE_NAME = "__user_<id>__"


def is_per_user_role(name: str) -> bool:
    return PER_USER_ROLE.match(name) is not None


def _merge_per_user_roles(
    state: AuthState, translated: Mapping[int, frozenset[Grant]]
) -> tuple[list[RoleAfter], list[Finding]]:
    """Each user's ``__user_<id>__`` roles of every workspace become the one of `default`, under that name (a
    renamed one would be invisible to MLflow's revoke and clean-up).  Their translated grants name distinct
    resources; two on one key with different permissions keep the most restrictive, reported."""
    groups: dict[str, list[Role]] = {}
    for role in state.roles:
        if is_per_user_role(role.name):
            groups.setdefault(role.name, []).append(role)
    names = {u.id: u.username for u in state.users}
    roles: list[RoleAfter] = []
    findings: list[Finding] = []
    for name, group in sorted(groups.items()):
        group.sort(key=lambda r: (r.workspace != DEFAULT_WORKSPACE, r.id))
        members = frozenset(u for r in group for u in state.members(r.id))
        users = tuple(sorted(names[u] for u in members if u in names))
        given: dict[tuple[str, str], dict[str, str]] = {}  # key -> workspace -> permission
        for role in group:
            for g in translated[role.id]:
                given.setdefault((g.resource_type, g.pattern), {})[role.workspace] = g.permission
        grants: set[Grant] = set()
        for (rtype, pattern), by_workspace in sorted(given.items()):
            kept = min(by_workspace.values(), key=lambda p: PRIORITY.get(p, 0))
            grants.add(Grant(rtype, pattern, kept))
            if len(set(by_workspace.values())) > 1:
                each = ", ".join(f"{w} {p}" for w, p in sorted(by_workspace.items()))
                findings.append(
                    Finding(
                        "per-user-clash",
                        sorted(by_workspace)[0],
                        name,
                        Grant(rtype, pattern, kept),
                        users,
                        f"the per-user roles give {each} on one key: the most restrictive, {kept}, is kept",
                        MERGED,
                    )
                )
        keeper = group[0]
        roles.append(RoleAfter(keeper.id, name, keeper.description, tuple(group), frozenset(grants), members))
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
#: what a user resolves: ("resource", type, owner workspace, id before), or ("sub", tier, owner workspace, the
#: parent's id before) for a tier of one resource (every run of an experiment, every version of a model, ...)
Key = tuple[str, str, str, str]
#: what a key resolves to: the governing permission, and the actions allowed there
Answer = tuple[str, frozenset[str]]
#: wildcard grants that decide a tier or a delete cascade of a resource (``scorer`` is in the experiment's)
_SUB_TYPES = frozenset(TIER_PARENT) | {t for cascade in DELETE_CASCADE.values() for t in cascade}


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


#: one resource as resolution reads it: (owner workspace, type, (type, id before), (type, id after), its key)
_Row = tuple[str, str, tuple[str, str], tuple[str, str], Key]


def _rows(ownership: Ownership) -> list[_Row]:
    """Built once per comparison rather than once per user and state: the per-user loop only looks them up."""
    return [
        (
            r.workspace,
            r.resource_type,
            (r.resource_type, r.before_id),
            (r.resource_type, r.after_id),
            ("resource", r.resource_type, r.workspace, r.before_id),
        )
        for r in ownership.resources
    ]


def _answers(
    held: Mapping[str, GrantIndex],
    rows: Sequence[_Row],
    config: AuthConfig,
    tiers: Mapping[str, frozenset[str]],
    *,
    workspaces_enabled: bool,
) -> dict[Key, Answer]:
    """One user's answer on every resource, and on the tiers ``tiers`` names (per owner workspace) of each.  A
    tier without a grant, before and after, follows its resource: the resource's answer covers it.  With
    workspaces off every grant is resolved in ``default``; the keys stay the before-state's."""
    out: dict[Key, Answer] = {}
    # which types' delete a held cascade tier may veto, per workspace resolved in (only a tier the user holds a
    # grant on can: the others fall back to the resource's own permission)
    vetoes = {
        w: frozenset(p for p, cascade in DELETE_CASCADE.items() if any(t in ix.wildcard for t in cascade))
        for w, ix in held.items()
        if not ix.admin
    }
    # A resource's answers depend on its id only through the user's per-id grants on it: resolved once per
    # (owner workspace, type, per-id fold), then looked up (most resources share a handful of such triples).
    resolved: dict[tuple[str, str, str | None], tuple[Answer, tuple[tuple[str, Answer], ...]]] = {}
    for owner, rtype, id_before, id_after, key in rows:
        slot = id_before if workspaces_enabled else id_after
        where = owner if workspaces_enabled else DEFAULT_WORKSPACE
        index = held.get(where, EMPTY)
        own = index.by_id.get(slot) if slot[1] != WILDCARD else None
        memo = (owner, rtype, own)
        found = resolved.get(memo)
        if found is None:
            found = resolved[memo] = _resolve(
                index, rtype, slot[1], owner, where, config, tiers, vetoes, workspaces_enabled
            )
        answer, subs = found
        out[key] = answer
        for tier, sub in subs:
            out["sub", tier, owner, key[3]] = sub
    return out


def _resolve(
    index: GrantIndex,
    resource_type: str,
    resource_id: str,
    owner: str,
    where: str,
    config: AuthConfig,
    tiers: Mapping[str, frozenset[str]],
    vetoes: Mapping[str, frozenset[str]],
    workspaces_enabled: bool,
) -> tuple[Answer, tuple[tuple[str, Answer], ...]]:
    """One resource's answer, and its tiers' (those ``tiers`` names for its owner workspace)."""
    permission = resource_permission(
        index, resource_type, resource_id, config=config, workspaces_enabled=workspaces_enabled, workspace=where
    )
    actions = allowed(permission)
    # deleting also needs delete on every tier it destroys (each falling back to the resource)
    if (
        resource_type in vetoes.get(where, ())
        and "delete" in actions
        and any(
            "delete" not in allowed(governing(index, t, permission, config=config))
            for t in DELETE_CASCADE[resource_type]
        )
    ):
        actions -= {"delete"}
    # every operation on a tier also requires read on the resource itself
    readable = "read" in actions
    subs = []
    for tier in tiers.get(owner, ()):
        if TIER_PARENT.get(tier) != resource_type:
            continue
        decided = governing(index, tier, permission, config=config)
        subs.append((tier, (decided, allowed(decided) if readable else frozenset())))
    return (permission, actions), tuple(subs)


def _tiers_held(before: Mapping[str, GrantIndex], after: Mapping[str, GrantIndex]) -> dict[str, frozenset[str]]:
    """Per workspace, the tiers a user holds a grant on before (there) or after (in ``default``)."""
    later = {t for t in after.get(DEFAULT_WORKSPACE, EMPTY).wildcard if t in TIER_PARENT}
    workspaces = set(before) | {DEFAULT_WORKSPACE}
    return {w: frozenset(later | {t for t in before.get(w, EMPTY).wildcard if t in TIER_PARENT}) for w in workspaces}


def _all_tiers(ownership: Ownership) -> dict[str, frozenset[str]]:
    return {w: frozenset(TIER_PARENT) for w in ownership.workspaces()}


def effective_permissions(
    view: View, state: AuthState, ownership: Ownership, config: AuthConfig, *, workspaces_enabled: bool
) -> dict[tuple[int, Key], str]:
    """Every non-admin user's governing permission on every resource and on every tier of each (server admins
    bypass every check, before and after)."""
    indexes = _indexes(view)
    tiers = _all_tiers(ownership)
    rows = _rows(ownership)
    return {
        (user.id, key): answer[0]
        for user in state.users
        if not user.is_admin
        for key, answer in _answers(
            indexes.get(user.id, {}), rows, config, tiers, workspaces_enabled=workspaces_enabled
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
    """Every (user, resource or tier of a resource) whose allowed actions differ between the before-state
    (workspaces on, ``config``) and the after-state (workspaces off, ``default_permission = NO_PERMISSIONS``),
    user by user so memory holds one user's answers at a time; and how many (user, key) pairs were compared."""
    config_after = AuthConfig(DEFAULT_PERMISSION_AFTER, config.grant_default_workspace_access)
    before_ix, after_ix = _indexes(before_view), _indexes(after_view)
    scopes = _accepted_scopes(findings)
    rows = _rows(ownership)
    changes: list[Change] = []
    compared = 0
    for user in state.users:
        if user.is_admin:
            continue
        held_before, held_after = before_ix.get(user.id, {}), after_ix.get(user.id, {})
        tiers = _tiers_held(held_before, held_after)
        before = _answers(held_before, rows, config, tiers, workspaces_enabled=True)
        after = _answers(held_after, rows, config_after, tiers, workspaces_enabled=False)
        compared += len(before)
        changes.extend(
            _change(user.username, key, was, after[key], scopes)
            for key, was in before.items()
            if was[1] != after[key][1] and not _follows_parent(key, before, after)
        )
    return changes, compared


def _follows_parent(key: Key, before: Mapping[Key, Answer], after: Mapping[Key, Answer]) -> bool:
    """A tier whose permission is its resource's, before and after: its change is the resource's, listed once."""
    kind, tier, workspace, rid = key
    if kind != "sub":
        return False
    parent = ("resource", TIER_PARENT[tier], workspace, rid)
    return before[key][0] == before[parent][0] and after[key][0] == after[parent][0]


@dataclass(frozen=True)
class _Scope:
    """What one finding's resolution may change for one user."""

    #: the workspaces whose resources it may change (None: any)
    workspaces: frozenset[str] | None
    how: str
    #: the resource or tier types it may change (None: any)
    types: frozenset[str] | None
    #: whether it may also give access (only --widen does)
    gains: bool


def _types_of(grant: Grant) -> frozenset[str] | None:
    """The keys a grant decides: every key for a workspace admin; a tier's own keys and the resources whose
    delete cascade it is part of; a per-id grant its type and that type's tiers."""
    if is_admin_grant(grant) or grant.resource_type == WORKSPACE_TYPE:
        return None
    t = grant.resource_type
    return frozenset(
        {t, TIER_PARENT.get(t, t)}
        | {parent for parent, cascade in DELETE_CASCADE.items() if t in cascade}
        | {tier for tier, parent in TIER_PARENT.items() if parent == t}
    )


def _accepted_scopes(findings: Iterable[Finding]) -> dict[str, list[_Scope]]:
    scopes: dict[str, list[_Scope]] = {}
    # a per-user merge names its own cause before a --widen that also reaches the key
    for f in sorted(findings, key=lambda f: f.resolution != MERGED):
        if f.grant is None:
            continue
        types = _types_of(f.grant)
        if f.resolution == WIDEN:
            # what the widened grant now decides outside its workspace
            scope = _Scope(None, "--widen", types, True)
        elif f.resolution == MERGED:
            scope = _Scope(None, MERGED_BY, types, False)
        else:
            # a blocking grant is left out of the translation: what its members lose is shown, pending a choice
            how = {DROP: "--drop", PER_RESOURCE: "--per-resource"}.get(f.resolution, PENDING)
            scope = _Scope(frozenset({f.workspace}), how, types, how == PENDING)
        for username in f.users:
            scopes.setdefault(username, []).append(scope)
    return scopes


def _change(username: str, key: Key, was: Answer, now: Answer, scopes: Mapping[str, list[_Scope]]) -> Change:
    _, rtype, workspace, _ = key
    gained_actions = tuple(a for a in ACTIONS if a in now[1] and a not in was[1])
    lost_actions = tuple(a for a in ACTIONS if a in was[1] and a not in now[1])
    accepted = None
    for scope in scopes.get(username, ()):
        if scope.workspaces is not None and workspace not in scope.workspaces:
            continue
        if scope.types is not None and rtype not in scope.types:
            continue
        if gained_actions and not scope.gains:
            continue  # a gain is accepted by --widen only
        accepted = scope.how
        break
    return Change(username, subject(key), was[0], now[0], accepted, gained_actions, lost_actions, key)


def subject(key: Key) -> str:
    """How a report names what was compared."""
    kind, rtype, workspace, rid = key
    if kind == "resource":
        return f"{rtype} {rid} ({workspace})"
    return f"every {rtype} of {TIER_PARENT[rtype]} {rid} ({workspace})"


def gained(change: Change) -> bool:
    return bool(change.gained)
