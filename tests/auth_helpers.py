"""Planting basic-auth rows (users, roles, grants, assignments) and a tracking database's resources."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import column, insert, select, table

from mlflow_ws_admin.auth.apply import ASSIGNMENTS, GRANTS, ROLES

from .helpers import run_cli, sample_data

USERS = table("users", column("id"), column("username"), column("password_hash"), column("is_admin"))

#: role (workspace, name) -> grants (type, pattern, permission)
RoleSpec = Mapping[tuple[str, str], Iterable[tuple[str, str, str]]]


def plant_auth(
    db, roles: RoleSpec, members: Mapping[str, Iterable[tuple[str, str]]], admins: Iterable[str] = ()
) -> None:
    """``members``: username -> the (workspace, role name) pairs assigned to them."""
    with db.engine.begin() as conn:
        user_ids: dict[str, int] = {}
        for username in sorted({*members, *admins}):
            conn.execute(insert(USERS).values(username=username, password_hash="x", is_admin=username in admins))
            user_ids[username] = conn.execute(select(USERS.c.id).where(USERS.c.username == username)).scalar_one()
        role_ids: dict[tuple[str, str], int] = {}
        for (workspace, name), grants in roles.items():
            conn.execute(insert(ROLES).values(name=name, workspace=workspace, description=None))
            role_ids[workspace, name] = conn.execute(
                select(ROLES.c.id).where(ROLES.c.workspace == workspace, ROLES.c.name == name)
            ).scalar_one()
            for rtype, pattern, permission in grants:
                conn.execute(
                    insert(GRANTS).values(
                        role_id=role_ids[workspace, name],
                        resource_type=rtype,
                        resource_pattern=pattern,
                        permission=permission,
                    )
                )
        for username, assigned in members.items():
            for key in assigned:
                conn.execute(insert(ASSIGNMENTS).values(user_id=user_ids[username], role_id=role_ids[key]))


def auth_rows(db) -> dict[str, list[tuple]]:
    """Roles with their grants and members, by name: what a reader of the auth DB sees (ids left out)."""
    with db.engine.connect() as conn:
        roles = {r.id: (r.workspace, r.name) for r in conn.execute(select(ROLES))}
        grants: dict[tuple, list] = {k: [] for k in roles.values()}
        for g in conn.execute(select(GRANTS)):
            grants[roles[g.role_id]].append((g.resource_type, g.resource_pattern, g.permission))
        names = {u.id: u.username for u in conn.execute(select(USERS))}
        members: dict[tuple, list] = {k: [] for k in roles.values()}
        for a in conn.execute(select(ASSIGNMENTS)):
            members[roles[a.role_id]].append(names[a.user_id])
    return {f"{ws}/{name}": [sorted(grants[ws, name]), sorted(members[ws, name])] for ws, name in roles.values()}


def auth_migrate(auth_db, tracking_db, *flags: str, **kwargs: object):
    return run_cli(
        "auth", "migrate-to-default-workspace", auth_db.uri, "--tracking-uri", tracking_db.uri, *flags, **kwargs
    )


def plant_tracking(db) -> dict[str, int]:
    """Experiments and models in default, team-a and team-b; returns the experiment ids by name."""
    with db.engine.begin() as conn, sample_data(conn) as data:
        for ws in ("team-a", "team-b"):
            data.workspace(ws)
        ids = {
            "d1": data.experiment("default", "d1"),
            "a1": data.experiment("team-a", "a1"),
            "a2": data.experiment("team-a", "a2"),
            "b1": data.experiment("team-b", "b1"),
        }
        data.registered_model("team-a", "fraud-a")
        data.registered_model("team-b", "churn-b")
        data.registered_model("default", "shared")
    return ids


def plant_many(tracking_db, auth_db, *, workspaces: int, experiments: int, users: int) -> None:
    """A larger pair of databases: `experiments` per workspace, three roles per workspace (wildcards and a
    per-id grant), each user in two roles."""
    names = ["default"] + [f"team-{i}" for i in range(workspaces - 1)]
    with tracking_db.engine.begin() as conn, sample_data(conn) as data:
        for ws in names[1:]:
            data.workspace(ws)
        for ws in names:
            for i in range(experiments):
                data.experiment(ws, f"{ws}-e{i}")
            data.add("registered_models", workspace=ws, name=f"{ws}-model")
    roles: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for ws in names:
        roles[ws, "viewer"] = [("experiment", "*", "READ"), ("registered_model", "*", "READ")]
        roles[ws, "editor"] = [("experiment", "*", "EDIT")]
        roles[ws, "owner"] = [("registered_model", f"{ws}-model", "MANAGE")]
    keys = sorted(roles)
    members = {f"u{i}": sorted({keys[i % len(keys)], keys[(i * 7) % len(keys)]}) for i in range(users)}
    plant_auth(auth_db, roles, members)
