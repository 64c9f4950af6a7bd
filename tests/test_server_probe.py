"""The server-features probe, against a real HTTP server started by each test (no mocks)."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlflow_ws_admin.errors import ExitStatus, UsageError
from mlflow_ws_admin.server_probe import (
    DISABLED,
    ENABLED,
    ERROR,
    FEATURES_PATH,
    UNSUPPORTED,
    probe_server_features,
    strip_userinfo,
)

from .helpers import run_cli


@dataclass
class FakeServer:
    """A real HTTP server on 127.0.0.1: answers every GET with (status, body) and records what it got."""

    status: int = 200
    body: bytes = b'{"workspaces_enabled": true}'
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, status: int, payload: object) -> None:
        self.status = status
        self.body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append((self.path, dict(self.headers)))
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(fake.body)))
            self.end_headers()
            self.wfile.write(fake.body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: bound once to get a free number, then closed."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.mark.parametrize(
    "payload, state, message",
    [
        ({"workspaces_enabled": True}, ENABLED, "workspaces_enabled: true"),
        ({"workspaces_enabled": False, "other": 1}, DISABLED, "workspaces_enabled: false"),
        ({"something": "else"}, ERROR, "the answer has no boolean `workspaces_enabled` field"),
        ({"workspaces_enabled": "yes"}, ERROR, "the answer has no boolean `workspaces_enabled` field"),
        (b"<html>hello</html>", ERROR, "the answer is not JSON: is this an MLflow tracking server?"),
    ],
)
def test_answers(server: FakeServer, payload: object, state: str, message: str) -> None:
    server.answer(200, payload)
    result = probe_server_features(server.url, timeout_s=5)

    assert (result.state, result.message) == (state, message)
    assert result.workspaces_enabled is {ENABLED: True, DISABLED: False}.get(state)
    assert [path for path, _ in server.requests] == [FEATURES_PATH]
    assert "X-Mlflow-Workspace" not in server.requests[0][1]


def test_404_means_an_older_server(server: FakeServer) -> None:
    server.answer(404, {"error_code": "ENDPOINT_NOT_FOUND"})
    result = probe_server_features(server.url, timeout_s=5)

    assert result.state == UNSUPPORTED
    assert "HTTP 404: an older MLflow server without workspace support" in result.message


def test_server_error_is_reported(server: FakeServer) -> None:
    server.answer(503, {"error": "down"})
    result = probe_server_features(server.url, timeout_s=5)

    assert (result.state, result.message) == (ERROR, "the server answered HTTP 503 Service Unavailable")


def test_connection_refused(closed_port: int) -> None:
    result = probe_server_features(f"http://127.0.0.1:{closed_port}", timeout_s=5)

    assert result.state == ERROR
    assert result.message == "connection refused: is the tracking server running on that host and port?"


def test_timeout() -> None:
    # A listening socket that never answers: the connection succeeds, the response never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        result = probe_server_features(f"http://127.0.0.1:{port}", timeout_s=0.3)

    assert (result.state, result.message) == (ERROR, "no answer within 0.3 s (timed out)")


def test_credentials_go_in_a_header_never_in_an_echoed_url(server: FakeServer) -> None:
    result = probe_server_features(f"http://alice:s3cr%40t@127.0.0.1:{server.port}/mlflow/?token=x", timeout_s=5)

    assert result.state == ENABLED
    assert result.url == f"http://127.0.0.1:{server.port}/mlflow{FEATURES_PATH}"
    path, headers = server.requests[0]
    assert path == f"/mlflow{FEATURES_PATH}"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cr@t").decode()


@pytest.mark.parametrize("url", ["ftp://host/x", "not a url", "http://", "http://host:port/"])
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError) as err:
        probe_server_features(url)
    assert "--server" in err.value.message


def test_strip_userinfo() -> None:
    assert strip_userinfo("https://u:p@h:5000/a?b=c#d") == "https://h:5000/a"


# --- through `db preflight --server`, on every backend ------------------------------------------------------


def _preflight(db, *flags: str):
    before = db.fingerprint()
    result = run_cli("db", "preflight", db.uri, "--default-artifact-root", "s3://root", *flags)
    assert db.fingerprint() == before
    return result


def test_preflight_reports_the_server_state(mlflow_db, server: FakeServer) -> None:
    server.answer(200, {"workspaces_enabled": False})
    off = _preflight(mlflow_db, "--server", server.url)
    assert off.exit_code == ExitStatus.OK, off.output
    assert f"workspaces_enabled: false ({server.url}{FEATURES_PATH})" in off.stdout
    assert any(line.startswith("PASS  tracking server") for line in off.stdout.splitlines())

    server.answer(404, b"")
    old = _preflight(mlflow_db, "--server", server.url)
    assert old.exit_code == ExitStatus.OK, old.output
    assert any(line.startswith("WARN  tracking server") for line in old.stdout.splitlines())


def test_preflight_fails_on_an_unreachable_server_without_echoing_credentials(mlflow_db, closed_port: int) -> None:
    result = _preflight(mlflow_db, "--server", f"http://admin:topsecret@127.0.0.1:{closed_port}")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert any(
        line.startswith("FAIL  tracking server") and "connection refused" in line for line in result.stdout.splitlines()
    )
    assert f"(http://127.0.0.1:{closed_port}{FEATURES_PATH})" in result.stdout
    assert "topsecret" not in result.output and "admin" not in result.output


def test_preflight_rejects_a_bad_server_url(mlflow_db) -> None:
    result = _preflight(mlflow_db, "--server", "ftp://u:pw@host/")
    assert result.exit_code == ExitStatus.USAGE
    assert "Error: --server needs an http(s) URL of the tracking server, got 'ftp://host/'" in result.stderr
    assert "pw" not in result.output
