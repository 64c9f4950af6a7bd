"""Crash safety of `--artifact-policy relocate`: SIGKILL the real CLI during the copy, after the commit (between
it and the deletes, or during them), and check that every artifact stays readable where the database points and
that a re-run (or `db finish-relocation`) completes the job.  The objects sit on a real S3-protocol server (moto,
127.0.0.1), where a few hundred objects take long enough to copy, and over a thousand (two delete requests)
long enough to delete, for the kill to land inside."""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlflow_ws_admin.common.errors import ExitStatus

from .helpers import populate, run_cli
from .s3_server import s3_env

EXP = 9101
RUN = "e" * 32
#: Enough for the kill to land inside the window: mid-copy, the SIGKILL follows the first copied object within a
#: poll (50 ms) and a listing, while moto copies a few hundred objects a second (4-37 of 300 had landed when
#: measured on a loaded 2-core machine); after the commit, it follows the commit within a poll, while the run
#: still lists the old and the new prefix before its deletes (all 300 were left when measured).  Every object
#: costs a request to upload and one to copy: no more than that.
OBJECTS = 300
#: The kill during the deletes: more than S3's 1,000 keys a delete request, so the old objects go in two requests
#: and a kill while the server works through the first (the window) leaves the second's objects.  The window is
#: the first request's, whatever the second holds: ten are enough (each object costs a put and a copy first).
DELETE_OBJECTS = 1010
OLD = f"mlflow-artifacts:/workspaces/team-a/{EXP}"
NEW = f"mlflow-artifacts:/workspaces/team-b/{EXP}"


def _fill(data) -> None:
    data.experiment("team-a", "crashing", experiment_id=EXP, artifact_location=OLD)
    data.add("runs", run_uuid=RUN, experiment_id=EXP, artifact_uri=f"{OLD}/{RUN}/artifacts", lifecycle_stage="active")


def _client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint)


def _put_many(endpoint: str, name: str, prefix: str, count: int = OBJECTS) -> dict[str, int]:
    client = _client(endpoint)
    keys = {f"{RUN}/artifacts/part-{i:05d}.txt": f"object {i}".encode() for i in range(count)}
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: client.put_object(Bucket=name, Key=f"{prefix}/{kv[0]}", Body=kv[1]), keys.items()))
    return {k: len(v) for k, v in keys.items()}


def _listing(endpoint: str, name: str, prefix: str) -> dict[str, int]:
    out = {}
    for page in _client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix + "/"):
        out.update({o["Key"][len(prefix) + 1 :]: o["Size"] for o in page.get("Contents", ())})
    return out


def _settled_listing(endpoint: str, name: str, prefix: str) -> dict[str, int]:
    """The listing once the server has finished the copies that were in flight when the client was killed: a
    request sent before SIGKILL still completes on the server."""
    last = _listing(endpoint, name, prefix)
    while True:
        time.sleep(0.5)
        now = _listing(endpoint, name, prefix)
        if now == last:
            return now
        last = now


def _start(db, name: str, endpoint: str, journal: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow_ws_admin",
            "db",
            "move-resources",
            db.uri,
            "--from",
            "team-a",
            "--to",
            "team-b",
            "--resource-type",
            "experiments",
            "--artifact-policy",
            "relocate",
            "--artifacts-destination",
            f"s3://{name}/dest",
            "-y",
            "--journal",
            str(journal),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**s3_env(endpoint), "PYTHONUNBUFFERED": "1"},
    )


def _wait_until(proc: subprocess.Popen, ready, timeout: float = 400.0, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before the kill point: {proc.communicate()}"
        assert time.monotonic() < deadline, "the kill point never came"
        time.sleep(poll)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 400.0, poll: float = 0.05) -> None:
    _wait_until(proc, ready, timeout, poll)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _run_uri(db) -> object:
    db.engine.dispose()
    return db.scalar("SELECT artifact_uri FROM runs WHERE run_uuid = :r", r=RUN)


#: A kill that lands after the copy, or after the deletes (a busy machine: S3 deletes go 1,000 keys a request),
#: proves nothing: the scenario starts again on a fresh bucket with the rows put back, as tests/test_crash.py
#: retries its runs.
ATTEMPTS = 3


def _put_back(db) -> None:
    """The rows as ``_fill`` made them (what a too-late kill's committed move changed)."""
    db.execute(
        "UPDATE experiments SET workspace = 'team-a', artifact_location = :old WHERE experiment_id = :e", old=OLD, e=EXP
    )
    db.execute("UPDATE runs SET artifact_uri = :uri WHERE run_uuid = :r", uri=f"{OLD}/{RUN}/artifacts", r=RUN)


@pytest.mark.slow
def test_sigkill_during_the_copy_changes_nothing_and_a_rerun_finishes(mlflow_db, bucket, s3_endpoint, tmp_path):
    populate(mlflow_db, _fill)
    target = f"dest/workspaces/team-b/{EXP}"
    client = _client(s3_endpoint)

    for attempt in range(ATTEMPTS):
        if attempt:  # the last kill landed after the copy: start again on a fresh bucket
            bucket = f"{bucket[:20]}-{attempt}"
            client.create_bucket(Bucket=bucket)
            _put_back(mlflow_db)
        sizes = _put_many(s3_endpoint, bucket, f"dest/workspaces/team-a/{EXP}")
        before = mlflow_db.dump()
        journal = tmp_path / f"killed-{attempt}.jsonl"

        proc = _start(mlflow_db, bucket, s3_endpoint, journal)
        _kill_when(proc, lambda b=bucket: client.list_objects_v2(Bucket=b, Prefix=target + "/").get("KeyCount", 0) > 0)
        copied = len(_settled_listing(s3_endpoint, bucket, target))
        if copied < OBJECTS:
            break
    assert 0 < copied < OBJECTS, (
        f"the kill landed outside the copy in all {ATTEMPTS} attempts ({copied} of {OBJECTS} copied); "
        "make OBJECTS larger"
    )
    assert mlflow_db.dump() == before  # the database still names the old prefix ...
    assert _listing(s3_endpoint, bucket, f"dest/workspaces/team-a/{EXP}") == sizes  # ... whose objects are intact
    assert '"type":"sealed"' not in journal.read_text()  # nothing was sealed

    result = run_cli(
        "db", "move-resources", mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type",
        "experiments", "--artifact-policy", "relocate", "--artifacts-destination", f"s3://{bucket}/dest", "-y",
        "--format", "json",
    )  # fmt: skip

    assert result.exit_code == ExitStatus.OK, result.output
    import json

    assert json.loads(result.stdout)["artifact_objects_copied"] == OBJECTS - copied  # not copied again
    assert _listing(s3_endpoint, bucket, target) == sizes
    assert _listing(s3_endpoint, bucket, f"dest/workspaces/team-a/{EXP}") == {}
    assert _run_uri(mlflow_db) == f"{NEW}/{RUN}/artifacts"


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after-commit", "during-delete"])
def test_sigkill_after_the_commit_leaves_everything_readable(mlflow_db, bucket, s3_endpoint, tmp_path, point):
    populate(mlflow_db, _fill)
    source = f"dest/workspaces/team-a/{EXP}"
    client = _client(s3_endpoint)

    def committed() -> bool:
        return _run_uri(mlflow_db) == f"{NEW}/{RUN}/artifacts"

    for attempt in range(ATTEMPTS):
        if attempt:
            bucket = f"{bucket[:20]}-{attempt}"
            client.create_bucket(Bucket=bucket)
            _put_back(mlflow_db)
        sizes = _put_many(s3_endpoint, bucket, source, DELETE_OBJECTS if point == "during-delete" else OBJECTS)
        journal = tmp_path / f"move-{attempt}.jsonl"

        def deleting(bucket: str = bucket) -> bool:
            # The first page of the old prefix no longer starts with object 0: the deletes have begun.
            page = client.list_objects_v2(Bucket=bucket, Prefix=source + "/", MaxKeys=1)
            return page.get("KeyCount", 0) == 0 or not page["Contents"][0]["Key"].endswith("part-00000.txt")

        proc = _start(mlflow_db, bucket, s3_endpoint, journal)
        if point == "after-commit":
            _kill_when(proc, committed)
        else:
            # The window is the server's work on the first 1,000-key delete request (tens to hundreds of ms):
            # wait for the commit at the usual pace, then look as fast as the server answers.
            _wait_until(proc, committed)
            _kill_when(proc, deleting, poll=0.0)

        # Every artifact is readable where the database now points: the new prefix is complete.
        assert committed()
        assert _listing(s3_endpoint, bucket, f"dest/workspaces/team-b/{EXP}") == sizes
        left = _listing(s3_endpoint, bucket, source)
        if left:
            break
    assert left, (
        f"the kill landed after the deletes in all {ATTEMPTS} attempts; "
        "make OBJECTS (after-commit) or DELETE_OBJECTS (during-delete) larger"
    )
    assert set(left) <= set(sizes)

    dry = run_cli("db", "finish-relocation", mlflow_db.uri, "--journal", str(journal), "--dry-run")
    assert dry.exit_code == ExitStatus.OK, dry.output
    assert f"{len(left):,} old object(s) to delete. Nothing was changed." in dry.stdout
    assert _listing(s3_endpoint, bucket, source) == left

    done = run_cli("db", "finish-relocation", mlflow_db.uri, "--journal", str(journal), "-y", env=s3_env(s3_endpoint))

    assert done.exit_code == ExitStatus.OK, done.output
    assert f"Done: deleted {len(left):,} old object(s)" in done.stdout
    assert _listing(s3_endpoint, bucket, source) == {}
    assert _listing(s3_endpoint, bucket, f"dest/workspaces/team-b/{EXP}") == sizes
