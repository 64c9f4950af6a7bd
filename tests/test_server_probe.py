"""The server probe (server-info, then server-features), against real HTTP servers started by each test."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlflow_ws_admin.common.errors import ExitStatus, UsageError
from mlflow_ws_admin.findings.server_probe import (
    DISABLED,
    ENABLED,
    ERROR,
    FEATURES_PATH,
    INFO_PATH,
    UNKNOWN,
    probe_server_features,
    strip_userinfo,
)

from .helpers import populate, run_cli

NOT_FOUND = (404, b'{"error_code": "ENDPOINT_NOT_FOUND"}')


@dataclass
class FakeServer:
    """A real HTTP server on 127.0.0.1 (ephemeral port).  It answers the paths in `routes` with their
    (status, body), every other path with 404, and records each request's path and headers."""

    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def answer(self, path: str, status: int, payload: object) -> None:
        self.routes[path] = (status, payload if isinstance(payload, bytes) else json.dumps(payload).encode())


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append((self.path, dict(self.headers)))
            status, body = fake.routes.get(self.path, NOT_FOUND)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

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


ANSWERS = [
    ({"workspaces_enabled": True}, ENABLED, "workspaces_enabled: true"),
    ({"workspaces_enabled": False, "other": 1}, DISABLED, "workspaces_enabled: false"),
    ({"workspaces_enabled": "yes"}, ERROR, "the answer has no boolean `workspaces_enabled` field"),
    ([1, 2], ERROR, "the answer has no boolean `workspaces_enabled` field"),
    (b"<html>hello</html>", ERROR, "the answer is not JSON: is this an MLflow tracking server?"),
]


@pytest.mark.parametrize("payload, state, message", ANSWERS)
def test_a_server_with_only_server_info(server: FakeServer, payload: object, state: str, message: str) -> None:
    # What MLflow 3.17.2 and 3.18.0 serve: the first endpoint decides, server-features is never asked.
    server.answer(INFO_PATH, 200, payload)
    result = probe_server_features(server.url, timeout_s=5)

    assert (result.state, result.message, result.url) == (state, message, server.url + INFO_PATH)
    assert result.workspaces_enabled is {ENABLED: True, DISABLED: False}.get(state)
    assert server.paths == [INFO_PATH]
    assert "X-Mlflow-Workspace" not in server.requests[0][1]


@pytest.mark.parametrize("payload, state, message", [*ANSWERS, ({"x": 1}, ERROR, ANSWERS[2][2])])
def test_a_server_with_only_server_features(server: FakeServer, payload: object, state: str, message: str) -> None:
    # The path the workspace docs name: asked after server-info answered 404.
    server.answer(FEATURES_PATH, 200, payload)
    result = probe_server_features(server.url, timeout_s=5)

    assert (result.state, result.message, result.url) == (state, message, server.url + FEATURES_PATH)
    assert result.workspaces_enabled is {ENABLED: True, DISABLED: False}.get(state)
    assert server.paths == [INFO_PATH, FEATURES_PATH]


def test_server_info_wins_over_server_features(server: FakeServer) -> None:
    server.answer(INFO_PATH, 200, {"store_type": "SqlStore", "workspaces_enabled": False})
    server.answer(FEATURES_PATH, 200, {"workspaces_enabled": True})
    result = probe_server_features(server.url, timeout_s=5)

    assert (result.state, result.workspaces_enabled) == (DISABLED, False)
    assert server.paths == [INFO_PATH]


def test_404_on_both_is_unknown_never_off(server: FakeServer) -> None:
    result = probe_server_features(server.url, timeout_s=5)

    assert result.state == UNKNOWN
    assert result.workspaces_enabled is None
    assert result.message == (
        "unknown (server-info HTTP 404; server-features HTTP 404): "
        "not an MLflow server with workspace support, or too old"
    )
    assert "off" not in result.message and "false" not in result.message
    assert server.paths == [INFO_PATH, FEATURES_PATH]


def test_server_info_without_the_field_asks_server_features(server: FakeServer) -> None:
    server.answer(INFO_PATH, 200, {"store_type": "SqlStore"})
    unknown = probe_server_features(server.url, timeout_s=5)
    assert (unknown.state, unknown.workspaces_enabled) == (UNKNOWN, None)
    assert unknown.message.startswith("unknown (server-info has no `workspaces_enabled`; server-features HTTP 404)")

    server.answer(FEATURES_PATH, 200, {"workspaces_enabled": True})
    assert probe_server_features(server.url, timeout_s=5).state == ENABLED
    assert server.paths == [INFO_PATH, FEATURES_PATH] * 2


@pytest.mark.parametrize("status, reason", [(503, "Service Unavailable"), (401, "Unauthorized"), (403, "Forbidden")])
def test_another_http_status_stops_at_server_info(server: FakeServer, status: int, reason: str) -> None:
    server.answer(INFO_PATH, status, {"error": "no"})
    server.answer(FEATURES_PATH, 200, {"workspaces_enabled": False})
    result = probe_server_features(server.url, timeout_s=5)

    assert (result.state, result.message) == (ERROR, f"the server answered HTTP {status} {reason}")
    assert server.paths == [INFO_PATH]


def test_an_error_at_server_features_is_reported(server: FakeServer) -> None:
    server.answer(FEATURES_PATH, 503, {"error": "down"})
    result = probe_server_features(server.url, timeout_s=5)

    assert (result.state, result.message) == (ERROR, "the server answered HTTP 503 Service Unavailable")
    assert result.url == server.url + FEATURES_PATH


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
    # Only server-features exists under the prefix, so both requests are made: both carry the header.
    server.answer(f"/mlflow{FEATURES_PATH}", 200, {"workspaces_enabled": True})
    result = probe_server_features(f"http://alice:s3cr%40t@127.0.0.1:{server.port}/mlflow/?token=x", timeout_s=5)

    assert result.state == ENABLED
    assert result.url == f"http://127.0.0.1:{server.port}/mlflow{FEATURES_PATH}"
    assert server.paths == [f"/mlflow{INFO_PATH}", f"/mlflow{FEATURES_PATH}"]
    expected = "Basic " + base64.b64encode(b"alice:s3cr@t").decode()
    assert [headers["Authorization"] for _, headers in server.requests] == [expected, expected]


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
    result = run_cli("db", "preflight", db.uri, "--for", "enable", "--default-artifact-root", "s3://root", *flags)
    assert db.fingerprint() == before
    return result


def test_preflight_reports_the_server_state(mlflow_db, server: FakeServer) -> None:
    server.answer(INFO_PATH, 200, {"store_type": "SqlStore", "workspaces_enabled": False})
    off = _preflight(mlflow_db, "--server", server.url)
    assert off.exit_code == ExitStatus.OK, off.output
    assert f"workspaces_enabled: false ({server.url}{INFO_PATH})" in off.stdout
    assert any(line.startswith("PASS  tracking server") for line in off.stdout.splitlines())

    server.routes.clear()  # 404 on both endpoints: a warning that says "unknown", never "false"
    unknown = _preflight(mlflow_db, "--server", server.url)
    assert unknown.exit_code == ExitStatus.OK, unknown.output
    line = next(line for line in unknown.stdout.splitlines() if "tracking server" in line)
    assert line.startswith("WARN  tracking server")
    assert "unknown" in line and "workspaces_enabled: false" not in unknown.stdout


def test_preflight_fails_on_an_unreachable_server_without_echoing_credentials(mlflow_db, closed_port: int) -> None:
    result = _preflight(mlflow_db, "--server", f"http://admin:topsecret@127.0.0.1:{closed_port}")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert any(
        line.startswith("FAIL  tracking server") and "connection refused" in line for line in result.stdout.splitlines()
    )
    assert f"(http://127.0.0.1:{closed_port}{INFO_PATH})" in result.stdout
    assert "topsecret" not in result.output and "admin" not in result.output


def test_preflight_rejects_a_bad_server_url(mlflow_db) -> None:
    result = _preflight(mlflow_db, "--server", "ftp://u:pw@host/")
    assert result.exit_code == ExitStatus.USAGE
    assert "Error: --server needs an http(s) URL of the tracking server, got 'ftp://host/'" in result.stderr
    assert "pw" not in result.output


def test_preflight_for_disable_knows_which_state_is_wanted(mlflow_db, server: FakeServer) -> None:
    """Before the migration, workspaces on is expected; after it, the server must report them off."""
    populate(mlflow_db)
    server.answer(INFO_PATH, 200, {"store_type": "SqlStore", "workspaces_enabled": True})

    def disable_check() -> tuple[int, str]:
        result = run_cli("db", "preflight", mlflow_db.uri, "--server", server.url)
        line = next(x for x in result.stdout.splitlines() if x.split()[1:3] == ["tracking", "server"])
        return result.exit_code, line

    before_code, before = disable_check()
    assert run_cli("db", "migrate-to-default-workspace", mlflow_db.uri, "-y").exit_code == ExitStatus.OK
    after_code, after = disable_check()
    server.answer(INFO_PATH, 200, {"store_type": "SqlStore", "workspaces_enabled": False})
    restarted_code, restarted = disable_check()

    assert before_code == ExitStatus.OK and before.startswith("PASS")
    assert after_code == ExitStatus.CONFLICTS and after.startswith("FAIL") and "restart it without" in after
    assert restarted_code == ExitStatus.OK and restarted.startswith("PASS")
