"""Optional end-to-end checks with a real MLflow (never a dependency of this project).

- After our migration, MLflow starts with workspaces disabled and lists every experiment and registered model.
- `mlflow server --enable-workspaces` (and one without) on a scratch SQLite database and a free 127.0.0.1
  port: our server probe reads `workspaces_enabled` from it; the server is stopped by its PID.
- A server without workspaces refuses to start while rows sit outside `default`, and starts after our
  migration.

Point MWA_MLFLOW_PYTHON at a Python that has MLflow installed (``fixtures/capture_schemas.py`` leaves one in
/tmp/mwa-mlflow-venvs/<version>; default /tmp/mwa-mlflow-venvs/3.17.2).  Without it every test here is
skipped.  The database schema is the captured snapshot of that interpreter's MLflow version (a version with
no snapshot is skipped): MLflow refuses a database whose Alembic revision it does not know.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.findings.server_probe import DISABLED, ENABLED, INFO_PATH, probe_server_features

from .conftest import FIXTURES
from .helpers import migrate, populate

MLFLOW_PYTHON = os.environ.get("MWA_MLFLOW_PYTHON", "/tmp/mwa-mlflow-venvs/3.17.2/bin/python")
SERVER_START_TIMEOUT_S = float(os.environ.get("MWA_MLFLOW_SERVER_TIMEOUT", "240"))

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


def _mlflow_env(**extra: str) -> dict[str, str]:
    """This environment without any MLFLOW_* setting (a stray MLFLOW_ENABLE_WORKSPACES would decide the test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, **extra}


@functools.cache
def _mlflow_version() -> str:
    out = subprocess.run(
        [MLFLOW_PYTHON, "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        env=_mlflow_env(),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture
def mlflow_version_db(scratch_db):
    """A scratch database with the captured schema of the interpreter's MLflow version."""
    version = _mlflow_version()
    if not (FIXTURES / f"mlflow-{version}").is_dir():
        pytest.skip(f"no captured schema for MLflow {version} in {FIXTURES}")
    return scratch_db.load(version)


def _mlflow_lists(uri: str) -> subprocess.CompletedProcess:
    env = _mlflow_env(MLFLOW_ENABLE_WORKSPACES="false")
    return subprocess.run([MLFLOW_PYTHON, "-c", _LIST, uri], capture_output=True, text=True, env=env, timeout=300)


def test_mlflow_without_workspaces_lists_everything_after_migration(mlflow_version_db) -> None:
    db = mlflow_version_db
    populate(db)
    with db.engine.connect() as conn:
        experiments = sorted(conn.exec_driver_sql("SELECT name FROM experiments").scalars())
        models = sorted(conn.exec_driver_sql("SELECT name FROM registered_models").scalars())

    refused = _mlflow_lists(db.uri)
    assert refused.returncode != 0
    assert "Cannot disable workspaces" in refused.stderr

    assert migrate(db.uri, "-y").exit_code == ExitStatus.OK

    listed = _mlflow_lists(db.uri)
    assert listed.returncode == 0, listed.stderr[-2000:]
    seen = json.loads(listed.stdout.strip().splitlines()[-1])
    assert set(experiments) <= set(seen["experiments"])  # MLflow may add its "Default" experiment
    assert seen["models"] == models


# --- a real `mlflow server` -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MlflowServer:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's PID; its workers (same new session) get SIGKILL if anything outlives it."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # leftover uvicorn workers / job runner of that one server


def _live_members(pgid: int) -> list[int]:
    """PIDs in process group *pgid* that are still running (zombies waiting to be reaped do not count)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited while we looked
        if fields[0] != "Z" and int(fields[2]) == pgid:
            live.append(int(stat.parent.name))
    return live


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def mlflow_server(
    db_path: Path | str, tmp_path: Path, *, workspaces: bool, extra_args: tuple[str, ...] = (), **env: str
) -> Iterator[MlflowServer]:
    """`mlflow server` on a SQLite file (or a database URI, a str) and a free 127.0.0.1 port.  Yields once `/health` answers, or as soon
    as the process exits (a refusal to start); stopped by PID at the end either way.  ``extra_args`` and
    ``env`` (MLFLOW_* settings): e.g. ``--app-name basic-auth`` with its MLFLOW_AUTH_CONFIG_PATH."""
    port = _free_port()
    log = tmp_path / f"mlflow-server-{port}.log"
    command = [
        MLFLOW_PYTHON,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        db_path if isinstance(db_path, str) else f"sqlite:///{db_path}",
        "--default-artifact-root",
        str(tmp_path / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--enable-workspaces" if workspaces else "--disable-workspaces",
        *extra_args,
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=_mlflow_env(**env), cwd=tmp_path, start_new_session=True
        )
    server = MlflowServer(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while process.poll() is None and not _healthy(server.url):
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not up after {SERVER_START_TIMEOUT_S:g} s:\n{server.output()[-3000:]}")
            time.sleep(0.5)
        yield server
    finally:
        _stop(process)


@pytest.mark.parametrize("workspaces, state", [(True, ENABLED), (False, DISABLED)])
def test_probe_reads_a_real_mlflow_server(tmp_path: Path, workspaces: bool, state: str) -> None:
    db_path = tmp_path / "mlflow.db"  # the server creates its own schema in the empty file
    with mlflow_server(db_path, tmp_path, workspaces=workspaces) as server:
        assert server.process.poll() is None, server.output()[-3000:]
        result = probe_server_features(server.url, timeout_s=30)
        pid = server.process.pid

    assert (result.state, result.workspaces_enabled) == (state, workspaces), result.message
    assert result.url == server.url + INFO_PATH  # released servers answer server-info
    assert server.process.returncode is not None
    deadline = time.monotonic() + 30  # SIGKILLed workers take a moment to exit
    while _live_members(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _live_members(pid) == []  # the server and every worker it started are gone


@pytest.mark.sqlite_only
def test_server_without_workspaces_refuses_then_starts_after_migration(mlflow_version_db, tmp_path: Path) -> None:
    db = mlflow_version_db
    populate(db)
    db.engine.dispose()

    with mlflow_server(db.path, tmp_path, workspaces=False) as refused:
        assert refused.process.wait(timeout=60) != 0
    assert "Cannot disable workspaces because experiments exist outside the default workspace" in refused.output()

    assert migrate(db.uri, "-y").exit_code == ExitStatus.OK

    with mlflow_server(db.path, tmp_path, workspaces=False) as server:
        assert server.process.poll() is None, server.output()[-3000:]
        result = probe_server_features(server.url, timeout_s=30)
    assert (result.state, result.workspaces_enabled) == (DISABLED, False)
