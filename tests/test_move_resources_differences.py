"""`db move-resources`: where it deliberately differs from MLflow 3.17.2's `mlflow db move-resources`, and how it
builds retargeted artifact locations.  No MLflow needed (tests/test_mlflow_move_compat.py compares the two
where they agree).

What MLflow 3.17.2 does in each case is stated beside the test, read from its
mlflow/store/db/workspace_move.py and mlflow/db.py and seen by running it.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import inspect, text

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.sample_data import SampleData
from mlflow_ws_admin.engine.selection import append_to_uri_path, retargeted, workspace_root

from .helpers import populate, run_cli

PLAIN = {"NO_COLOR": "1", "COLUMNS": "200"}


def move(uri: str, *args: str):
    return run_cli("db", "move-resources", uri, *args, env=PLAIN)


# --- retarget: artifact locations are built as MLflow builds them ---------------------------------------------

#: server root -> the artifact_location MLflow 3.17.2 gives experiment 7 retargeted into team-b (its
#: append_to_uri_path, twice: ROOT + workspaces/team-b, then + 7).
MLFLOW_RETARGETED = {
    "s3://root/base": "s3://root/base/workspaces/team-b/7",
    "s3://root/base/": "s3://root/base/workspaces/team-b/7",
    "s3://root/base/?region=eu": "s3://root/base/workspaces/team-b/7?region=eu",
    "s3://b": "s3://b/workspaces/team-b/7",
    "/srv/mlruns/": "/srv/mlruns/workspaces/team-b/7",
    "file:///srv/m": "file:///srv/m/workspaces/team-b/7",
    "file:rel/x": "file:rel/x/workspaces/team-b/7",
    "rel/x": "rel/x/workspaces/team-b/7",
    "mlflow-artifacts:/x": "mlflow-artifacts:/x/workspaces/team-b/7",
    "s3://b/x;p#f": "s3://b/x;p/workspaces/team-b/7#f",
}


@pytest.mark.parametrize("root", sorted(MLFLOW_RETARGETED))
def test_retargeted_locations_are_mlflows(root: str) -> None:
    assert retargeted(workspace_root(root, None, "team-b"), 7) == MLFLOW_RETARGETED[root]


def test_a_catalog_root_is_used_as_is() -> None:
    assert workspace_root("s3://server", "gs://team/root?x=1", "team-b") == "gs://team/root?x=1"
    assert retargeted("gs://team/root?x=1", 7) == "gs://team/root/7?x=1"
    assert append_to_uri_path("", "a", "/b") == "a/b"


def test_retarget_under_a_root_with_a_query_string(mlflow_db) -> None:
    """The query string stays at the end (it was once written before the path: `ROOT?q=1/workspaces/...`)."""
    db = mlflow_db
    populate(db)
    exp_id = db.scalar("SELECT experiment_id FROM experiments WHERE name = 'team-a-exp-0'")
    args = ["--from", "team-a", "--to", "team-b", "--resource-type", "experiments", "--name", "team-a-exp-0"]
    args += ["--artifact-policy", "retarget", "--default-artifact-root", "s3://b/root?region=eu"]
    before = db.dump()

    dry = move(db.uri, *args, "--dry-run")
    assert dry.exit_code == ExitStatus.OK, dry.output
    assert (
        "Artifacts: retarget: moved experiments get artifact_location "
        "s3://b/root/workspaces/team-b/<experiment_id>?region=eu;" in dry.stdout
    )
    assert "Dry run: 1 row(s) in 1 table(s) would move to `team-b`; no conflicts. Nothing was changed." in dry.stdout
    assert db.dump() == before

    doc = json.loads(move(db.uri, *args, "--dry-run", "--format", "json").stdout)
    assert doc["artifact_root"] == "s3://b/root/workspaces/team-b?region=eu"
    assert db.dump() == before

    done = move(db.uri, *args, "-y")
    assert done.exit_code == ExitStatus.OK, done.output
    assert "repointed the artifact_location of 1 experiment(s)" in done.stdout
    location = db.scalar("SELECT artifact_location FROM experiments WHERE name = 'team-a-exp-0'")
    assert location == f"s3://b/root/workspaces/team-b/{exp_id}?region=eu"
    assert db.scalar("SELECT workspace FROM experiments WHERE name = 'team-a-exp-0'") == "team-b"


# --- where we deliberately differ from MLflow 3.17.2 --------------------------------------------------------


def _workspaces(db, table: str, where: str) -> list[str]:
    with db.engine.connect() as conn:
        return sorted(conn.exec_driver_sql(f"SELECT workspace FROM {table} WHERE {where}").scalars())


def _counts(db, workspace: str) -> dict[str, int]:
    """Rows in ``workspace`` per workspace-scoped table."""
    with db.engine.connect() as conn:
        insp = inspect(conn)
        tables = [t for t in insp.get_table_names() if "workspace" in {c["name"] for c in insp.get_columns(t)}]
        sql = "SELECT COUNT(*) FROM {} WHERE workspace = :ws"
        return {t: conn.execute(text(sql.format(t)), {"ws": workspace}).scalar() for t in tables}


def test_several_resource_types_in_one_call_and_every_type_without_one(mlflow_db) -> None:
    """MLflow takes one --resource-type per call, and requires it.  Ours: repeat it to move several types in
    one transaction; leave it out to move every type (SRC merged into DST)."""
    db = mlflow_db
    populate(db)
    args = ["--from", "team-a", "--to", "team-b", "--resource-type", "experiments", "--resource-type"]
    args.append("registered_models")
    before = db.dump()

    dry = move(db.uri, *args, "--dry-run")
    assert dry.exit_code == ExitStatus.OK, dry.output
    assert "Selected root rows: experiments: 3, registered_models: 2" in dry.stdout
    for table, rows in (
        ("experiments", 3),
        ("registered_models", 2),
        ("model_versions", 4),
        ("registered_model_aliases", 2),
        ("registered_model_tags", 2),
        ("model_version_tags", 4),
    ):
        assert f"│ {table:<24} │ {rows:>4} │ team-a: {rows:<22} │" in dry.stdout
    assert "Dry run: 17 row(s) in 6 table(s) would move to `team-b`; no conflicts. Nothing was changed." in dry.stdout
    assert db.dump() == before

    done = move(db.uri, *args, "-y")
    assert done.exit_code == ExitStatus.OK, done.output
    assert "Done: moved 17 row(s) in 6 table(s) into `team-b`; committed." in done.stdout
    left = _counts(db, "team-a")
    assert {t: n for t, n in left.items() if n} == {"evaluation_datasets": 1, "jobs": 1, "webhooks": 1}

    # No --resource-type: every type, so team-c is merged into team-b whole.
    in_c = {t: n for t, n in _counts(db, "team-c").items() if n}
    in_b = _counts(db, "team-b")
    assert set(in_c) >= {"experiments", "registered_models", "evaluation_datasets", "jobs", "webhooks"}
    done = move(db.uri, "--from", "team-c", "--to", "team-b", "-y")
    assert done.exit_code == ExitStatus.OK, done.output
    assert f"Done: moved {sum(in_c.values())} row(s) in {len(in_c)} table(s) into `team-b`; committed." in done.stdout
    assert not any(_counts(db, "team-c").values())
    assert _counts(db, "team-b") == {t: in_b[t] + in_c.get(t, 0) for t in in_b}
    assert db.scalar("SELECT COUNT(*) FROM workspaces WHERE name = 'team-c'") == 1


def _gateway(data: SampleData) -> None:
    """team-a: endpoint `chat` -> (mapping) model definition `def-1` -> secret `key-1`; a secret of its own."""
    data.add("secrets", secret_id="s-1", secret_name="key-1", workspace="team-a")
    data.add("secrets", secret_id="s-2", secret_name="key-2", workspace="team-a")
    data.add("model_definitions", model_definition_id="md-1", name="def-1", secret_id="s-1", workspace="team-a")
    data.add("endpoints", endpoint_id="ep-1", name="chat", workspace="team-a")
    data.add("endpoint_model_mappings", mapping_id="map-1", endpoint_id="ep-1", model_definition_id="md-1")


def test_gateway_types_move_with_what_they_reference(mlflow_db) -> None:
    """MLflow 3.17.2 refuses every gateway type (`Unknown resource type 'secrets'`: its gateway tables reference
    each other).  Ours moves them: a moving row pulls the rows it references along, and a row staying behind that
    references a moving row blocks the move (exit 1, nothing changed)."""
    db = mlflow_db
    populate(db, _gateway)
    before = db.dump()

    # A secret alone: the model definition that stays in team-a references it.
    blocked = move(db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "secrets", "--name", "key-1", "-y")
    assert blocked.exit_code == ExitStatus.CONFLICTS, blocked.output
    assert 'model_definitions "def-1" (model_definition_id="md-1") references secrets "key-1"' in blocked.stdout
    assert db.dump() == before

    # A secret nothing references: moves alone.
    alone = move(db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "secrets", "--name", "key-2", "-y")
    assert alone.exit_code == ExitStatus.OK, alone.output
    assert _workspaces(db, "secrets", "secret_id = 's-2'") == ["team-b"]
    assert _workspaces(db, "secrets", "secret_id = 's-1'") == ["team-a"]

    # The endpoint: its model definition and that one's secret come along.
    args = ["--from", "team-a", "--to", "team-b", "--resource-type", "endpoints", "--name", "chat"]
    before = db.dump()
    dry = move(db.uri, *args, "--dry-run")
    assert dry.exit_code == ExitStatus.OK, dry.output
    assert "Selected root rows: endpoints: 1, model_definitions: 1, secrets: 1" in dry.stdout
    assert "Pulled along, because a moving row references them: 2" in dry.stdout
    assert (
        'endpoints "chat" (endpoint_id="ep-1") references model_definitions "def-1" (model_definition_id="md-1") '
        "(through endpoint_model_mappings)" in dry.stdout
    )
    assert "Dry run: 3 row(s) in 3 table(s) would move to `team-b`; no conflicts. Nothing was changed." in dry.stdout
    assert db.dump() == before
    done = move(db.uri, *args, "-y")
    assert done.exit_code == ExitStatus.OK, done.output
    assert _workspaces(db, "endpoints", "endpoint_id = 'ep-1'") == ["team-b"]
    assert _workspaces(db, "model_definitions", "model_definition_id = 'md-1'") == ["team-b"]
    assert _workspaces(db, "secrets", "secret_id = 's-1'") == ["team-b"]


def _names(data: SampleData) -> None:
    data.experiment("team-a", "shared")
    data.experiment("team-c", "shared")  # neither SRC nor DST
    for dataset_id, tagged in (("ds-1", True), ("ds-2", False)):
        data.add("evaluation_datasets", dataset_id=dataset_id, name="ds-twin", workspace="team-a")
        if tagged:
            data.add("evaluation_dataset_tags", dataset_id=dataset_id, key="pick", value="me")
    data.add("evaluation_datasets", dataset_id="ds-3", name="ds-taken", workspace="team-a")
    data.add("evaluation_datasets", dataset_id="ds-4", name="ds-taken", workspace="team-b")


def test_conflicts_are_counted_against_dst_only(mlflow_db) -> None:
    """A name also in a third workspace, or left behind in SRC, is no conflict (migrate-to-default-workspace
    would count both).  MLflow checks DST only as well."""
    db = mlflow_db
    populate(db, _names)

    done = move(
        db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "experiments", "--name", "shared", "-y"
    )
    assert done.exit_code == ExitStatus.OK, done.output
    assert _workspaces(db, "experiments", "name = 'shared'") == ["team-b", "team-c"]

    # One of two same-named datasets, by tag: its twin stays behind in SRC.
    args = ["--from", "team-a", "--to", "team-b", "--resource-type", "evaluation_datasets", "--tag", "pick=me"]
    done = move(db.uri, *args, "-y")
    assert done.exit_code == ExitStatus.OK, done.output
    assert "Done: moved 1 row(s) in 1 table(s) into `team-b`; committed." in done.stdout
    assert _workspaces(db, "evaluation_datasets", "name = 'ds-twin'") == ["team-a", "team-b"]


def test_a_dataset_name_taken_in_dst_blocks(mlflow_db) -> None:
    """MLflow 3.17.2 moves an evaluation dataset whose name DST already has (it checks names only for types
    with a unique index), leaving DST with two datasets MLflow's own lookup by name cannot tell apart.  Ours
    refuses, as migrate-to-default-workspace does (MLflow keeps dataset names unique per workspace in code)."""
    db = mlflow_db
    populate(db, _names)
    before = db.dump()
    args = ["--from", "team-a", "--to", "team-b", "--resource-type", "evaluation_datasets", "--name", "ds-taken"]

    dry = move(db.uri, *args, "--dry-run")
    assert dry.exit_code == ExitStatus.CONFLICTS, dry.output
    assert "Conflicts: 1 group(s) in 1 table(s) would collide in `team-b`" in dry.stdout
    assert 'name="ds-taken": team-a (dataset_id="ds-3"); team-b (dataset_id="ds-4")' in dry.stdout
    assert (
        "Blocked: 1 conflict group(s) in 1 table(s) must be fixed before 1 row(s) in 1 table(s) can move. "
        "Nothing was changed." in dry.stdout
    )
    assert db.dump() == before

    refused = move(db.uri, *args, "-y")
    assert refused.exit_code == ExitStatus.CONFLICTS, refused.output
    assert "conflicts found under the lock, rolled back, nothing changed: evaluation_datasets (name): 1" in (
        refused.stderr
    )
    assert db.dump() == before


def test_names_that_match_nothing_and_retarget_without_experiments(mlflow_db) -> None:
    """MLflow 3.17.2 prints `No experiments to move.` and exits 0 when no --name matches; ours exits 2 (a typo
    should not pass for success).  MLflow refuses --artifact-policy retarget for any type but experiments; so do
    we (exit 2, one line, nothing changed)."""
    db = mlflow_db
    populate(db)
    before = db.dump()
    typo = move(db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "experiments", "--name", "nope", "-y")
    assert typo.exit_code == ExitStatus.USAGE, typo.output
    assert typo.stderr.strip() == 'Error: no experiments named "nope" in workspace "team-a": nothing to move'
    assert db.dump() == before

    args = ["--from", "team-a", "--to", "team-b", "--resource-type", "registered_models", "--name", "team-a-model-0"]
    args += ["--artifact-policy", "retarget", "--default-artifact-root", "s3://root"]
    refused = move(db.uri, *args, "-y")
    assert refused.exit_code == ExitStatus.USAGE, refused.output
    assert refused.stderr.strip() == (
        "Error: --artifact-policy retarget moves experiments' artifact locations: add --resource-type experiments, "
        "or use --artifact-policy preserve"
    )
    assert db.dump() == before
