"""Optional end to end with a real MLflow server (skipped without MWA_MLFLOW_PYTHON's interpreter, as the other
real-server tests are): `mlflow server --serve-artifacts --enable-workspaces` logs a legacy experiment (created
before workspaces), a prefixed one in `default`, and in team-a a run with a file, a logged model, a registered
version and a trace; `move-resources --artifact-policy relocate` moves them all to team-b, and every one reads
back **through the server** there; a run logged in team-b meanwhile; `restore-workspaces` moves everything back,
and it all reads back in the old workspaces, the late run included.  With a local destination and with an S3
one on the local S3 server (moto, 127.0.0.1)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlflow_ws_admin.common.errors import ExitStatus

from .helpers import run_cli
from .s3_server import CREDENTIALS
from .test_mlflow_compat import (
    MLFLOW_PYTHON,
    SERVER_START_TIMEOUT_S,
    _free_port,
    _healthy,
    _mlflow_env,
    _stop,
)

CLIENT = Path(__file__).parent / "mlflow_relocate_client.py"

pytestmark = [
    pytest.mark.skipif(not Path(MLFLOW_PYTHON).exists(), reason=f"no MLflow interpreter at {MLFLOW_PYTHON}"),
    pytest.mark.sqlite_only,
    pytest.mark.slow,
]


@contextlib.contextmanager
def _server(
    db: Path | str, destination: str, tmp_path: Path, env: dict[str, str], *, workspaces: bool
) -> Iterator[str]:
    """`mlflow server --serve-artifacts` on a SQLite file (a str: a database URI) and DESTINATION, no default
    artifact root: new experiments get proxied `mlflow-artifacts:` locations."""
    port = _free_port()
    log = tmp_path / f"server-{port}.log"
    uri = db if isinstance(db, str) else f"sqlite:///{db}"
    command = [
        MLFLOW_PYTHON, "-m", "mlflow", "server", "--backend-store-uri", uri, "--serve-artifacts",
        "--artifacts-destination", destination, "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--enable-workspaces" if workspaces else "--disable-workspaces",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=_mlflow_env(**env), cwd=tmp_path, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(url):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        _stop(process)


def _client(url: str, mode: str, state: Path, env: dict[str, str]) -> dict:
    for _attempt in range(3):
        out = subprocess.run(
            [MLFLOW_PYTHON, str(CLIENT), url, mode, str(state)],
            capture_output=True,
            text=True,
            env=_mlflow_env(**env),
            timeout=600,
        )
        # MLflow's client gives the server 3 s to answer its server-info probe: on a loaded machine, try again
        # (only reads and the late run get here twice; "log" fails on its second try if the first got far).
        if out.returncode == 0 or "server-info failed" not in out.stderr:
            break
    assert out.returncode == 0, out.stderr[-4000:]
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if mode.startswith("read") else {}


def _move(db: Path, source: str, flags: tuple[str, ...], destination: str, journal: Path, env: dict[str, str]):
    result = run_cli(
        "db", "move-resources", f"sqlite:///{db}", "--from", source, "--to", "team-b", *flags,
        "--artifact-policy", "relocate", "--artifacts-destination", destination, "-y", "--journal", str(journal),
        env=env,
    )  # fmt: skip
    assert result.exit_code == ExitStatus.OK, result.output
    return result


def _boto3_overlay(tmp_path: Path) -> dict[str, str]:
    """MLflow's S3 client is boto3, which the shared MLflow interpreter may lack: lend it this interpreter's
    boto3 (and its own dependencies) on PYTHONPATH, through symlinks, leaving that installation untouched."""
    probe = subprocess.run([MLFLOW_PYTHON, "-c", "import boto3"], capture_output=True, env=_mlflow_env())
    if probe.returncode == 0:
        return {}
    import boto3
    import botocore
    import jmespath
    import s3transfer

    overlay = tmp_path / "boto3-overlay"
    overlay.mkdir()
    for module in (boto3, botocore, s3transfer, jmespath):
        (overlay / module.__name__).symlink_to(Path(module.__file__).parent)
    check = subprocess.run(
        [MLFLOW_PYTHON, "-c", "import boto3; boto3.client('s3', region_name='us-east-1')"],
        capture_output=True,
        env=_mlflow_env(PYTHONPATH=str(overlay)),
    )
    if check.returncode != 0:
        pytest.skip(f"the MLflow interpreter has no usable boto3: {check.stderr.decode()[-300:]}")
    return {"PYTHONPATH": str(overlay)}


@pytest.fixture(params=["local", "s3"])
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    if request.param == "local":
        return str(tmp_path / "dest"), {}
    endpoint = request.getfixturevalue("s3_endpoint")
    env = {**CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": endpoint, **_boto3_overlay(tmp_path)}
    return f"s3://{request.getfixturevalue('bucket')}/dest", env


def test_relocated_artifacts_read_back_through_a_real_server(tmp_path: Path, destination) -> None:
    dest, env = destination
    db = tmp_path / "mlflow.db"
    state = tmp_path / "state.json"
    with _server(db, dest, tmp_path, env, workspaces=False) as url:
        _client(url, "legacy", state, env)
    with _server(db, dest, tmp_path, env, workspaces=True) as url:
        _client(url, "log", state, env)

    moves = [
        (tmp_path / "a.jsonl", "team-a", ("--resource-type", "experiments", "--resource-type", "registered_models")),
        (tmp_path / "d.jsonl", "default", ("--resource-type", "experiments", "--name", "legacy", "--name", "prefixed")),
    ]
    for journal, source, flags in moves:
        result = _move(db, source, flags, dest, journal, env)
        assert "relocated the artifacts of" in result.stdout

    expected = {
        "legacy": "legacy",
        "prefixed": "prefixed",
        "a": "team-a",
        "runs_model": ["MLmodel"],
        "trace": ["step"],
    }
    with _server(db, dest, tmp_path, env, workspaces=True) as url:
        read = _client(url, "read-moved", state, env)
        _client(url, "late", state, env)
    for key, value in expected.items():
        if key == "runs_model":
            assert "MLmodel" in read[key], read
            assert "MLmodel" in read["logged_model"] and "MLmodel" in read["registered"], read
        else:
            assert read[key] == value, read

    for journal, _, _ in reversed(moves):
        undo = run_cli("db", "restore-workspaces", f"sqlite:///{db}", "--journal", str(journal), "-y", env=env)
        assert undo.exit_code == ExitStatus.OK, undo.output

    with _server(db, dest, tmp_path, env, workspaces=True) as url:
        back = _client(url, "read-restored", state, env)
    assert {k: back[k] for k in ("legacy", "prefixed", "a", "trace", "late")} == {
        "legacy": "legacy",
        "prefixed": "prefixed",
        "a": "team-a",
        "trace": ["step"],
        "late": "late",
    }
    assert "MLmodel" in back["runs_model"] and "MLmodel" in back["logged_model"] and "MLmodel" in back["registered"]
