"""`db move-resources`: where it deliberately differs from MLflow 3.17.2's `mlflow db move-resources`, and how it
builds retargeted artifact locations.  No MLflow needed (tests/test_mlflow_move_compat.py compares the two
where they agree).

What MLflow 3.17.2 does in each case is stated beside the test, read from its
mlflow/store/db/workspace_move.py and mlflow/db.py and seen by running it.
"""

from __future__ import annotations

import json

import pytest

from mlflow_ws_admin.errors import ExitStatus
from mlflow_ws_admin.selection import append_to_uri_path, retargeted, workspace_root

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
