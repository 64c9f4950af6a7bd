"""What the auth migration reads: the basic-auth database's RBAC rows, and which workspace owned each resource
(from the tracking database, and from a tracking journal when the tracking migration already ran)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from mlflow_ws_admin.auth.rules import DEFAULT_WORKSPACE, Grant
from mlflow_ws_admin.common.errors import NotAWorkspaceDatabase
from mlflow_ws_admin.common.mlflow_facts import PROMPT_TAG_KEY

#: The tables MLflow 3.17.2's auth server reads (``sqlalchemy_store``); the legacy per-resource tables
#: (``experiment_permissions``, ``workspace_permissions``, ...) are kept by MLflow for rollback only.
AUTH_TABLES = ("users", "roles", "role_permissions", "user_role_assignments")
#: Where an Ownership's workspaces came from.
JOURNAL, TRACKING_DATABASE = "journal", "tracking database"
#: The per-resource tables MLflow 3.17.2 keeps for rollback and never reads (``_RETAINED_LEGACY_PERMISSION_TABLES``):
#: reported, untouched.
LEGACY_TABLES = (
    "experiment_permissions",
    "registered_model_permissions",
    "scorer_permissions",
    "gateway_secret_permissions",
    "gateway_endpoint_permissions",
    "gateway_model_definition_permissions",
    "workspace_permissions",
)
#: Rewritten by the migration, in FK order (parents first).
WRITTEN_TABLES = ("roles", "role_permissions", "user_role_assignments")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    is_admin: bool


@dataclass(frozen=True)
class Role:
    id: int
    name: str
    workspace: str
    description: str | None


@dataclass(frozen=True)
class AuthState:
    """The RBAC rows, as read (ids are the database's)."""

    users: tuple[User, ...]
    roles: tuple[Role, ...]
    #: role id -> its grants
    grants: Mapping[int, frozenset[Grant]]
    #: (user_id, role_id)
    assignments: frozenset[tuple[int, int]]

    def user(self, user_id: int) -> User:
        return next(u for u in self.users if u.id == user_id)

    def role(self, role_id: int) -> Role:
        return next(r for r in self.roles if r.id == role_id)

    @functools.cached_property
    def _members(self) -> dict[int, frozenset[int]]:
        by_role: dict[int, set[int]] = {}
        for user_id, role_id in self.assignments:
            by_role.setdefault(role_id, set()).add(user_id)
        return {role_id: frozenset(users) for role_id, users in by_role.items()}

    def members(self, role_id: int) -> frozenset[int]:
        return self._members.get(role_id, frozenset())

    def workspaces(self) -> frozenset[str]:
        return frozenset(r.workspace for r in self.roles)


def read_auth_state(conn: Connection, *, check_tables: bool = True) -> AuthState:
    """``check_tables``: refuse a database without the RBAC tables (not under MySQL's LOCK TABLES, which
    only lets the locked tables be read)."""
    missing = [t for t in AUTH_TABLES if not inspect(conn).has_table(t)] if check_tables else []
    if missing:
        raise NotAWorkspaceDatabase(
            f"not an MLflow basic-auth database with roles (no {', '.join(missing)} table); "
            "MLflow 3.17.2's auth server creates them (`mlflow server --app-name basic-auth`)"
        )
    users = tuple(
        User(int(i), str(n), bool(a))
        for i, n, a in conn.execute(text("SELECT id, username, is_admin FROM users ORDER BY id"))
    )
    roles = tuple(
        Role(int(i), str(n), str(w), d)
        for i, n, w, d in conn.execute(text("SELECT id, name, workspace, description FROM roles ORDER BY id"))
    )
    grants: dict[int, set[Grant]] = {r.id: set() for r in roles}
    for role_id, rtype, pattern, permission in conn.execute(
        text("SELECT role_id, resource_type, resource_pattern, permission FROM role_permissions")
    ):
        grants.setdefault(int(role_id), set()).add(Grant(str(rtype), str(pattern), str(permission)))
    assignments = frozenset(
        (int(u), int(r)) for u, r in conn.execute(text("SELECT user_id, role_id FROM user_role_assignments"))
    )
    return AuthState(users, roles, {k: frozenset(v) for k, v in grants.items()}, assignments)


def legacy_rows(conn: Connection) -> tuple[tuple[str, int], ...]:
    """Each legacy per-resource table present, with its row count."""
    present = set(inspect(conn).get_table_names())
    return tuple(
        (t, int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one())) for t in LEGACY_TABLES if t in present
    )


@dataclass(frozen=True)
class Resource:
    """One resource a grant can name: its type, the workspace that owned it, its id before and after the
    tracking migration (a registered model or MCP server renamed by ``--rename-conflicts`` changes id)."""

    resource_type: str
    workspace: str
    before_id: str
    after_id: str


#: Per-id resource type -> (table, id column, workspace source).  ``scorer`` ids are built from the
#: experiment and the URL-quoted name (``SqlAlchemyStore._scorer_pattern``), in the experiment's workspace.
_OWNERS: tuple[tuple[str, str, str], ...] = (
    ("experiment", "experiments", "experiment_id"),
    ("registered_model", "registered_models", "name"),  # or "prompt": by its tag, _registry_type
    ("gateway_secret", "secrets", "secret_id"),
    ("gateway_endpoint", "endpoints", "endpoint_id"),
    ("gateway_model_definition", "model_definitions", "model_definition_id"),
    ("mcp_server", "mcp_servers", "name"),
)


@dataclass(frozen=True)
class Ownership:
    """Every resource of a per-id type, with the workspace it was in before the move."""

    resources: tuple[Resource, ...]
    #: where the workspaces came from: "tracking database" or "journal"
    source: str

    @functools.cached_property
    def _by_workspace(self) -> dict[tuple[str, str], dict[str, Resource]]:
        out: dict[tuple[str, str], dict[str, Resource]] = {}
        for r in self.resources:
            out.setdefault((r.resource_type, r.workspace), {})[r.before_id] = r
        return out

    def in_workspace(self, resource_type: str, workspace: str) -> list[Resource]:
        return list(self._by_workspace.get((resource_type, workspace), {}).values())

    def find(self, resource_type: str, workspace: str, before_id: str) -> Resource | None:
        return self._by_workspace.get((resource_type, workspace), {}).get(before_id)

    def only_in(self, resource_type: str, workspace: str) -> bool:
        """Whether no other workspace owns a resource of this type."""
        return all(w == workspace for t, w in self._by_workspace if t == resource_type)

    def workspaces(self) -> frozenset[str]:
        return frozenset(w for _, w in self._by_workspace)


def _journaled_origins(journal: str | Path) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(table, workspace now, key now) -> (workspace before, key before), for every row a tracking journal moved
    or renamed.  ``--rename-conflicts`` renames a row where it stands, before the move: its ``column_set`` of the
    name column holds the row's source workspace and its new name, and the row's move record then carries the
    new name."""
    from mlflow_ws_admin.common.errors import UsageError
    from mlflow_ws_admin.engine.journal import read_records

    moves: list[tuple[str, str, str, str]] = []  # table, key now, workspace before, workspace after
    renamed: dict[tuple[str, str, str], str] = {}  # (table, workspace before, name now) -> name before
    for record in read_records(journal):
        kind = record.get("type")
        if kind == "row" and record["key"] and record["from"] and record["to"]:
            moves.append((record["table"], str(record["key"][0]), str(record["from"][0]), str(record["to"][0])))
        elif kind == "column_set" and record.get("column") == "name":
            if record.get("workspace") is None:
                raise UsageError(
                    f"the tracking journal renames {record['table']} {record['from']!r} without its workspace"
                )
            renamed[record["table"], str(record["workspace"]), str(record["to"])] = str(record["from"])
    origins: dict[tuple[str, str, str], tuple[str, str]] = {}
    for table, key, before, after in moves:
        origins[table, after, key] = (before, renamed.pop((table, before, key), key))
    for (table, workspace, new), old in renamed.items():  # renamed where it stayed (--keep oldest|newest)
        origins.setdefault((table, workspace, new), (workspace, old))
    return origins


def read_ownership(conn: Connection, journal: str | Path | None = None) -> Ownership:
    """Each resource's workspace: the tracking database's, unless a tracking journal says the row came from
    another one (the tracking migration already ran), under its name before a rename."""
    origins = _journaled_origins(journal) if journal is not None else {}
    insp = inspect(conn)
    tables = set(insp.get_table_names())
    if "experiments" not in tables:
        raise NotAWorkspaceDatabase("--tracking-uri is not an MLflow tracking database (no experiments table)")
    resources: list[Resource] = []
    experiment_ws: dict[str, str] = {}
    prompts = _prompts(conn) if "registered_model_tags" in tables else set()
    for rtype, table, column in _OWNERS:
        if table not in tables:
            continue
        for key, workspace in conn.execute(text(f"SELECT {column}, workspace FROM {table}")):
            now = str(key)
            owner, before = origins.get((table, str(workspace), now), (str(workspace), now))
            is_prompt = table == "registered_models" and (str(workspace), now) in prompts
            resources.append(Resource("prompt" if is_prompt else rtype, owner, before, now))
            if rtype == "experiment":
                experiment_ws[now] = owner
    if "scorers" in tables:
        for experiment_id, name in conn.execute(text("SELECT experiment_id, scorer_name FROM scorers")):
            pattern = f"{experiment_id}/{quote(str(name), safe='')}"
            owner = experiment_ws.get(str(experiment_id), DEFAULT_WORKSPACE)
            resources.append(Resource("scorer", owner, pattern, pattern))
    return Ownership(tuple(sorted(resources, key=_resource_order)), JOURNAL if journal else TRACKING_DATABASE)


def _prompts(conn: Connection) -> set[tuple[str, str]]:
    """(workspace, name) of the registered models that are prompts.  MLflow checks a registry object as
    ``prompt`` or ``registered_model`` by this tag (``RegisteredModel._is_prompt``: the value, lower-cased, is
    ``true``), so only that key of each object is ever consulted."""
    tags = sa.table(
        "registered_model_tags", sa.column("workspace"), sa.column("name"), sa.column("key"), sa.column("value")
    )
    rows = conn.execute(sa.select(tags.c.workspace, tags.c.name, tags.c.value).where(tags.c.key == PROMPT_TAG_KEY))
    return {(str(w), str(n)) for w, n, v in rows if str(v or "false").lower() == "true"}


def _resource_order(r: Resource) -> tuple[Any, ...]:
    return (r.resource_type, r.workspace, r.before_id)


def users_by_id(users: Iterable[User]) -> dict[int, User]:
    return {u.id: u for u in users}


def auth_signature() -> str:
    """What an auth journal relies on: the rewritten tables and their columns (MLflow 3.17.2's RBAC schema)."""
    import hashlib

    shape = {
        "roles": ["id", "name", "workspace", "description"],
        "role_permissions": ["id", "role_id", "resource_type", "resource_pattern", "permission"],
        "user_role_assignments": ["id", "user_id", "role_id"],
    }
    return "auth-" + hashlib.sha256(repr(sorted(shape.items())).encode()).hexdigest()[:27]
