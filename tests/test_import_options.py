"""`db import-database --from-workspace S` and `--rename-conflicts TEMPLATE`, on every backend."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.sample_data import SampleData

from .conftest import ScratchDB
from .helpers import run_cli
from .test_import_database import fill_source, fill_target, import_db, one_error_line, populate, rows


def fill_two_workspaces(data: SampleData) -> None:
    """A workspace-enabled SOURCE: team-x and team-y, each with one of most kinds of rows, tied together as MLflow
    ties them (foreign keys, and the typed references no foreign key declares)."""
    data.workspace("team-x")
    data.workspace("team-y")
    # team-y holds the smallest experiment id: the offset must come from team-x's rows only
    data.experiment("team-y", "a-exp", experiment_id=1)  # a name TARGET's W has: no clash, it is not copied
    data.experiment("team-x", "exp-x1", experiment_id=2)
    data.experiment("team-x", "exp-x2", experiment_id=3)
    data.flush()
    for run, exp in (("run-x1", 2), ("run-x2", 3), ("run-y", 1)):
        data.add("runs", run_uuid=run, experiment_id=exp, lifecycle_stage="active", artifact_uri=f"s3://b/{run}")
        data.add("experiment_tags", experiment_id=exp, key=f"k-{run}", value="v")
    data.add("datasets", dataset_uuid="ds-x", experiment_id=2, name="train", digest="d1")
    data.add("datasets", dataset_uuid="ds-y", experiment_id=1, name="train", digest="d1")
    data.add("logged_models", model_id="m-x", experiment_id=2, name="lm", lifecycle_stage="active", status=1)
    data.add("logged_models", model_id="m-y", experiment_id=1, name="lm", lifecycle_stage="active", status=1)
    data.add("trace_info", request_id="tr-x", experiment_id=3, timestamp_ms=1, execution_time_ms=1, status="OK")
    data.add("trace_info", request_id="tr-y", experiment_id=1, timestamp_ms=1, execution_time_ms=1, status="OK")
    data.flush()
    for run in ("run-x1", "run-x2", "run-y"):
        data.add("params", run_uuid=run, key="lr", value="1")
        data.add("tags", run_uuid=run, key="mlflow.runName", value=run)
        data.add("latest_metrics", run_uuid=run, key="loss", value=1.0, timestamp=2, step=2, is_nan=False)
        for step in range(3):
            data.add("metrics", run_uuid=run, key="loss", value=step / 3, timestamp=step, step=step, is_nan=False)
    for ds, run, model, inp in (("ds-x", "run-x1", "m-x", "x"), ("ds-y", "run-y", "m-y", "y")):
        data.add("inputs", input_uuid=f"in-{inp}", source_type="DATASET", source_id=ds, destination_type="RUN",
                 destination_id=run)  # fmt: skip
        data.add("input_tags", input_uuid=f"in-{inp}", name="mlflow.data.context", value="train")
        data.add("inputs", input_uuid=f"out-{inp}", source_type="RUN_OUTPUT", source_id=run,
                 destination_type="MODEL_OUTPUT", destination_id=model)  # fmt: skip
    for trace, exp in (("tr-x", 3), ("tr-y", 1)):
        data.add("trace_tags", request_id=trace, key="k", value="v")
        data.add("spans", trace_id=trace, span_id=f"sp-{trace}", experiment_id=exp, start_time_unix_nano=1,
                 end_time_unix_nano=4)  # fmt: skip
        data.add("entity_associations", association_id=f"as-{trace}", source_type="trace", source_id=trace,
                 destination_type="run", destination_id="run-x1" if trace == "tr-x" else "run-y")  # fmt: skip
    data.add("logged_model_metrics", model_id="m-x", metric_name="acc", metric_timestamp_ms=1, metric_step=0,
             experiment_id=2, run_id="run-x1")  # fmt: skip
    # a row tied to both workspaces (team-x's model, team-y's run) stays behind: copied, it would dangle
    data.add("logged_model_metrics", model_id="m-x", metric_name="acc", metric_timestamp_ms=1, metric_step=0,
             experiment_id=2, run_id="run-y")  # fmt: skip
    data.add("sql_trace_rollup_rebuild_queue", experiment_id=3, rollup_day=dt.date(2026, 1, 1), rollup_family="trace")
    data.add("sql_trace_rollup_rebuild_queue", experiment_id=1, rollup_day=dt.date(2026, 1, 1), rollup_family="trace")
    data.registered_model("team-x", "fraud", versions=2, tags=1, aliases=1)
    data.registered_model("team-y", "fraud", versions=1)
    data.registered_model("team-y", "churn", versions=1)
    data.webhook("team-x", "hook")
    data.webhook("team-y", "hook")


#: rows of team-x and of what depends on them: what --from-workspace team-x copies, per table
TEAM_X = {
    "experiments": 2,
    "experiment_tags": 2,
    "runs": 2,
    "params": 2,
    "tags": 2,
    "latest_metrics": 2,
    "metrics": 6,
    "datasets": 1,
    "inputs": 2,
    "input_tags": 1,
    "logged_models": 1,
    "logged_model_metrics": 1,
    "trace_info": 1,
    "trace_tags": 1,
    "spans": 1,
    "entity_associations": 1,
    "sql_trace_rollup_rebuild_queue": 1,
    "registered_models": 1,
    "model_versions": 2,
    "model_version_tags": 2,
    "registered_model_tags": 1,
    "registered_model_aliases": 1,
    "webhooks": 1,
}


def counts(db: ScratchDB) -> dict[str, int]:
    return {t: len(r) for t, r in db.dump().items()}


# --- --from-workspace ----------------------------------------------------------------------------------------


def test_from_workspace_copies_that_workspace_and_its_dependents(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    populate(source_db, fill_two_workspaces)

    def target(data: SampleData) -> None:
        fill_target(data)
        data.flush()
        # team-y's run uuid is in TARGET already: no clash, since team-y is not copied
        data.add("runs", run_uuid="run-y", experiment_id=7, lifecycle_stage="active")

    populate(mlflow_db, target)
    before, source_before = counts(mlflow_db), source_db.fingerprint()

    dry = import_db(source_db, mlflow_db, "--workspace", "team-a", "--from-workspace", "team-x", "--dry-run")
    assert dry.exit_code == 0, dry.output + dry.stderr
    assert "Copying SOURCE's workspace team-x (--from-workspace" in dry.stdout
    assert f"Rows to copy: {sum(TEAM_X.values()):,}" in dry.stdout
    assert "  metrics: 6\n" in dry.stdout and "  runs: 2\n" in dry.stdout
    # the offset starts at team-x's smallest id (2), not SOURCE's (1): 9 + 1 - 2
    assert "Ids remapped: experiments.experiment_id + 8 (" in dry.stdout
    assert "Blocking" not in dry.stdout
    assert counts(mlflow_db) == before

    result = import_db(source_db, mlflow_db, "--workspace", "team-a", "--from-workspace", "team-x", "-y")
    assert result.exit_code == 0, result.output + result.stderr
    after = counts(mlflow_db)
    added = {t: after[t] - before[t] for t in after if after[t] != before[t]}
    assert added == TEAM_X
    assert rows(mlflow_db, "SELECT experiment_id, name, workspace FROM experiments WHERE experiment_id > 9") == [
        (10, "exp-x1", "team-a"),
        (11, "exp-x2", "team-a"),
    ]
    assert rows(mlflow_db, "SELECT run_uuid, experiment_id FROM runs WHERE run_uuid LIKE 'run-x%'") == [
        ("run-x1", 10),
        ("run-x2", 11),
    ]
    # children of team-y's rows did not come
    assert rows(mlflow_db, "SELECT DISTINCT run_uuid FROM metrics") == [("run-x1",), ("run-x2",)]
    assert rows(mlflow_db, "SELECT DISTINCT run_uuid FROM params") == [("run-x1",), ("run-x2",)]
    assert rows(mlflow_db, "SELECT input_uuid FROM inputs") == [("in-x",), ("out-x",)]
    assert rows(mlflow_db, "SELECT input_uuid FROM input_tags") == [("in-x",)]
    assert rows(mlflow_db, "SELECT request_id, experiment_id FROM trace_info") == [("tr-x", 11)]
    assert rows(mlflow_db, "SELECT association_id FROM entity_associations") == [("as-tr-x",)]
    assert rows(mlflow_db, "SELECT experiment_id FROM sql_trace_rollup_rebuild_queue") == [(11,)]
    assert rows(mlflow_db, "SELECT dataset_uuid, experiment_id FROM datasets") == [("ds-x", 10)]
    assert rows(mlflow_db, "SELECT name, workspace FROM registered_models") == [
        ("a-model", "team-a"),
        ("fraud", "team-a"),
    ]
    assert rows(mlflow_db, "SELECT name, version FROM model_versions WHERE name = 'fraud'") == [
        ("fraud", 1),
        ("fraud", 2),
    ]
    assert source_db.fingerprint() == source_before


def test_from_workspace_the_other_one(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    """team-y's rows on their own, into an empty TARGET: the ids are kept, and team-x's rows stay behind."""
    populate(source_db, fill_two_workspaces)
    result = import_db(source_db, mlflow_db, "--workspace", "team-b", "--create-workspace", "--from-workspace",
                       "team-y", "-y")  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    assert rows(mlflow_db, "SELECT experiment_id, name FROM experiments") == [(1, "a-exp")]
    assert rows(mlflow_db, "SELECT run_uuid FROM runs") == [("run-y",)]
    assert len(rows(mlflow_db, "SELECT run_uuid FROM metrics")) == 3
    assert rows(mlflow_db, "SELECT input_uuid FROM inputs") == [("in-y",), ("out-y",)]
    assert rows(mlflow_db, "SELECT model_id FROM logged_model_metrics") == []
    assert rows(mlflow_db, "SELECT name FROM registered_models") == [("churn",), ("fraud",)]


def test_from_workspace_missing_in_source(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    populate(source_db, fill_two_workspaces)
    populate(mlflow_db, fill_target)
    before = mlflow_db.fingerprint()
    result = import_db(source_db, mlflow_db, "--workspace", "team-a", "--from-workspace", "team-q", "-y")
    assert result.exit_code == ExitStatus.USAGE
    line = one_error_line(result)
    assert "workspace 'team-q' does not exist in SOURCE (its workspaces: default, team-x, team-y)" in line
    assert mlflow_db.fingerprint() == before


def test_several_workspaces_without_from_workspace_name_the_option(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    populate(source_db, fill_two_workspaces)
    before = mlflow_db.fingerprint()
    result = import_db(source_db, mlflow_db, "--workspace", "team-a", "--create-workspace", "-y")
    assert result.exit_code == ExitStatus.USAGE
    line = one_error_line(result)
    assert "SOURCE holds rows in 2 workspaces (team-x, team-y); pass --from-workspace" in line
    assert mlflow_db.fingerprint() == before


def test_from_workspace_json_and_undo(mlflow_db: ScratchDB, source_db: ScratchDB, tmp_path: Path) -> None:
    populate(source_db, fill_two_workspaces)
    populate(mlflow_db, fill_target)
    before = mlflow_db.dump()
    args = ("--workspace", "team-a", "--from-workspace", "team-x")
    doc = json.loads(import_db(source_db, mlflow_db, *args, "--dry-run", "--format", "json").stdout)
    assert doc["from_workspace"] == "team-x" and doc["source_workspace"] == "team-x"
    assert {t["table"]: t["rows"] for t in doc["tables"]} == TEAM_X
    assert doc["total_rows"] == sum(TEAM_X.values()) and doc["clashes"] == []
    assert mlflow_db.dump() == before

    journal = tmp_path / "x.jsonl"
    result = import_db(source_db, mlflow_db, *args, "-y", "--journal", str(journal), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rows_inserted"] == sum(TEAM_X.values())
    undo = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y")
    assert undo.exit_code == 0, undo.output + undo.stderr
    assert mlflow_db.dump() == before


# --- --rename-conflicts --------------------------------------------------------------------------------------


def target_with_names(data: SampleData) -> None:
    """W (team-a) already has an experiment `exp-2` and a model `fraud`, as SOURCE has."""
    fill_target(data)
    data.experiment("team-a", "exp-2", experiment_id=8)
    data.registered_model("team-a", "fraud", versions=1, tags=1, aliases=1)


def test_a_name_clash_blocks_without_the_template(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    populate(source_db, fill_source)
    populate(mlflow_db, target_with_names)
    before = mlflow_db.fingerprint()
    result = import_db(source_db, mlflow_db, "--workspace", "team-a", "-y")
    assert result.exit_code == ExitStatus.CONFLICTS, result.output + result.stderr
    assert 'experiments (name) exists in workspace team-a: "exp-2"' in result.stdout
    assert 'registered_models (name) exists in workspace team-a: "fraud"' in result.stdout
    assert mlflow_db.fingerprint() == before


def test_rename_conflicts_dry_run_apply_and_undo(mlflow_db: ScratchDB, source_db: ScratchDB, tmp_path: Path) -> None:
    populate(source_db, fill_source)
    populate(mlflow_db, target_with_names)
    before = mlflow_db.dump()
    args = ("--workspace", "team-a", "--rename-conflicts", "{name}-{workspace}")

    dry = import_db(source_db, mlflow_db, *args, "--dry-run")
    assert dry.exit_code == 0, dry.output + dry.stderr
    assert "Renamed in the copy (--rename-conflicts {name}-{workspace}): 2 row(s)" in dry.stdout
    assert "team-a's own rows keep their names" in dry.stdout
    assert '  experiments.name: "exp-2" -> "exp-2-default"' in dry.stdout
    assert '  registered_models.name: "fraud" -> "fraud-default"' in dry.stdout
    assert "Blocking" not in dry.stdout
    assert mlflow_db.dump() == before

    journal = tmp_path / "renamed.jsonl.gz"
    result = import_db(source_db, mlflow_db, *args, "-y", "--journal", str(journal))
    assert result.exit_code == 0, result.output + result.stderr
    # W's rows keep their names; the incoming ones, and every row storing the model's name, carry the new one
    assert rows(mlflow_db, "SELECT name, experiment_id FROM experiments WHERE name LIKE 'exp-2%'") == [
        ("exp-2", 8),
        ("exp-2-default", 11),
    ]
    assert rows(mlflow_db, "SELECT name FROM registered_models WHERE workspace = 'team-a'") == [
        ("a-model",),
        ("fraud",),
        ("fraud-default",),
    ]
    for table, n_new, n_kept in (
        ("model_versions", 2, 1),
        ("model_version_tags", 2, 1),
        ("registered_model_tags", 1, 1),
        ("registered_model_aliases", 1, 1),
    ):
        got = rows(mlflow_db, f"SELECT name FROM {table} WHERE name LIKE 'fraud%'")
        assert got == [("fraud",)] * n_kept + [("fraud-default",)] * n_new, table
    assert rows(mlflow_db, "SELECT experiment_id FROM runs WHERE run_uuid = 'run-1'") == [(11,)]

    undo = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y")
    assert undo.exit_code == 0, undo.output + undo.stderr
    assert mlflow_db.dump() == before


def test_rename_conflicts_json(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    populate(source_db, fill_source)
    populate(mlflow_db, target_with_names)
    before = mlflow_db.fingerprint()
    result = import_db(source_db, mlflow_db, "--workspace", "team-a", "--rename-conflicts", "{name}-{n}",
                       "--dry-run", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert sorted((r["table"], r["column"], r["old"], r["new"]) for r in doc["renames"]) == [
        ("experiments", "name", "exp-2", "exp-2-1"),
        ("registered_models", "name", "fraud", "fraud-1"),
    ]
    assert doc["rename_refusals"] == [] and doc["clashes"] == []
    assert mlflow_db.fingerprint() == before


def test_a_new_name_that_clashes_too(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    """As migrate: without {n} a taken new name is refused (the clash stays, exit 1); {n} counts past it."""
    populate(source_db, fill_source)

    def taken_too(data: SampleData) -> None:
        target_with_names(data)
        data.registered_model("team-a", "fraud-default")
        data.registered_model("team-a", "fraud-1")

    populate(mlflow_db, taken_too)
    before = mlflow_db.fingerprint()
    refused = import_db(source_db, mlflow_db, "--workspace", "team-a", "--rename-conflicts", "{name}-{workspace}",
                        "-y")  # fmt: skip
    assert refused.exit_code == ExitStatus.CONFLICTS, refused.output + refused.stderr
    assert "not renamed: registered_models \"fraud\": 'fraud-default' is already taken; add {n}" in refused.stdout
    assert "Blocking: 1 key(s) already in TARGET" in refused.stdout
    assert 'registered_models (name) exists in workspace team-a: "fraud"' in refused.stdout
    assert mlflow_db.fingerprint() == before

    counted = import_db(source_db, mlflow_db, "--workspace", "team-a", "--rename-conflicts", "{name}-{n}", "-y")
    assert counted.exit_code == 0, counted.output + counted.stderr
    assert '  registered_models.name: "fraud" -> "fraud-2"' in counted.stdout
    assert rows(mlflow_db, "SELECT name, version FROM model_versions WHERE name = 'fraud-2'") == [
        ("fraud-2", 1),
        ("fraud-2", 2),
    ]


def test_string_id_clashes_stay_blocking_with_the_template(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    populate(source_db, fill_source)

    def clashing(data: SampleData) -> None:
        target_with_names(data)
        data.flush()
        data.add("runs", run_uuid="run-1", experiment_id=8, lifecycle_stage="active")

    populate(mlflow_db, clashing)
    before = mlflow_db.fingerprint()
    result = import_db(source_db, mlflow_db, "--workspace", "team-a", "--rename-conflicts", "{name}-{n}", "-y")
    assert result.exit_code == ExitStatus.CONFLICTS, result.output + result.stderr
    assert "Blocking: 1 key(s) already in TARGET" in result.stdout
    assert 'runs (run_uuid) exists in TARGET: "run-1"' in result.stdout
    assert mlflow_db.fingerprint() == before


def test_a_bad_template_is_a_usage_error(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    populate(source_db, fill_source)
    before = mlflow_db.fingerprint()
    result = import_db(source_db, mlflow_db, "--workspace", "team-a", "--rename-conflicts", "{nam}", "-y")
    assert result.exit_code == ExitStatus.USAGE
    assert "unknown placeholder {nam}" in one_error_line(result)
    assert mlflow_db.fingerprint() == before


def test_a_table_no_reference_ties_to_a_workspace_is_listed_not_copied(
    mlflow_db: ScratchDB, source_db: ScratchDB
) -> None:
    """A table a future MLflow adds without a foreign key: its rows belong to no workspace, so --from-workspace
    copies none of them and says so (a whole-database import still copies them)."""
    populate(source_db, fill_two_workspaces)
    for db in (source_db, mlflow_db):
        db.execute("CREATE TABLE future_notes (note_id VARCHAR(36) PRIMARY KEY, body VARCHAR(100))")
    source_db.execute("INSERT INTO future_notes (note_id, body) VALUES ('n-1', 'a'), ('n-2', 'b')")
    before = mlflow_db.fingerprint()
    args = ("--workspace", "team-x", "--create-workspace", "--from-workspace", "team-x")
    dry = import_db(source_db, mlflow_db, *args, "--dry-run")
    assert dry.exit_code == 0, dry.output + dry.stderr
    assert "Not copied: future_notes (2 row(s) in no workspace: no reference ties the table to one)" in dry.stdout
    assert "  future_notes:" not in dry.stdout
    assert mlflow_db.fingerprint() == before
    result = import_db(source_db, mlflow_db, *args, "-y")
    assert result.exit_code == 0, result.output + result.stderr
    assert rows(mlflow_db, "SELECT note_id FROM future_notes") == []
    assert rows(mlflow_db, "SELECT run_uuid FROM runs") == [("run-x1",), ("run-x2",)]
