"""S3 (and S3-protocol servers) as a store, through boto3 (the optional extra ``mlflow-ws-admin[s3]``).

The endpoint and credentials come from the environment, as MLflow's own S3 client takes them:
``MLFLOW_S3_ENDPOINT_URL`` (or boto3's ``AWS_ENDPOINT_URL``), ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
or any other source boto3 reads.  Copies within the endpoint are server-side (``CopyObject``): no byte leaves
the store.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from typing import Any

from mlflow_ws_admin.common.errors import UsageError
from mlflow_ws_admin.stores.base import DEFAULT_WORKERS, ObjectInfo, Store, StoreError

#: CopyObject copies up to 5 GiB in one request; larger objects go through boto3's multipart copy.
_SINGLE_COPY_LIMIT = 5 * 1024**3
#: Requests per call, the first included (botocore's standard retry mode: throttling and connection errors).
_ATTEMPTS = 3
#: Seconds to open a connection: a store that answers does so in well under a second.
_CONNECT_TIMEOUT_S = 5
#: DeleteObjects takes at most 1,000 keys per request.
_DELETE_BATCH = 1000


def _endpoint() -> str | None:
    return os.environ.get("MLFLOW_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or None


#: the environment variables that choose boto3's credentials: a client is made again when one of them changes
_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


def _credentials_env() -> tuple[str | None, ...]:
    return tuple(os.environ.get(v) for v in _CREDENTIAL_VARIABLES)


@functools.cache
def _client(endpoint: str | None, credentials_env: tuple[str | None, ...] = ()) -> Any:
    """One client per endpoint and credentials (boto3 clients are thread-safe: every copy thread shares it).
    ``credentials_env`` only keys the cache: a session of its own reads the environment as it is now (boto3's
    default session would keep the credentials it read first)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise UsageError(
            "s3:// artifacts need boto3: install the extra with pip install 'mlflow-ws-admin[s3]'"
        ) from None
    # One connection per copy in flight.  Retries ride out a throttled or briefly unreachable store, bounded so
    # that an unreachable one fails in seconds (botocore's 60 s connect timeout, per attempt, would be minutes).
    config = Config(
        max_pool_connections=DEFAULT_WORKERS,
        connect_timeout=_CONNECT_TIMEOUT_S,
        retries={"max_attempts": _ATTEMPTS, "mode": "standard"},
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)


def _failed(doing: str, exc: Exception) -> StoreError:
    """One line for a boto3 error: the S3 error code and message, or why the endpoint was not reached."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        return StoreError(f"{doing} failed: {err.get('Code', '?')}: {err.get('Message') or 'no message'}")
    return StoreError(f"{doing} failed: {exc}")


class S3Store:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.endpoint = _endpoint()
        self.label = f"s3://{bucket}/"

    @property
    def client(self) -> Any:
        return _client(self.endpoint, _credentials_env())

    def list(self, prefix: str) -> dict[str, ObjectInfo]:
        start = prefix.strip("/") + "/" if prefix.strip("/") else ""
        found: dict[str, ObjectInfo] = {}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
                for obj in page.get("Contents", ()):
                    found[obj["Key"][len(start) :]] = ObjectInfo(int(obj["Size"]), obj.get("ETag", "").strip('"'))
        except Exception as exc:
            raise _failed(f"listing s3://{self.bucket}/{start}", exc) from None
        return found

    def copy_from(self, source: Store, source_key: str, key: str) -> None:
        try:
            if isinstance(source, S3Store) and source.endpoint == self.endpoint:
                self._server_side_copy(source, source_key, key)
            else:
                import tempfile

                with tempfile.NamedTemporaryFile(prefix="mwa-") as tmp:
                    source.download(source_key, tmp.name)
                    self.client.upload_file(tmp.name, self.bucket, key)
        except StoreError:
            raise
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise StoreError(f"{source.label}{source_key} vanished while it was being copied") from None
            raise _failed(f"copying {source.label}{source_key} to s3://{self.bucket}/{key}", exc) from None

    def _server_side_copy(self, source: S3Store, source_key: str, key: str) -> None:
        where = {"Bucket": source.bucket, "Key": source_key}
        try:
            self.client.copy_object(Bucket=self.bucket, Key=key, CopySource=where)
        except Exception as exc:
            if _code(exc) != "InvalidRequest":
                raise
            # Larger than one CopyObject takes: boto3 copies it in parts, still server-side.
            self.client.copy(where, self.bucket, key)

    def download(self, key: str, path: str) -> None:
        try:
            self.client.download_file(self.bucket, key, path)
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise StoreError(f"s3://{self.bucket}/{key} vanished while it was being copied") from None
            raise _failed(f"downloading s3://{self.bucket}/{key}", exc) from None

    def upload(self, path: str, key: str) -> None:
        try:
            self.client.upload_file(path, self.bucket, key)
        except Exception as exc:
            raise _failed(f"uploading to s3://{self.bucket}/{key}", exc) from None

    def delete(self, keys: Iterable[str]) -> None:
        batch = list(keys)
        for i in range(0, len(batch), _DELETE_BATCH):
            objects = [{"Key": k} for k in batch[i : i + _DELETE_BATCH]]
            try:
                out = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
            except Exception as exc:
                raise _failed(f"deleting objects in s3://{self.bucket}", exc) from None
            if errors := out.get("Errors"):
                first = errors[0]
                raise StoreError(
                    f"deleting s3://{self.bucket}/{first.get('Key')} failed: {first.get('Code')}: {first.get('Message')}"
                )

    def tidy(self, prefix: str) -> None:
        """S3 has no directories to remove."""

    def clean_partial(self, prefix: str) -> None:
        """An S3 upload or copy is atomic: nothing partial to remove."""


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None
