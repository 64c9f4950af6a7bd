"""Differential test (optional: needs MLflow 3.17.2 with the auth extra, as tests/test_mlflow_compat.py):
MLflow's own store creates users, roles, grants and assignments in four workspaces; MLflow's own resolution
answers every (user, resource) and every (user, tier, workspace) with workspaces on; the tracking migration
runs (journaled), then the auth migration (``--tracking-journal``, ``--drop`` or ``--widen``,
``--rename-conflicts``); MLflow
answers again with workspaces off and ``default_permission = NO_PERMISSIONS``.

What must hold: our model's before-state equals MLflow's, our model of the rows as written equals MLflow's
after-state, and the only differences between MLflow's two answers are the ones our report lists as accepted
by ``--drop`` or ``--widen`` (the workspace admin's, the run and the trace tiers).  Wildcards, per-id grants, a DENY, a grant naming a
resource of another workspace, a workspace admin, colliding role names (merged and renamed) are all in it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from mlflow_ws_admin.auth.plan import effective_permissions, subject, view_of
from mlflow_ws_admin.auth.rules import TIER_PARENT, AuthConfig, allowed
from mlflow_ws_admin.auth.state import read_auth_state, read_ownership
from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.sample_data import SampleData

from .auth_helpers import auth_migrate, plant_tracking
from .helpers import migrate
from .test_mlflow_compat import (  # noqa: F401 (the skip without MLflow)
    MLFLOW_PYTHON,
    _mlflow_env,
    mlflow_server,
    pytestmark,
)

ORACLE = Path(__file__).with_name("mlflow_auth_oracle.py")


def _oracle(command: str, uri: str, payload: dict) -> dict | None:
    proc = subprocess.run(
        [MLFLOW_PYTHON, str(ORACLE), command, uri],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=_mlflow_env(),
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


def _query(ownership, workspaces: bool, default_permission: str, state, gdwa: bool = False) -> dict:
    return {
        "workspaces": workspaces,
        "grant_default_workspace_access": gdwa,
        "default_permission": default_permission,
        "users": sorted(u.username for u in state.users if not u.is_admin),
        "resources": [[r.resource_type, r.workspace, r.before_id, r.after_id] for r in ownership.resources],
        "tiers": TIER_PARENT,
    }


def _subject(key: str) -> str:
    """MLflow's answer key as our report names it."""
    return subject(tuple(json.loads(key)))


def _ours(values: dict, state) -> dict:
    names = {u.id: u.username for u in state.users}
    return {
        names[user]: {json.dumps(list(key)): perm for (u2, key), perm in values.items() if u2 == user}
        for user in names
        if user in {u for u, _ in values}
    }


@pytest.mark.parametrize(("resolution", "gdwa"), [("--drop", False), ("--widen", False), ("--drop", True)])
def test_permissions_match_mlflow_before_and_after(auth_db, mlflow_db, tmp_path, resolution, gdwa) -> None:
    ids = plant_tracking(mlflow_db)
    with mlflow_db.engine.begin() as conn:
        conn.execute(text("INSERT INTO workspaces (name) VALUES ('team-c')"))
    with mlflow_db.engine.begin() as conn, SampleData(conn) as data:
        data.registered_model("default", "fraud-a")  # collides with team-a's: the tracking migration renames that one
    _oracle("setup", auth_db.uri, _spec(ids))
    with auth_db.engine.connect() as conn:
        state = read_auth_state(conn)
    with mlflow_db.engine.connect() as conn:
        ownership = read_ownership(conn)
    config = AuthConfig("READ", grant_default_workspace_access=gdwa)
    mlflow_before = _oracle("resolve", auth_db.uri, _query(ownership, True, "READ", state, gdwa))
    ours_before = effective_permissions(view_of(state), state, ownership, config, workspaces_enabled=True)
    assert _ours(ours_before, state) == mlflow_before
    alice_on_d1 = mlflow_before["alice"][json.dumps(["resource", "experiment", "default", str(ids["d1"])])]
    assert alice_on_d1 == ("READ" if gdwa else "NO_PERMISSIONS")  # she has no role in default

    journal = tmp_path / "tracking.jsonl"
    moved = migrate(mlflow_db.uri, "-y", "--journal", str(journal), "--rename-conflicts", "{name} ({workspace})")
    assert moved.exit_code == ExitStatus.OK, moved.output
    result = auth_migrate(
        auth_db, mlflow_db, "-y", resolution, "--tracking-journal", str(journal),
        "--rename-conflicts", "{name} ({workspace})", "--format", "json",
        *(["--grant-default-workspace-access"] if gdwa else []),
    )  # fmt: skip
    assert result.exit_code == ExitStatus.OK, result.output
    doc = json.loads(result.stdout)

    with mlflow_db.engine.connect() as conn:
        ownership_after = read_ownership(conn, journal)
    # the journal says where each one came from, and under which name: team-a's `fraud-a` was renamed
    before_ids = {(r.resource_type, r.workspace, r.before_id): r.after_id for r in ownership.resources}
    after_ids = {(r.resource_type, r.workspace, r.before_id): r.after_id for r in ownership_after.resources}
    renamed = {("registered_model", "team-a", "fraud-a"): "fraud-a (team-a)"}
    assert after_ids == {**before_ids, **renamed}  # not a prompt (no tag): only its registered_model key counts
    with auth_db.engine.connect() as conn:
        written = read_auth_state(conn)
    assert {r.workspace for r in written.roles} == {"default"}
    mlflow_after = _oracle("resolve", auth_db.uri, _query(ownership_after, False, "NO_PERMISSIONS", state, gdwa))
    ours_after = effective_permissions(
        view_of(written), state, ownership_after, AuthConfig("NO_PERMISSIONS", gdwa), workspaces_enabled=False
    )
    assert _ours(ours_after, state) == mlflow_after

    # MLflow's answers as allowed actions: a tier's only when the resource itself is readable (every operation on
    # a tier also requires read on it); a tier that followed its resource before and after is the resource's
    # own change, listed once there
    def actions(answers: dict, key: str) -> frozenset[str]:
        kind, rtype, workspace, rid = json.loads(key)
        if kind == "resource":
            return allowed(answers[key])
        parent = answers[json.dumps(["resource", TIER_PARENT[rtype], workspace, rid])]
        return allowed(answers[key]) if "read" in allowed(parent) else frozenset()

    def decided_by_tier(user: str, key: str) -> bool:
        kind, rtype, workspace, rid = json.loads(key)
        parent = json.dumps(["resource", TIER_PARENT.get(rtype, rtype), workspace, rid])
        return kind == "resource" or any(a[user][key] != a[user][parent] for a in (mlflow_before, mlflow_after))

    mlflow_changes = {
        (user, _subject(key), mlflow_before[user][key], mlflow_after[user][key])
        for user in mlflow_before
        for key in mlflow_before[user]
        if actions(mlflow_before[user], key) != actions(mlflow_after[user], key) and decided_by_tier(user, key)
    }
    assert mlflow_changes  # the workspace admin's and the tiers' grants, as chosen
    assert {c["accepted_by"] for c in doc["changes"]} == {resolution}
    assert {(c["user"], c["subject"], c["before"], c["after"]) for c in doc["changes"]} == mlflow_changes
    # the two `auditors` roles translate alike (trace tiers both dropped or both kept): merged; `viewer` renamed
    names = sorted(r["name"] for r in doc["roles"])
    extra = ["default-workspace-access"] if gdwa else []  # keeps what grant_default_workspace_access gave
    assert names == sorted(["admins", "auditors", "editors", "runners", "viewer (team-a)", "viewer (team-b)", *extra])


# --- a real `mlflow server --app-name basic-auth`, before (workspaces on) and after (off) --------------------

SERVER_SPEC_USERS = ("alice", "bob", "dave", "frank")


def _server_spec(ids: dict[str, int]) -> dict:
    """No workspace-scope or tier grant: every user must read and edit exactly what they could before."""
    e = {k: str(v) for k, v in ids.items()}
    return {
        "users": [*SERVER_SPEC_USERS, "root"],
        "admins": ["root"],
        "roles": [
            {"workspace": "team-a", "name": "viewer", "grants": [["experiment", "*", "READ"], ["registered_model", "fraud-a", "EDIT"], ["experiment", e["b1"], "MANAGE"]]},
            {"workspace": "team-b", "name": "viewer", "grants": [["experiment", "*", "EDIT"], ["experiment", e["b1"], "DENY"], ["registered_model", "*", "READ"]]},
            {"workspace": "default", "name": "editors", "grants": [["experiment", e["d1"], "EDIT"], ["registered_model", "shared", "READ"]]},
        ],
        "members": {
            "alice": [["team-a", "viewer"]],
            "bob": [["team-b", "viewer"]],
            "dave": [["default", "editors"]],
            "frank": [["team-a", "viewer"], ["team-b", "viewer"]],
        },
    }  # fmt: skip


def _call(url: str, path: str, user: str, workspace: str | None, body: dict | None = None) -> int:
    import base64
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method="POST" if body is not None else "GET")
    token = base64.b64encode(f"{user}:pw-{user}-12345678".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    if workspace is not None:
        request.add_header("X-MLFLOW-WORKSPACE", workspace)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _access(url: str, resources: list[tuple[str, str, str]], *, workspaces: bool) -> dict[tuple[str, str, str], tuple]:
    """Per (user, type, id): (can read, can edit) as the server answers."""
    from urllib.parse import quote

    out = {}
    for user in SERVER_SPEC_USERS:
        for rtype, workspace, rid in resources:
            ws = workspace if workspaces else None
            if rtype == "experiment":
                read = _call(url, f"/api/2.0/mlflow/experiments/get?experiment_id={rid}", user, ws)
                edit = _call(
                    url,
                    "/api/2.0/mlflow/experiments/set-experiment-tag",
                    user,
                    ws,
                    {"experiment_id": rid, "key": "k", "value": user},
                )
            else:
                read = _call(url, f"/api/2.0/mlflow/registered-models/get?name={quote(rid)}", user, ws)
                edit = _call(
                    url, "/api/2.0/mlflow/registered-models/set-tag", user, ws, {"name": rid, "key": "k", "value": user}
                )
            # authorized = the request got past the auth layer: anything but 401/403 (the test's rows leave
            # some columns NULL that MLflow's handlers need, so a permitted read may still fail in the handler)
            out[user, rtype, rid] = (read not in (401, 403), edit not in (401, 403))
    return out  # fmt: skip


def _ini(path: Path, auth_db, default_permission: str) -> Path:
    path.write_text(
        "[mlflow]\n"
        f"default_permission = {default_permission}\n"
        f"database_uri = {auth_db.uri}\n"
        "admin_username = root\nadmin_password = pw-root-12345678\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
    )
    return path


def _auth_env(ini: Path) -> dict[str, str]:
    return {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-csrf-key"}


@pytest.mark.sqlite_only
def test_a_real_basic_auth_server_grants_the_same_access_before_and_after(auth_db, scratch_db, tmp_path) -> None:

    tracking = scratch_db.load("3.17.2")  # the schema MLflow 3.17.2's server accepts
    ids = plant_tracking(tracking)
    _oracle("setup", auth_db.uri, _server_spec(ids))
    with tracking.engine.connect() as conn:
        ownership = read_ownership(conn)
    resources = [
        (r.resource_type, r.workspace, r.before_id)
        for r in ownership.resources
        if r.resource_type in ("experiment", "registered_model")
    ]
    tracking.engine.dispose()
    auth_db.engine.dispose()
    app = ("--app-name", "basic-auth")

    ini = _ini(tmp_path / "before.ini", auth_db, "READ")
    with mlflow_server(tracking.path, tmp_path, workspaces=True, extra_args=app, **_auth_env(ini)) as s:
        assert s.process.poll() is None, s.output()[-3000:]
        before = _access(s.url, resources, workspaces=True)

    journal = tmp_path / "tracking.jsonl"
    assert migrate(tracking.uri, "-y", "--journal", str(journal)).exit_code == ExitStatus.OK
    result = auth_migrate(
        auth_db, tracking, "-y", "--tracking-journal", str(journal), "--rename-conflicts", "{name} ({workspace})"
    )
    assert result.exit_code == ExitStatus.OK, result.output
    assert "unchanged for every user and resource" in result.stdout

    ini = _ini(tmp_path / "after.ini", auth_db, "NO_PERMISSIONS")
    with mlflow_server(tracking.path, tmp_path, workspaces=False, extra_args=app, **_auth_env(ini)) as s:
        assert s.process.poll() is None, s.output()[-3000:]
        after = _access(s.url, resources, workspaces=False)

    a1, b1, d1 = (str(ids[k]) for k in ("a1", "b1", "d1"))
    assert before["alice", "experiment", a1] == (True, False)  # team-a's `experiment *` READ
    assert before["alice", "experiment", b1] == (False, False)  # team-a's grant on a team-b experiment never applied
    assert before["bob", "experiment", b1] == (False, False)  # DENY
    assert before["bob", "experiment", a1] == (False, False)  # another workspace
    assert before["dave", "experiment", d1] == (True, True)  # per-id EDIT in default
    assert before["frank", "registered_model", "fraud-a"] == (True, True)
    assert after == before
