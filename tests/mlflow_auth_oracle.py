"""Run by MLflow 3.17.2's own interpreter (never imported by the suite): MLflow's basic-auth store and
permission resolution as the oracle for tests/test_auth_mlflow_compat.py.

    python mlflow_auth_oracle.py setup AUTH_URI < spec.json     # users, roles, grants, assignments via the store
    python mlflow_auth_oracle.py resolve AUTH_URI < query.json  # MLflow's answer per (user, resource), as JSON

``resolve`` reads ``{"workspaces": bool, "default_permission": str, "users": [...], "resources": [[type,
workspace, id_before, id_now], ...], "tiers": {tier: parent type}}``.  A resource's permission is
MLflow's ``_get_role_permission_or_default(_role_permission_for_known_workspace(...))`` (the point-route path,
given the resource's workspace); a tier of a resource is ``governing_permission_and_action`` of a requirement on
``(tier, "*")`` falling back to the resource, as every operation on runs, traces, versions, ... declares it.
"""

from __future__ import annotations

import json
import os
import sys


def setup(auth_uri: str, spec: dict) -> None:
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(auth_uri)
    users = {}
    for name in spec["users"]:
        users[name] = store.create_user(name, "pw-" + name + "-12345678", is_admin=name in spec.get("admins", ())).id
    roles = {}
    for role in spec["roles"]:
        created = store.create_role(role["name"], role["workspace"])
        roles[role["workspace"], role["name"]] = created.id
        for rtype, pattern, permission in role["grants"]:
            store.add_role_permission(created.id, rtype, pattern, permission)
    for name, assigned in spec["members"].items():
        for workspace, role in assigned:
            store.assign_role_to_user(users[name], roles[workspace, role])


def resolve(auth_uri: str, query: dict) -> dict:
    os.environ["MLFLOW_ENABLE_WORKSPACES"] = "true" if query["workspaces"] else "false"
    import mlflow.server.auth as auth
    from mlflow.server.auth.requirements import (
        Requirement,
        governing_permission_and_action,
        requirements_to_grant_load_keys,
    )
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(auth_uri)
    auth.store = store
    gdwa = bool(query.get("grant_default_workspace_access"))
    auth.auth_config = auth.auth_config._replace(
        default_permission=query["default_permission"], grant_default_workspace_access=gdwa
    )
    if gdwa:
        # Only the workspace store's lookup of which workspace is the default is stubbed (it needs a tracking
        # server's store); the rule that uses it (_user_inherits_default_workspace_grant) stays MLflow's.
        from types import SimpleNamespace

        auth._get_workspace_store = lambda: None
        auth.get_default_workspace_optional = lambda _store: (SimpleNamespace(name="default"), True)
    out: dict[str, dict[str, str | None]] = {}
    for user in query["users"]:
        got: dict[str, str | None] = {}
        for rtype, workspace, before_id, now_id in query["resources"]:
            where = workspace if query["workspaces"] else None
            perm = auth._get_role_permission_or_default(
                auth._role_permission_for_known_workspace(user, rtype, now_id, where)
            )
            got[json.dumps(["resource", rtype, workspace, before_id])] = perm.name
            # a tier of this resource: MLflow's own governing_permission_and_action, the tier's key falling back
            # to the resource's, from one resolve_permissions in the workspace it is resolved in
            for tier, parent in query["tiers"].items():
                if parent != rtype:
                    continue
                anchor = workspace if query["workspaces"] else "default"
                requirement = Requirement(tier, "*", "read", fallback_if_no_grant=((rtype, now_id),))
                keys = requirements_to_grant_load_keys([requirement])
                held = dict(zip(keys, auth.resolve_permissions(user, anchor, keys), strict=True))
                governing, _ = governing_permission_and_action(
                    requirement, held, query["default_permission"], auth._absent_permission(anchor)
                )
                got[json.dumps(["sub", tier, workspace, before_id])] = governing.name
        out[user] = got
    return out


if __name__ == "__main__":
    command, uri = sys.argv[1], sys.argv[2]
    payload = json.load(sys.stdin)
    if command == "setup":
        setup(uri, payload)
    else:
        json.dump(resolve(uri, payload), sys.stdout)
