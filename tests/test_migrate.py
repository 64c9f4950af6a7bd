"""`db migrate-to-default-workspace` end to end, on every backend, through the real CLI."""

from __future__ import annotations

import pytest

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.connect import resolve_target
from mlflow_ws_admin.usecases import commands

from .conftest import OLDEST
from .helpers import TEAMS, migrate, populate, run_cli

WORKSPACE_TABLES_WITH_ROWS = (
    "experiments",
    "registered_models",
    "model_versions",
    "registered_model_tags",
    "model_version_tags",
    "registered_model_aliases",
    "evaluation_datasets",
    "webhooks",
    "jobs",
)


def _collide_everywhere(data) -> None:
    data.experiment("team-a", "churn")
    data.experiment("team-b", "churn", lifecycle_stage="deleted")
    data.registered_model("team-a", "fraud", versions=3, tags=2, aliases=1)
    data.registered_model("team-c", "fraud", versions=2)
    data.secret("team-a", "openai-key")
    data.secret("default", "openai-key")


def test_dry_run_reports_every_conflicting_table_and_changes_nothing(mlflow_db) -> None:
    populate(mlflow_db, _collide_everywhere)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    out = result.stdout
    assert "dry run, read-only" in out
    assert 'name="churn": team-a' in out
    assert "lifecycle_stage=deleted" in out
    assert 'name="fraud": team-a; team-c' in out
    # children roll up under their registered model: 3+2 versions, 5 version tags, 2 tags, 1 alias
    assert "(+13 dependent rows:" in out
    assert "model_versions —" not in out
    assert 'secret_name="openai-key": default' in out
    assert "cannot be renamed" in out
    assert "Blocked: 3 conflict group(s) in 3 table(s)" in out
    assert mlflow_db.fingerprint() == before


def test_apply_moves_every_row_and_keeps_totals(mlflow_db) -> None:
    populate(mlflow_db)
    totals = {t: mlflow_db.scalar(f"SELECT COUNT(*) FROM {t}") for t in WORKSPACE_TABLES_WITH_ROWS}
    to_move = sum(mlflow_db.outside_default(t) for t in WORKSPACE_TABLES_WITH_ROWS)
    assert to_move > 0

    result = migrate(mlflow_db.uri, "-y")

    assert result.exit_code == ExitStatus.OK, result.output
    assert f"Done: moved {to_move:,} row(s)" in result.stdout
    for table in WORKSPACE_TABLES_WITH_ROWS:
        assert mlflow_db.outside_default(table) == 0, table
        assert mlflow_db.scalar(f"SELECT COUNT(*) FROM {table}") == totals[table], table
    assert "moved 12 row(s) of model_versions" in result.stdout  # 3 teams x 2 models x 2 versions


def test_second_run_has_nothing_to_move(mlflow_db) -> None:
    populate(mlflow_db)
    assert migrate(mlflow_db.uri, "-y").exit_code == ExitStatus.OK
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "-y")

    assert result.exit_code == ExitStatus.OK
    assert "Nothing to move" in result.stdout
    assert mlflow_db.fingerprint() == before


def test_same_name_inside_one_workspace_is_not_a_conflict(mlflow_db) -> None:
    # evaluation_datasets.name is unique per workspace only in MLflow's code; the schema allows duplicates
    # inside one workspace, so only a cross-workspace pair is a conflict.
    def fill(data) -> None:
        data.dataset("team-a", "golden")
        data.dataset("team-a", "golden")
        data.dataset("team-b", "shared")
        data.dataset("team-c", "shared")

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run")

    assert result.exit_code == ExitStatus.CONFLICTS
    assert 'name="shared"' in result.stdout
    assert "golden" not in result.stdout
    assert "evaluation_datasets — key (name) from MLflow code (not enforced by the schema): 1 group(s)" in result.stdout
    assert mlflow_db.fingerprint() == before


def test_collisions_use_the_database_collation(mlflow_db, backend: str) -> None:
    def fill(data) -> None:
        data.experiment("team-a", "Churn")
        data.experiment("team-b", "churn")

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run")

    # MySQL's default collation is case-insensitive, so its unique index would reject the pair.
    if backend == "mysql":
        assert result.exit_code == ExitStatus.CONFLICTS, result.output
        assert "team-a (experiment_id=" in result.stdout and "team-b (experiment_id=" in result.stdout
    else:
        assert result.exit_code == ExitStatus.OK, result.output
        assert "no conflicts" in result.stdout
    assert mlflow_db.fingerprint() == before


def test_conflicts_are_truncated_unless_verbose(mlflow_db) -> None:
    def fill(data) -> None:
        for i in range(7):
            data.experiment("team-a", f"dup-{i}")
            data.experiment("team-b", f"dup-{i}")

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    short = migrate(mlflow_db.uri, "--dry-run")
    full = migrate(mlflow_db.uri, "--dry-run", "--verbose")

    assert short.exit_code == full.exit_code == ExitStatus.CONFLICTS
    assert short.stdout.count('name="dup-') == 5
    assert "... 2 more (use --verbose to list all)" in short.stdout
    assert full.stdout.count('name="dup-') == 7
    assert "more (use --verbose" not in full.stdout
    assert mlflow_db.fingerprint() == before


def test_user_data_is_printed_literally(mlflow_db) -> None:
    def fill(data) -> None:
        data.experiment("team-a", "[red]x[/red]")
        data.experiment("team-b", "[red]x[/red]")

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run")

    assert result.exit_code == ExitStatus.CONFLICTS
    assert 'name="[red]x[/red]"' in result.stdout
    assert "\x1b[" not in result.stdout  # off a TTY: no ANSI codes
    assert mlflow_db.fingerprint() == before


def test_missing_default_row_is_created_by_apply(mlflow_db) -> None:
    populate(mlflow_db)
    mlflow_db.execute("DELETE FROM workspaces WHERE name = 'default'")
    before = mlflow_db.fingerprint()

    dry = migrate(mlflow_db.uri, "--dry-run")
    assert dry.exit_code == ExitStatus.OK
    assert "The `default` row is missing from the workspaces catalog; it will be created." in dry.stdout
    assert mlflow_db.fingerprint() == before

    applied = migrate(mlflow_db.uri, "-y")
    assert applied.exit_code == ExitStatus.OK, applied.output
    assert "created the `default` workspace row" in applied.stdout
    assert mlflow_db.scalar("SELECT COUNT(*) FROM workspaces WHERE name = 'default'") == 1


def _prompted(db, answer: bool) -> tuple[ExitStatus, list[str]]:
    """The migrate use case with a terminal UI whose person answers ``answer`` (no monkeypatching)."""
    asked: list[str] = []

    def confirm(question: str) -> bool:
        asked.append(question)
        return answer

    ui = commands.UI(stdin_is_terminal=True, confirm=confirm)
    status = commands.migrate(resolve_target(db.uri), commands.MigrateOptions(), commands.Output(), ui)
    return status, asked


def test_declining_the_prompt_changes_nothing(mlflow_db, capsys: pytest.CaptureFixture[str]) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    status, asked = _prompted(mlflow_db, False)

    out, err = capsys.readouterr()
    assert status == ExitStatus.ABORTED
    assert asked == ["Proceed?"]
    assert "Ready: 60 row(s)" in out
    assert "Aborted: nothing changed." in err
    assert mlflow_db.fingerprint() == before


def test_accepting_the_prompt_applies(mlflow_db) -> None:
    populate(mlflow_db)

    status, asked = _prompted(mlflow_db, True)

    assert status == ExitStatus.OK
    assert asked == ["Proceed?"]
    assert mlflow_db.outside_default("experiments") == 0


def test_no_terminal_and_no_yes_refuses(mlflow_db) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri)

    assert result.exit_code == ExitStatus.USAGE
    assert "pass -y" in result.stderr
    assert mlflow_db.fingerprint() == before


def test_uri_comes_from_mlflow_tracking_uri(mlflow_db) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    result = run_cli("db", "migrate-to-default-workspace", "--dry-run", env={"MLFLOW_TRACKING_URI": mlflow_db.uri})

    assert result.exit_code == ExitStatus.OK, result.output
    assert "would move to `default`" in result.stdout
    assert mlflow_db.fingerprint() == before


def test_oldest_workspace_schema_works(scratch_db) -> None:
    db = scratch_db.load(OLDEST)
    populate(db, lambda data: (data.experiment("team-a", "x"), data.experiment("team-b", "x")))
    before = db.fingerprint()

    dry = migrate(db.uri, "--dry-run")
    assert dry.exit_code == ExitStatus.CONFLICTS
    assert 'name="x"' in dry.stdout
    assert db.fingerprint() == before

    db.execute("DELETE FROM experiments WHERE name = 'x'")
    applied = migrate(db.uri, "-y")
    assert applied.exit_code == ExitStatus.OK, applied.output
    for table in ("experiments", "registered_models", "model_versions"):
        assert db.outside_default(table) == 0


def test_every_team_row_lands_in_default(mlflow_db) -> None:
    populate(mlflow_db)
    by_ws = {ws: mlflow_db.scalar("SELECT COUNT(*) FROM experiments WHERE workspace = :w", w=ws) for ws in TEAMS}
    assert all(by_ws.values())

    dry = migrate(mlflow_db.uri, "--dry-run")
    for ws, n in by_ws.items():
        assert f"{ws}: {n}" in dry.stdout
    assert migrate(mlflow_db.uri, "-y").exit_code == ExitStatus.OK
    assert mlflow_db.scalar("SELECT COUNT(*) FROM experiments WHERE workspace = 'default'") == sum(by_ws.values()) + 3
