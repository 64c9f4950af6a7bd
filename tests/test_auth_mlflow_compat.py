"""Differential test (optional: needs MLflow 3.17.2 with the auth extra, as tests/test_mlflow_compat.py):
MLflow's own store creates users, roles, grants and assignments in four workspaces; MLflow's own resolution
answers every (user, resource) and every (user, tier, workspace) with workspaces on; the tracking migration
runs (journaled), then the auth migration (``--tracking-journal``, ``--drop``, ``--rename-conflicts``); MLflow
answers again with workspaces off and ``default_permission = NO_PERMISSIONS``.

What must hold: our model's before-state equals MLflow's, our model of the rows as written equals MLflow's
after-state, and the only differences between MLflow's two answers are the ones our report lists as accepted
by ``--drop`` (the workspace admin's, the run and the trace tiers).  Wildcards, per-id grants, a DENY, a grant naming a
resource of another workspace, a workspace admin, colliding role names (merged and renamed) are all in it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from mlflow_ws_admin.auth.plan import _before_view, effective_permissions
from mlflow_ws_admin.auth.rules import TIER_TYPES, AuthConfig
from mlflow_ws_admin.auth.state import read_auth_state, read_ownership
from mlflow_ws_admin.errors import ExitStatus

from .auth_helpers import auth_migrate, plant_tracking
from .helpers import migrate

MLFLOW_PYTHON = os.environ.get("MWA_MLFLOW_PYTHON", "/tmp/mwa-mlflow-venvs/3.17.2/bin/python")
ORACLE = Path(__file__).with_name("mlflow_auth_oracle.py")

pytestmark = pytest.mark.skipif(not Path(MLFLOW_PYTHON).exists(), reason=f"no MLflow interpreter at {MLFLOW_PYTHON}")


def _oracle(command: str, uri: str, payload: dict) -> dict | None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.run(
        [MLFLOW_PYTHON, str(ORACLE), command, uri],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout) if command == "resolve" else None


def _spec(ids: dict[str, int]) -> dict:
    e = {k: str(v) for k, v in ids.items()}
    return {
        "users": ["alice", "bob", "carol", "dave", "erin", "frank", "root"],
        "admins": ["root"],
        "roles": [
            {
                "workspace": "team-a",
                "name": "viewer",
                "grants": [
                    ["experiment", "*", "READ"],
                    ["registered_model", "fraud-a", "EDIT"],
                    ["experiment", e["b1"], "MANAGE"],
                ],
            },
            {
                "workspace": "team-b",
                "name": "viewer",
                "grants": [["experiment", "*", "EDIT"], ["experiment", e["b1"], "DENY"]],
            },
            {"workspace": "team-a", "name": "admins", "grants": [["workspace", "*", "MANAGE"]]},
            {
                "workspace": "default",
                "name": "editors",
                "grants": [["experiment", e["d1"], "EDIT"], ["prompt", "*", "USE"]],
            },
            {"workspace": "team-c", "name": "runners", "grants": [["run", "*", "EDIT"], ["experiment", "*", "READ"]]},
            {"workspace": "team-a", "name": "auditors", "grants": [["trace", "*", "READ"]]},
            {"workspace": "team-b", "name": "auditors", "grants": [["trace", "*", "READ"]]},
        ],
        "members": {
            "alice": [["team-a", "viewer"]],
            "bob": [["team-b", "viewer"], ["team-b", "auditors"]],
            "carol": [["team-a", "admins"], ["team-a", "auditors"]],
            "dave": [["default", "editors"]],
            "erin": [["team-c", "runners"]],
            "frank": [["team-a", "viewer"], ["team-b", "viewer"]],
        },
    }


def _query(ownership, workspaces: bool, default_permission: str, state) -> dict:
    return {
        "workspaces": workspaces,
        "default_permission": default_permission,
        "users": sorted(u.username for u in state.users if not u.is_admin),
        "resources": [[r.resource_type, r.workspace, r.before_id, r.after_id] for r in ownership.resources],
        "workspaces_present": sorted(ownership.workspaces() | state.workspaces()),
        "tiers": list(TIER_TYPES),
    }


def _ours(values: dict, state) -> dict:
    names = {u.id: u.username for u in state.users}
    return {
        names[user]: {json.dumps(list(key)): perm for (u2, key), perm in values.items() if u2 == user}
        for user in names
        if user in {u for u, _ in values}
    }


def test_permissions_match_mlflow_before_and_after(auth_db, mlflow_db, tmp_path) -> None:
    ids = plant_tracking(mlflow_db)
    with mlflow_db.engine.begin() as conn:
        conn.execute(text("INSERT INTO workspaces (name) VALUES ('team-c')"))
    _oracle("setup", auth_db.uri, _spec(ids))
    with auth_db.engine.connect() as conn:
        state = read_auth_state(conn)
    with mlflow_db.engine.connect() as conn:
        ownership = read_ownership(conn)
    config = AuthConfig("READ")
    mlflow_before = _oracle("resolve", auth_db.uri, _query(ownership, True, "READ", state))
    ours_before = effective_permissions(_before_view(state), state, ownership, config, workspaces_enabled=True)
    assert _ours(ours_before, state) == mlflow_before

    journal = tmp_path / "tracking.jsonl"
    moved = migrate(mlflow_db.uri, "-y", "--journal", str(journal))
    assert moved.exit_code == ExitStatus.OK, moved.output
    result = auth_migrate(
        auth_db, mlflow_db, "-y", "--drop", "--tracking-journal", str(journal),
        "--rename-conflicts", "{name} ({workspace})", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == ExitStatus.OK, result.output
    doc = json.loads(result.stdout)

    with mlflow_db.engine.connect() as conn:
        ownership_after = read_ownership(conn, journal)
    assert ownership_after.resources == ownership.resources  # the journal says where each one came from
    with auth_db.engine.connect() as conn:
        written = read_auth_state(conn)
    assert {r.workspace for r in written.roles} == {"default"}
    mlflow_after = _oracle("resolve", auth_db.uri, _query(ownership, False, "NO_PERMISSIONS", state))
    ours_after = effective_permissions(
        _before_view(written), state, ownership, AuthConfig("NO_PERMISSIONS"), workspaces_enabled=False
    )
    assert _ours(ours_after, state) == mlflow_after

    mlflow_changes = {
        (user, key, mlflow_before[user][key], mlflow_after[user][key])
        for user in mlflow_before
        for key in mlflow_before[user]
        if mlflow_before[user][key] != mlflow_after[user][key]
    }
    changed_users = {user for user, *_ in mlflow_changes}
    # the workspace admin, the run tier and the trace tiers, all --drop; nobody else changes
    assert changed_users == {"bob", "carol", "erin"}
    assert len(mlflow_changes) == len(doc["changes"])
    assert all(c["accepted_by"] == "--drop" for c in doc["changes"])
    assert {c["user"] for c in doc["changes"]} == changed_users
    # the two `auditors` roles translate alike once their trace tiers are dropped: merged; `viewer` renamed
    names = sorted(r["name"] for r in doc["roles"])
    assert names == ["admins", "auditors", "editors", "runners", "viewer (team-a)", "viewer (team-b)"]
