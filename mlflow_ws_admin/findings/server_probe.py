"""Ask a running MLflow tracking server whether workspaces are enabled.

Two endpoints, in this order, stopping at the first JSON answer that has a boolean `workspaces_enabled`:

1. `GET /api/3.0/mlflow/server-info`: what released servers answer (3.17.2 and 3.18.0 measured:
   `{"store_type": ..., "workspaces_enabled": true, ...}`);
2. `GET /api/3.0/mlflow/server-features`: the path MLflow's workspace docs name (404 on 3.17.2 and 3.18.0).

The second is asked only when the first answers 404, or a JSON object without that key.  A 404 from both does not
show that workspaces are off: the state is UNKNOWN (not an MLflow server with workspace support, or too
old).  A network failure, another HTTP status or a non-JSON answer stops at the endpoint that gave it.

Standard library only (urllib), each request with a timeout.  Credentials in the URL never travel in the URL
and are never echoed: `user:password@` is stripped from the request URL and from every URL shown, and is
sent instead as a Basic `Authorization` header that urllib does not carry across redirects.
"""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from mlflow_ws_admin.common.errors import UsageError

INFO_PATH = "/api/3.0/mlflow/server-info"
FEATURES_PATH = "/api/3.0/mlflow/server-features"
PROBE_PATHS = (INFO_PATH, FEATURES_PATH)  # asked in this order
DEFAULT_TIMEOUT_S = 10.0
_MAX_BODY = 1 << 20  # the answer is a small JSON object; never read an unbounded body

ENABLED = "enabled"
DISABLED = "disabled"
UNKNOWN = "unknown"  # no endpoint says: 404 on both, or JSON without the field and then a 404
ERROR = "error"

_NO_FIELD = "the answer has no boolean `workspaces_enabled` field"


@dataclass(frozen=True)
class ServerFeatures:
    url: str  # the endpoint whose answer decided the state, as it may be printed: no userinfo, query or fragment
    state: str  # ENABLED | DISABLED | UNKNOWN | ERROR
    message: str  # one line for a human

    @property
    def workspaces_enabled(self) -> bool | None:
        """True or False only when the server said so; None for UNKNOWN and ERROR (never "off" by guess)."""
        return {ENABLED: True, DISABLED: False}.get(self.state)


def strip_userinfo(url: str) -> str:
    """The URL without `user:password@`, query or fragment: safe to print."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def endpoint_request(server_url: str, path: str) -> urllib.request.Request:
    """The GET of *path* on a server base URL (which may carry a path prefix, e.g. behind a reverse proxy)."""
    parts = urlsplit(server_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--server needs an http(s) URL of the tracking server, got {strip_userinfo(server_url)!r}")
    try:
        parts.port  # noqa: B018 - raises on a non-numeric port
    except ValueError:
        raise UsageError(f"--server has an invalid port: {strip_userinfo(server_url)!r}") from None
    endpoint = strip_userinfo(urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, "", "")))
    request = urllib.request.Request(endpoint, method="GET", headers={"Accept": "application/json"})
    if parts.username is not None:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        # unredirected: a redirect to another host must not receive the credentials
        request.add_unredirected_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode("ascii"))
    return request


@dataclass(frozen=True)
class _Answer:
    """One endpoint's answer: a final result, or a reason to ask the next endpoint."""

    result: ServerFeatures | None  # None: ask the next endpoint
    why_next: str = ""  # for the UNKNOWN message: what this endpoint said


def probe_server_features(server_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> ServerFeatures:
    """Ask server-info, then server-features; every failure becomes an ERROR result with a one-line message.

    A bad URL raises UsageError before any request.  Each request has its own *timeout_s*."""
    requests = [endpoint_request(server_url, path) for path in PROBE_PATHS]
    said: list[str] = []
    for i, request in enumerate(requests):
        answer = _ask(request, timeout_s, last=i == len(requests) - 1)
        if answer.result is not None:
            return answer.result
        said.append(f"{_path_name(request.full_url)} {answer.why_next}")
    last = requests[-1].full_url
    return ServerFeatures(
        last,
        UNKNOWN,
        f"unknown ({'; '.join(said)}): not an MLflow server with workspace support, or too old",
    )


def _path_name(url: str) -> str:
    return url.rpartition("/")[2]


def _ask(request: urllib.request.Request, timeout_s: float, *, last: bool) -> _Answer:
    shown = request.full_url
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read(_MAX_BODY)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return _Answer(None, "HTTP 404")
        return _Answer(ServerFeatures(shown, ERROR, f"the server answered HTTP {exc.code} {exc.reason}"))
    except urllib.error.URLError as exc:
        return _Answer(ServerFeatures(shown, ERROR, _network_message(exc.reason, timeout_s)))
    except TimeoutError as exc:
        return _Answer(ServerFeatures(shown, ERROR, _network_message(exc, timeout_s)))
    except (OSError, ValueError) as exc:
        return _Answer(ServerFeatures(shown, ERROR, f"request failed: {type(exc).__name__}"))
    return _parse(shown, body, last=last)


def _parse(shown: str, body: bytes, *, last: bool) -> _Answer:
    try:
        payload = json.loads(body)
    except ValueError:
        return _Answer(ServerFeatures(shown, ERROR, "the answer is not JSON: is this an MLflow tracking server?"))
    enabled = payload.get("workspaces_enabled") if isinstance(payload, dict) else None
    if not isinstance(enabled, bool):
        if isinstance(payload, dict) and "workspaces_enabled" not in payload and not last:
            # a JSON object without the field (a server-info that predates workspaces?): ask the next endpoint
            return _Answer(None, "has no `workspaces_enabled`")
        return _Answer(ServerFeatures(shown, ERROR, _NO_FIELD))
    if enabled:
        return _Answer(ServerFeatures(shown, ENABLED, "workspaces_enabled: true"))
    return _Answer(ServerFeatures(shown, DISABLED, "workspaces_enabled: false"))


def _network_message(reason: object, timeout_s: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout_s:g} s (timed out)"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused: is the tracking server running on that host and port?"
    if isinstance(reason, socket.gaierror):
        return "cannot resolve the host name"
    if isinstance(reason, OSError) and reason.strerror:
        return f"cannot connect: {reason.strerror}"
    return f"cannot connect: {type(reason).__name__}"
