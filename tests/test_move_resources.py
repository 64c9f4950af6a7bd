"""`db move-resources` end to end, on every backend, through the real CLI."""

from __future__ import annotations

import json

import pytest

from mlflow_ws_admin.common.errors import ExitStatus

from .helpers import populate, run_cli
from .test_json import MOVE_DOCUMENT, validate


def move(db_uri: str, *flags: str, **kwargs: object):
    return run_cli("db", "move-resources", db_uri, *flags, **kwargs)


def _two_teams(data) -> None:
    """team-a owns a model (versions, tags, alias) and tagged experiments; team-b holds a same-named model."""
    data.experiment("team-a", "churn")
    exp = data.experiment("team-a", "ranking")
    data.add("experiment_tags", experiment_id=exp, key="team", value="search")
    data.add("experiment_tags", experiment_id=exp, key="tier", value="gold")
    other = data.experiment("team-a", "search-legacy")
    data.add("experiment_tags", experiment_id=other, key="team", value="search")
    data.registered_model("team-a", "fraud", versions=3, tags=2, aliases=1)
    data.registered_model("team-a", "scoring", versions=1)
    data.registered_model("team-b", "scoring", versions=2)
    # Same name in team-a and team-c: left behind, never a conflict of a move into team-b.
    data.experiment("team-c", "churn")


def _where(db, table: str, name: str, column: str = "name") -> list[str]:
    with db.engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text(f"SELECT workspace FROM {table} WHERE {column} = :n"), {"n": name}).scalars()
        return sorted(rows)


def test_dry_run_reports_the_selection_and_changes_nothing(mlflow_db) -> None:
    populate(mlflow_db, _two_teams)
    before = mlflow_db.fingerprint()

    result = move(mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--name", "fraud", "--name", "nope", "--dry-run")

    assert result.exit_code == ExitStatus.OK, result.output
    out = result.stdout
    assert 'Move resources from "team-a" to "team-b" (dry run, read-only)' in out
    assert "Selected root rows: registered_models: 1" in out
    assert 'Not found in "team-a" (skipped): "nope"' in out
    # the model and its dependents: 1 model, 3 versions, 3 version tags, 2 tags, 1 alias
    assert "Dry run: 10 row(s) in 5 table(s) would move to `team-b`; no conflicts." in out
    assert mlflow_db.fingerprint() == before


def test_apply_moves_a_model_with_its_dependents_and_restore_undoes_it(mlflow_db, tmp_path) -> None:
    populate(mlflow_db, _two_teams)
    before = mlflow_db.dump()
    journal = tmp_path / "move.jsonl"

    result = move(
        mlflow_db.uri, "--from", "team-a", "--to", "team-c", "--resource-type", "registered_models",
        "--name", "fraud", "-y", "--journal", str(journal),
    )  # fmt: skip

    assert result.exit_code == ExitStatus.OK, result.output
    assert "Done: moved 10 row(s) in 5 table(s) into `team-c`; committed." in result.stdout
    for table in ("registered_models", "model_versions", "registered_model_tags", "registered_model_aliases"):
        assert set(_where(mlflow_db, table, "fraud")) == {"team-c"}, table
    assert set(_where(mlflow_db, "model_version_tags", "fraud")) == {"team-c"}
    assert _where(mlflow_db, "registered_models", "scoring") == ["team-a", "team-b"]  # not selected
    assert _where(mlflow_db, "experiments", "churn") == ["team-a", "team-c"]

    undo = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y")

    assert undo.exit_code == ExitStatus.OK, undo.output
    assert mlflow_db.dump() == before


def test_conflicts_are_counted_against_the_target_only(mlflow_db) -> None:
    populate(mlflow_db, _two_teams)
    before = mlflow_db.fingerprint()

    result = move(mlflow_db.uri, "--from", "team-a", "--to", "team-b", "-y")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    out = result.stdout
    assert "Conflicts: 1 group(s) in 1 table(s) would collide in `team-b`" in out
    assert 'name="scoring": team-a; team-b' in out
    assert "(+6 dependent rows:" in out  # rolled up: 1+2 versions and their 1+2 version tags
    assert 'name="churn"' not in out  # team-c's churn stays where it is: not a conflict of this move
    assert mlflow_db.fingerprint() == before


def test_tags_select_with_and_semantics(mlflow_db) -> None:
    populate(mlflow_db, _two_teams)

    result = move(
        mlflow_db.uri, "--from", "team-a", "--to", "team-c", "--resource-type", "experiments",
        "--tag", "team=search", "--tag", "tier=gold", "-y",
    )  # fmt: skip

    assert result.exit_code == ExitStatus.OK, result.output
    assert _where(mlflow_db, "experiments", "ranking") == ["team-c"]
    assert _where(mlflow_db, "experiments", "search-legacy") == ["team-a"]  # only one of the two tags


def test_without_a_type_every_type_moves_and_the_source_empties(mlflow_db) -> None:
    populate(mlflow_db, _two_teams)
    tables = ("experiments", "registered_models", "model_versions", "evaluation_datasets", "webhooks", "jobs")
    moving = {t: int(mlflow_db.scalar(f"SELECT COUNT(*) FROM {t} WHERE workspace = 'team-a'")) for t in tables}
    assert all(moving.values())

    result = move(mlflow_db.uri, "--from", "team-a", "--to", "default", "-y")

    assert result.exit_code == ExitStatus.OK, result.output
    for t in tables:
        assert mlflow_db.scalar(f"SELECT COUNT(*) FROM {t} WHERE workspace = 'team-a'") == 0, t


def test_retarget_repoints_moved_experiments_and_restore_puts_them_back(mlflow_db, tmp_path) -> None:
    populate(mlflow_db, _two_teams)
    mlflow_db.execute("UPDATE experiments SET artifact_location = 's3://b/r/workspaces/team-a/x' WHERE name = 'churn'")
    before = mlflow_db.dump()
    journal = tmp_path / "move.jsonl"
    root = "s3://b/r"

    result = move(
        mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "experiments", "--name", "churn",
        "--artifact-policy", "retarget", "--default-artifact-root", root, "-y", "--journal", str(journal),
        "--format", "json",
    )  # fmt: skip

    assert result.exit_code == ExitStatus.OK, result.output
    doc = json.loads(result.stdout)
    validate(doc, MOVE_DOCUMENT)
    assert doc["artifact_locations_retargeted"] == 1
    assert doc["artifact_root"] == "s3://b/r/workspaces/team-b"
    exp_id = doc["selected"]["experiments"][0]["experiment_id"]
    location = mlflow_db.scalar("SELECT artifact_location FROM experiments WHERE experiment_id = :i", i=exp_id)
    assert location == f"s3://b/r/workspaces/team-b/{exp_id}"

    undo = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y")

    assert undo.exit_code == ExitStatus.OK, undo.output
    assert "1 changed column value(s) (artifact locations) put back" in undo.stdout
    assert mlflow_db.dump() == before


def test_retarget_prefers_the_target_workspace_root(mlflow_db) -> None:
    populate(mlflow_db, _two_teams)
    mlflow_db.execute("UPDATE workspaces SET default_artifact_root = 's3://team-b-bucket' WHERE name = 'team-b'")
    before = mlflow_db.fingerprint()

    result = move(
        mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "experiments", "--name", "churn",
        "--artifact-policy", "retarget", "--dry-run",
    )  # fmt: skip

    assert result.exit_code == ExitStatus.OK, result.output
    assert "artifact_location s3://team-b-bucket/<experiment_id>" in result.stdout
    assert mlflow_db.fingerprint() == before


def _gateway(data) -> None:
    """An endpoint in team-a served by a model definition that uses a secret; a second definition unused."""
    data.add("secrets", secret_id="sec-1", secret_name="openai", workspace="team-a")
    data.add("model_definitions", model_definition_id="md-1", name="gpt", secret_id="sec-1", workspace="team-a")
    data.add("model_definitions", model_definition_id="md-2", name="spare", workspace="team-a")
    data.add("endpoints", endpoint_id="ep-1", name="chat", workspace="team-a")
    data.add("endpoint_model_mappings", mapping_id="map-1", endpoint_id="ep-1", model_definition_id="md-1")


def test_a_moving_endpoint_pulls_the_rows_it_references_along(mlflow_db) -> None:
    populate(mlflow_db, _gateway)

    result = move(mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "endpoints", "-y")

    assert result.exit_code == ExitStatus.OK, result.output
    assert "Pulled along, because a moving row references them: 2" in result.stdout
    assert _where(mlflow_db, "endpoints", "chat") == ["team-b"]
    assert _where(mlflow_db, "model_definitions", "gpt") == ["team-b"]
    assert _where(mlflow_db, "secrets", "openai", column="secret_name") == ["team-b"]
    assert _where(mlflow_db, "model_definitions", "spare") == ["team-a"]  # referenced by nothing that moves


def test_a_row_left_behind_that_references_a_moving_row_blocks(mlflow_db) -> None:
    populate(mlflow_db, _gateway)
    before = mlflow_db.fingerprint()

    result = move(mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "secrets", "-y")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    out = result.stdout
    assert 'References left behind: 1 row(s) staying in "team-a"' in out
    assert 'model_definitions "gpt" (model_definition_id="md-1") references secrets "openai" (secret_id="sec-1")' in out
    assert "Blocked: 1 reference(s) from rows left behind" in out
    assert mlflow_db.fingerprint() == before


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--resource-type", "nope"), 'unknown resource type "nope"; this database has: '),
        (("--to", "team-a"), "--from and --to are both 'team-a'"),
        (("--to", "team-z"), 'no workspace "team-z" in the workspace catalog; it has: "default", "team-a"'),
        (("--tag", "novalue"), "'novalue' is not KEY=VALUE"),
        (("--name", "churn", "--tag", "a=b"), "--name and --tag are mutually exclusive"),
        (("--artifact-policy", "retarget"), "--artifact-policy retarget needs an artifact root"),
        (
            (
                "--resource-type",
                "registered_models",
                "--artifact-policy",
                "retarget",
                "--default-artifact-root",
                "s3://r",
            ),
            "--artifact-policy retarget moves experiments' artifact locations: add --resource-type experiments",
        ),
        (("--name", "nope"), 'named "nope" in workspace "team-a": nothing to move'),
        (("--resource-type", "experiments", "--tag", "x=y"), "has the tag(s) x=y"),
        (("--resource-type", "jobs", "--tag", "x=y"), "--tag: jobs has no tags; types with tags: "),
    ],
)
def test_bad_input_is_one_line_and_exit_2(mlflow_db, flags: tuple[str, ...], message: str) -> None:
    populate(mlflow_db, _two_teams)
    before = mlflow_db.fingerprint()
    base = ["--from", "team-a"] + ([] if "--to" in flags else ["--to", "team-b"])

    result = move(mlflow_db.uri, *base, *flags, "-y")

    assert result.exit_code == ExitStatus.USAGE, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len([line for line in result.stderr.splitlines() if line.strip()]) <= 4  # click's usage lines at most
    assert mlflow_db.fingerprint() == before


def test_json_document_pins_the_selection_fields(mlflow_db) -> None:
    populate(mlflow_db, _two_teams, spread=False)
    before = mlflow_db.fingerprint()

    result = move(mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--format", "json", "--dry-run")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    doc = json.loads(result.stdout)
    validate(doc, MOVE_DOCUMENT)
    assert (doc["source_workspace"], doc["target_workspace"]) == ("team-a", "team-b")
    assert {m["name"] for m in doc["selected"]["registered_models"]} == {"fraud", "scoring"}
    assert len(doc["selected"]["experiments"]) == 3
    assert doc["artifact_policy"] == "preserve" and doc["artifact_locations_retargeted"] is None
    assert doc["conflict_count"] == 1 and doc["conflicts"][0]["key"] == {"name": "scoring"}
    assert mlflow_db.fingerprint() == before


def test_markdown_dry_run_names_the_move_and_changes_nothing(mlflow_db) -> None:
    populate(mlflow_db, _gateway)
    before = mlflow_db.fingerprint()

    result = move(mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "secrets", "--dry-run",
                  "--format", "markdown")  # fmt: skip

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    out = result.stdout
    assert out.startswith('## Move resources from "team-a" to "team-b" (dry run, read-only)')
    assert "**References left behind (blocking)**: 1" in out
    assert "### Rows to move into `team-b`" in out
    assert mlflow_db.fingerprint() == before


def _store(tmp_path, *names: str) -> str:
    """A separate workspace store: a SQLite file with only the catalog table."""
    from sqlalchemy import create_engine, text

    path = tmp_path / "workspaces.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE workspaces (name VARCHAR(63) PRIMARY KEY, default_artifact_root TEXT)"))
        for name in names:
            conn.execute(text("INSERT INTO workspaces (name) VALUES (:n)"), {"n": name})
    engine.dispose()
    return f"sqlite:///{path}"


def test_a_separate_workspace_store_decides_which_workspaces_exist(mlflow_db, tmp_path) -> None:
    populate(mlflow_db, _two_teams)
    store = _store(tmp_path, "default", "team-a", "team-z")
    before = mlflow_db.fingerprint()

    refused = move(mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--workspace-store-uri", store, "-y")

    assert refused.exit_code == ExitStatus.USAGE, refused.output
    assert 'no workspace "team-b" in the workspace catalog; it has: "default", "team-a", "team-z"' in refused.stderr
    assert mlflow_db.fingerprint() == before

    result = move(mlflow_db.uri, "--from", "team-a", "--to", "team-z", "--name", "churn", "-y",
                  env={"MLFLOW_WORKSPACE_STORE_URI": store})  # fmt: skip

    assert result.exit_code == ExitStatus.OK, result.output
    assert _where(mlflow_db, "experiments", "churn") == ["team-c", "team-z"]
