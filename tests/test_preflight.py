"""`db preflight`: the read-only check list, on every backend, against real MLflow schemas."""

from __future__ import annotations

import json

import pytest

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.engine import preflight

from .conftest import OLDEST
from .helpers import populate, run_cli

ROOT = "s3://mlflow-root"


def run_preflight(db, *flags: str, direction: str = "enable"):
    """Run the command and check that it changed nothing (it opens the database read-only).  Most checks
    here are the ones MLflow's docs list for turning workspaces on."""
    before = db.fingerprint()
    result = run_cli("db", "preflight", db.uri, "--for", direction, *flags)
    assert db.fingerprint() == before
    return result


def lines(result) -> dict[str, str]:
    """check name -> its status line, e.g. {"default workspace": "PASS  default workspace  the reserved ..."}."""
    out = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition("  ")
        if status.strip() in ("PASS", "WARN", "FAIL"):
            name = next(c for c in CHECKS if rest.strip().startswith(c))
            out[name] = line
    return out


CHECKS = (
    "workspace schema",
    "default workspace",
    "workspace names",
    "artifact root",
    "reserved artifact paths",
    "artifact locations",
    "tracking server",
    "name conflicts",
    "rows outside default",
    "stored content",
    "other sessions",
)


def status_of(result) -> dict[str, str]:
    return {name: line.split()[0] for name, line in lines(result).items()}


def test_fresh_mlflow_database_passes(mlflow_db) -> None:
    result = run_preflight(mlflow_db, "--default-artifact-root", ROOT)

    assert result.exit_code == ExitStatus.OK, result.output
    assert status_of(result) == {name: "PASS" for name in CHECKS[:6]}
    assert "Workspace preflight for turning workspaces on (read-only)" in result.stdout
    assert "new experiments go to s3://mlflow-root/workspaces/<ws>/<id>" in result.stdout
    assert "6 passed, 0 warning(s), 0 failed: nothing blocks." in result.stdout


def test_without_a_root_the_artifact_root_checks_warn(mlflow_db) -> None:
    populate(mlflow_db)
    result = run_preflight(mlflow_db)

    assert result.exit_code == ExitStatus.OK, result.output
    status = status_of(result)
    assert status["artifact root"] == status["reserved artifact paths"] == "WARN"
    assert status["workspace names"] == status["artifact locations"] == "PASS"
    assert "not checked: pass --default-artifact-root ROOT" in result.stdout


def test_reserved_path_squatter_warns(mlflow_db) -> None:
    squat = {}
    populate(
        mlflow_db,
        lambda data: squat.setdefault(
            "id", data.experiment("default", "old", artifact_location=f"{ROOT}/workspaces/team-a/old/")
        ),
    )
    result = run_preflight(mlflow_db, "--default-artifact-root", ROOT)

    assert result.exit_code == ExitStatus.OK, result.output
    assert status_of(result)["reserved artifact paths"] == "WARN"
    assert "1 experiment(s) live under <root>/workspaces/<ws>/ of another workspace: move them first" in result.stdout
    assert f'reserved-path-squatting: experiment {squat["id"]} "{ROOT}/workspaces/team-a/old/"' in result.stdout
    assert status_of(result)["artifact locations"] == "PASS"


@pytest.mark.parametrize(
    "root, reason",
    [
        (f"{ROOT}/workspaces", "ends in a reserved `workspaces` segment"),
        (f"{ROOT}/workspaces/", "ends in a reserved `workspaces` segment"),
        (f"{ROOT}/workspaces/team-a/x", "sits under a reserved `workspaces/<name>` path"),
    ],
)
def test_reserved_artifact_root_fails(mlflow_db, root: str, reason: str) -> None:
    result = run_preflight(mlflow_db, "--default-artifact-root", root)

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert lines(result)["artifact root"].startswith("FAIL")
    assert reason in result.stdout


def test_missing_default_row_fails(mlflow_db) -> None:
    mlflow_db.execute("DELETE FROM workspaces WHERE name = 'default'")
    result = run_preflight(mlflow_db, "--default-artifact-root", ROOT)

    assert result.exit_code == ExitStatus.CONFLICTS
    assert status_of(result)["default workspace"] == "FAIL"
    assert "the reserved `default` row is missing" in result.stdout
    assert "1 failed: fix the failed checks first." in result.stdout


def test_invalid_workspace_names_fail(mlflow_db) -> None:
    def fill(data) -> None:
        for name in ("Team_X", "api", "x", "ok-name"):
            data.workspace(name)

    populate(mlflow_db, fill, spread=False)
    result = run_preflight(mlflow_db, "--default-artifact-root", ROOT)

    assert result.exit_code == ExitStatus.CONFLICTS
    assert "3 of 8 catalog name(s) are invalid" in lines(result)["workspace names"]
    assert '"Team_X": only lowercase letters, digits and inner hyphens are allowed' in result.stdout
    assert '"api": reserved name' in result.stdout
    assert '"x": length 1 (must be 2-63)' in result.stdout
    assert '"ok-name"' not in result.stdout


def test_blocking_overlap_fails_and_warnings_warn(mlflow_db) -> None:
    ids = {}

    def fill(data) -> None:
        ids["a"] = data.experiment("team-a", "a", artifact_location="/mnt/runs/1")
        ids["b"] = data.experiment("team-b", "b", artifact_location="file:///mnt/runs/1/")

    populate(mlflow_db, fill)
    failing = run_preflight(mlflow_db, "--default-artifact-root", ROOT)
    assert failing.exit_code == ExitStatus.CONFLICTS
    assert "FAIL  artifact locations" in lines(failing)["artifact locations"]
    assert "1 blocking of 1 finding(s) (overlap: 1)" in failing.stdout
    assert f'overlap: experiment {ids["b"]} "file:///mnt/runs/1/": the same location as experiment {ids["a"]}' in (
        failing.stdout
    )

    mlflow_db.execute("UPDATE experiments SET workspace = 'team-a' WHERE name = 'b'")
    warning = run_preflight(mlflow_db, "--default-artifact-root", ROOT)
    assert warning.exit_code == ExitStatus.OK, warning.output
    assert status_of(warning)["artifact locations"] == "WARN"
    assert "1 warning(s) (overlap: 1)" in warning.stdout


def test_database_without_workspaces_fails_the_schema_check(scratch_db) -> None:
    scratch_db.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name VARCHAR(256))")
    result = run_preflight(scratch_db, "--default-artifact-root", ROOT)

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert status_of(result) == {"workspace schema": "FAIL", "artifact root": "PASS"}
    assert "an MLflow tracking database from before workspaces" in result.stdout


def test_workspace_store_table_without_the_column_fails(mlflow_db, backend: str) -> None:
    # A half-upgraded schema: the catalog exists, but webhooks lacks its workspace column.
    if backend == "sqlite":
        mlflow_db.execute("DROP TABLE webhook_events")
        mlflow_db.execute("DROP TABLE webhooks")
        mlflow_db.execute("CREATE TABLE webhooks (webhook_id VARCHAR(36) PRIMARY KEY)")
    else:
        mlflow_db.execute("ALTER TABLE webhooks DROP COLUMN workspace")
    result = run_preflight(mlflow_db, "--default-artifact-root", ROOT)

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert "FAIL  workspace schema" in lines(result)["workspace schema"]
    assert "no `workspace` column in webhooks (run `mlflow db upgrade`" in result.stdout


def test_oldest_workspace_schema_passes(scratch_db) -> None:
    db = scratch_db.load(OLDEST)
    populate(db)
    result = run_preflight(db, "--default-artifact-root", ROOT)

    assert result.exit_code == ExitStatus.OK, result.output
    assert set(status_of(result).values()) == {"PASS"}


def test_uri_errors_keep_their_exit_codes(tmp_path) -> None:
    assert run_cli("db", "preflight", env={"MLFLOW_TRACKING_URI": ""}).exit_code == ExitStatus.USAGE
    missing = run_cli("db", "preflight", f"sqlite:///{tmp_path / 'nope.db'}")
    assert missing.exit_code == ExitStatus.DATABASE_ERROR
    assert "SQLite database file not found" in missing.stderr
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.parametrize(
    "name, reason",
    [
        ("default", None),
        ("a1", None),
        ("a-b-c", None),
        ("x" * 63, None),
        ("x" * 64, "length 64 (must be 2-63)"),
        ("-ab", "only lowercase letters, digits and inner hyphens are allowed"),
        ("ab-", "only lowercase letters, digits and inner hyphens are allowed"),
        ("static-files", "reserved name"),
        ("ajax-api", "reserved name"),
        ("workspaces", "reserved name"),
    ],
)
def test_workspace_name_rules(name: str, reason: str | None) -> None:
    assert preflight.invalid_name_reason(name) == reason


def test_json_lists_every_check(mlflow_db) -> None:
    populate(mlflow_db)
    mlflow_db.execute("DELETE FROM workspaces WHERE name = 'default'")

    result = run_preflight(mlflow_db, "--default-artifact-root", ROOT, "--format", "json")

    assert result.exit_code == ExitStatus.CONFLICTS
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 1 and doc["status"] == "failed" and doc["exit_code"] == 1
    statuses = {c["name"]: c["status"] for c in doc["checks"]}
    assert statuses["default workspace"] == "fail"
    assert statuses["workspace schema"] == "pass"
    assert all(set(c) == {"name", "status", "reason", "details"} for c in doc["checks"])


def test_json_error_is_a_document(tmp_path) -> None:
    result = run_cli("db", "preflight", f"sqlite:///{tmp_path / 'missing.db'}", "--format", "json")

    assert result.exit_code == ExitStatus.DATABASE_ERROR
    doc = json.loads(result.stdout)
    assert doc["status"] == "error" and "SQLite database file not found" in doc["message"]
    assert not (tmp_path / "missing.db").exists()


# --- --for disable (the default): what would block migrate-to-default-workspace ---------------------------


def _plant_conflict(db) -> None:
    def fill(data) -> None:
        data.experiment("default", "churn")
        data.experiment("team-a", "churn")

    populate(db, fill)


def test_disable_is_the_default_and_conflicts_fail_it(mlflow_db) -> None:
    _plant_conflict(mlflow_db)
    dry = run_cli("db", "migrate-to-default-workspace", mlflow_db.uri, "--dry-run")

    result = run_preflight(mlflow_db, "--default-artifact-root", ROOT, direction="disable")
    default = run_cli("db", "preflight", mlflow_db.uri, "--default-artifact-root", ROOT)
    doc = json.loads(run_preflight(mlflow_db, "--format", "json", direction="disable").stdout)

    assert dry.exit_code == result.exit_code == default.exit_code == ExitStatus.CONFLICTS, result.output
    assert result.stdout == default.stdout  # disable is the default
    assert "Workspace preflight for turning workspaces off (read-only)" in result.stdout
    conflicts = next(line for line in result.stdout.splitlines() if "name conflicts" in line)
    assert conflicts.startswith("FAIL") and "experiments (name): 1" in conflicts
    assert 'experiments: name="churn" in default, team-a' in result.stdout
    assert "nothing blocks" not in result.stdout
    assert doc["direction"] == "disable"
    assert {c["name"]: c["status"] for c in doc["checks"]}["name conflicts"] == "fail"


def test_disable_lists_the_artifact_findings_the_dry_run_lists(mlflow_db) -> None:
    """`--for disable` and the migrate dry run read the same findings: the proxied-path warnings the dry run
    lists are the check's warnings (not a PASS), counted alike; the spelling `WORKSPACES/` is the reserved
    prefix too, as MLflow 3.18.0's proxy reads it."""
    populate(mlflow_db)
    mlflow_db.execute(
        "UPDATE experiments SET artifact_location = 'mlflow-artifacts:/workspaces/team-b/x' WHERE name = 'team-a-exp-0'"
    )
    mlflow_db.execute(
        "UPDATE experiments SET artifact_location = 'mlflow-artifacts:/WORKSPACES/team-c/y' WHERE name = 'team-a-exp-1'"
    )
    root = ("--default-artifact-root", "mlflow-artifacts:/")

    off = run_preflight(mlflow_db, *root, direction="disable")
    on = run_preflight(mlflow_db, *root, direction="enable")
    dry = run_cli("db", "migrate-to-default-workspace", mlflow_db.uri, "--dry-run", "--format", "json", *root)

    assert off.exit_code == on.exit_code == dry.exit_code == ExitStatus.OK, off.output + on.output + dry.output
    kinds = [f["kind"] for f in json.loads(dry.stdout)["artifact_findings"]]
    assert kinds == ["reserved-path-squatting", "proxied-path", "proxied-path"]
    assert lines(off)["artifact locations"].startswith("WARN")
    assert "3 warning(s) (reserved-path-squatting: 1, proxied-path: 2)" in lines(off)["artifact locations"]
    assert "new experiments go to mlflow-artifacts:/<experiment_id>" in off.stdout
    assert "new experiments go to mlflow-artifacts:/workspaces/<ws>/<id>" in on.stdout
    assert "mlflow-artifacts:///" not in off.stdout + on.stdout
    assert "reserved artifact paths" not in off.stdout
    assert "rows outside default" in off.stdout and "60 row(s) in 3 workspace(s) will move" in off.stdout
    assert lines(off)["stored content"].startswith("PASS")


def test_disable_after_the_migration_has_nothing_to_block(mlflow_db) -> None:
    populate(mlflow_db)
    assert run_cli("db", "migrate-to-default-workspace", mlflow_db.uri, "-y").exit_code == ExitStatus.OK

    result = run_preflight(mlflow_db, "--default-artifact-root", ROOT, direction="disable")

    assert result.exit_code == ExitStatus.OK, result.output
    assert "none: every row already sits in `default`" in result.stdout
    assert "reserved artifact paths" not in result.stdout
