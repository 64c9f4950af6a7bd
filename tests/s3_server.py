"""A real S3-protocol server for the tests: moto's server mode, started on 127.0.0.1 in a process of its own
(so a SIGKILLed CLI under test cannot take it down), once per test worker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

#: The environment every S3 client in the tests (ours, boto3 in a test, a CLI subprocess, MLflow) reads.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("moto server exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not start")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("boto3")
    pytest.importorskip("moto.server")
    port = free_port()
    log = Path(tmp_path_factory.mktemp("moto")) / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
    try:
        _wait(port, proc)
        endpoint = f"http://127.0.0.1:{port}"
        saved = {k: os.environ.get(k) for k in (*CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL")}
        os.environ.update(CREDENTIALS, MLFLOW_S3_ENDPOINT_URL=endpoint)
        yield endpoint
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A fresh, empty bucket on the test server."""
    import boto3

    name = f"mwa-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


def s3_env(endpoint: str) -> dict[str, str]:
    """The environment a CLI subprocess needs to reach the test server."""
    return {**os.environ, **CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": endpoint}
