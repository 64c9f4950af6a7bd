"""MLflow 3.17.2's basic-auth permission rules, re-implemented as pure functions (no MLflow import).

Read from MLflow 3.17.2 (file / function), and documented in docs/auth.md:

- ``server/auth/permissions.py``: levels ``NO_PERMISSIONS < READ < USE < EDIT < MANAGE`` (``PERMISSION_PRIORITY``),
  ``DENY`` below them all; ``TYPE`` says which resource types take per-id patterns and which are wildcard-only;
  ``matches``: a pattern applies when it is ``*`` or, for per-id types, equals the id.
- ``server/auth/requirements.py``: ``is_workspace_admin_grant`` (``workspace``, ``*``, ``MANAGE``);
  ``fold_grants_for_key``: among the matching grants of a key, any ``DENY`` wins, else the highest, else none;
  ``floor_positive_permission``: a positive result never resolves below ``default_permission`` (``DENY`` and
  ``NO_PERMISSIONS`` are exempt).
- ``server/auth/__init__.py``: ``resolve_permissions`` / ``_role_grant_for_resource``: only the grants of roles of
  the resource's own workspace count (``store.list_grants`` filters on ``roles.workspace``), and a workspace-admin
  grant there makes every key ``MANAGE`` before any other rule, ``DENY`` included; ``_role_permission_for`` and
  ``_get_role_permission_or_default``: no grant means ``NO_PERMISSIONS`` with workspaces on, unless
  ``grant_default_workspace_access`` is set and the resource is in ``default`` (then ``default_permission``), and
  ``default_permission`` with workspaces off, where every grant is resolved in ``default``
  (``get_anchor_workspace``).  Server admins (``users.is_admin``) bypass all of this (``sender_is_admin``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_WORKSPACE = "default"
WILDCARD = "*"

DENY = "DENY"
NO_PERMISSIONS = "NO_PERMISSIONS"
MANAGE = "MANAGE"
#: ``permissions.PERMISSION_PRIORITY``
PRIORITY = {DENY: -1, NO_PERMISSIONS: 0, "READ": 1, "USE": 2, "EDIT": 3, MANAGE: 4}
LEVELS = tuple(PRIORITY)

WORKSPACE_TYPE = "workspace"
#: ``permissions.TYPE``: the types whose grants may name one resource (wildcard and id)
PER_ID_TYPES = (
    "experiment",
    "registered_model",
    "prompt",
    "scorer",
    "gateway_secret",
    "gateway_endpoint",
    "gateway_model_definition",
    "mcp_server",
)
#: ``permissions.TYPE``: sub-resource tiers that only take ``*`` (plus the workspace slot itself)
WILDCARD_ONLY_TYPES = (
    "run",
    "trace",
    "assessment",
    "logged_model",
    "review_queue",
    "registered_model_version",
    "prompt_version",
    "scorer_version",
    "mcp_server_version",
)
#: Grants that cannot be narrowed to one former workspace once there is only one: compared per workspace.
TIER_TYPES = (WORKSPACE_TYPE, *WILDCARD_ONLY_TYPES)
#: The resource a tier falls back to when it holds no grant (the ``fallback_if_no_grant`` of every requirement
#: on that tier in ``server/auth/__init__.py``: runs, traces, ... to their experiment, versions to their model,
#: prompt, scorer or MCP server).
TIER_PARENT = {
    "run": "experiment",
    "trace": "experiment",
    "assessment": "experiment",
    "logged_model": "experiment",
    "review_queue": "experiment",
    "registered_model_version": "registered_model",
    "prompt_version": "prompt",
    "scorer_version": "scorer",
    "mcp_server_version": "mcp_server",
}
#: What deleting a resource also requires ``delete`` on, each tier falling back to the resource
#: (``validate_can_delete_experiment``'s ``_EXPERIMENT_CASCADE_TIERS``, which include the ``scorer`` wildcard,
#: and ``validate_can_delete_registered_model_or_prompt_cascade``).
DELETE_CASCADE = {
    "experiment": ("run", "trace", "logged_model", "assessment", "review_queue", "scorer", "scorer_version"),
    "registered_model": ("registered_model_version",),
    "prompt": ("prompt_version",),
}
#: ``Permission.can_*``, in the order the levels add them: READ reads, USE also uses, EDIT also updates, MANAGE
#: also deletes and manages.
ACTIONS = ("read", "use", "update", "delete", "manage")
_ACTIONS_OF = {"READ": 1, "USE": 2, "EDIT": 3, MANAGE: 5}


@dataclass(frozen=True, order=True)
class Grant:
    resource_type: str
    pattern: str
    permission: str


@dataclass(frozen=True)
class AuthConfig:
    """The two ``basic_auth.ini`` settings resolution depends on."""

    default_permission: str = "READ"
    grant_default_workspace_access: bool = False


def higher(a: str, b: str) -> str:
    """``permissions.max_permission``: ties keep ``a``."""
    return a if PRIORITY.get(a, 0) >= PRIORITY.get(b, 0) else b


def _known(resource_type: str) -> bool:
    return resource_type in PER_ID_TYPES or resource_type in TIER_TYPES


def matches(grant: Grant, resource_type: str, resource_id: str) -> bool:
    """``permissions.matches``: ``*`` for any known type, an exact id only for per-id types."""
    if grant.resource_type != resource_type or not _known(resource_type):
        return False
    if grant.pattern == WILDCARD:
        return True
    return resource_type in PER_ID_TYPES and grant.pattern == resource_id


def is_admin_grant(grant: Grant) -> bool:
    return grant.resource_type == WORKSPACE_TYPE and grant.pattern == WILDCARD and grant.permission == MANAGE


def _folded(have: str | None, permission: str) -> str:
    """One more matching grant into a key's fold: DENY wins, else the highest."""
    if have is None:
        return permission
    if DENY in (have, permission):
        return DENY
    return higher(have, permission)


@dataclass
class GrantIndex:
    """A user's grants in one workspace, folded per key once (``fold_grants_for_key`` for every key at once):
    resolving a resource is then two lookups, not a scan of every grant."""

    admin: bool = False
    #: type -> the fold of its ``*`` grants
    wildcard: dict[str, str] = field(default_factory=dict)
    #: (type, id) -> the fold of the grants naming that id (per-id types only)
    by_id: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def of(cls, grants: Iterable[Grant]) -> GrantIndex:
        index = cls()
        index.add(grants)
        return index

    def add(self, grants: Iterable[Grant]) -> None:
        for g in grants:
            if is_admin_grant(g):
                self.admin = True
            if not _known(g.resource_type):
                continue  # MLflow matches no key of an unknown type
            if g.pattern == WILDCARD:
                self.wildcard[g.resource_type] = _folded(self.wildcard.get(g.resource_type), g.permission)
            elif g.resource_type in PER_ID_TYPES:
                key = (g.resource_type, g.pattern)
                self.by_id[key] = _folded(self.by_id.get(key), g.permission)

    def merge(self, other: GrantIndex) -> None:
        self.admin = self.admin or other.admin
        for t, p in other.wildcard.items():
            self.wildcard[t] = _folded(self.wildcard.get(t), p)
        for k, p in other.by_id.items():
            self.by_id[k] = _folded(self.by_id.get(k), p)

    def fold(self, resource_type: str, resource_id: str) -> str | None:
        """``fold_grants_for_key``: DENY among the matching grants wins, else the highest; None when none match."""
        wild = self.wildcard.get(resource_type)
        own = self.by_id.get((resource_type, resource_id)) if resource_id != WILDCARD else None
        if wild is None:
            return own
        return wild if own is None else _folded(wild, own)


EMPTY = GrantIndex()


def fold(grants: Iterable[Grant], resource_type: str, resource_id: str) -> str | None:
    return GrantIndex.of(grants).fold(resource_type, resource_id)


def floor(permission: str, default_permission: str) -> str:
    """``floor_positive_permission``."""
    if permission in (DENY, NO_PERMISSIONS):
        return permission
    return higher(permission, default_permission)


def resource_permission(
    held: GrantIndex,
    resource_type: str,
    resource_id: str,
    *,
    config: AuthConfig,
    workspaces_enabled: bool,
    workspace: str,
) -> str:
    """The permission a (non-admin) user holds on one resource of a per-id type.

    ``held``: the user's grants through roles of the workspace the resource is resolved in (its own with
    workspaces on, ``default`` with them off)."""
    if held.admin:
        return MANAGE
    found = held.fold(resource_type, resource_id)
    if found is not None:
        return floor(found, config.default_permission)
    if not workspaces_enabled:
        return config.default_permission
    if config.grant_default_workspace_access and workspace == DEFAULT_WORKSPACE:
        return config.default_permission
    return NO_PERMISSIONS


_ALLOWED = {p: frozenset(ACTIONS[: _ACTIONS_OF.get(p, 0)]) for p in PRIORITY}
_NONE: frozenset[str] = frozenset()


def allowed(permission: str) -> frozenset[str]:
    """The actions a permission allows (``Permission.can_read`` ... ``can_manage``); DENY and NO_PERMISSIONS none."""
    return _ALLOWED.get(permission, _NONE)


def governing(held: GrantIndex, tier: str, parent: str, *, config: AuthConfig) -> str:
    """``governing_permission_and_action`` for a requirement on ``(tier, "*")`` falling back to the parent
    resource: the tier decides whenever the user holds a grant on it (a DENY unfloored), else the parent's
    permission (``parent``, already resolved) does."""
    if held.admin:
        return MANAGE
    found = held.wildcard.get(tier)
    if found is None:
        return parent
    return floor(found, config.default_permission)


def tier_permission(held: GrantIndex, resource_type: str, *, config: AuthConfig) -> str | None:
    """What a wildcard-only tier resolves to in one workspace: None when no grant speaks there (the requirement
    then falls back to its parent's permission).  The workspace slot is read as create reads it
    (``_role_grant_for_resource``: unfloored)."""
    if held.admin:
        return MANAGE
    found = held.wildcard.get(resource_type)
    if found is None or resource_type == WORKSPACE_TYPE:
        return found
    return floor(found, config.default_permission)
