"""`auth migrate-to-default-workspace` end to end, on every backend: the basic-auth database's roles into
`default`, with every user's effective permission on every resource kept (or changed only as accepted)."""

from __future__ import annotations

import json

import pytest

from mlflow_ws_admin.auth.state import LEGACY_TABLES
from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.engine.rename_template import RenameTemplate

from .auth_helpers import auth_migrate, auth_rows, plant_auth, plant_tracking
from .helpers import run_cli, sample_data

TEMPLATE = "{name} ({workspace})"
AUTH_ROW_TABLES = ("roles", "role_permissions", "user_role_assignments")
VIEWERS = {
    ("team-a", "viewer"): [("experiment", "*", "READ"), ("registered_model", "fraud-a", "EDIT")],
    ("team-b", "viewer"): [("experiment", "*", "READ")],
    ("default", "editors"): [("experiment", "d1", "EDIT")],
}
MEMBERS = {"alice": [("team-a", "viewer")], "bob": [("team-b", "viewer")], "dave": [("default", "editors")]}


def _viewers(ids):
    roles = dict(VIEWERS)
    roles["default", "editors"] = [("experiment", str(ids["d1"]), "EDIT")]
    return roles


def test_dry_run_translates_wildcards_and_renames_and_changes_nothing(auth_db, mlflow_db) -> None:
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, _viewers(ids), MEMBERS)
    before = (auth_db.fingerprint(), mlflow_db.fingerprint())

    result = auth_migrate(auth_db, mlflow_db, "--dry-run", "--rename-conflicts", TEMPLATE)

    assert result.exit_code == ExitStatus.OK, result.output
    out = result.stdout
    assert 'renamed  "viewer (team-b)": 1 grant(s), 1 member(s)  <- team-b/"viewer"' in out
    assert 'renamed  "viewer (team-a)": 3 grant(s), 1 member(s)  <- team-a/"viewer"' in out
    assert 'kept     "editors": 1 grant(s), 1 member(s)' in out
    assert "Effective permissions: unchanged for every user and resource." in out
    assert "Required: set default_permission = NO_PERMISSIONS" in out
    assert "Ready: 3 role(s) into default" in out
    assert (auth_db.fingerprint(), mlflow_db.fingerprint()) == before


def test_apply_expands_wildcards_to_the_workspace_s_resources(auth_db, mlflow_db) -> None:
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, _viewers(ids), MEMBERS)
    tracking_before = mlflow_db.fingerprint()

    result = auth_migrate(auth_db, mlflow_db, "-y", "--rename-conflicts", TEMPLATE)

    assert result.exit_code == ExitStatus.OK, result.output
    assert "Applied: 3 role(s) in default (0 merged away), 5 grant(s), 3 assignment(s); verified." in result.stdout
    assert auth_rows(auth_db) == {
        "default/editors": [[("experiment", str(ids["d1"]), "EDIT")], ["dave"]],
        "default/viewer (team-a)": [
            [
                ("experiment", str(ids["a1"]), "READ"),
                ("experiment", str(ids["a2"]), "READ"),
                ("registered_model", "fraud-a", "EDIT"),
            ],
            ["alice"],
        ],
        "default/viewer (team-b)": [[("experiment", str(ids["b1"]), "READ")], ["bob"]],
    }
    assert mlflow_db.fingerprint() == tracking_before
    # A second run finds nothing to do.
    again = auth_migrate(auth_db, mlflow_db, "-y", "--rename-conflicts", TEMPLATE)
    assert again.exit_code == ExitStatus.OK, again.output
    assert "Nothing to migrate" in again.stdout


def test_colliding_role_names_block_without_a_template(auth_db, mlflow_db) -> None:
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, _viewers(ids), MEMBERS)
    before = auth_db.fingerprint()

    result = auth_migrate(auth_db, mlflow_db, "-y")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert '[blocking] role-name-conflict: role "viewer" of team-a' in result.stdout
    assert "no --rename-conflicts template given" in result.stdout
    assert auth_db.fingerprint() == before


def test_equal_translated_roles_merge_and_assignments_follow(auth_db, mlflow_db) -> None:
    plant_tracking(mlflow_db)
    same = [("registered_model", "*", "READ")]
    roles = {("team-a", "ops"): [("experiment", "*", "READ")], ("team-b", "ops"): [("experiment", "*", "READ")]}
    roles["team-a", "readers"] = same
    # models: a role of team-b granting READ on every model of team-a? No: each keeps its own workspace's.
    plant_auth(auth_db, {**roles}, {"alice": [("team-a", "ops"), ("team-a", "readers")], "bob": [("team-b", "ops")]})

    # Two 'ops' roles with different translated sets are renamed; now make them equal: both grant nothing
    # resolvable (no scorer exists), so they translate to the same (empty) set and merge.
    with auth_db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE role_permissions SET resource_type = 'scorer' WHERE resource_type = 'experiment'")
    result = auth_migrate(auth_db, mlflow_db, "-y")

    assert result.exit_code == ExitStatus.OK, result.output
    rows = auth_rows(auth_db)
    # No scorer exists anywhere, so the wildcard cannot widen: it stays one, and the two roles are equal.
    assert rows["default/ops"] == [[("scorer", "*", "READ")], ["alice", "bob"]]
    assert "team-a/ops" not in rows and "team-b/ops" not in rows
    assert "merged" in result.stdout


WORKSPACE_ADMIN = {
    ("team-a", "admins"): [("workspace", "*", "MANAGE")],
    ("team-b", "viewer"): [("experiment", "*", "READ")],
}


def test_a_workspace_admin_blocks_naming_role_users_and_widening(auth_db, mlflow_db) -> None:
    plant_tracking(mlflow_db)
    plant_auth(auth_db, WORKSPACE_ADMIN, {"carol": [("team-a", "admins")], "bob": [("team-b", "viewer")]})
    before = (auth_db.fingerprint(), mlflow_db.fingerprint())

    result = auth_migrate(auth_db, mlflow_db, "--dry-run")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    out = result.stdout
    assert '[blocking] workspace-scope: role "admins" of team-a (workspace, "*", MANAGE) (users: "carol")' in out
    assert "would widen to admin (MANAGE on every resource) of every workspace, also default, team-b" in out
    assert "Blocked: 1 finding(s)" in out
    assert (auth_db.fingerprint(), mlflow_db.fingerprint()) == before


def test_widen_keeps_the_admin_grant_and_reports_what_carol_gains(auth_db, mlflow_db) -> None:
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, WORKSPACE_ADMIN, {"carol": [("team-a", "admins")], "bob": [("team-b", "viewer")]})

    result = auth_migrate(auth_db, mlflow_db, "-y", "--widen", "--format", "json")

    assert result.exit_code == ExitStatus.OK, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "applied" and doc["exit_code"] == 0
    assert [f["resolution"] for f in doc["findings"]] == ["widened"]
    gains = {(c["user"], c["subject"]) for c in doc["changes"] if c["accepted_by"] == "--widen"}
    assert ("carol", f"experiment {ids['b1']} (team-b)") in gains
    assert ("carol", f"experiment {ids['a1']} (team-a)") not in gains  # she was admin there already
    assert all(c["accepted_by"] for c in doc["changes"])
    assert auth_rows(auth_db)["default/admins"] == [[("workspace", "*", "MANAGE")], ["carol"]]


def test_widen_keeps_a_scorer_wildcard_whose_narrowing_would_let_alice_delete(auth_db, mlflow_db) -> None:
    """Deleting an experiment needs delete on the `scorer` wildcard too: alice's MANAGE on team-a's experiments
    stays vetoed by her scorer READ wildcard.  Narrowed to per-id grants, it would veto nothing: without a flag
    that gain blocks (exit 1, nothing written); with --widen the wildcard stays whole and the apply verifies."""
    ids = plant_tracking(mlflow_db)
    with mlflow_db.engine.begin() as conn, sample_data(conn) as data:
        for i, name in enumerate(("a1", "b1")):
            data.add("scorers", experiment_id=ids[name], scorer_name=f"judge-{name}", scorer_id=f"s{i}")
    plant_auth(
        auth_db,
        {("team-a", "ops"): [("experiment", "*", "MANAGE"), ("scorer", "*", "READ")]},
        {"alice": [("team-a", "ops")]},
    )
    before = auth_db.fingerprint()

    blocked = auth_migrate(auth_db, mlflow_db, "-y", "--format", "json")

    assert blocked.exit_code == ExitStatus.CONFLICTS, blocked.output
    doc = json.loads(blocked.stdout)
    assert {(c["subject"], tuple(c["gained"]), c["accepted_by"]) for c in doc["changes"]} >= {
        (f"experiment {ids['a1']} (team-a)", ("delete",), None)
    }
    assert auth_db.fingerprint() == before

    widened = auth_migrate(auth_db, mlflow_db, "-y", "--widen", "--format", "json")

    assert widened.exit_code == ExitStatus.OK, widened.output
    doc = json.loads(widened.stdout)
    assert doc["status"] == "applied"
    assert [(f["kind"], f["resolution"]) for f in doc["findings"]] == [("wildcard-only", "widened")]
    assert all(c["accepted_by"] == "--widen" and "delete" not in c["gained"] for c in doc["changes"])
    assert ("scorer", "*", "READ") in auth_rows(auth_db)["default/ops"][0]


def test_drop_removes_the_admin_grant_and_reports_what_carol_loses(auth_db, mlflow_db) -> None:
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, WORKSPACE_ADMIN, {"carol": [("team-a", "admins")], "bob": [("team-b", "viewer")]})

    result = auth_migrate(auth_db, mlflow_db, "-y", "--drop", "-v")

    assert result.exit_code == ExitStatus.OK, result.output
    lost = "loses read, use, update, delete, manage"
    assert f"experiment {ids['a1']} (team-a): MANAGE -> NO_PERMISSIONS, {lost} [--drop]" in result.stdout
    assert auth_rows(auth_db)["default/admins"] == [[], ["carol"]]


def test_a_wildcard_run_grant_blocks_and_drop_resolves_it(auth_db, mlflow_db) -> None:
    ids = plant_tracking(mlflow_db)
    roles = {("team-a", "runners"): [("run", "*", "EDIT"), ("experiment", "*", "READ")]}
    plant_auth(auth_db, roles, {"erin": [("team-a", "runners")]})
    before = auth_db.fingerprint()

    blocked = auth_migrate(auth_db, mlflow_db, "-y")
    assert blocked.exit_code == ExitStatus.CONFLICTS, blocked.output
    assert '[blocking] wildcard-only: role "runners" of team-a (run, "*", EDIT) (users: "erin")' in blocked.stdout
    assert "would widen to EDIT on every run, also in default, team-b" in blocked.stdout
    assert auth_db.fingerprint() == before

    dropped = auth_migrate(auth_db, mlflow_db, "-y", "--drop", "-v")
    assert dropped.exit_code == ExitStatus.OK, dropped.output
    # the runs now follow their experiment's READ
    assert f"every run of experiment {ids['a1']} (team-a): EDIT -> READ, loses use, update [--drop]" in dropped.stdout
    grants = auth_rows(auth_db)["default/runners"][0]
    assert [g[0] for g in grants] == ["experiment", "experiment"]


def test_widen_and_drop_together_is_a_usage_error(auth_db, mlflow_db) -> None:
    before = auth_db.fingerprint()
    result = auth_migrate(auth_db, mlflow_db, "--widen", "--drop")
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr.strip() == (
        "Error: --widen and --drop are exclusive: each grant is either kept default-wide or removed"
    )
    assert auth_db.fingerprint() == before


def test_a_tracking_database_given_as_auth_uri_is_refused(mlflow_db) -> None:
    before = mlflow_db.fingerprint()
    result = auth_migrate(mlflow_db, mlflow_db, "--dry-run")
    assert result.exit_code == ExitStatus.DATABASE_ERROR
    assert "not an MLflow basic-auth database with roles" in result.stderr
    assert "Traceback" not in result.output
    assert mlflow_db.fingerprint() == before


def test_dry_run_json_is_one_document_and_changes_nothing(auth_db, mlflow_db) -> None:
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, _viewers(ids), MEMBERS)
    before = (auth_db.fingerprint(), mlflow_db.fingerprint())

    result = auth_migrate(auth_db, mlflow_db, "--dry-run", "--rename-conflicts", TEMPLATE, "--format", "json")

    assert result.exit_code == ExitStatus.OK, result.output
    doc = json.loads(result.stdout)
    assert (doc["status"], doc["exit_code"], doc["dry_run"], doc["applied"]) == ("ok", 0, True, None)
    assert doc["default_permission_after"] == "NO_PERMISSIONS"
    assert doc["changes"] == [] and doc["findings"] == []
    viewer_a = next(r for r in doc["roles"] if r["name"] == "viewer (team-a)")
    assert viewer_a["from"][0]["workspace"] == "team-a" and viewer_a["members"] == ["alice"]
    assert {g["resource_pattern"] for g in viewer_a["grants"]} == {str(ids["a1"]), str(ids["a2"]), "fraud-a"}
    assert (auth_db.fingerprint(), mlflow_db.fingerprint()) == before


def test_same_named_resources_of_two_workspaces_block_until_the_tracking_migration(auth_db, mlflow_db) -> None:
    plant_tracking(mlflow_db)
    with mlflow_db.engine.begin() as conn:
        from mlflow_ws_admin.db.sample_data import SampleData

        with SampleData(conn) as data:
            data.registered_model("team-b", "fraud-a")
    plant_auth(
        auth_db, {("team-a", "viewer"): [("registered_model", "fraud-a", "EDIT")]}, {"alice": [("team-a", "viewer")]}
    )
    before = auth_db.fingerprint()

    result = auth_migrate(auth_db, mlflow_db, "-y")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert 'resource-collision: registered_model "fraud-a" exists in team-a, team-b' in result.stdout
    assert "pass --tracking-journal FILE" in result.stdout
    assert auth_db.fingerprint() == before


def test_rows_that_would_resolve_differently_are_rolled_back_with_exit_4(auth_db, mlflow_db) -> None:
    """The verification reads back what was written: corrupt it inside the transaction, and nothing commits."""
    from mlflow_ws_admin.auth.apply import AuthVerificationFailed, apply_auth_plan
    from mlflow_ws_admin.auth.plan import build_auth_plan
    from mlflow_ws_admin.auth.rules import AuthConfig
    from mlflow_ws_admin.auth.state import read_auth_state, read_ownership
    from mlflow_ws_admin.db.connect import create_db_engine, resolve_target

    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, _viewers(ids), MEMBERS)
    before = auth_db.fingerprint()
    target = resolve_target(auth_db.uri)
    engine = create_db_engine(target, read_only=False)
    with engine.connect() as conn:
        state = read_auth_state(conn)
    with mlflow_db.engine.connect() as conn:
        ownership = read_ownership(conn)
    plan = build_auth_plan(state, ownership, AuthConfig(), template=RenameTemplate.parse(TEMPLATE))
    assert not plan.changes

    def widen_a_wildcard(conn) -> None:
        # what a naive migration does: team-b's viewer keeps `experiment *`, now every experiment
        conn.exec_driver_sql(
            f"UPDATE role_permissions SET resource_pattern = '*' WHERE resource_pattern = '{ids['b1']}'"
        )

    with pytest.raises(AuthVerificationFailed) as failed:
        apply_auth_plan(engine, plan, target.backend, lock_timeout_s=10, check=widen_a_wildcard)
    engine.dispose()
    assert failed.value.exit_status == ExitStatus.VERIFICATION_FAILED
    assert "would change unaccepted" in failed.value.message
    assert any(c.username == "bob" and c.after == "READ" for c in failed.value.changes)
    assert auth_db.fingerprint() == before


def test_passwords_never_appear(auth_db, mlflow_db) -> None:
    secret_uri = "postgresql://admin:s3cr3t-Pw@127.0.0.1:1/nothing"
    result = run_cli("auth", "migrate-to-default-workspace", auth_db.uri, "--tracking-uri", secret_uri, "--dry-run")
    assert result.exit_code == ExitStatus.DATABASE_ERROR
    assert "s3cr3t-Pw" not in result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")


def test_journal_records_the_rows_before_and_after(auth_db, mlflow_db, tmp_path) -> None:
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, _viewers(ids), MEMBERS)
    journal = tmp_path / "auth.jsonl"

    result = auth_migrate(auth_db, mlflow_db, "-y", "--rename-conflicts", TEMPLATE, "--journal", str(journal))

    assert result.exit_code == ExitStatus.OK, result.output
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert records[0]["type"] == "header" and records[0]["operation"] == "auth-migrate"
    assert [r["type"] for r in records[-2:]] == ["sealed", "complete"]
    roles_before = [
        r["row"] for r in records if r["type"] == "auth_row" and r["when"] == "before" and r["table"] == "roles"
    ]
    roles_after = [
        r["row"] for r in records if r["type"] == "auth_row" and r["when"] == "after" and r["table"] == "roles"
    ]
    assert sorted(r["workspace"] for r in roles_before) == ["default", "team-a", "team-b"]
    assert {r["workspace"] for r in roles_after} == {"default"}


def test_restore_puts_back_every_row_and_refuses_later_changes(auth_db, mlflow_db, tmp_path) -> None:
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, WORKSPACE_ADMIN | _viewers(ids), {**MEMBERS, "carol": [("team-a", "admins")]})
    original = auth_db.dump()
    journal = tmp_path / "auth.jsonl.gz"
    migrated = auth_migrate(
        auth_db, mlflow_db, "-y", "--drop", "--rename-conflicts", TEMPLATE, "--journal", str(journal)
    )
    assert migrated.exit_code == ExitStatus.OK, migrated.output
    after = auth_db.dump()
    assert after != original

    preview = run_cli("auth", "restore", auth_db.uri, "--journal", str(journal), "--dry-run")
    assert preview.exit_code == ExitStatus.OK, preview.output
    assert "will be put back" in preview.stdout
    assert auth_db.dump() == after

    restored = run_cli("auth", "restore", auth_db.uri, "--journal", str(journal), "-y", "--format", "json")
    assert restored.exit_code == ExitStatus.OK, restored.output
    doc = json.loads(restored.stdout)
    assert (doc["status"], doc["exit_code"], doc["rows_to_restore"]) == ("applied", 0, doc["rows_restored"])
    assert doc["rows_restored"] == sum(len(rows) for t, rows in original.items() if t in AUTH_ROW_TABLES)
    assert auth_db.dump() == original

    # Restoring twice: the rows are no longer what the migration wrote.
    again = run_cli("auth", "restore", auth_db.uri, "--journal", str(journal), "-y")
    assert again.exit_code == ExitStatus.CONFLICTS
    assert "changed since the migration wrote them" in again.stderr
    assert auth_db.dump() == original


def test_restore_refuses_a_tracking_journal(auth_db, mlflow_db, tmp_path) -> None:
    journal = tmp_path / "tracking.jsonl"
    plant_tracking(mlflow_db)
    assert run_cli("db", "migrate-to-default-workspace", mlflow_db.uri, "-y", "--journal", str(journal)).exit_code == 0
    before = auth_db.dump()
    result = run_cli("auth", "restore", auth_db.uri, "--journal", str(journal), "-y")
    assert result.exit_code == ExitStatus.USAGE
    assert "belongs to another database" in result.stderr
    assert auth_db.dump() == before


def test_preflight_auth_uri_fails_on_what_the_auth_migration_blocks_on(auth_db, mlflow_db) -> None:
    plant_tracking(mlflow_db)
    plant_auth(auth_db, WORKSPACE_ADMIN, {"carol": [("team-a", "admins")], "bob": [("team-b", "viewer")]})
    before = (auth_db.fingerprint(), mlflow_db.fingerprint())

    result = run_cli("db", "preflight", mlflow_db.uri, "--auth-uri", auth_db.uri, "--format", "json")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["auth roles"]["status"] == "pass"
    assert checks["auth findings"]["status"] == "fail"
    assert checks["auth findings"]["details"] == [
        'workspace-scope: role "admins" of team-a (users: "carol") would widen to admin (MANAGE on every resource) '
        "of every workspace, also default, team-b"
    ]
    assert checks["auth default_permission"]["status"] == "warn"
    assert (auth_db.fingerprint(), mlflow_db.fingerprint()) == before


def test_preflight_auth_uri_passes_when_nothing_blocks(auth_db, mlflow_db) -> None:
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, {("team-a", "viewer"): [("experiment", "*", "READ")]}, {"alice": [("team-a", "viewer")]})
    before = (auth_db.fingerprint(), mlflow_db.fingerprint())
    result = run_cli(
        "db", "preflight", mlflow_db.uri, "--auth-uri", auth_db.uri, "--default-permission", "NO_PERMISSIONS"
    )
    # the tracking rows outside default are informational; the auth checks pass
    assert result.exit_code == ExitStatus.OK, result.output
    assert "PASS  auth findings" in result.stdout
    assert "PASS  auth roles            1 role(s), 1 outside default" in result.stdout
    assert "auth default_permission" not in result.stdout
    assert ids
    assert (auth_db.fingerprint(), mlflow_db.fingerprint()) == before


def test_without_a_terminal_or_yes_it_refuses_to_prompt(auth_db, mlflow_db) -> None:
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, _viewers(ids), MEMBERS)
    before = auth_db.fingerprint()
    result = auth_migrate(auth_db, mlflow_db, "--rename-conflicts", TEMPLATE)
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr == "Error: refusing to prompt without a terminal: pass -y to apply, or --dry-run\n"
    assert auth_db.fingerprint() == before


@pytest.mark.parametrize(
    ("flags", "code", "message"),
    [
        (("--tracking-uri", "http://mlflow.internal:5000"), ExitStatus.USAGE, "unsupported database scheme 'http'"),
        (("--rename-conflicts", "{nom}"), ExitStatus.USAGE, "unknown placeholder {nom}"),
        (("--format", "markdown"), ExitStatus.USAGE, "--format markdown is not available for the auth migration"),
        (("--tracking-journal", "/nonexistent/j.jsonl"), ExitStatus.USAGE, "journal file not found"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(auth_db, mlflow_db, flags, code, message) -> None:
    before = (auth_db.fingerprint(), mlflow_db.fingerprint())
    args = ["auth", "migrate-to-default-workspace", auth_db.uri, "--dry-run"]
    if flags[0] != "--tracking-uri":
        args += ["--tracking-uri", mlflow_db.uri]
    result = run_cli(*args, *flags)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert (auth_db.fingerprint(), mlflow_db.fingerprint()) == before


def test_grants_follow_a_resource_the_tracking_migration_renamed(auth_db, mlflow_db, tmp_path) -> None:
    from mlflow_ws_admin.db.sample_data import SampleData

    ids = plant_tracking(mlflow_db)
    with mlflow_db.engine.begin() as conn, SampleData(conn) as data:
        data.add("registered_models", workspace="team-a", name="fraud")
        data.add("registered_models", workspace="default", name="fraud")
    roles = {
        ("team-a", "fraud-owners"): [("registered_model", "fraud", "MANAGE"), ("experiment", "*", "READ")],
        ("default", "fraud-readers"): [("registered_model", "fraud", "READ")],
    }
    plant_auth(auth_db, roles, {"alice": [("team-a", "fraud-owners")], "dave": [("default", "fraud-readers")]})
    journal = tmp_path / "tracking.jsonl"
    # The real tracking migration: team-a's `fraud` moves to default as `fraud (team-a)`; default keeps its own.
    tracking = run_cli(
        "db",
        "migrate-to-default-workspace",
        mlflow_db.uri,
        "-y",
        "--rename-conflicts",
        TEMPLATE,
        "--journal",
        str(journal),
    )
    assert tracking.exit_code == ExitStatus.OK, tracking.output
    assert mlflow_db.scalar("SELECT COUNT(*) FROM registered_models WHERE name = 'fraud (team-a)'") == 1

    result = auth_migrate(auth_db, mlflow_db, "-y", "-v", "--tracking-journal", str(journal))

    assert result.exit_code == ExitStatus.OK, result.output
    assert "unchanged for every user and resource" in result.stdout
    rows = auth_rows(auth_db)
    assert rows["default/fraud-owners"] == [
        sorted(
            [
                ("registered_model", "fraud (team-a)", "MANAGE"),
                ("experiment", str(ids["a1"]), "READ"),
                ("experiment", str(ids["a2"]), "READ"),
            ]
        ),
        ["alice"],
    ]
    assert rows["default/fraud-readers"] == [[("registered_model", "fraud", "READ")], ["dave"]]


def test_role_names_collide_as_the_backend_compares_them(auth_db, mlflow_db, backend) -> None:
    """MariaDB's unique index on (workspace, name) is case-insensitive: `Viewer` and `viewer` collide there only."""
    plant_tracking(mlflow_db)
    roles = {("team-a", "Viewer"): [("experiment", "*", "READ")], ("team-b", "viewer"): [("experiment", "*", "READ")]}
    plant_auth(auth_db, roles, {"alice": [("team-a", "Viewer")], "bob": [("team-b", "viewer")]})

    result = auth_migrate(auth_db, mlflow_db, "-y", "--rename-conflicts", TEMPLATE)

    assert result.exit_code == ExitStatus.OK, result.output
    names = sorted(auth_rows(auth_db))
    if backend == "mysql":
        assert names == ["default/Viewer (team-a)", "default/viewer (team-b)"]
    else:
        assert names == ["default/Viewer", "default/viewer"]


def test_json_document_fields(auth_db, mlflow_db) -> None:
    plant_tracking(mlflow_db)
    plant_auth(auth_db, WORKSPACE_ADMIN, {"carol": [("team-a", "admins")], "bob": [("team-b", "viewer")]})
    before = (auth_db.fingerprint(), mlflow_db.fingerprint())
    result = auth_migrate(auth_db, mlflow_db, "--dry-run", "--format", "json")
    assert (auth_db.fingerprint(), mlflow_db.fingerprint()) == before
    assert result.exit_code == ExitStatus.CONFLICTS
    doc = json.loads(result.stdout)
    assert set(doc) == {
        "schema_version", "status", "exit_code", "dry_run", "database", "tracking_database",
        "default_permission_after", "roles", "findings", "dangling_grants", "changes", "compared", "applied",
        "choices", "ignored_legacy_tables", "new_users",
    }  # fmt: skip
    # carol, admin of team-a: --widen gives her team-b's and default's resources, --drop takes team-a's,
    # --per-resource keeps exactly what she had
    choices = {c["option"]: (c["gained"], c["lost"]) for c in doc["choices"]}
    assert choices["--per-resource --drop"] == (0, 0)
    assert choices["--widen"][0] > 0 and choices["--widen"][1] == 0
    assert choices["--drop"][0] == 0 and choices["--drop"][1] > 0
    assert doc["new_users"]["roles_by_workspace"] == {"team-a": ["admins"], "team-b": ["viewer"]}
    # MLflow 3.17.2's schema keeps the legacy tables; empty here
    assert {t["table"]: t["rows"] for t in doc["ignored_legacy_tables"]} == dict.fromkeys(LEGACY_TABLES, 0)
    assert (doc["status"], doc["exit_code"]) == ("conflicts", 1)
    (finding,) = doc["findings"]
    assert finding["kind"] == "workspace-scope" and finding["blocking"] and finding["users"] == ["carol"]
    assert finding["grant"] == {"resource_type": "workspace", "resource_pattern": "*", "permission": "MANAGE"}
    assert {c["accepted_by"] for c in doc["changes"]} == {"blocked: what --drop would do"}
    assert doc["tracking_database"]["dialect"] == doc["database"]["dialect"]


def test_legacy_per_resource_tables_are_reported_with_their_rows_and_left_alone(auth_db, mlflow_db) -> None:
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, _viewers(ids), MEMBERS)
    with auth_db.engine.begin() as conn:
        alice = conn.exec_driver_sql("SELECT id FROM users WHERE username = 'alice'").scalar_one()
        for experiment in ("a1", "b1"):
            conn.exec_driver_sql(
                "INSERT INTO experiment_permissions (experiment_id, user_id, permission) VALUES "
                f"('{ids[experiment]}', {alice}, 'MANAGE')"
            )
    legacy_before = _legacy(auth_db)

    result = auth_migrate(auth_db, mlflow_db, "-y", "--rename-conflicts", TEMPLATE)

    assert result.exit_code == ExitStatus.OK, result.output
    assert "Ignored: legacy table experiment_permissions (2 row(s)): MLflow 3.17.2 no longer reads it" in result.stdout
    assert "registered_model_permissions (0" not in result.stdout  # empty ones are not listed in text
    assert _legacy(auth_db) == legacy_before and len(legacy_before) == 2


def _legacy(db) -> list[tuple]:
    with db.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.exec_driver_sql("SELECT * FROM experiment_permissions"))


def test_a_grant_added_after_the_plan_rolls_back_with_exit_4(auth_db, mlflow_db) -> None:
    from mlflow_ws_admin.auth.apply import AuthDrifted, apply_auth_plan
    from mlflow_ws_admin.auth.plan import build_auth_plan
    from mlflow_ws_admin.auth.rules import AuthConfig
    from mlflow_ws_admin.auth.state import read_auth_state, read_ownership
    from mlflow_ws_admin.db.connect import create_db_engine, resolve_target

    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, _viewers(ids), MEMBERS)
    target = resolve_target(auth_db.uri)
    engine = create_db_engine(target, read_only=False)
    with engine.connect() as conn:
        state = read_auth_state(conn)
    with mlflow_db.engine.connect() as conn:
        plan = build_auth_plan(state, read_ownership(conn), AuthConfig(), template=RenameTemplate.parse(TEMPLATE))
    engine.dispose()
    auth_db.execute(
        "INSERT INTO role_permissions (role_id, resource_type, resource_pattern, permission) "
        "SELECT id, 'run', '*', 'EDIT' FROM roles WHERE name = 'editors'"
    )
    changed = auth_db.fingerprint()

    with pytest.raises(AuthDrifted) as drifted:
        apply_auth_plan(engine, plan, target.backend, lock_timeout_s=10)
    engine.dispose()

    assert drifted.value.exit_status == ExitStatus.VERIFICATION_FAILED
    assert "changed since it was read" in drifted.value.message
    assert auth_db.fingerprint() == changed


def test_after_the_tracking_migration_its_journal_is_required(auth_db, mlflow_db, tmp_path) -> None:
    """Without it every resource looks like default's, and team roles would silently lose their wildcards."""
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, _viewers(ids), MEMBERS)
    journal = tmp_path / "tracking.jsonl"
    assert run_cli("db", "migrate-to-default-workspace", mlflow_db.uri, "-y", "--journal", str(journal)).exit_code == 0
    before = auth_db.fingerprint()

    blind = auth_migrate(auth_db, mlflow_db, "-y", "--rename-conflicts", TEMPLATE)
    assert blind.exit_code == ExitStatus.CONFLICTS, blind.output
    assert "ownership-unknown: roles of team-a, team-b remain, but the tracking database has every resource" in (
        blind.stdout
    )
    assert auth_db.fingerprint() == before

    informed = auth_migrate(
        auth_db, mlflow_db, "-y", "--rename-conflicts", TEMPLATE, "--tracking-journal", str(journal)
    )
    assert informed.exit_code == ExitStatus.OK, informed.output
    assert auth_rows(auth_db)["default/viewer (team-a)"][0] == [
        ("experiment", str(ids["a1"]), "READ"),
        ("experiment", str(ids["a2"]), "READ"),
        ("registered_model", "fraud-a", "EDIT"),
    ]


def test_preflight_after_the_tracking_migration_reads_its_journal(auth_db, mlflow_db, tmp_path) -> None:
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, _viewers(ids), MEMBERS)
    journal = tmp_path / "tracking.jsonl"
    assert run_cli("db", "migrate-to-default-workspace", mlflow_db.uri, "-y", "--journal", str(journal)).exit_code == 0
    before = (auth_db.fingerprint(), mlflow_db.fingerprint())

    blind = run_cli("db", "preflight", mlflow_db.uri, "--auth-uri", auth_db.uri, "--format", "json")
    informed = run_cli(
        "db", "preflight", mlflow_db.uri, "--auth-uri", auth_db.uri, "--tracking-journal", str(journal),
        "--format", "json",
    )  # fmt: skip

    checks = {c["name"]: c for c in json.loads(blind.stdout)["checks"]}
    assert checks["auth findings"]["details"][0].startswith("ownership-unknown: roles of team-a, team-b remain")
    checks = {c["name"]: c for c in json.loads(informed.stdout)["checks"]}
    # only the role names remain to resolve: preflight takes no --rename-conflicts
    assert [d.split(":")[0] for d in checks["auth findings"]["details"]] == ["role-name-conflict", "role-name-conflict"]
    assert (auth_db.fingerprint(), mlflow_db.fingerprint()) == before


# --- per-user roles, registry objects by their prompt tag, --per-resource --------------------------------------


def test_per_user_roles_merge_into_default_s_one_under_their_name(auth_db, mlflow_db) -> None:
    """MLflow's revoke and clean-up only find a role named __user_<id>__ in the active workspace: it is never
    renamed, every workspace's one folds into default's."""
    ids = plant_tracking(mlflow_db)
    roles = {
        ("team-a", "__user_1__"): [("experiment", str(ids["a1"]), "MANAGE")],
        ("team-b", "__user_1__"): [("experiment", str(ids["b1"]), "MANAGE"), ("registered_model", "churn-b", "EDIT")],
        ("default", "__user_1__"): [("experiment", str(ids["d1"]), "READ")],
    }
    plant_auth(auth_db, roles, {"alice": list(roles)})

    result = auth_migrate(auth_db, mlflow_db, "-y")  # no --rename-conflicts needed

    assert result.exit_code == ExitStatus.OK, result.output
    assert "Effective permissions: unchanged for every user and resource." in result.stdout
    assert auth_rows(auth_db) == {
        "default/__user_1__": [
            sorted(
                [
                    ("experiment", str(ids["a1"]), "MANAGE"),
                    ("experiment", str(ids["b1"]), "MANAGE"),
                    ("experiment", str(ids["d1"]), "READ"),
                    ("registered_model", "churn-b", "EDIT"),
                ]
            ),
            ["alice"],
        ]
    }


def test_a_registry_object_gets_only_the_key_its_prompt_tag_makes_mlflow_consult(auth_db, mlflow_db) -> None:
    from mlflow_ws_admin.db.sample_data import SampleData

    plant_tracking(mlflow_db)
    with mlflow_db.engine.begin() as conn, SampleData(conn) as data:
        data.registered_model("team-a", "summarize")
        data.add(
            "registered_model_tags", workspace="team-a", name="summarize", key="mlflow.prompt.is_prompt", value="True"
        )
    roles = {("team-a", "viewer"): [("prompt", "*", "READ"), ("registered_model", "*", "EDIT")]}
    plant_auth(auth_db, roles, {"alice": [("team-a", "viewer")]})

    result = auth_migrate(auth_db, mlflow_db, "-y")

    assert result.exit_code == ExitStatus.OK, result.output
    # no (registered_model, summarize): MLflow would never consult it (the only prompt is team-a's, so the
    # prompt wildcard cannot widen and stays one)
    assert auth_rows(auth_db)["default/viewer"][0] == [
        ("prompt", "*", "READ"),
        ("registered_model", "fraud-a", "EDIT"),
    ]


def test_per_resource_turns_a_workspace_admin_into_manage_on_each_of_its_resources(auth_db, mlflow_db) -> None:
    ids = plant_tracking(mlflow_db)
    plant_auth(auth_db, WORKSPACE_ADMIN, {"carol": [("team-a", "admins")], "bob": [("team-b", "viewer")]})
    before = auth_db.fingerprint()

    dry = auth_migrate(auth_db, mlflow_db, "--dry-run", "--per-resource")
    assert dry.exit_code == ExitStatus.OK, dry.output
    assert '[per-resource] workspace-scope: role "admins" of team-a' in dry.stdout
    assert "becomes MANAGE on each of the 3 resource(s) of team-a" in dry.stdout
    assert "Effective permissions: unchanged for every user and resource." in dry.stdout
    assert auth_db.fingerprint() == before

    result = auth_migrate(auth_db, mlflow_db, "-y", "--per-resource")
    assert result.exit_code == ExitStatus.OK, result.output
    assert auth_rows(auth_db)["default/admins"] == [
        [
            ("experiment", str(ids["a1"]), "MANAGE"),
            ("experiment", str(ids["a2"]), "MANAGE"),
            ("registered_model", "fraud-a", "MANAGE"),
        ],
        ["carol"],
    ]


def test_a_gain_from_a_dropped_tier_blocks_with_exit_1(auth_db, mlflow_db) -> None:
    ids = plant_tracking(mlflow_db)
    roles = {("team-a", "readers"): [("run", "*", "READ"), ("experiment", "*", "EDIT")]}
    plant_auth(auth_db, roles, {"erin": [("team-a", "readers")]})
    before = auth_db.fingerprint()

    result = auth_migrate(auth_db, mlflow_db, "-y", "--drop", "--format", "json")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    doc = json.loads(result.stdout)
    gains = {(c["user"], c["subject"], tuple(c["gained"])) for c in doc["changes"] if c["accepted_by"] is None}
    assert gains == {("erin", f"every run of experiment {ids[e]} (team-a)", ("use", "update")) for e in ("a1", "a2")}
    assert auth_db.fingerprint() == before
