"""`--artifact-policy relocate` when a store fails: a refused permission (moto enforcing IAM), an unreachable
S3 endpoint, a local destination that cannot be created, a refusal under the lock after the copy, and an object
that vanishes mid-copy.  Each is one `Error:` line naming the store and the cause, exit 3, no traceback, and
neither the database nor the objects changed (what the run had copied is removed again)."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.engine.relocate import ArtifactMove, transfer
from mlflow_ws_admin.stores.base import StoreError
from mlflow_ws_admin.stores.locate import locate

from .helpers import populate, run_cli
from .s3_server import free_port
from .test_relocate import EXP, MODEL, SIZES, Artifacts, _move, _objects, _relocatable, artifacts  # noqa: F401

SOURCE = f"workspaces/team-a/{EXP}"
TARGET = f"workspaces/team-b/{EXP}"


def _one_error_line(result, *phrases: str) -> None:
    assert result.exit_code == ExitStatus.DATABASE_ERROR, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def test_a_refused_permission_on_the_bucket(mlflow_db, iam_s3) -> None:
    """The CLI's user may list and read, but not write the model's files under the target: the other copies
    have landed by the time the refusal comes, and are removed again."""
    name = f"mwa-{uuid.uuid4().hex[:12]}"
    s3 = iam_s3.client("s3")
    s3.create_bucket(Bucket=name)
    for key, data in SIZES.items():
        s3.put_object(Bucket=name, Key=f"dest/{SOURCE}/{key}", Body=b"x" * data)
    # moto authorizes a server-side copy as s3:CopyObject, AWS as s3:PutObject: both are denied.
    env = iam_s3.user(
        f"relocator-{uuid.uuid4().hex[:8]}",
        [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": ["s3:PutObject", "s3:CopyObject"],
                "Resource": f"arn:aws:s3:::{name}/dest/{TARGET}/models/*",
            },
        ],
    )
    populate(mlflow_db, _relocatable)
    before = mlflow_db.fingerprint()

    def listing() -> dict[str, int]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix="dest/")
        return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", ())}

    objects = listing()
    result = run_cli(
        "db", "move-resources", mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type",
        "experiments", "--artifact-policy", "relocate", "--artifacts-destination", f"s3://{name}/dest", "-y",
        env=env,
    )  # fmt: skip

    _one_error_line(
        result,
        f"to s3://{name}/dest/{TARGET}/models/{MODEL}/artifacts/model.pkl failed: AccessDenied",
    )
    assert "AWS_SECRET_ACCESS_KEY" not in result.stderr and env["AWS_SECRET_ACCESS_KEY"] not in result.stderr
    assert mlflow_db.fingerprint() == before
    assert listing() == objects  # the two copies that landed are gone again


def test_an_unreachable_s3_endpoint(mlflow_db, bucket, s3_endpoint) -> None:
    populate(mlflow_db, _relocatable)
    store = Artifacts(f"s3://{bucket}/dest")
    _objects(store, SOURCE)
    before = mlflow_db.fingerprint()
    closed = f"http://127.0.0.1:{free_port()}"

    started = time.monotonic()
    result = _move(mlflow_db, store, "-y", env={"MLFLOW_S3_ENDPOINT_URL": closed})
    elapsed = time.monotonic() - started

    _one_error_line(result, f"listing s3://{bucket}/dest/{SOURCE}/ failed: Could not connect", closed)
    # Three attempts with short backoffs (about 1 s here); unbounded retries would take far longer.
    assert elapsed < 30, elapsed
    assert mlflow_db.fingerprint() == before
    assert store.listing(SOURCE) == SIZES
    assert store.listing(TARGET) == {}


def test_a_local_destination_that_cannot_be_created(mlflow_db, tmp_path) -> None:
    populate(mlflow_db, _relocatable)
    local = Artifacts(str(tmp_path / "dest"))
    _objects(local, SOURCE)
    (tmp_path / "dest/workspaces/team-b").write_text("a file where team-b's directory should be")
    before = mlflow_db.fingerprint()

    result = _move(mlflow_db, local, "-y")

    _one_error_line(result, f"{tmp_path}/dest/{TARGET}", "Not a directory")
    assert mlflow_db.fingerprint() == before
    assert local.listing(SOURCE) == SIZES
    assert (tmp_path / "dest/workspaces/team-b").read_text() == "a file where team-b's directory should be"


def test_a_refusal_under_the_lock_removes_the_copies(mlflow_db, artifacts) -> None:  # noqa: F811
    """Another session connected (a tracking server): apply refuses once it takes its lock, after the copy."""
    if mlflow_db.backend == "sqlite":
        pytest.skip("SQLite cannot tell which processes have the file open")
    populate(mlflow_db, _relocatable)
    _objects(artifacts, SOURCE)
    before = mlflow_db.fingerprint()
    held = create_engine(mlflow_db.url).connect()
    held.execute(text("SELECT 1"))
    try:
        result = _move(mlflow_db, artifacts, "-y")
    finally:
        held.close()

    _one_error_line(result, "1 other session(s) are connected to this database")
    assert mlflow_db.fingerprint() == before
    assert artifacts.listing(SOURCE) == SIZES
    assert artifacts.listing(TARGET) == {}


def test_an_object_vanishing_mid_copy_is_a_store_error(artifacts) -> None:  # noqa: F811
    """One worker, so the order is known: once the first object is copied, another is deleted from the source
    before its turn comes."""
    _objects(artifacts, SOURCE)
    source, target = f"{artifacts.destination}/{SOURCE}", f"{artifacts.destination}/{TARGET}"
    move = ArtifactMove(str(EXP), source, target, source, target)
    victim: list[str] = []

    def delete_one_not_yet_copied(objects: int, _bytes: int) -> None:
        if objects == 1:
            left = sorted(set(locate(source).list()) - set(locate(target).list()))
            victim.append(left[0])
            loc = locate(source)
            loc.store.delete([f"{loc.prefix}/{left[0]}"])

    with pytest.raises(StoreError, match="vanished while it was being copied") as err:
        transfer([move], workers=1, on_progress=delete_one_not_yet_copied)

    assert "\n" not in err.value.message and victim[0] in err.value.message
    assert artifacts.listing(SOURCE) == {k: v for k, v in SIZES.items() if k != victim[0]}
    assert artifacts.listing(TARGET) == {}  # the object copied before is removed again


def test_a_restore_refused_under_the_lock_removes_its_copies(mlflow_db, tmp_path) -> None:
    """The same for `db restore-workspaces`: its copy back to the old prefix is deleted again."""
    if mlflow_db.backend == "sqlite":
        pytest.skip("SQLite cannot tell which processes have the file open")
    populate(mlflow_db, _relocatable)
    local = Artifacts(str(tmp_path / "dest"))
    _objects(local, SOURCE)
    journal = tmp_path / "move.jsonl"
    assert _move(mlflow_db, local, "-y", "--journal", str(journal)).exit_code == ExitStatus.OK
    before = mlflow_db.fingerprint()
    held = create_engine(mlflow_db.url).connect()
    held.execute(text("SELECT 1"))
    try:
        result = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y")
    finally:
        held.close()

    _one_error_line(result, "1 other session(s) are connected to this database")
    assert mlflow_db.fingerprint() == before
    assert local.listing(TARGET) == SIZES
    assert local.listing(SOURCE) == {}
