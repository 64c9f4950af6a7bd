"""The fast paths added for large databases keep the exact behaviour: the cheap conflict pre-tests never
miss a collision the database itself would see, --verbose streams every group, and progress appears only
on a terminal (stderr), never with --format json.  Speed itself is measured by bench/bench.py, not here."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from mlflow_ws_admin.apply import apply_plan
from mlflow_ws_admin.connect import create_db_engine, resolve_target
from mlflow_ws_admin.errors import ConflictsAppeared
from mlflow_ws_admin.exit_codes import ExitStatus
from mlflow_ws_admin.plan import build_plan
from mlflow_ws_admin.report.text import GROUP_PRINT_BATCH
from mlflow_ws_admin.sample_data import SampleData
from mlflow_ws_admin.schema import reflect_schema

from .helpers import migrate, populate


def _database_sees_collision(db) -> bool:
    """Ask the database itself whether the two planted names are equal under the column's collation."""
    with db.engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT COUNT(*) FROM experiments a JOIN experiments b"
                    " ON a.name = b.name AND a.workspace = 'team-a' AND b.workspace = 'team-b'"
                )
            ).scalar()
        )


def test_trailing_space_and_case_collisions_follow_the_database(mlflow_db, backend: str) -> None:
    # MySQL's PAD SPACE collations compare 'Churn' and 'churn  ' equal; the hashed MySQL pre-test must too.
    def fill(data) -> None:
        data.experiment("team-a", "Churn")
        data.experiment("team-b", "churn  ")

    populate(mlflow_db, fill)
    collides = _database_sees_collision(mlflow_db)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run")

    assert collides == (backend == "mysql")
    if collides:
        assert result.exit_code == ExitStatus.CONFLICTS, result.output
        assert "experiments — key (name)" in result.stdout
        assert "team-a (experiment_id=" in result.stdout and "team-b (experiment_id=" in result.stdout
    else:
        assert result.exit_code == ExitStatus.OK, result.output
    assert mlflow_db.fingerprint() == before


def test_verbose_streams_every_group_in_key_order(mlflow_db) -> None:
    groups = GROUP_PRINT_BATCH * 2 + 7  # several print batches, and a partial one at the end

    def fill(data) -> None:
        for i in range(groups):
            data.experiment("team-a", f"dup-{i:05d}")
            data.experiment("team-b", f"dup-{i:05d}")
        data.registered_model("team-a", "shared-model", versions=3, tags=1)
        data.registered_model("team-c", "shared-model", versions=2)

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run", "--verbose")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith('  name="dup-')]
    assert [line.split('"')[1] for line in lines] == [f"dup-{i:05d}" for i in range(groups)]
    assert all(": team-a (experiment_id=" in line and "; team-b (experiment_id=" in line for line in lines)
    assert "more (use --verbose" not in result.stdout
    # The model group carries its versions (3 + 2), version tags (3 + 2) and tag (1) as dependent rows.
    assert 'name="shared-model": team-a; team-c (+11 dependent rows:' in result.stdout
    assert f"Blocked: {groups + 1:,} conflict group(s)" in result.stdout
    assert mlflow_db.fingerprint() == before


def test_apply_progress_only_on_a_terminal(mlflow_db) -> None:
    populate(mlflow_db)

    quiet = migrate(mlflow_db.uri, "-y")

    assert quiet.exit_code == ExitStatus.OK, quiet.output
    assert "verify and commit" not in quiet.stderr
    assert "Done: moved" in quiet.stdout
    assert mlflow_db.outside_default("experiments") == 0


def test_apply_progress_goes_to_stderr_on_a_terminal(mlflow_db) -> None:
    populate(mlflow_db)
    moving = int(mlflow_db.scalar("SELECT COUNT(*) FROM experiments WHERE workspace <> 'default'"))

    # FORCE_COLOR makes Rich treat stderr as a terminal.
    result = migrate(mlflow_db.uri, "-y", env={"FORCE_COLOR": "1"})

    assert result.exit_code == ExitStatus.OK, result.output
    assert "verify and commit" in result.stderr
    assert f"experiments {moving:,} rows" in " ".join(result.stderr.split())
    assert "verify and commit" not in result.stdout
    assert mlflow_db.outside_default("experiments") == 0


def test_no_progress_with_json_even_on_a_terminal(mlflow_db) -> None:
    populate(mlflow_db)

    result = migrate(mlflow_db.uri, "-y", "--format", "json", env={"FORCE_COLOR": "1"})

    assert result.exit_code == ExitStatus.OK, result.output
    assert "verify and commit" not in result.stderr
    assert mlflow_db.outside_default("experiments") == 0


def test_conflict_appearing_after_the_plan_is_caught_under_the_lock(mlflow_db) -> None:
    # The plan sees a clean database; then a writer creates collisions before apply takes its locks.
    populate(mlflow_db)
    target = resolve_target(mlflow_db.uri)
    engine = create_db_engine(target, read_only=False)
    try:
        with engine.connect() as conn:
            plan = build_plan(conn, reflect_schema(conn), database=target.display)
        assert not plan.has_blocking_conflicts

        with mlflow_db.engine.begin() as conn, SampleData(conn) as data:
            data.experiment("team-a", "late-exp", experiment_id=5_000_001)
            data.experiment("team-b", "late-exp", experiment_id=5_000_002)
            data.registered_model("team-b", "late-model", versions=2)
            data.registered_model("team-c", "late-model", versions=1)
        before = mlflow_db.fingerprint()

        with pytest.raises(ConflictsAppeared) as caught:
            apply_plan(engine, plan, lock_timeout_s=10)
    finally:
        engine.dispose()

    assert caught.value.exit_status == ExitStatus.CONFLICTS
    assert "experiments (name): 1" in caught.value.message
    assert "registered_models (name): 1" in caught.value.message
    assert "model_versions" not in caught.value.message  # rolled up under its model
    assert mlflow_db.fingerprint() == before
