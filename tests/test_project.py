"""The promises the README makes about the project itself: commands, demo, packaging."""

from __future__ import annotations

import re
import subprocess
import sys

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.sample_data import BUNDLED_SNAPSHOT, bundled_sqlite_snapshot

from .conftest import NEWEST, ROOT, snapshot
from .helpers import run_cli


def _readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)[:2]


def test_ci_runs_the_readme_test_command() -> None:
    demo, tests = _readme_commands()
    assert "pip install . " in demo and demo.endswith("mlflow-ws-admin demo")
    assert tests.endswith("pytest")
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_demo_runs_and_shows_planted_conflicts(tmp_path) -> None:
    result = run_cli("demo", "--path", str(tmp_path / "demo.db"))
    assert result.exit_code == ExitStatus.OK, result.output
    assert "Blocked: 3 conflict group(s) in 3 table(s)" in result.stdout
    assert 'name="churn-model"' in result.stdout


def test_bundled_demo_schema_is_the_captured_fixture() -> None:
    assert BUNDLED_SNAPSHOT == f"mlflow-{NEWEST}-sqlite.json"
    assert bundled_sqlite_snapshot()["statements"] == snapshot(NEWEST, "sqlite")["statements"]


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run([sys.executable, "-m", "mlflow_ws_admin", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "migrate" not in proc.stdout  # the group lists `db` and `demo`
    assert "db" in proc.stdout and "demo" in proc.stdout
