"""Defects fixed with the one move engine (issue 10), each on every backend where it applies."""

from __future__ import annotations

import json

from mlflow_ws_admin.common.errors import ExitStatus

from .helpers import migrate, populate, run_cli


def _one_line(result) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_colliding_model_whose_versions_collide_too_is_a_conflict_not_a_database_error(mlflow_db) -> None:
    """MariaDB refuses the cascading UPDATE into model_versions with error 1761, raised by PyMySQL as an
    OperationalError: it must still be reported as the conflict it is (exit 1), like --dry-run does."""

    def fill(data) -> None:
        data.registered_model("default", "churn", versions=1)
        data.registered_model("team-a", "churn", versions=1)

    populate(mlflow_db, fill, spread=False)
    before = mlflow_db.fingerprint()

    dry = migrate(mlflow_db.uri, "--dry-run")
    applied = migrate(mlflow_db.uri, "-y")

    assert dry.exit_code == ExitStatus.CONFLICTS, dry.output
    assert applied.exit_code == ExitStatus.CONFLICTS, applied.output
    assert 'name="churn": default; team-a' in applied.stdout  # the same report as the dry run
    assert "conflicts found under the lock" in _one_line(applied)
    assert mlflow_db.fingerprint() == before


def test_plan_file_without_a_database_object_is_a_usage_error(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    plan = tmp_path / "plan.json"
    assert migrate(mlflow_db.uri, "--dry-run", "--plan-out", str(plan)).exit_code == ExitStatus.OK
    doc = json.loads(plan.read_text())
    before = mlflow_db.fingerprint()
    for broken in ({k: v for k, v in doc.items() if k != "database"}, {**doc, "database": "sqlite"}):
        plan.write_text(json.dumps(broken))

        result = migrate(mlflow_db.uri, "-y", "--plan", str(plan))

        assert result.exit_code == ExitStatus.USAGE, result.output
        assert "malformed" in _one_line(result)
        assert mlflow_db.fingerprint() == before


def test_journal_lines_that_are_not_objects_are_refused(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    journal = tmp_path / "move.jsonl"
    assert migrate(mlflow_db.uri, "-y", "--journal", str(journal)).exit_code == ExitStatus.OK
    lines = journal.read_text().splitlines()
    before = mlflow_db.fingerprint()
    for bad in ('["row", "experiments"]', '"row"', "7"):
        broken = tmp_path / f"broken-{len(bad)}.jsonl"
        broken.write_text("\n".join([lines[0], bad, *lines[1:]]) + "\n")

        for flags in (["--dry-run"], ["-y"]):
            result = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(broken), *flags)

            assert result.exit_code == ExitStatus.USAGE, result.output
            assert "malformed" in _one_line(result)
            assert mlflow_db.fingerprint() == before


def test_restore_moves_back_set_based_and_reports_what_is_missing(mlflow_db, tmp_path) -> None:
    """The set-based restore skips rows that left their journaled spot, counts them, restores the rest."""
    populate(mlflow_db)
    original = mlflow_db.dump()
    journal = tmp_path / "move.jsonl"
    assert migrate(mlflow_db.uri, "-y", "--journal", str(journal)).exit_code == ExitStatus.OK
    mlflow_db.execute(
        "DELETE FROM experiment_tags WHERE experiment_id IN (SELECT experiment_id FROM experiments WHERE name = 'team-a-exp-0')"
    )
    mlflow_db.execute("DELETE FROM experiments WHERE name = 'team-a-exp-0'")

    result = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y", "--format", "json")

    assert result.exit_code == ExitStatus.OK, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "applied" and doc["missing_rows"]["experiments"] == 1
    expected = {t: [r for r in rows if "team-a-exp-0" not in r] for t, rows in original.items()}
    restored = mlflow_db.dump()
    assert restored["experiments"] == expected["experiments"]
    assert restored["registered_models"] == original["registered_models"]


_KEEP_TEAM_A_JOBS = {
    # Each puts a team-a job back where it was: only a count after the UPDATEs can see it.
    "sqlite": [
        "CREATE TRIGGER mwa_keep AFTER UPDATE ON jobs WHEN OLD.workspace = 'team-a' "
        "BEGIN UPDATE jobs SET workspace = 'team-a' WHERE id = NEW.id; END"
    ],
    "postgresql": [
        "CREATE FUNCTION mwa_keep() RETURNS trigger AS $$ BEGIN "
        "IF OLD.workspace = 'team-a' THEN NEW.workspace := OLD.workspace; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER mwa_keep BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION mwa_keep()",
    ],
    "mysql": [
        "CREATE TRIGGER mwa_keep BEFORE UPDATE ON jobs FOR EACH ROW "
        "IF OLD.workspace = 'team-a' THEN SET NEW.workspace = OLD.workspace; END IF"
    ],
}


def test_a_trigger_that_keeps_rows_where_they_were_fails_the_verification(mlflow_db, backend: str) -> None:
    """Apply recounts only the tables a count can tell about (cascaded ones, and tables with triggers of their
    own): this trigger's table is recounted, and the run is rolled back."""
    populate(mlflow_db)
    for statement in _KEEP_TEAM_A_JOBS[backend]:
        mlflow_db.execute(statement)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "-y")

    assert result.exit_code == ExitStatus.VERIFICATION_FAILED, result.output
    assert _one_line(result) == "Error: rows still outside `default` before commit (jobs: 1); rolled back"
    assert mlflow_db.fingerprint() == before
