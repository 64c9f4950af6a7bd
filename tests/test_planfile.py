"""Plan files: --dry-run --plan-out, then --plan applies only while the fingerprints still match."""

from __future__ import annotations

import json

import pytest

from mlflow_ws_admin.common.errors import ExitStatus

from .helpers import migrate, populate


def _write_plan(db, tmp_path):
    plan = tmp_path / "plan.json"
    before = db.fingerprint()
    result = migrate(db.uri, "--dry-run", "--plan-out", str(plan))
    assert result.exit_code == ExitStatus.OK, result.output
    assert db.fingerprint() == before  # writing a plan is still a dry run
    return plan


def test_plan_file_records_counts_and_fingerprints(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    plan = json.loads(_write_plan(mlflow_db, tmp_path).read_text())

    assert plan["kind"] == "mlflow-ws-admin/plan"
    by_table = {t["table"]: t for t in plan["tables"]}
    assert by_table["experiments"]["rows_to_move"] == mlflow_db.outside_default("experiments") == 9
    assert by_table["experiments"]["by_workspace"] == {"team-a": 3, "team-b": 3, "team-c": 3}
    assert all(len(t["fingerprint"]) == 32 for t in plan["tables"])
    assert plan["total_rows_to_move"] == sum(t["rows_to_move"] for t in plan["tables"])
    assert "password" not in json.dumps(plan["database"]["identity"])


def test_dry_run_json_then_plan_then_apply(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()
    dry = migrate(mlflow_db.uri, "--dry-run", "--format", "json", "--plan-out", str(tmp_path / "p.json"))
    assert dry.exit_code == ExitStatus.OK, dry.output
    assert json.loads(dry.stdout)["status"] == "ok"
    assert mlflow_db.fingerprint() == before

    applied = migrate(mlflow_db.uri, "--plan", str(tmp_path / "p.json"), "-y", "--format", "json")

    assert applied.exit_code == ExitStatus.OK, applied.output
    doc = json.loads(applied.stdout)
    assert doc["status"] == "applied" and doc["total_rows_to_move"] == 60
    assert mlflow_db.outside_default("experiments") == 0
    assert mlflow_db.outside_default("model_versions") == 0


STALE = {
    "added": (
        "INSERT INTO experiments (experiment_id, name, workspace, lifecycle_stage) "
        "VALUES (424242, 'late-arrival', 'team-a', 'active')",
        {"experiments"},
    ),
    "moved": ("UPDATE experiments SET workspace = 'team-b' WHERE name = 'team-a-exp-0'", {"experiments"}),
    "renamed": ("UPDATE experiments SET name = 'renamed' WHERE name = 'team-a-exp-1'", {"experiments"}),
    "renamed key": ("UPDATE jobs SET id = 'renamed-job' WHERE workspace = 'team-c'", {"jobs"}),
}


@pytest.mark.parametrize("change", list(STALE))
def test_stale_plan_is_refused_with_exit_4_and_changes_nothing(mlflow_db, tmp_path, change: str) -> None:
    populate(mlflow_db)
    plan = _write_plan(mlflow_db, tmp_path)
    sql, drifted = STALE[change]
    mlflow_db.execute(sql)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--plan", str(plan), "-y")

    assert result.exit_code == ExitStatus.VERIFICATION_FAILED, result.output
    assert "changed since the plan was written" in result.stderr
    for table in drifted:
        assert table in result.stderr
    assert "registered_models" not in result.stderr.split("drifted table(s):")[1]
    assert mlflow_db.fingerprint() == before


def test_stale_plan_in_json_mode_is_an_error_document(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    plan = _write_plan(mlflow_db, tmp_path)
    mlflow_db.execute("UPDATE registered_models SET workspace = 'team-b' WHERE name = 'team-a-model-0'")
    mlflow_db.execute("UPDATE model_versions SET workspace = 'team-b' WHERE name = 'team-a-model-0'")
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--plan", str(plan), "-y", "--format", "json")

    assert result.exit_code == ExitStatus.VERIFICATION_FAILED
    doc = json.loads(result.stdout)
    assert doc["status"] == "error" and doc["exit_code"] == 4
    assert "model_versions" in doc["message"] and "registered_models" in doc["message"]
    assert mlflow_db.fingerprint() == before


def test_plan_for_another_database_is_a_usage_error(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    plan = _write_plan(mlflow_db, tmp_path)
    doc = json.loads(plan.read_text())
    doc["database"]["identity"]["dialect"] = "elsewhere"
    plan.write_text(json.dumps(doc))
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--plan", str(plan), "-y")

    assert result.exit_code == ExitStatus.USAGE
    assert "written for another database" in result.stderr
    assert mlflow_db.fingerprint() == before


def test_plan_out_needs_dry_run(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()
    result = migrate(mlflow_db.uri, "--plan-out", str(tmp_path / "p.json"), "-y")
    assert result.exit_code == ExitStatus.USAGE
    assert "add --dry-run" in result.stderr
    assert not (tmp_path / "p.json").exists()
    assert mlflow_db.fingerprint() == before
