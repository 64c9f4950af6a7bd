"""Optional: after `--rename-conflicts ... -y`, real MLflow (3.17.2; never a dependency) running without workspaces
finds the renamed experiment, model and prompt under their new names, with their versions and aliases.

Skipped without the interpreter of ``MWA_MLFLOW_PYTHON`` (see tests/test_mlflow_compat.py).  MLflow's own
client reads the migrated database directly (its SQLAlchemy stores, workspaces off), as a tracking server
started without workspaces would.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from mlflow_ws_admin.common.errors import ExitStatus

from .helpers import migrate, populate
from .test_mlflow_compat import (  # noqa: F401 (the fixture, and the skip without MLflow)
    MLFLOW_PYTHON,
    _mlflow_env,
    _mlflow_version,
    mlflow_server,
    mlflow_version_db,
    pytestmark,
)

_READ = """
import json, sys
from mlflow.tracking import MlflowClient
c = MlflowClient(tracking_uri=sys.argv[1], registry_uri=sys.argv[1])
names = json.loads(sys.argv[2])
out = {"experiments": sorted(e.name for e in c.search_experiments(view_type=3))}
out["models"] = sorted(m.name for m in c.search_registered_models())
out["experiment"] = c.get_experiment_by_name(names["experiment"]).experiment_id
out["model"] = c.get_registered_model(names["model"]).name
out["versions"] = sorted(int(v.version) for v in c.search_model_versions(f"name='{names['model']}'"))
out["alias"] = int(c.get_model_version_by_alias(names["model"], "alias-0").version)
prompt = c.load_prompt(f"prompts:/{names['prompt']}/1")
out["prompt"] = [prompt.name, prompt.template]
print(json.dumps(out))
"""


def _prompt(data, ws: str, name: str, text: str) -> None:
    """A prompt as MLflow 3.17.2 stores one: a registered model and a version, both tagged as a prompt, the
    version carrying its template."""
    data.add("registered_models", workspace=ws, name=name, creation_time=1, last_updated_time=1)
    data.add("registered_model_tags", workspace=ws, name=name, key="mlflow.prompt.is_prompt", value="true")
    data.add(
        "model_versions",
        workspace=ws,
        name=name,
        version=1,
        source="prompt-template",
        current_stage="None",
        status="READY",
        creation_time=1,
        last_updated_time=1,
    )
    data.add("model_version_tags", workspace=ws, name=name, version=1, key="mlflow.prompt.is_prompt", value="true")
    data.add("model_version_tags", workspace=ws, name=name, version=1, key="mlflow.prompt.text", value=text)


def _model(data, ws: str, name: str, versions: int) -> None:
    data.add("registered_models", workspace=ws, name=name, creation_time=1, last_updated_time=1)
    for v in range(1, versions + 1):
        data.add(
            "model_versions",
            workspace=ws,
            name=name,
            version=v,
            source=f"s3://b/{ws}/{v}",
            current_stage="None",
            status="READY",
            creation_time=1,
            last_updated_time=1,
        )
    data.add("registered_model_aliases", workspace=ws, name=name, alias="alias-0", version=versions)


def test_mlflow_finds_renamed_resources_under_their_new_names(mlflow_version_db) -> None:  # noqa: F811
    db = mlflow_version_db

    def fill(data) -> None:
        data.experiment("team-a", "churn", creation_time=1)
        data.experiment("team-b", "churn", creation_time=2)
        _model(data, "team-a", "fraud", versions=1)
        _model(data, "team-c", "fraud", versions=2)
        _prompt(data, "team-a", "greeting", "Hello {{name}} from a")
        _prompt(data, "team-b", "greeting", "Hello {{name}} from b")

    populate(db, fill)
    assert migrate(db.uri, "-y", "--rename-conflicts", "{name}-{workspace}").exit_code == ExitStatus.OK

    names = {"experiment": "churn-team-b", "model": "fraud-team-c", "prompt": "greeting-team-b"}
    env = _mlflow_env(MLFLOW_ENABLE_WORKSPACES="false")
    read = subprocess.run(
        [MLFLOW_PYTHON, "-c", _READ, db.uri, json.dumps(names)], capture_output=True, text=True, env=env, timeout=300
    )
    assert read.returncode == 0, read.stderr[-3000:]
    seen = json.loads(read.stdout.strip().splitlines()[-1])
    assert {"churn", "churn-team-b"} <= set(seen["experiments"])
    assert {"fraud", "fraud-team-c"} <= set(seen["models"])  # MLflow lists models, not prompts, here
    assert seen["model"] == "fraud-team-c" and seen["versions"] == [1, 2] and seen["alias"] == 2
    assert seen["prompt"] == ["greeting-team-b", "Hello {{name}} from b"]


_READ_SKILLS = """
import json, sys
from mlflow.tracking import MlflowClient
c = MlflowClient(tracking_uri=sys.argv[1])
skill = c.get_skill(name="summarize-team-b", organization="acme")
version = c.get_skill_version_by_alias(name="summarize-team-b", alias="prod", organization="acme")
found = c.search_skills(include_skill_identities=["@acme/summarize", "@acme/summarize-team-b"])
print(json.dumps({"skill": [skill.organization, skill.name], "alias": [version.name, version.version],
                  "found": sorted(s.name for s in found)}))
"""


def test_mlflow_finds_a_renamed_git_skill_under_its_new_name(mlflow_version_db) -> None:  # noqa: F811
    """MLflow 3.18.0's own client, workspaces off, reads a git-sourced skill renamed by --rename-conflicts: its
    organization kept, its alias following."""
    from .test_mlflow_318 import _skill

    if tuple(int(p) for p in _mlflow_version().split(".")[:2]) < (3, 18):
        pytest.skip(f"MLflow {_mlflow_version()} has no skills")
    db = mlflow_version_db

    def fill(data) -> None:
        for ws in ("team-a", "team-b"):
            _skill(data, ws, "summarize", "git")
            data.add("skill_aliases", workspace=ws, organization="acme", name="summarize", alias="prod", version=1)

    populate(db, fill)
    assert migrate(db.uri, "-y", "--rename-conflicts", "{name}-{workspace}").exit_code == ExitStatus.OK

    env = _mlflow_env(MLFLOW_ENABLE_WORKSPACES="false")
    read = subprocess.run(
        [MLFLOW_PYTHON, "-c", _READ_SKILLS, db.uri], capture_output=True, text=True, env=env, timeout=300
    )
    assert read.returncode == 0, read.stderr[-3000:]
    seen = json.loads(read.stdout.strip().splitlines()[-1])
    assert seen == {
        "skill": ["acme", "summarize-team-b"],
        "alias": ["summarize-team-b", 1],
        "found": ["summarize", "summarize-team-b"],
    }


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.sqlite_only
def test_a_server_without_workspaces_serves_renamed_resources(mlflow_version_db, tmp_path: Path) -> None:  # noqa: F811
    db = mlflow_version_db

    def fill(data) -> None:
        # The server serializes artifact_location and fails on a NULL one: give each its MLflow layout.
        for ws, at in (("team-a", 1), ("team-b", 2)):
            data.experiment(ws, "churn", creation_time=at, artifact_location=str(tmp_path / "artifacts" / ws / "1"))
        _model(data, "team-a", "fraud", versions=1)
        _model(data, "team-c", "fraud", versions=2)

    populate(db, fill)
    assert migrate(db.uri, "-y", "--rename-conflicts", "{name}-{workspace}").exit_code == ExitStatus.OK
    db.engine.dispose()

    with mlflow_server(db.path, tmp_path, workspaces=False) as server:
        assert server.process.poll() is None, server.output()[-3000:]
        api = server.url + "/api/2.0/mlflow"
        experiment = _get(f"{api}/experiments/get-by-name?experiment_name=churn-team-b")["experiment"]
        model = _get(f"{api}/registered-models/get?name=fraud-team-c")["registered_model"]
        alias = _get(f"{api}/registered-models/alias?name=fraud-team-c&alias=alias-0")["model_version"]
        kept = _get(f"{api}/registered-models/get?name=fraud")["registered_model"]

    assert experiment["name"] == "churn-team-b"
    assert model["name"] == "fraud-team-c" and [a["alias"] for a in model.get("aliases", [])] == ["alias-0"]
    assert (alias["name"], alias["version"]) == ("fraud-team-c", "2")
    assert kept["name"] == "fraud"
