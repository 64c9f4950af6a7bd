"""A real `mlflow server --app-name basic-auth` (optional, as tests/test_mlflow_compat.py): every user's read,
update and delete on every resource as HTTP status codes with workspaces on, then the documented tracking +
auth migrations, then the server without workspaces.

Users create their resources through the server (MLflow writes the creator's MANAGE into their per-user role
``__user_<id>__`` of that workspace) and an admin grants per-user permissions; the roles hold workspace-wide
grants (members, a workspace admin), wildcards, per-id grants, a tier and a DENY; one registered model is a
prompt.  With ``--per-resource --widen``: 0 changed cells.  Restored, then ``--drop``: the changed cells are
exactly the report's.  Then MLflow's revoke, rename and delete-then-recreate on migrated per-user grants
behave as they did with workspaces on.  One server with workspaces and one without, per backend.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import text

from mlflow_ws_admin.auth.state import read_ownership
from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.common.mlflow_facts import PROMPT_TAG_KEY

from .auth_helpers import auth_migrate, plant_tracking
from .helpers import migrate, run_cli
from .test_auth_mlflow_compat import _auth_env, _call, _ini, _oracle
from .test_mlflow_compat import mlflow_server, pytestmark  # noqa: F401 (the skip without MLflow)

USERS = ("alice", "bob", "carol", "dave")
ACTIONS = ("read", "update", "delete")
#: the resources of the revoke / rename / recreate checks, left out of the cells (they are changed on purpose)
SCENARIO = "sm-"
#: a cell: (user, type, id, action)
Cell = tuple[str, str, str, str]


def _spec(ids: dict[str, int]) -> dict:
    e = {k: str(v) for k, v in ids.items()}
    return {
        "users": [*USERS, "root"],
        "admins": ["root"],
        "roles": [
            {"workspace": "team-a", "name": "members", "grants": [["workspace", "*", "USE"]]},
            {"workspace": "team-a", "name": "admins", "grants": [["workspace", "*", "MANAGE"]]},
            {"workspace": "team-a", "name": "viewer", "grants": [["experiment", "*", "READ"], ["prompt", "*", "READ"], ["registered_model", "fraud-a", "DENY"], ["experiment", e["a2"], "EDIT"]]},
            {"workspace": "team-b", "name": "members", "grants": [["workspace", "*", "USE"]]},
            {"workspace": "team-b", "name": "editors", "grants": [["experiment", "*", "EDIT"], ["registered_model", "*", "READ"], ["experiment", e["b1"], "MANAGE"]]},
            {"workspace": "team-b", "name": "runs", "grants": [["run", "*", "MANAGE"]]},
            {"workspace": "default", "name": "editors", "grants": [["experiment", e["d1"], "EDIT"], ["registered_model", "shared", "READ"]]},
        ],
        "members": {
            "alice": [["team-a", "members"], ["default", "editors"]],
            "bob": [["team-a", "members"], ["team-a", "viewer"], ["team-b", "members"]],
            "carol": [["team-a", "admins"]],
            "dave": [["team-b", "members"], ["team-b", "editors"], ["team-b", "runs"]],
        },
    }  # fmt: skip


def _create(url: str, user: str, ws: str) -> None:
    """What each user creates through the server (their per-user MANAGE), and the admin's per-user grants."""
    made = {
        "alice": [("team-a", "experiment", "ea"), ("team-a", "model", "ma"), ("team-a", "prompt", "pa")]
        + [("team-a", "model", f"{SCENARIO}{p}") for p in ("pre", "post")],
        "bob": [("team-b", "experiment", "eb"), ("team-b", "model", "mb")],
        "dave": [("team-b", "experiment", "ed")],
    }[user]
    for workspace, kind, name in made:
        if workspace != ws:
            continue
        if kind == "experiment":
            code = _call(url, "/api/2.0/mlflow/experiments/create", user, ws, {"name": name})
        else:
            tags = [{"key": PROMPT_TAG_KEY, "value": "true"}] if kind == "prompt" else []
            code = _call(url, "/api/2.0/mlflow/registered-models/create", user, ws, {"name": name, "tags": tags})
        assert code == 200, (user, name, code)


def _grant(url: str, ws: str | None, user: str, rtype: str, rid: str, permission: str | None) -> int:
    """root grants (or, without a permission, revokes) a per-user permission through the server."""
    body = {"username": user, "resource_type": rtype, "resource_id": rid}
    if permission is None:
        return _call(url, "/api/3.0/mlflow/users/permissions/revoke", "root", ws, body)
    return _call(url, "/api/3.0/mlflow/users/permissions/grant", "root", ws, {**body, "permission": permission})


def _probe(url: str, user: str, rtype: str, rid: str, action: str, ws: str | None) -> int:
    """One cell's status code.  Delete is asked without destroying anything: an experiment's restore runs the
    same check as its delete (``validate_can_delete_experiment``) and fails on an active one; a model's delete
    is refused by the database (``_no_deletes``) after the check passed."""
    if rtype == "experiment":
        path, body = {
            "read": (f"/api/2.0/mlflow/experiments/get?experiment_id={rid}", None),
            "update": ("/api/2.0/mlflow/experiments/set-experiment-tag", {"experiment_id": rid, "key": "k", "value": user}),
            "delete": ("/api/2.0/mlflow/experiments/restore", {"experiment_id": rid}),
        }[action]  # fmt: skip
        return _call(url, path, user, ws, body)
    if action == "read":
        return _call(url, f"/api/2.0/mlflow/registered-models/get?name={quote(rid)}", user, ws)
    if action == "update":
        body = {"name": rid, "key": "k", "value": user}
        return _call(url, "/api/2.0/mlflow/registered-models/set-tag", user, ws, body)
    return _delete_model(url, user, rid, ws)


def _delete_model(url: str, user: str, name: str, ws: str | None) -> int:
    import base64
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url + "/api/2.0/mlflow/registered-models/delete", data=json.dumps({"name": name}).encode(), method="DELETE"
    )
    token = base64.b64encode(f"{user}:pw-{user}-12345678".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    if ws is not None:
        request.add_header("X-MLFLOW-WORKSPACE", ws)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@contextlib.contextmanager
def _no_deletes(db) -> Iterator[None]:
    """A trigger that refuses every delete of a registered model, so a permitted delete probe changes nothing."""
    if db.backend == "sqlite":
        create = ["CREATE TRIGGER mwa_probe BEFORE DELETE ON registered_models BEGIN SELECT RAISE(ABORT, 'probe'); END"]
        drop = ["DROP TRIGGER mwa_probe"]
    else:
        create = [
            "CREATE FUNCTION mwa_probe() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'probe'; END $$",
            "CREATE TRIGGER mwa_probe BEFORE DELETE ON registered_models FOR EACH ROW EXECUTE FUNCTION mwa_probe()",
        ]
        drop = ["DROP TRIGGER mwa_probe ON registered_models", "DROP FUNCTION mwa_probe()"]
    with db.engine.begin() as conn:
        for sql in create:
            conn.execute(text(sql))
    try:
        yield
    finally:
        with db.engine.begin() as conn:
            for sql in drop:
                conn.execute(text(sql))


def _cells(url: str, db, resources: list[tuple[str, str, str]], *, workspaces: bool) -> dict[Cell, int]:
    with _no_deletes(db):
        return {
            (user, rtype, rid, action): _probe(url, user, rtype, rid, action, ws if workspaces else None)
            for user in USERS
            for rtype, ws, rid in resources
            for action in ACTIONS
        }


def _allowed(code: int) -> bool:
    """Past the auth layer: anything but 401/403 (a permitted call may still fail in the handler: the planted
    rows leave columns NULL, and the delete probes are refused on purpose)."""
    return code not in (401, 403)


def _changed(before: dict[Cell, int], after: dict[Cell, int]) -> set[Cell]:
    return {cell for cell in before if _allowed(before[cell]) != _allowed(after[cell])}


def _reported(doc: dict, resources: list[tuple[str, str, str]]) -> set[Cell]:
    """The report's changes as cells: its resource subjects (``experiment 5 (team-a)``), the probed actions."""
    subjects = {f"{rtype} {rid} ({ws})": (rtype, rid) for rtype, ws, rid in resources}
    return {
        (c["user"], *subjects[c["subject"]], action)
        for c in doc["changes"]
        if c["subject"] in subjects
        for action in (*c["gained"], *c["lost"])
        if action in ACTIONS
    }


def _scenario(url: str, ws: str | None, model: str) -> list[int]:
    """Revoke, rename and delete-then-recreate through MLflow, on a model alice created and bob was granted."""
    renamed = model + "-renamed"
    return [
        _call(url, f"/api/2.0/mlflow/registered-models/get?name={model}", "bob", ws),  # the per-user grant
        _grant(url, ws, "bob", "registered_model", model, None),  # the admin revokes it
        _call(url, f"/api/2.0/mlflow/registered-models/get?name={model}", "bob", ws),
        _call(url, "/api/2.0/mlflow/registered-models/rename", "alice", ws, {"name": model, "new_name": renamed}),
        _call(url, f"/api/2.0/mlflow/registered-models/get?name={renamed}", "alice", ws),  # the creator keeps it
        _call(url, "/api/2.0/mlflow/registered-models/set-tag", "alice", ws, {"name": renamed, "key": "k", "value": "1"}),
        _delete_model(url, "alice", renamed, ws),
        _call(url, "/api/2.0/mlflow/registered-models/create", "bob", ws, {"name": renamed}),  # bob's now
        _call(url, f"/api/2.0/mlflow/registered-models/get?name={renamed}", "alice", ws),
        _call(url, "/api/2.0/mlflow/registered-models/set-tag", "alice", ws, {"name": renamed, "key": "k", "value": "2"}),
    ]  # fmt: skip


def test_every_users_access_through_a_real_server_before_and_after(auth_db, scratch_db, tmp_path: Path) -> None:
    if scratch_db.backend == "mysql":
        pytest.skip("SQLite and PostgreSQL: two MLflow servers each; MariaDB is covered by the oracle tests")
    tracking = scratch_db.load("3.17.2")  # the schema MLflow 3.17.2's server accepts
    ids = plant_tracking(tracking)
    _oracle("setup", auth_db.uri, _spec(ids))
    tracking.engine.dispose()
    auth_db.engine.dispose()
    app = ("--app-name", "basic-auth")

    ini = _ini(tmp_path / "before.ini", auth_db, "READ")
    with mlflow_server(tracking.uri, tmp_path, workspaces=True, extra_args=app, **_auth_env(ini)) as s:
        assert s.process.poll() is None, s.output()[-3000:]
        for user in ("alice", "bob", "dave"):
            for ws in ("team-a", "team-b"):
                _create(s.url, user, ws)
        for model in (f"{SCENARIO}pre", f"{SCENARIO}post"):
            assert _grant(s.url, "team-a", "bob", "registered_model", model, "READ") == 200
        with tracking.engine.connect() as conn:
            ea = conn.execute(text("SELECT experiment_id FROM experiments WHERE name = 'ea'")).scalar_one()
        assert _grant(s.url, "team-a", "dave", "experiment", str(ea), "READ") == 200
        expected = _scenario(s.url, "team-a", f"{SCENARIO}pre")
        with tracking.engine.connect() as conn:
            ownership = read_ownership(conn)
        resources = [
            (r.resource_type, r.workspace, r.before_id)
            for r in ownership.resources
            if r.resource_type in ("experiment", "registered_model", "prompt") and not r.before_id.startswith(SCENARIO)
        ]
        before = _cells(s.url, tracking, resources, workspaces=True)
    tracking.engine.dispose()

    # what MLflow itself does with per-user grants, with workspaces on
    assert expected == [200, 200, 403, 200, 200, 200, 200, 200, 403, 403]
    assert ("prompt", "team-a", "pa") in resources  # classified by its tag
    assert before["bob", "registered_model", "fraud-a", "read"] == 403  # DENY
    assert _allowed(before["carol", "prompt", "pa", "delete"])  # the workspace admin
    assert _allowed(before["dave", "experiment", str(ea), "read"])  # the admin's per-user grant
    assert not _allowed(before["dave", "experiment", str(ea), "update"])

    journal = tmp_path / "tracking.jsonl"
    assert migrate(tracking.uri, "-y", "--journal", str(journal)).exit_code == ExitStatus.OK
    first = auth_migrate(
        auth_db, tracking, "-y", "--per-resource", "--widen", "--tracking-journal", str(journal),
        "--rename-conflicts", "{name} ({workspace})", "--journal", str(tmp_path / "auth1.jsonl"), "--format", "json",
    )  # fmt: skip
    assert first.exit_code == ExitStatus.OK, first.output
    assert _reported(json.loads(first.stdout), resources) == set()

    ini = _ini(tmp_path / "after.ini", auth_db, "NO_PERMISSIONS")
    with mlflow_server(tracking.uri, tmp_path, workspaces=False, extra_args=app, **_auth_env(ini)) as s:
        assert s.process.poll() is None, s.output()[-3000:]
        after = _cells(s.url, tracking, resources, workspaces=False)
        assert _changed(before, after) == set()
        assert after == before  # the very status codes

        # the same server: back to the rows as they were, then --drop instead
        sessions = ("--ignore-other-sessions",)  # the running server's own
        restored = run_cli("auth", "restore", auth_db.uri, "--journal", str(tmp_path / "auth1.jsonl"), "-y", *sessions)
        assert restored.exit_code == ExitStatus.OK, restored.output
        dropped = auth_migrate(
            auth_db, tracking, "-y", "--drop", "--tracking-journal", str(journal), *sessions,
            "--rename-conflicts", "{name} ({workspace})", "--format", "json",
        )  # fmt: skip
        assert dropped.exit_code == ExitStatus.OK, dropped.output
        after_drop = _cells(s.url, tracking, resources, workspaces=False)
        changed = _changed(before, after_drop)
        assert changed  # carol's workspace admin grant, dropped
        assert changed == _reported(json.loads(dropped.stdout), resources)
        print(f"{len(before)} cells; --per-resource --widen changed 0; --drop changed {len(changed)}")

        # revoke, rename and delete-recreate of per-user grants made with workspaces on, as MLflow did them then
        assert _scenario(s.url, None, f"{SCENARIO}post") == expected


def test_widen_keeps_the_scorer_veto_a_real_server_enforces(auth_db, scratch_db, tmp_path: Path) -> None:
    """MLflow checks an experiment's delete against the user's `scorer` wildcard too: alice's MANAGE on team-a's
    experiments cannot delete them beside her scorer READ wildcard.  With scorers in two workspaces the wildcard
    would be narrowed to per-id grants, which veto nothing; `--widen` keeps it whole, and the server without
    workspaces answers every probe as before."""
    if scratch_db.backend == "mysql":
        pytest.skip("SQLite and PostgreSQL: two MLflow servers each; MariaDB is covered by the oracle tests")
    tracking = scratch_db.load("3.17.2")
    ids = plant_tracking(tracking)
    with tracking.engine.begin() as conn:
        for i, name in enumerate(("a1", "b1")):
            conn.execute(
                text("INSERT INTO scorers (experiment_id, scorer_name, scorer_id) VALUES (:e, :n, :i)"),
                {"e": ids[name], "n": f"judge-{name}", "i": f"scorer-{i}"},
            )
    spec = {
        "users": ["alice", "root"],
        "admins": ["root"],
        "roles": [
            {"workspace": "team-a", "name": "ops", "grants": [["experiment", "*", "MANAGE"], ["scorer", "*", "READ"]]}
        ],
        "members": {"alice": [["team-a", "ops"]]},
    }
    _oracle("setup", auth_db.uri, spec)
    tracking.engine.dispose()
    auth_db.engine.dispose()
    app = ("--app-name", "basic-auth")
    probes = [(str(ids[name]), action) for name in ("a1", "a2") for action in ACTIONS]

    def answers(url: str, workspace: str | None) -> dict[tuple[str, str], int]:
        return {(rid, action): _probe(url, "alice", "experiment", rid, action, workspace) for rid, action in probes}

    with mlflow_server(tracking.uri, tmp_path, workspaces=True, extra_args=app, **_auth_env(_ini(tmp_path / "before.ini", auth_db, "READ"))) as s:  # fmt: skip
        assert s.process.poll() is None, s.output()[-3000:]
        before = answers(s.url, "team-a")
    tracking.engine.dispose()
    assert _allowed(before[str(ids["a1"]), "update"])  # MANAGE
    assert not _allowed(before[str(ids["a1"]), "delete"])  # vetoed by the scorer wildcard's READ

    journal = tmp_path / "tracking.jsonl"
    assert migrate(tracking.uri, "-y", "--journal", str(journal)).exit_code == ExitStatus.OK
    widened = auth_migrate(auth_db, tracking, "-y", "--widen", "--tracking-journal", str(journal), "--format", "json")
    assert widened.exit_code == ExitStatus.OK, widened.output
    doc = json.loads(widened.stdout)
    assert [(f["kind"], f["resolution"]) for f in doc["findings"]] == [("wildcard-only", "widened")]
    assert not [c for c in doc["changes"] if c["subject"].startswith("experiment ")]

    with mlflow_server(tracking.uri, tmp_path, workspaces=False, extra_args=app, **_auth_env(_ini(tmp_path / "after.ini", auth_db, "NO_PERMISSIONS"))) as s:  # fmt: skip
        assert s.process.poll() is None, s.output()[-3000:]
        assert answers(s.url, None) == before
