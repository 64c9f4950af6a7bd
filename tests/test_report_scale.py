"""The text report at 200 workspaces: bounded before the conflicts, every workspace with --verbose, all of them in
JSON, and the database untouched by the dry runs."""

from __future__ import annotations

import json
import re

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.sample_data import SampleData
from mlflow_ws_admin.report.text import WORKSPACE_TABLE_ROWS, WORKSPACES_PER_TABLE

from .helpers import migrate

N_WORKSPACES = 200
WORKSPACES = [f"ws-{i:03d}" for i in range(N_WORKSPACES)]
SHARED_MODEL_WORKSPACES = WORKSPACES[:3]
DATASET_TWINS = [WORKSPACES[7], WORKSPACES[7], WORKSPACES[8]]
#: The report before its first conflict fits in this many lines, however many workspaces there are.
LINES_BEFORE_CONFLICTS = 60
_WORKSPACE_ROW = re.compile(r"^│ (ws-\d{3}) +│ +([\d,]+) │ +([\d,]+) │$")


def _clashes(i: int) -> int:
    """Experiment names workspace i shares with workspace i+1 (0, 1 or 2), so the counts differ."""
    return i % 3


def _fill(data: SampleData) -> None:
    for ws in WORKSPACES:
        data.workspace(ws)
    data.spread(["default", *WORKSPACES], models=1, versions=1)
    for i, ws in enumerate(WORKSPACES):
        neighbour = WORKSPACES[(i + 1) % N_WORKSPACES]
        for j in range(_clashes(i)):
            data.experiment(ws, f"clash-{i}-{j}")
            data.experiment(neighbour, f"clash-{i}-{j}")
    # One group of three workspaces on another table; its versions roll up under it (no groups of their own).
    for ws in SHARED_MODEL_WORKSPACES:
        data.registered_model(ws, "shared-model", versions=2)
    # Dataset names are unique per workspace only in MLflow's code: a group with two rows of one workspace
    # counts once for it.
    for ws in DATASET_TWINS:
        data.dataset(ws, "twin-dataset")


def _expected_groups() -> dict[str, int]:
    groups = {ws: _clashes(i) + _clashes((i - 1) % N_WORKSPACES) for i, ws in enumerate(WORKSPACES)}
    for ws in {*SHARED_MODEL_WORKSPACES, *DATASET_TWINS}:
        groups[ws] += 1
    return groups


def _workspace_rows(stdout: str) -> dict[str, tuple[int, int]]:
    """workspace -> (rows, conflict groups), from the source-workspace table."""
    found = {}
    for line in stdout.splitlines():
        if m := _WORKSPACE_ROW.match(line):
            found[m[1]] = (int(m[2].replace(",", "")), int(m[3].replace(",", "")))
    return found


def _lines_before_conflicts(stdout: str) -> int:
    lines = stdout.splitlines()
    return next(i for i, line in enumerate(lines) if line.startswith("Conflicts:"))


def test_report_reads_at_200_workspaces(mlflow_db) -> None:
    with mlflow_db.engine.begin() as conn, SampleData(conn) as data:
        _fill(data)
    before = mlflow_db.fingerprint()

    plain = migrate(mlflow_db.uri, "--dry-run")
    verbose = migrate(mlflow_db.uri, "--dry-run", "--verbose")
    as_json = migrate(mlflow_db.uri, "--dry-run", "--format", "json")

    assert mlflow_db.fingerprint() == before
    assert plain.exit_code == verbose.exit_code == as_json.exit_code == ExitStatus.CONFLICTS
    doc = json.loads(as_json.stdout)
    rows = {ws: 0 for ws in WORKSPACES}
    for table in doc["tables"]:
        for ws, n in table["by_workspace"].items():
            rows[ws] += n
    experiments = next(t for t in doc["tables"] if t["table"] == "experiments")
    assert set(experiments["by_workspace"]) == set(WORKSPACES)  # JSON stays complete
    groups = _expected_groups()
    assert doc["conflict_count"] == sum(_clashes(i) for i in range(N_WORKSPACES)) + 2

    # Every workspace, with its rows over every table and its exact conflict groups, under --verbose.
    everyone = {ws: (rows[ws], groups[ws]) for ws in WORKSPACES}
    assert _workspace_rows(verbose.stdout) == everyone

    # Without it: the ten with the most rows (names break ties), the same counts, and how many were left out.
    top = sorted(WORKSPACES, key=lambda ws: (-rows[ws], ws))[:WORKSPACE_TABLE_ROWS]
    assert _workspace_rows(plain.stdout) == {ws: everyone[ws] for ws in top}
    assert f"… {N_WORKSPACES - WORKSPACE_TABLE_ROWS} more workspaces (use --verbose to list all)" in plain.stdout

    for result in (plain, verbose):
        assert _lines_before_conflicts(result.stdout) <= LINES_BEFORE_CONFLICTS + (
            N_WORKSPACES - WORKSPACE_TABLE_ROWS if result is verbose else 0
        )
        experiments_row = next(ln for ln in result.stdout.splitlines() if ln.startswith("│ experiments "))
        assert experiments_row.count("ws-") == WORKSPACES_PER_TABLE
        assert experiments_row.endswith(f", … {N_WORKSPACES - WORKSPACES_PER_TABLE} more workspaces │")
        assert "\x1b" not in result.stdout
