"""Ask a running MLflow tracking server whether workspaces are enabled: `GET /api/3.0/mlflow/server-features`.

Standard library only (urllib), one request with a timeout.  Credentials in the URL never travel in the URL
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

from mlflow_ws_admin.errors import UsageError

FEATURES_PATH = "/api/3.0/mlflow/server-features"
DEFAULT_TIMEOUT_S = 10.0
_MAX_BODY = 1 << 20  # the answer is a small JSON object; never read an unbounded body

ENABLED = "enabled"
DISABLED = "disabled"
UNSUPPORTED = "unsupported"  # 404: a server that predates workspaces
ERROR = "error"


@dataclass(frozen=True)
class ServerFeatures:
    url: str  # the endpoint as it may be printed: no userinfo, query or fragment
    state: str  # ENABLED | DISABLED | UNSUPPORTED | ERROR
    message: str  # one line for a human

    @property
    def workspaces_enabled(self) -> bool | None:
        return {ENABLED: True, DISABLED: False}.get(self.state)


def strip_userinfo(url: str) -> str:
    """The URL without `user:password@`, query or fragment: safe to print."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def features_request(server_url: str) -> urllib.request.Request:
    """The GET for a server base URL (which may carry a path prefix, e.g. behind a reverse proxy)."""
    parts = urlsplit(server_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--server needs an http(s) URL of the tracking server, got {strip_userinfo(server_url)!r}")
    try:
        parts.port  # noqa: B018 - raises on a non-numeric port
    except ValueError:
        raise UsageError(f"--server has an invalid port: {strip_userinfo(server_url)!r}") from None
    endpoint = strip_userinfo(urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + FEATURES_PATH, "", "")))
    request = urllib.request.Request(endpoint, method="GET", headers={"Accept": "application/json"})
    if parts.username is not None:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        # unredirected: a redirect to another host must not receive the credentials
        request.add_unredirected_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode("ascii"))
    return request


def probe_server_features(server_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> ServerFeatures:
    """One GET; every failure becomes an ERROR result with a one-line message (UsageError for a bad URL)."""
    request = features_request(server_url)
    shown = request.full_url
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read(_MAX_BODY)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return ServerFeatures(
                shown, UNSUPPORTED, "HTTP 404: an older MLflow server without workspace support (workspaces are off)"
            )
        return ServerFeatures(shown, ERROR, f"the server answered HTTP {exc.code} {exc.reason}")
    except urllib.error.URLError as exc:
        return ServerFeatures(shown, ERROR, _network_message(exc.reason, timeout_s))
    except TimeoutError as exc:
        return ServerFeatures(shown, ERROR, _network_message(exc, timeout_s))
    except (OSError, ValueError) as exc:
        return ServerFeatures(shown, ERROR, f"request failed: {type(exc).__name__}")
    return _parse(shown, body)


def _parse(shown: str, body: bytes) -> ServerFeatures:
    try:
        payload = json.loads(body)
    except ValueError:
        return ServerFeatures(shown, ERROR, "the answer is not JSON: is this an MLflow tracking server?")
    enabled = payload.get("workspaces_enabled") if isinstance(payload, dict) else None
    if not isinstance(enabled, bool):
        return ServerFeatures(shown, ERROR, "the answer has no boolean `workspaces_enabled` field")
    if enabled:
        return ServerFeatures(shown, ENABLED, "workspaces_enabled: true")
    return ServerFeatures(shown, DISABLED, "workspaces_enabled: false")


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
