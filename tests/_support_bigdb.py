"""Build an MLflow database big enough that apply takes a second or more (crash and concurrency tests).

Rows are deterministic, so two databases built with the same size hold the same rows.  Parents are queued
completely before their children: SampleData flushes a table whenever its batch fills, and PostgreSQL/MySQL
enforce the registered_models -> model_versions -> model_version_tags foreign keys on insert.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from mlflow_ws_admin.db.sample_data import SampleData

WORKSPACES = ("team-a", "team-b", "team-c", "default")


def build_big(conn: Connection, experiments: int) -> int:
    """Experiments plus half as many registered models, each with 2 versions and 2 version tags.  Returns
    the number of rows outside `default` (3 in 4 rows sit in a team workspace)."""
    models = experiments // 2
    with SampleData(conn) as data:
        for ws in WORKSPACES[:3]:
            data.workspace(ws)
        for i in range(experiments):
            data.experiment(WORKSPACES[i % 4], f"exp-{i}")
        for i in range(models):
            data.add("registered_models", workspace=WORKSPACES[i % 4], name=f"model-{i}")
        data.flush()
        for i in range(models):
            for v in (1, 2):
                data.add("model_versions", workspace=WORKSPACES[i % 4], name=f"model-{i}", version=v)
        data.flush()
        for i in range(models):
            for v in (1, 2):
                data.add("model_version_tags", workspace=WORKSPACES[i % 4], name=f"model-{i}", version=v, key="k")
    total = experiments + models * 5
    return total - sum(1 for i in range(experiments) if i % 4 == 3) - 5 * sum(1 for i in range(models) if i % 4 == 3)
