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


def start_moto(log: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """A moto server on a free port of 127.0.0.1 (moto's own, less its per-request overheads:
    ``moto_server_main.py``), logging to ``log``; returns (process, endpoint)."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("moto_server_main.py")), "127.0.0.1", str(port)],
            stdout=out,
            stderr=out,
            env={**os.environ, **(env or {})},
        )
    try:
        _wait(port, proc)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("boto3")
    pytest.importorskip("moto.server")
    proc, endpoint = start_moto(Path(tmp_path_factory.mktemp("moto")) / "moto.log")
    try:
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


class IamServer:
    """A moto server that enforces IAM: every request must be signed by one of its users."""

    def __init__(self, endpoint: str, admin: dict[str, str]) -> None:
        self.endpoint = endpoint
        #: credentials (boto3 keyword arguments) of a user allowed everything
        self.admin = admin

    def client(self, service: str, credentials: dict[str, str] | None = None):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, **(credentials or self.admin))

    def user(self, name: str, statements: list[dict]) -> dict[str, str]:
        """A user with one inline policy of ``statements``: its credentials as a CLI's environment reads them."""
        import json

        iam = self.client("iam")
        iam.create_user(UserName=name)
        policy = {"Version": "2012-10-17", "Statement": statements}
        iam.put_user_policy(UserName=name, PolicyName="policy", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
        }


#: what the admin user's three setup requests are: the only ones moto serves unsigned
_UNSIGNED_SETUP_REQUESTS = 3


@pytest.fixture(scope="session")
def iam_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IamServer]:
    """A moto server of its own started with INITIAL_NO_AUTH_ACTION_COUNT: its first requests (creating the
    admin user, its policy and its key) are served unsigned, every later one is checked against IAM policies."""
    pytest.importorskip("boto3")
    pytest.importorskip("moto.server")
    import json

    import boto3

    proc, endpoint = start_moto(
        Path(tmp_path_factory.mktemp("moto-iam")) / "moto.log",
        {"INITIAL_NO_AUTH_ACTION_COUNT": str(_UNSIGNED_SETUP_REQUESTS)},
    )
    try:
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
            region_name="us-east-1",
        )
        iam.create_user(UserName="admin")
        everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(everything))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        admin = {
            "aws_access_key_id": key["AccessKeyId"],
            "aws_secret_access_key": key["SecretAccessKey"],
            "region_name": "us-east-1",
        }
        yield IamServer(endpoint, admin)
    finally:
        proc.kill()
        proc.wait()
