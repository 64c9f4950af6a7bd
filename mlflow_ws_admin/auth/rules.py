"""MLflow 3.17.2's basic-auth permission rules, re-implemented as pure functions (no MLflow import).

Read from MLflow 3.17.2 (file / function), and documented in the README ("Auth database"):

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
from dataclasses import dataclass

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


def matches(grant: Grant, resource_type: str, resource_id: str) -> bool:
    if grant.resource_type != resource_type:
        return False
    if grant.pattern == WILDCARD:
        return True
    return resource_type in PER_ID_TYPES and grant.pattern == resource_id


def is_admin_grant(grant: Grant) -> bool:
    return grant.resource_type == WORKSPACE_TYPE and grant.pattern == WILDCARD and grant.permission == MANAGE


def fold(grants: Iterable[Grant], resource_type: str, resource_id: str) -> str | None:
    """``fold_grants_for_key``: DENY among the matching grants wins, else the highest; None when none match."""
    best: str | None = None
    for grant in grants:
        if not matches(grant, resource_type, resource_id):
            continue
        if grant.permission == DENY:
            return DENY
        best = grant.permission if best is None else higher(best, grant.permission)
    return best


def floor(permission: str, default_permission: str) -> str:
    """``floor_positive_permission``."""
    if permission in (DENY, NO_PERMISSIONS):
        return permission
    return higher(permission, default_permission)


def resource_permission(
    grants: Iterable[Grant],
    resource_type: str,
    resource_id: str,
    *,
    config: AuthConfig,
    workspaces_enabled: bool,
    workspace: str,
) -> str:
    """The permission a (non-admin) user holds on one resource of a per-id type.

    ``grants``: the user's grants through roles of the workspace the resource is resolved in (its own with
    workspaces on, ``default`` with them off)."""
    grants = list(grants)
    if any(is_admin_grant(g) for g in grants):
        return MANAGE
    found = fold(grants, resource_type, resource_id)
    if found is not None:
        return floor(found, config.default_permission)
    if not workspaces_enabled:
        return config.default_permission
    if config.grant_default_workspace_access and workspace == DEFAULT_WORKSPACE:
        return config.default_permission
    return NO_PERMISSIONS


def tier_permission(grants: Iterable[Grant], resource_type: str, *, config: AuthConfig) -> str | None:
    """What a wildcard-only tier (or the workspace slot) resolves to in one workspace: None when no grant
    speaks there (the requirement then falls back to its parent's permission)."""
    grants = list(grants)
    if any(is_admin_grant(g) for g in grants):
        return MANAGE
    found = fold(grants, resource_type, WILDCARD)
    return None if found is None else floor(found, config.default_permission)
