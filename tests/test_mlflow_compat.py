"""Optional end-to-end check with real MLflow: after our migration, MLflow 3.17.2 starts with workspaces
disabled and lists every experiment and registered model.

MLflow is never a dependency of this project.  Point MWA_MLFLOW_PYTHON at a Python that has MLflow 3.17.2
installed (``fixtures/capture_schemas.py`` leaves one in /tmp/mwa-mlflow-venvs/3.17.2) to run it; without it
the test is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mlflow_ws_admin.errors import ExitStatus

from .helpers import migrate, populate

MLFLOW_PYTHON = os.environ.get("MWA_MLFLOW_PYTHON", "/tmp/mwa-mlflow-venvs/3.17.2/bin/python")

_LIST = """
import json, sys
from mlflow.tracking import MlflowClient
c = MlflowClient(tracking_uri=sys.argv[1], registry_uri=sys.argv[1])
print(json.dumps({
    "experiments": sorted(e.name for e in c.search_experiments(view_type=3)),
    "models": sorted(m.name for m in c.search_registered_models()),
}))
"""

pytestmark = pytest.mark.skipif(not Path(MLFLOW_PYTHON).exists(), reason=f"no MLflow interpreter at {MLFLOW_PYTHON}")


def _mlflow_lists(uri: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_ENABLE_WORKSPACES": "false"}
    return subprocess.run([MLFLOW_PYTHON, "-c", _LIST, uri], capture_output=True, text=True, env=env, timeout=300)


def test_mlflow_without_workspaces_lists_everything_after_migration(mlflow_db) -> None:
    populate(mlflow_db)
    uri = mlflow_db.uri
    with mlflow_db.engine.connect() as conn:
        experiments = sorted(conn.exec_driver_sql("SELECT name FROM experiments").scalars())
        models = sorted(conn.exec_driver_sql("SELECT name FROM registered_models").scalars())

    refused = _mlflow_lists(uri)
    assert refused.returncode != 0
    assert "Cannot disable workspaces" in refused.stderr

    assert migrate(mlflow_db.uri, "-y").exit_code == ExitStatus.OK

    listed = _mlflow_lists(uri)
    assert listed.returncode == 0, listed.stderr[-2000:]
    seen = json.loads(listed.stdout.strip().splitlines()[-1])
    assert set(experiments) <= set(seen["experiments"])  # MLflow may add its "Default" experiment
    assert seen["models"] == models
