"""The object-store layer on the local filesystem and on a real S3-protocol server (moto, on 127.0.0.1):
copy is idempotent and never overwrites, verify catches a missing or different object, delete removes only
verified copies, other schemes are refused."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.stores.base import Location, StoreError, TargetOccupied, copy_prefix, delete_copied, verify_copy
from mlflow_ws_admin.stores.locate import UnsupportedStore, locate

FILES = {"a.txt": b"alpha", "dir/b.bin": b"\x00" * 1000, "dir/deeper/c.json": b"{}", "empty": b""}


def _write_local(root: Path, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)


@pytest.fixture(params=["local", "s3"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str, dict[str, bytes]], str]:
    """Makes a URI of the parametrized store kind under a fresh root, holding ``files``."""
    if request.param == "local":

        def local(name: str, files: dict[str, bytes]) -> str:
            _write_local(tmp_path / name, files)
            return f"file://{tmp_path / name}"

        return local
    name = request.getfixturevalue("bucket")
    import boto3

    client = boto3.client("s3", endpoint_url=request.getfixturevalue("s3_endpoint"))

    def s3(prefix: str, files: dict[str, bytes]) -> str:
        for key, data in files.items():
            client.put_object(Bucket=name, Key=f"root/{prefix}/{key}", Body=data)
        return f"s3://{name}/root/{prefix}"

    return s3


def _contents(loc: Location) -> dict[str, int]:
    return {k: v.size for k, v in loc.list().items()}


def test_copy_verify_delete(place) -> None:
    src, dst = locate(place("src", FILES)), locate(place("dst", {}))
    result = copy_prefix(src, dst, workers=4)
    assert (result.objects, result.bytes, result.copied) == (4, 1007, 4)
    assert _contents(dst) == {k: len(v) for k, v in FILES.items()}
    verified = verify_copy(src, dst)
    assert sorted(verified) == sorted(FILES)
    assert delete_copied(src, dst, verified) == 4
    assert src.list() == {}
    assert _contents(dst) == {k: len(v) for k, v in FILES.items()}


def test_copy_is_idempotent(place) -> None:
    src = locate(place("src", FILES))
    dst = locate(place("dst", {"a.txt": b"alpha"}))  # a copy a killed run finished
    assert copy_prefix(src, dst).copied == 3
    assert copy_prefix(src, dst).copied == 0


def test_copy_never_overwrites(place) -> None:
    src = locate(place("src", FILES))
    dst = locate(place("dst", {"dir/b.bin": b"other"}))
    with pytest.raises(TargetOccupied, match="already exists with other content"):
        copy_prefix(src, dst)
    assert _contents(dst) == {"dir/b.bin": 5}  # refused before anything was copied


def test_verify_catches_a_missing_object(place) -> None:
    src, dst = locate(place("src", FILES)), locate(place("dst", {"a.txt": b"alpha"}))
    with pytest.raises(StoreError, match="3 object"):
        verify_copy(src, dst)


def test_delete_keeps_objects_without_a_copy(place) -> None:
    src, dst = locate(place("src", FILES)), locate(place("dst", {"a.txt": b"alpha"}))
    assert delete_copied(src, dst, list(FILES)) == 1
    assert sorted(src.list()) == ["dir/b.bin", "dir/deeper/c.json", "empty"]


def test_local_copy_is_a_hard_link_and_tidies(tmp_path: Path) -> None:
    _write_local(tmp_path / "src", FILES)
    src, dst = locate(str(tmp_path / "src")), locate(f"file:{tmp_path}/dst")
    copy_prefix(src, dst)
    assert os.path.samefile(tmp_path / "src/dir/b.bin", tmp_path / "dst/dir/b.bin")
    delete_copied(src, dst, verify_copy(src, dst))
    assert not (tmp_path / "src").exists()


def test_local_partial_copy_is_invisible_and_cleaned(tmp_path: Path) -> None:
    _write_local(tmp_path / "src", FILES)
    (tmp_path / "dst/dir").mkdir(parents=True)
    (tmp_path / "dst/dir/.mwa-torn").write_bytes(b"half")  # what a SIGKILL mid-copy leaves
    dst = locate(str(tmp_path / "dst"))
    assert dst.list() == {}
    copy_prefix(locate(str(tmp_path / "src")), dst)
    assert sorted(p.name for p in (tmp_path / "dst/dir").iterdir()) == ["b.bin", "deeper"]


def test_copy_between_kinds_of_store(tmp_path: Path, bucket: str) -> None:
    _write_local(tmp_path / "src", FILES)
    s3 = locate(f"s3://{bucket}/x/y")
    copy_prefix(locate(str(tmp_path / "src")), s3)
    back = locate(str(tmp_path / "back"))
    copy_prefix(s3, back)
    assert (tmp_path / "back/dir/deeper/c.json").read_bytes() == b"{}"
    assert sorted(verify_copy(s3, back)) == sorted(FILES)


def test_s3_copy_keeps_etags(bucket: str, s3_endpoint: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint).put_object(Bucket=bucket, Key="a/f", Body=b"x" * 10)
    copy_prefix(locate(f"s3://{bucket}/a"), locate(f"s3://{bucket}/b"))
    tags = {loc: locate(f"s3://{bucket}/{loc}").list()["f"].etag for loc in "ab"}
    assert tags["a"] and tags["a"] == tags["b"]


def test_s3_deletes_go_at_most_1000_keys_a_request(bucket: str, s3_endpoint: str) -> None:
    """S3 refuses a DeleteObjects of more than 1,000 keys (moto does not): 2,001 keys go in three requests, and
    the objects named in the first and the last are both gone.  The keys between name nothing, which S3 deletes
    quietly, so that only two objects need uploading."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    keys = [f"p/{i:05d}" for i in range(2001)]
    for key in (keys[0], keys[-1]):
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    store = locate(f"s3://{bucket}/p").store
    sent: list[int] = []

    def count(params: dict, **_: object) -> None:
        sent.append(len(params["Delete"]["Objects"]))

    store.client.meta.events.register("provide-client-params.s3.DeleteObjects", count)
    try:
        store.delete(keys)
    finally:
        store.client.meta.events.unregister("provide-client-params.s3.DeleteObjects", count)

    assert sent == [1000, 1000, 1]
    assert client.list_objects_v2(Bucket=bucket, Prefix="p/")["KeyCount"] == 0


def test_s3_missing_bucket_is_one_line(s3_endpoint: str) -> None:
    with pytest.raises(StoreError, match="NoSuchBucket") as err:
        locate(f"s3://no-such-{uuid.uuid4().hex[:8]}/p").list()
    assert err.value.exit_status == ExitStatus.DATABASE_ERROR and "\n" not in err.value.message


def test_s3_unreachable_endpoint(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from .s3_server import free_port

    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(StoreError, match="listing s3://b/p/ failed: Could not connect"):
        locate("s3://b/p").list()


@pytest.mark.parametrize("uri", ["gs://bucket/x", "wasbs://c@acct.blob.core.windows.net/x", "hdfs://nn/x"])
def test_other_schemes_are_refused(uri: str) -> None:
    with pytest.raises(UnsupportedStore, match="supported stores are local paths, file:, s3://") as err:
        locate(uri)
    assert err.value.exit_status == ExitStatus.USAGE


def test_proxied_uri_needs_the_destination(tmp_path: Path) -> None:
    from mlflow_ws_admin.common.errors import UsageError

    with pytest.raises(UsageError, match="--artifacts-destination"):
        locate("mlflow-artifacts:/workspaces/a/1")
    loc = locate("mlflow-artifacts:/workspaces/a/1", artifacts_destination=str(tmp_path))
    assert str(loc) == f"file:///{str(tmp_path).lstrip('/')}/workspaces/a/1"


def test_local_links_in_one_thread_and_s3_copies_in_many(place) -> None:
    """Threads only contend for a hard link (measured: 16 made 10,000 links 2x slower), so links run in the
    calling thread; S3 copies wait on the server, so they run in the workers."""
    import threading

    src, dst = locate(place("src", FILES)), locate(place("dst", {}))
    threads: set[str] = set()
    copy_prefix(src, dst, workers=16, on_progress=lambda *_: threads.add(threading.current_thread().name))
    main = threading.main_thread().name
    if src.store.label.startswith("file:"):
        assert threads == {main}
    else:
        assert main not in threads and threads


def test_verify_against_the_copy_listing(place) -> None:
    """An object logged after the copy listed the source is the next pass's: verifying what was copied passes,
    verifying the source as it is now does not."""
    src, dst = locate(place("src", FILES)), locate(place("dst", {}))
    result = copy_prefix(src, dst, workers=4)
    place("src", {"late.txt": b"logged meanwhile"})

    assert sorted(verify_copy(src, dst, result.listed)) == sorted(FILES)
    with pytest.raises(StoreError, match="1 object"):
        verify_copy(src, dst)
    assert delete_copied(src, dst) == 4  # every verified copy; the late object stays
    assert sorted(src.list()) == ["late.txt"]


def test_a_failed_copy_removes_what_it_copied(tmp_path: Path) -> None:
    """The last object the copy takes cannot land (a directory holds its key): the failure is one line, and the
    three objects copied before it are deleted again.  (S3: tests/test_relocate_errors.py.)"""
    _write_local(tmp_path / "src", FILES)
    src, dst = locate(str(tmp_path / "src")), locate(str(tmp_path / "dst"))
    last = list(src.list())[-1]  # the copy's order is the listing's
    (tmp_path / "dst" / last).mkdir(parents=True)
    (tmp_path / "dst" / last / "keep.txt").write_text("someone's")
    copied = []

    with pytest.raises(StoreError, match=f"copying to {tmp_path}/dst/{last} failed: File exists") as err:
        copy_prefix(src, dst, on_progress=lambda n, _: copied.append(n))

    assert "\n" not in err.value.message
    assert copied == [1, 2, 3]
    assert _contents(dst) == {f"{last}/keep.txt": 9}
    # Only what was there before stays (the copy's empty directories are removed too).
    assert [p for p in (tmp_path / "dst").rglob("*") if not p.is_dir()] == [tmp_path / "dst" / last / "keep.txt"]
