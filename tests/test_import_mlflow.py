"""`db import-database` with real MLflow: two databases populated through the MLflow client, each through its own
real `mlflow server --serve-artifacts` without workspaces (runs with metric histories, params, tags, an artifact,
a dataset input, a logged model registered with an alias, a prompt, a trace; every location proxied:
`mlflow-artifacts:/<id>`), imported with `--artifact-policy relocate` into a third, workspace-enabled one as
`team-a` and `team-b`; a real `mlflow server --enable-workspaces --serve-artifacts` with its own destination then
serves every object in its workspace, artifacts included (a run's file, `runs:/.../model`, `models:/m-...`, the
registered version), and nothing of the other team.  SOURCE's objects stay where they were.

Needs MWA_MLFLOW_PYTHON (default /tmp/mwa-mlflow-venvs/3.17.2/bin/python); skipped without it.  The sources are
SQLite files; the target is a SQLite file, a PostgreSQL or a MariaDB database (MLflow creates its schema there).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import _create_scratch
from .helpers import run_cli
from .test_mlflow_compat import MLFLOW_PYTHON, _mlflow_env
from .test_mlflow_relocate import _server

pytestmark = [
    pytest.mark.skipif(not Path(MLFLOW_PYTHON).exists(), reason=f"no MLflow interpreter at {MLFLOW_PYTHON}"),
    pytest.mark.slow,
]

TEAMS = ("team-a", "team-b")

_POPULATE = """
import json, os, sys
import mlflow, pandas as pd
from mlflow import MlflowClient

uri, artifacts, team = sys.argv[1:4]
os.makedirs(artifacts, exist_ok=True)
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
client = MlflowClient()
exp_id = client.create_experiment(f"{team}-exp")  # the server's proxied location: mlflow-artifacts:/<id>
assert client.get_experiment(exp_id).artifact_location == f"mlflow-artifacts:/{exp_id}"
mlflow.set_experiment(experiment_id=exp_id)


class Model(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return [len(str(x)) for x in model_input]


with mlflow.start_run() as run:
    for step in range(20):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_param("lr", "0.1")
    mlflow.set_tag("team", team)
    note = os.path.join(artifacts, "note.txt")
    with open(note, "w") as f:
        f.write(f"hello {team}")
    mlflow.log_artifact(note)
    mlflow.log_input(mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2]}), name=f"{team}-data"), context="training")
    info = mlflow.pyfunc.log_model(name="model", python_model=Model())
    with mlflow.start_span(name=f"{team}-span") as span:
        span.set_inputs({"q": 1})
version = mlflow.register_model(info.model_uri, f"{team}-model")
client.set_registered_model_alias(f"{team}-model", "champion", version.version)
mlflow.genai.register_prompt(name=f"{team}-prompt", template="Hi {{name}}")
print(json.dumps({
    "model_id": info.model_id,
    "run_ids": [run.info.run_id],
    "history": [[m.step, m.value] for m in client.get_metric_history(run.info.run_id, "loss")],
    "trace_ids": [t.info.trace_id for t in mlflow.search_traces(locations=[exp_id], return_type="list")],
    "prediction": list(mlflow.pyfunc.load_model(f"models:/{team}-model@champion").predict(pd.DataFrame({"x": ["a"]}))),
}))
"""

_CREATE = """
import sys
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
SqlAlchemyStore(sys.argv[1], sys.argv[2])
"""

_READ = """
import json, sys, tempfile
import mlflow, pandas as pd
from mlflow import MlflowClient

team, model_id = sys.argv[1:3]
client = MlflowClient()
exp = client.get_experiment_by_name(f"{team}-exp")
runs = client.search_runs([exp.experiment_id])
run = runs[0]
print(json.dumps({
    "run_ids": [r.info.run_id for r in runs],
    "history": [[m.step, m.value] for m in client.get_metric_history(run.info.run_id, "loss")],
    "trace_ids": [t.info.trace_id for t in mlflow.search_traces(locations=[exp.experiment_id], return_type="list")],
    "prediction": list(mlflow.pyfunc.load_model(f"models:/{team}-model@champion").predict(pd.DataFrame({"x": ["a"]}))),
    "runs_model": list(mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(pd.DataFrame({"x": ["ab"]}))),
    "logged_model": list(mlflow.pyfunc.load_model(f"models:/{model_id}").predict(pd.DataFrame({"x": ["abc"]}))),
    "artifact_uri": run.info.artifact_uri,
    "params": run.data.params,
    "tags": {k: v for k, v in run.data.tags.items() if k == "team"},
    "artifact": open(client.download_artifacts(run.info.run_id, "note.txt", tempfile.mkdtemp())).read(),
    "datasets": [d.dataset.name for d in run.inputs.dataset_inputs],
    "prompt": mlflow.genai.load_prompt(f"prompts:/{team}-prompt/1").template,
    "experiments": sorted(e.name for e in client.search_experiments()),
    "models": sorted(m.name for m in client.search_registered_models()),
}))
"""


def _mlflow(script: str, *args: str, retry: bool = False, **env: str) -> dict:
    env = _mlflow_env(MLFLOW_ENABLE_ASYNC_TRACE_LOGGING="false", **env)
    for _attempt in range(3 if retry else 1):
        done = subprocess.run(
            [MLFLOW_PYTHON, "-c", script, *args], capture_output=True, text=True, env=env, timeout=900
        )
        # MLflow's client gives the server 3 s to answer its server-info probe: on a loaded machine (and a
        # MariaDB-backed server) a read tries again.
        if done.returncode == 0 or "server-info failed" not in done.stderr:
            break
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


@pytest.fixture
def target_uri(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database for MLflow to create its schema in: a SQLite file, or a scratch server database."""
    if backend == "sqlite":
        (tmp_path / "target").mkdir()
        yield f"sqlite:///{tmp_path / 'target' / 'mlflow.db'}"
        return
    for db in _create_scratch(backend, tmp_path / "server-db"):
        yield db.uri


def _populate(team: str, tmp_path: Path) -> dict:
    """One team's database, logged through its own `mlflow server --serve-artifacts` (no workspaces)."""
    root = tmp_path / team
    with _server(root / "mlflow.db", str(root / "dest"), root, {}, workspaces=False) as url:
        return _mlflow(_POPULATE, url, str(root / "scratch"), team, retry=True, MLFLOW_ENABLE_WORKSPACES="false")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_two_real_databases_imported_are_served_in_their_workspaces(tmp_path: Path, target_uri: str) -> None:
    target, destination = target_uri, tmp_path / "target-dest"
    for team in TEAMS:
        (tmp_path / team).mkdir()
    with ThreadPoolExecutor(3) as pool:
        logged = {team: pool.submit(_populate, team, tmp_path) for team in TEAMS}
        pool.submit(_mlflow, _CREATE, target, str(tmp_path / "artifacts"), MLFLOW_ENABLE_WORKSPACES="true").result()
        logged = {team: future.result() for team, future in logged.items()}
    sources = {team: tmp_path / team / "dest" for team in TEAMS}
    before = {team: sorted(p.relative_to(d) for p in d.rglob("*") if p.is_file()) for team, d in sources.items()}

    for team in TEAMS:
        result = run_cli(
            "db", "import-database", f"sqlite:///{tmp_path / team / 'mlflow.db'}", target, "--workspace", team,
            "--create-workspace", "--artifact-policy", "relocate", "--source-artifacts-destination",
            str(sources[team]), "--artifacts-destination", str(destination), "-y",
        )  # fmt: skip
        assert result.exit_code == 0, result.output + result.stderr
        assert "artifacts: " in result.stdout and " object(s) copied (0 already there)" in result.stdout
    # SOURCE's objects stay; TARGET's destination holds each team's under workspaces/<team>/
    for team, d in sources.items():
        assert sorted(p.relative_to(d) for p in d.rglob("*") if p.is_file()) == before[team]
        assert any((destination / "workspaces" / team).rglob("note.txt")), team

    with _server(target, str(destination), tmp_path, {}, workspaces=True) as url:
        for team in TEAMS:
            model_id = logged[team]["model_id"]
            seen = _mlflow(_READ, team, model_id, retry=True, MLFLOW_TRACKING_URI=url, MLFLOW_WORKSPACE=team)
            expected = logged[team]
            assert seen["run_ids"] == expected["run_ids"], team  # run ids kept
            assert seen["artifact_uri"].startswith(f"mlflow-artifacts:/workspaces/{team}/"), seen["artifact_uri"]
            assert seen["history"] == expected["history"] and len(seen["history"]) == 20, team
            assert seen["trace_ids"] == expected["trace_ids"] and len(seen["trace_ids"]) == 1, team
            assert seen["prediction"] == expected["prediction"], team  # the registered version loads
            # runs:/.../model and models:/m-... load too (the model predicts the same for any one-column input)
            assert seen["runs_model"] == seen["logged_model"] == expected["prediction"], team
            assert seen["params"] == {"lr": "0.1"} and seen["tags"] == {"team": team}
            assert seen["artifact"] == f"hello {team}"
            assert seen["datasets"] == [f"{team}-data"]
            assert seen["prompt"] == "Hi {{name}}"
            other = next(t for t in TEAMS if t != team)
            assert f"{team}-exp" in seen["experiments"] and not any(other in e for e in seen["experiments"])
            assert f"{team}-model" in seen["models"] and not any(other in m for m in seen["models"])
