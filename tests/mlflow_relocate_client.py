"""Run by MLflow's own interpreter (tests/test_mlflow_relocate.py): logs artifacts through a real tracking
server, or reads them back through it.  Usage: python mlflow_relocate_client.py URL MODE STATE.json

MODE ``legacy``: (server without workspaces) an experiment with a run and a file.
MODE ``log``: (workspaces on) a prefixed experiment in `default`; in team-a a run with a file, a logged model, a
registered version and a trace.
MODE ``late``: a run with a file in team-b's moved experiment (logged after the move).
MODE ``read-moved`` / ``read-restored``: read every artifact back through the server in the workspace each thing
lives in at that point; prints what it read.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

url, mode, state_path = sys.argv[1], sys.argv[2], Path(sys.argv[3])
state = json.loads(state_path.read_text()) if state_path.exists() else {}
mlflow.set_tracking_uri(url)
client = MlflowClient(url, url)


def workspace(name):
    os.environ["MLFLOW_WORKSPACE"] = name


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input


def log_run(experiment, filename, text):
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run, tempfile.TemporaryDirectory() as d:
        Path(d, filename).write_text(text)
        mlflow.log_artifact(str(Path(d, filename)))
    return run.info.run_id


def read_run(run_id, filename):
    names = [a.path for a in client.list_artifacts(run_id)]
    assert filename in names, (run_id, names)
    with tempfile.TemporaryDirectory() as d:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=filename, dst_path=d)).read_text()


def read_uri(uri):
    with tempfile.TemporaryDirectory() as d:
        path = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=d))
        return sorted(p.name for p in path.rglob("*") if p.is_file())


if mode == "legacy":
    state["legacy_run"] = log_run("legacy", "legacy.txt", "legacy")
elif mode == "log":
    client.create_workspace("team-a")
    client.create_workspace("team-b")
    workspace("default")
    state["prefixed_run"] = log_run("prefixed", "prefixed.txt", "prefixed")
    workspace("team-a")
    mlflow.set_experiment("exp-a")
    with mlflow.start_run() as run:
        with tempfile.TemporaryDirectory() as d:
            Path(d, "a.txt").write_text("team-a")
            mlflow.log_artifact(str(Path(d, "a.txt")))
        info = mlflow.pyfunc.log_model(name="model", python_model=Echo())
    state["run_a"] = run.info.run_id
    state["model_id"] = info.model_id
    mlflow.register_model(f"models:/{info.model_id}", "model-a")
    with mlflow.start_span("step") as span:
        span.set_inputs({"x": 1})
        span.set_outputs({"y": 2})
    state["trace_id"] = span.trace_id
elif mode == "late":
    workspace("team-b")
    state["late_run"] = log_run("exp-a", "late.txt", "late")
elif mode.startswith("read"):
    moved = mode == "read-moved"
    read = {}
    workspace("team-b" if moved else "default")
    read["legacy"] = read_run(state["legacy_run"], "legacy.txt")
    read["prefixed"] = read_run(state["prefixed_run"], "prefixed.txt")
    workspace("team-b" if moved else "team-a")
    read["a"] = read_run(state["run_a"], "a.txt")
    read["runs_model"] = read_uri(f"runs:/{state['run_a']}/model")
    read["logged_model"] = read_uri(f"models:/{state['model_id']}")
    read["registered"] = read_uri("models:/model-a/1")
    trace = mlflow.get_trace(state["trace_id"])
    read["trace"] = [s.name for s in trace.data.spans]
    if "late_run" in state:
        read["late"] = read_run(state["late_run"], "late.txt")
    print(json.dumps(read, sort_keys=True))
state_path.write_text(json.dumps(state))
