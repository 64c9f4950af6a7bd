"""Crash safety of `--artifact-policy relocate`: SIGKILL the real CLI during the copy, after the commit (between
it and the deletes, or during them), and check that every artifact stays readable where the database points and
that a re-run (or `db finish-relocation`) completes the job.  The objects sit on a real S3-protocol server (moto,
127.0.0.1), where a few hundred objects take long enough to copy, and a few dozen experiments (a listing and a
delete request each) long enough to delete, for the kill to land inside."""

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
RUN = "e" * 28 + "0000"
#: Enough for the kill to land inside the window: mid-copy, the SIGKILL follows the first copied object within a
#: poll (50 ms) and a listing, while moto copies a few hundred objects a second (4-37 of 300 had landed when
#: measured on a loaded 2-core machine; 7-38 with every S3 kill test running at once on 4 workers); after the
#: commit, it follows the commit within a poll, while the run still lists the old and the new prefix before its
#: deletes (all 300 were left, each time).  150 leaves room four times over.  Every object costs a request to
#: upload and one to copy: no more than that.
OBJECTS = 150
#: The kill during the deletes: after COMMIT each experiment's old objects are listed and deleted in requests of
#: their own, one experiment after another, so the window is every experiment's but the first's (tens of ms
#: each).  S3's 1,000 keys a delete request are tests/test_stores.py's.
DELETE_EXPERIMENTS = 40
#: objects per experiment of the delete-window test
DELETE_OBJECTS = 5
NEW = f"mlflow-artifacts:/workspaces/team-b/{EXP}"


def _fill(data, experiments: int = 1) -> None:
    for i in range(experiments):
        old = _location("team-a", EXP + i)
        data.experiment("team-a", f"crashing-{i}", experiment_id=EXP + i, artifact_location=old)
        run = _run(i)
        data.add(
            "runs", run_uuid=run, experiment_id=EXP + i, artifact_uri=f"{old}/{run}/artifacts", lifecycle_stage="active"
        )


def _location(workspace: str, experiment_id: int) -> str:
    return f"mlflow-artifacts:/workspaces/{workspace}/{experiment_id}"


def _run(i: int) -> str:
    """The run of the ``i``-th experiment (the first one's is RUN)."""
    return f"{'e' * 28}{i:04x}"


def _client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint)


def _put_many(endpoint: str, name: str, prefix: str, count: int = OBJECTS, runs: int = 1) -> dict[str, int]:
    """``count`` objects in each of the first ``runs`` experiments' runs: under ``prefix``/RUN/artifacts, or with
    several runs under ``prefix``/EXPERIMENT_ID/RUN/artifacts.  Returns each one's size by its key under
    ``prefix``."""
    client = _client(endpoint)
    keys = {
        f"{'' if runs == 1 else f'{EXP + r}/'}{_run(r)}/artifacts/part-{i:05d}.txt": f"object {i}".encode()
        for r in range(runs)
        for i in range(count)
    }
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


def _put_back(db, experiments: int = 1) -> None:
    """The rows as ``_fill`` made them (what a too-late kill's committed move changed)."""
    for i in range(experiments):
        old, run = _location("team-a", EXP + i), _run(i)
        db.execute(
            "UPDATE experiments SET workspace = 'team-a', artifact_location = :old WHERE experiment_id = :e",
            old=old,
            e=EXP + i,
        )
        db.execute("UPDATE runs SET artifact_uri = :uri WHERE run_uuid = :r", uri=f"{old}/{run}/artifacts", r=run)


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
        print(f"attempt {attempt}: {copied} of {OBJECTS} object(s) copied before the kill")
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
def test_sigkill_after_the_commit_leaves_everything_readable(mlflow_db, bucket, s3_endpoint, tmp_path):
    populate(mlflow_db, _fill)
    source = f"dest/workspaces/team-a/{EXP}"
    client = _client(s3_endpoint)

    for attempt in range(ATTEMPTS):
        if attempt:
            bucket = f"{bucket[:20]}-{attempt}"
            client.create_bucket(Bucket=bucket)
            _put_back(mlflow_db)
        sizes = _put_many(s3_endpoint, bucket, source)
        journal = tmp_path / f"move-{attempt}.jsonl"

        _kill_when(_start(mlflow_db, bucket, s3_endpoint, journal), lambda: _committed(mlflow_db))

        # Every artifact is readable where the database now points: the new prefix is complete.
        assert _committed(mlflow_db)
        assert _listing(s3_endpoint, bucket, f"dest/workspaces/team-b/{EXP}") == sizes
        left = _listing(s3_endpoint, bucket, source)
        print(f"attempt {attempt}: {len(left)} of {OBJECTS} old object(s) left after the kill")
        if left:
            break
    assert left, f"the kill landed after the deletes in all {ATTEMPTS} attempts; make OBJECTS larger"
    assert set(left) <= set(sizes)
    _finish_the_relocation(mlflow_db, journal, s3_endpoint, bucket, source, left)
    assert _listing(s3_endpoint, bucket, f"dest/workspaces/team-b/{EXP}") == sizes


@pytest.mark.slow
def test_sigkill_during_the_deletes_leaves_everything_readable(mlflow_db, bucket, s3_endpoint, tmp_path):
    """Killed once the first experiment's old objects are gone: the others' stay, the new prefixes are complete,
    and `db finish-relocation` deletes exactly what was left."""
    populate(mlflow_db, lambda data: _fill(data, DELETE_EXPERIMENTS))
    client = _client(s3_endpoint)
    old_root, new_root = "dest/workspaces/team-a", "dest/workspaces/team-b"

    for attempt in range(ATTEMPTS):
        if attempt:
            bucket = f"{bucket[:20]}-{attempt}"
            client.create_bucket(Bucket=bucket)
            _put_back(mlflow_db, DELETE_EXPERIMENTS)
        sizes = _put_many(s3_endpoint, bucket, old_root, DELETE_OBJECTS, DELETE_EXPERIMENTS)
        journal = tmp_path / f"move-{attempt}.jsonl"

        def deleting(bucket: str = bucket, total: int = len(sizes)) -> bool:
            # One listing of every old object (a single page): fewer than were put, the deletes have begun.
            return client.list_objects_v2(Bucket=bucket, Prefix=old_root + "/").get("KeyCount", 0) < total

        proc = _start(mlflow_db, bucket, s3_endpoint, journal)
        # The window is each later experiment's listing and delete: wait for the commit at the usual pace, then
        # look as fast as the server answers.
        _wait_until(proc, lambda: _committed(mlflow_db))
        _kill_when(proc, deleting, poll=0.0)

        assert _committed(mlflow_db)
        assert _listing(s3_endpoint, bucket, new_root) == sizes  # everything readable where the database points
        left = _listing(s3_endpoint, bucket, old_root)
        print(f"attempt {attempt}: {len(left)} of {len(sizes)} old object(s) left after the kill")
        if left:
            break
    assert 0 < len(left) < len(sizes), (
        f"the kill landed after the deletes in all {ATTEMPTS} attempts; make DELETE_EXPERIMENTS larger"
    )
    assert set(left) <= set(sizes)
    _finish_the_relocation(mlflow_db, journal, s3_endpoint, bucket, old_root, left)
    assert _listing(s3_endpoint, bucket, new_root) == sizes


def _committed(db) -> bool:
    """The move committed: the first experiment's run names its new prefix (one transaction moves them all)."""
    return _run_uri(db) == f"{NEW}/{RUN}/artifacts"


def _finish_the_relocation(db, journal: Path, endpoint: str, bucket: str, old: str, left: dict[str, int]) -> None:
    """`db finish-relocation --dry-run` names the ``left`` old objects and deletes nothing; without it, they go."""
    dry = run_cli("db", "finish-relocation", db.uri, "--journal", str(journal), "--dry-run")
    assert dry.exit_code == ExitStatus.OK, dry.output
    assert f"{len(left):,} old object(s) to delete. Nothing was changed." in dry.stdout
    assert _listing(endpoint, bucket, old) == left

    done = run_cli("db", "finish-relocation", db.uri, "--journal", str(journal), "-y", env=s3_env(endpoint))

    assert done.exit_code == ExitStatus.OK, done.output
    assert f"Done: deleted {len(left):,} old object(s)" in done.stdout
    assert _listing(endpoint, bucket, old) == {}
