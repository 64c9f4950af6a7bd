"""Build MLflow-shaped databases from captured schema snapshots: for the demo, the tests and the benchmark.

A snapshot (``fixtures/schemas/mlflow-<version>/<backend>.json``) is the ordered DDL + seed rows that real
``mlflow db upgrade`` produced.  ``SampleData`` inserts rows into it, filling every NOT NULL column the
caller leaves out, so the same builder works on any MLflow version's schema.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, Table, create_engine, insert, inspect
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Connection

from mlflow_ws_admin.db.schema import row_tables

BUNDLED_SNAPSHOT = "mlflow-3.18.0-sqlite.json"
INSERT_BATCH = 5000


def load_snapshot(conn: Connection, snapshot: Mapping[str, Any]) -> None:
    """Execute a snapshot's statements in order on an empty database (no parameters: `%` is literal)."""
    for statement in snapshot["statements"]:
        conn.exec_driver_sql(statement)


def read_snapshot(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def bundled_sqlite_snapshot() -> dict[str, Any]:
    """The newest captured MLflow SQLite snapshot (3.18.0), shipped inside the package for ``demo``."""
    return json.loads(resources.files("mlflow_ws_admin.db").joinpath("data", BUNDLED_SNAPSHOT).read_text("utf-8"))


class SampleData:
    """Inserts rows into an MLflow schema.  Call ``flush()`` (or use as a context manager) to write."""

    def __init__(self, conn: Connection, meta: MetaData | None = None) -> None:
        """``meta``: tables reflected from a database of exactly this one's schema, to reuse (the tables reflected
        here are added to it); a new one by default."""
        self.conn = conn
        self.meta = MetaData() if meta is None else meta
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._seq = 0
        self._next_experiment_id = 1_000_000

    def __enter__(self) -> SampleData:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.flush()

    def has_table(self, name: str) -> bool:
        return inspect(self.conn).has_table(name)

    def table(self, name: str) -> Table:
        if name not in self.meta.tables:
            row_tables(self.conn, [name], self.meta)
        return self.meta.tables[name]

    def row(self, table: str, **values: Any) -> dict[str, Any]:
        """One row's values with every unspecified NOT NULL column filled in (nothing is queued)."""
        return self._complete(self.table(table), values)

    def add(self, table: str, **values: Any) -> None:
        """Queue one row; unspecified NOT NULL columns get generated values."""
        rows = self._pending.setdefault(table, [])
        rows.append(self.row(table, **values))
        if len(rows) >= INSERT_BATCH:
            self._flush_table(table)

    def flush(self) -> None:
        # Parents first: tables are queued in the order callers create parents before children.
        for table in list(self._pending):
            self._flush_table(table)

    def _flush_table(self, table: str) -> None:
        rows = self._pending.pop(table, [])
        # executemany takes its columns from the first row and silently drops other rows' extra values:
        # batch rows by their column set so that a value given to only some rows is never lost.
        batches: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            batches.setdefault(tuple(row), []).append(row)
        for batch in batches.values():
            self.conn.execute(insert(self.table(table)), batch)

    def _complete(self, table: Table, values: dict[str, Any]) -> dict[str, Any]:
        row = dict(values)
        for col in table.columns:
            if col.name in row or col.nullable or col.server_default is not None:
                continue
            if col.primary_key and col.autoincrement is True and isinstance(col.type, sqltypes.Integer):
                continue
            self._seq += 1
            row[col.name] = _generated_value(col, self._seq)
        return row

    # --- MLflow resources -------------------------------------------------------------------------------

    def workspace(self, name: str, **values: Any) -> None:
        self.add("workspaces", name=name, **values)

    def experiment(self, workspace: str, name: str, *, lifecycle_stage: str = "active", **values: Any) -> int:
        self._next_experiment_id += 1
        exp_id = values.pop("experiment_id", self._next_experiment_id)
        self.add(
            "experiments",
            experiment_id=exp_id,
            name=name,
            workspace=workspace,
            lifecycle_stage=lifecycle_stage,
            **values,
        )
        return exp_id

    def registered_model(
        self, workspace: str, name: str, *, versions: int = 1, tags: int = 0, aliases: int = 0
    ) -> None:
        self.add("registered_models", workspace=workspace, name=name)
        for v in range(1, versions + 1):
            self.add("model_versions", workspace=workspace, name=name, version=v)
            self.add("model_version_tags", workspace=workspace, name=name, version=v, key="stage")
        for i in range(tags):
            self.add("registered_model_tags", workspace=workspace, name=name, key=f"tag-{i}")
        for i in range(min(aliases, versions)):
            self.add("registered_model_aliases", workspace=workspace, name=name, alias=f"alias-{i}", version=i + 1)

    def dataset(self, workspace: str, name: str) -> None:
        self._seq += 1
        self.add("evaluation_datasets", dataset_id=f"d-{self._seq}", name=name, workspace=workspace)

    def secret(self, workspace: str, secret_name: str) -> None:
        if self.has_table("secrets"):
            self._seq += 1
            self.add("secrets", secret_id=f"s-{self._seq}", secret_name=secret_name, workspace=workspace)

    def webhook(self, workspace: str, name: str) -> None:
        self._seq += 1
        self.add(
            "webhooks",
            webhook_id=f"w-{self._seq}",
            name=name,
            url="https://example.invalid/hook",
            workspace=workspace,
        )

    def job(self, workspace: str) -> None:
        self._seq += 1
        self.add("jobs", id=f"j-{self._seq}", workspace=workspace)

    def spread(
        self,
        workspaces: Iterable[str],
        *,
        experiments: int = 3,
        models: int = 2,
        versions: int = 2,
        datasets: int = 1,
        webhooks: int = 1,
        jobs: int = 1,
    ) -> None:
        """Collision-free resources in every workspace (names carry the workspace)."""
        for ws in workspaces:
            for i in range(experiments):
                self.experiment(ws, f"{ws}-exp-{i}")
            for i in range(models):
                self.registered_model(ws, f"{ws}-model-{i}", versions=versions, tags=1, aliases=1)
            for i in range(datasets):
                self.dataset(ws, f"{ws}-dataset-{i}")
            for i in range(webhooks):
                self.webhook(ws, f"{ws}-hook-{i}")
            for _ in range(jobs):
                self.job(ws)


def _generated_value(col: Column, n: int) -> Any:
    t = col.type
    if isinstance(t, sqltypes.Boolean):
        return False
    if isinstance(t, sqltypes.Integer):
        return n
    if isinstance(t, sqltypes.Float | sqltypes.Numeric):
        return 0
    if isinstance(t, sqltypes.DateTime):
        return dt.datetime(2026, 1, 1)
    if isinstance(t, sqltypes.LargeBinary | sqltypes._Binary):
        return b"\x00"
    if isinstance(t, sqltypes.JSON):
        return {}
    if isinstance(t, sqltypes.Enum) and t.enums:
        return t.enums[0]
    length = getattr(t, "length", None) or 64
    return f"{col.name}-{n}"[:length]


def build_demo_database(path: str | Path | None = None) -> Path:
    """A small SQLite database with four workspaces and three planted conflicts (experiment, model, secret)."""
    target = Path(path) if path else Path(tempfile.mkdtemp(prefix="mlflow-ws-demo-")) / "mlflow.db"
    if target.exists():
        target.unlink()
    engine = create_engine(f"sqlite:///{target}")
    try:
        with engine.begin() as conn:
            load_snapshot(conn, bundled_sqlite_snapshot())
            populate_demo(conn)
    finally:
        engine.dispose()
    return target


def populate_demo(conn: Connection) -> None:
    teams = ["team-a", "team-b", "research"]
    with SampleData(conn) as data:
        for ws in teams:
            data.workspace(ws, description=f"{ws} workspace")
        data.spread(["default", *teams])
        # planted conflicts: same names in different workspaces
        data.experiment("team-a", "churn-model")
        data.experiment("team-b", "churn-model", lifecycle_stage="deleted")
        data.registered_model("team-a", "fraud-detector", versions=3, tags=2, aliases=1)
        data.registered_model("research", "fraud-detector", versions=1)
        data.secret("team-a", "openai-key")
        data.secret("team-b", "openai-key")
