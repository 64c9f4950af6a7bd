"""An artifact URI resolved into a store and a prefix.

Supported: absolute local paths and ``file:`` URIs, ``s3://bucket/...``, and ``mlflow-artifacts:`` URIs, which
name a path under the tracking server's ``--artifacts-destination`` (itself a local path or ``s3://``).
"""

from __future__ import annotations

import posixpath
import urllib.parse

from mlflow_ws_admin.common.errors import UsageError
from mlflow_ws_admin.stores.base import Location, Store
from mlflow_ws_admin.stores.local import LocalStore

SUPPORTED = "local paths, file:, s3:// and mlflow-artifacts: (with --artifacts-destination)"
PROXY_SCHEME = "mlflow-artifacts"


class UnsupportedStore(UsageError):
    """A location in a store this tool cannot copy (gs://, wasbs://, ...): exit 2."""


def _s3(bucket: str) -> Store:
    from mlflow_ws_admin.stores.s3 import S3Store  # boto3 only for s3:// locations

    return S3Store(bucket)


def locate(uri: str, *, artifacts_destination: str | None = None) -> Location:
    """Where the objects of ``uri`` live.  Raises ``UnsupportedStore`` for any other scheme."""
    parts = urllib.parse.urlparse(uri)
    scheme = parts.scheme.lower()
    if scheme == PROXY_SCHEME:
        if not artifacts_destination:
            raise UsageError(
                f"{uri} is served by the tracking server's artifact proxy: pass the server's "
                "--artifacts-destination so that its objects can be found"
            )
        return locate(proxied_to_destination(uri, artifacts_destination))
    if scheme == "s3":
        if not parts.netloc:
            raise UsageError(f"{uri} names no bucket")
        return Location(_s3(parts.netloc), posixpath.normpath("/" + parts.path).strip("/"))
    if scheme == "file" or (not scheme and uri.startswith("/")):
        if parts.netloc not in ("", "localhost"):
            raise UnsupportedStore(f"{uri} is on another host; supported: {SUPPORTED}")
        path = urllib.parse.unquote(parts.path) if scheme else uri
        return Location(LocalStore(), posixpath.normpath(path).strip("/"))
    raise UnsupportedStore(f"cannot copy artifacts at {uri}: supported stores are {SUPPORTED}")


def proxied_to_destination(uri: str, destination: str) -> str:
    """``mlflow-artifacts:/a/b`` under the destination ``D``: ``D/a/b`` (the proxy ignores any host part)."""
    path = urllib.parse.urlparse(uri).path.strip("/")
    return destination.rstrip("/") + ("/" + path if path else "")
