"""`db import-database --artifact-policy relocate` through the real CLI, on every backend, with the objects on the
local filesystem and on a real S3-protocol server (moto, 127.0.0.1): SOURCE's proxied experiment prefixes are
copied under TARGET's destination for the imported experiments' new ids, every stored URI follows, SOURCE's
objects stay; the dry run, a target prefix already in use, bad input, the undo, and a SIGKILL mid-copy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.sample_data import SampleData
from mlflow_ws_admin.stores.locate import locate

from .conftest import ScratchDB
from .helpers import run_cli
from .s3_server import s3_env
from .test_crash import _wait_for_server_sessions
from .test_import_database import fill_target, import_db, one_error_line, populate
from .test_relocate import MODEL, RUN, TRACE, Artifacts, expected_uris, stored_uris

FILES = {
    f"{RUN}/artifacts/model/MLmodel": b"flavors: {}\n",
    f"{RUN}/artifacts/data.csv": b"1,2,3\n" * 100,
    f"models/{MODEL}/artifacts/model.pkl": b"\x80" * 512,
    f"traces/{TRACE}/artifacts/traces.json": b"{}",
}
SIZES = {k: len(v) for k, v in FILES.items()}
OLD = "mlflow-artifacts:/1"
#: TARGET (fill_target) has experiments up to 9: SOURCE's 1 becomes 10
NEW = "mlflow-artifacts:/workspaces/team-a/10"


def fill_source(data: SampleData) -> None:
    """A database a `--serve-artifacts` server without workspaces wrote: a legacy proxied experiment with a run,
    a logged model registered as a version, a trace and a param holding a URI; an experiment at an absolute
    location (kept) and one at a proxied path no server derives (left alone)."""
    data.experiment("default", "proxied", experiment_id=1, artifact_location=OLD)
    data.experiment("default", "absolute", experiment_id=2, artifact_location="s3://elsewhere/2")
    data.experiment("default", "custom", experiment_id=3, artifact_location="mlflow-artifacts:/custom/place")
    data.flush()
    data.add("runs", run_uuid=RUN, experiment_id=1, artifact_uri=f"{OLD}/{RUN}/artifacts", lifecycle_stage="active")
    data.add("runs", run_uuid="d" * 32, experiment_id=2, artifact_uri="s3://elsewhere/2/r", lifecycle_stage="active")
    data.flush()
    data.add("params", run_uuid=RUN, key="output", value=f"{OLD}/{RUN}/artifacts/data.csv")
    data.add(
        "logged_models",
        model_id=MODEL,
        experiment_id=1,
        name="model",
        artifact_location=f"{OLD}/models/{MODEL}/artifacts",
    )
    data.add("registered_models", workspace="default", name="proxied-model")
    data.flush()
    data.add(
        "model_versions",
        workspace="default",
        name="proxied-model",
        version=1,
        source=f"models:/{MODEL}",
        storage_location=f"{OLD}/models/{MODEL}/artifacts",
    )
    data.add("trace_info", request_id=TRACE, experiment_id=1, timestamp_ms=1, status="OK")
    data.flush()
    data.add("trace_tags", request_id=TRACE, key="mlflow.artifactLocation", value=f"{OLD}/traces/{TRACE}/artifacts")


def content(artifacts: Artifacts, path: str, tmp_path: Path) -> bytes:
    """One object's bytes, read through the store layer (a local file or an S3 object alike)."""
    loc = locate(f"{artifacts.destination}/{path}")
    out = tmp_path / "read-back"
    loc.store.download(loc.prefix, str(out))
    try:
        return out.read_bytes()
    finally:
        out.unlink()


class Servers:
    """SOURCE's and TARGET's servers' --artifacts-destination."""

    def __init__(self, source: str, target: str) -> None:
        self.source, self.target = Artifacts(source), Artifacts(target)

    def flags(self) -> tuple[str, ...]:
        return (
            "--artifact-policy", "relocate", "--source-artifacts-destination", self.source.destination,
            "--artifacts-destination", self.target.destination,
        )  # fmt: skip


@pytest.fixture(params=["local", "s3"])
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Servers:
    if request.param == "local":
        return Servers(str(tmp_path / "source-dest"), str(tmp_path / "target-dest"))
    name = request.getfixturevalue("bucket")
    return Servers(f"s3://{name}/source-dest", f"s3://{name}/target-dest")


def prepared(mlflow_db: ScratchDB, source_db: ScratchDB, servers: Servers) -> None:
    populate(source_db, fill_source)
    populate(mlflow_db, fill_target)
    for key, data in FILES.items():
        servers.source.put(f"1/{key}", data)


def test_relocate_copies_the_objects_rewrites_every_uri_and_the_undo_removes_both(
    mlflow_db: ScratchDB,
    source_db: ScratchDB,
    servers: Servers,
    tmp_path: Path,
) -> None:
    prepared(mlflow_db, source_db, servers)
    before, source_before = mlflow_db.dump(), source_db.fingerprint()
    journal = tmp_path / "import.jsonl"

    result = import_db(
        source_db, mlflow_db, "--workspace", "team-a", *servers.flags(), "-y", "--journal", str(journal),
        "--format", "json",
    )  # fmt: skip

    assert result.exit_code == ExitStatus.OK, result.output + result.stderr
    doc = json.loads(result.stdout)
    total = sum(SIZES.values())
    assert doc["artifact_policy"] == "relocate"
    assert doc["artifact_moves"] == [{"experiment_id": "10", "from": OLD, "to": NEW, "objects": 4, "bytes": total}]
    assert doc["artifact_objects_copied"] == 4
    assert doc["artifact_locations_left_alone"] == [
        {"experiment_id": "3", "location": "mlflow-artifacts:/custom/place"}
    ]
    # the objects arrived under TARGET's prefix for the new id with the same bytes, SOURCE's stayed
    assert servers.target.listing("workspaces/team-a/10") == SIZES
    assert {k: content(servers.target, f"workspaces/team-a/10/{k}", tmp_path) for k in FILES} == FILES
    assert servers.source.listing("1") == SIZES
    assert stored_uris(mlflow_db, 10, "proxied-model") == expected_uris(NEW)
    # an absolute location is kept, a custom proxied one left alone
    assert mlflow_db.scalar("SELECT artifact_location FROM experiments WHERE experiment_id = 11") == "s3://elsewhere/2"
    assert mlflow_db.scalar("SELECT artifact_uri FROM runs WHERE experiment_id = 11") == "s3://elsewhere/2/r"
    assert mlflow_db.scalar("SELECT artifact_location FROM experiments WHERE experiment_id = 12") == (
        "mlflow-artifacts:/custom/place"
    )
    assert source_db.fingerprint() == source_before
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    moves = [r for r in records if r["type"] == "artifact_move"]
    assert [(m["experiment_id"], m["from"], m["to"]) for m in moves] == [("10", OLD, NEW)]

    dry = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "--dry-run")
    assert dry.exit_code == ExitStatus.OK, dry.output
    assert "artifacts: 4 object(s) the import copied to delete (SOURCE's stay)" in dry.stdout
    assert servers.target.listing("workspaces/team-a/10") == SIZES

    undo = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y")

    assert undo.exit_code == ExitStatus.OK, undo.output
    assert "artifacts: 4 object(s) the import copied deleted (SOURCE's stay)" in undo.stdout
    assert mlflow_db.dump() == before
    assert servers.target.listing("workspaces/team-a/10") == {}
    assert servers.source.listing("1") == SIZES


def test_dry_run_prints_the_moves_and_changes_nothing(
    mlflow_db: ScratchDB,
    source_db: ScratchDB,
    servers: Servers,
) -> None:
    prepared(mlflow_db, source_db, servers)
    before, source_before = mlflow_db.fingerprint(), source_db.fingerprint()

    result = import_db(source_db, mlflow_db, "--workspace", "team-a", *servers.flags(), "--dry-run")

    assert result.exit_code == ExitStatus.OK, result.output + result.stderr
    out = result.stdout
    total = sum(SIZES.values())
    assert (
        f"Artifacts: relocate: 1 experiment prefix(es), 4 object(s), {total:,} byte(s) copied under TARGET's "
        "destination for TARGET's experiment ids"
    ) in out
    assert f'  experiment 10: "{OLD}" -> "{NEW}" (4 object(s), {total:,} byte(s))' in out
    for column in (
        "experiments.artifact_location",
        "runs.artifact_uri",
        "logged_models.artifact_location",
        "model_versions.storage_location",
        "trace_tags.value",
    ):
        assert f"stored URIs rewritten: {column}: 1 row(s)\n" in out, column
    assert "stored URIs rewritten: params.value: 1 row(s) (not a column MLflow is known to store URIs in" in out
    assert 'left alone: experiment 3 "mlflow-artifacts:/custom/place" follows no server-derived layout' in out
    assert "mlflow-artifacts: location(s) of SOURCE's server" not in out  # the relocation replaces the note
    assert mlflow_db.fingerprint() == before and source_db.fingerprint() == source_before
    assert servers.target.listing("workspaces/team-a/10") == {}
    assert servers.source.listing("1") == SIZES


def test_a_target_prefix_holding_other_objects_blocks(
    mlflow_db: ScratchDB,
    source_db: ScratchDB,
    tmp_path: Path,
) -> None:
    servers = Servers(str(tmp_path / "source-dest"), str(tmp_path / "target-dest"))
    prepared(mlflow_db, source_db, servers)
    # Not a copy of SOURCE's objects: a key SOURCE does not have (the experiment is new in TARGET).
    servers.target.put("workspaces/team-a/10/stray.txt", b"someone else's")
    before = mlflow_db.fingerprint()

    dry = import_db(source_db, mlflow_db, "--workspace", "team-a", *servers.flags(), "--dry-run")
    result = import_db(source_db, mlflow_db, "--workspace", "team-a", *servers.flags(), "-y")

    for run in (dry, result):
        assert run.exit_code == ExitStatus.CONFLICTS, run.output + run.stderr
        assert '/workspaces/team-a/10" already holds other objects (never overwritten)' in run.stdout
    assert mlflow_db.fingerprint() == before
    assert servers.target.listing("workspaces/team-a/10") == {"stray.txt": 14}
    assert servers.source.listing("1") == SIZES


def test_copy_progress_only_on_a_terminal(mlflow_db: ScratchDB, source_db: ScratchDB, tmp_path: Path) -> None:
    servers = Servers(str(tmp_path / "source-dest"), str(tmp_path / "target-dest"))
    prepared(mlflow_db, source_db, servers)
    journal = tmp_path / "piped.jsonl"

    piped = import_db(source_db, mlflow_db, "--workspace", "team-a", *servers.flags(), "-y", "--journal", str(journal))
    assert piped.exit_code == ExitStatus.OK, piped.output + piped.stderr
    assert "copy artifacts" not in piped.stderr  # a pipe: nothing
    assert run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y").exit_code == 0

    # FORCE_COLOR makes Rich treat stderr as a terminal.
    shown = run_cli(
        "db", "import-database", source_db.uri, mlflow_db.uri, "--workspace", "team-a", *servers.flags(), "-y",
        env={"FORCE_COLOR": "1"},
    )  # fmt: skip

    assert shown.exit_code == ExitStatus.OK, shown.output + shown.stderr
    flat = " ".join(shown.stderr.split())
    assert "copy artifacts" in flat and "4/4 objects" in flat
    assert "copy artifacts" not in shown.stdout


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--artifact-policy", "relocate"), "--artifact-policy relocate needs both servers' artifact stores"),
        (
            ("--artifact-policy", "relocate", "--source-artifacts-destination", "/tmp/x"),
            "--artifact-policy relocate needs both servers' artifact stores",
        ),
        (("--artifacts-destination", "/tmp/x"), "go with --artifact-policy relocate; add it"),
        (
            ("--artifact-policy", "relocate", "--source-artifacts-destination", "gs://b/d", "--artifacts-destination",
             "/tmp/x"),
            "supported stores are local paths, file:, s3:// and mlflow-artifacts:",
        ),
    ],
)  # fmt: skip
def test_bad_relocate_input_is_one_line(mlflow_db: ScratchDB, source_db: ScratchDB, flags, message) -> None:
    populate(source_db, fill_source)
    before = mlflow_db.fingerprint()
    result = import_db(source_db, mlflow_db, "--workspace", "team-x", "--create-workspace", *flags, "-y")
    assert result.exit_code == ExitStatus.USAGE, result.output + result.stderr
    assert message in one_error_line(result)
    assert mlflow_db.fingerprint() == before


# --- a SIGKILL during the copy -------------------------------------------------------------------------------

#: Enough for the kill to land mid-copy with room to spare: the SIGKILL follows the first copied object within a
#: poll (50 ms) and a listing, while moto copies a few hundred objects a second; 19-45 of 300 had landed when
#: measured on a loaded 2-core machine, 18-34 with every S3 kill test running at once on 4 workers.  150 leaves
#: room three times over.  Every object costs a request to upload and one to copy: no more.
OBJECTS = 150


def _put_many(endpoint: str, name: str, prefix: str) -> dict[str, int]:
    import concurrent.futures

    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    keys = {f"{RUN}/artifacts/part-{i:05d}.txt": f"object {i}".encode() for i in range(OBJECTS)}
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: client.put_object(Bucket=name, Key=f"{prefix}/{kv[0]}", Body=kv[1]), keys.items()))
    return {k: len(v) for k, v in keys.items()}


def _readable_part(journal: Path) -> str:
    """What a killed run's journal holds up to where it stops (a .gz one has no trailer: read it as a stream)."""
    data = journal.read_bytes()
    if journal.name.endswith(".gz"):
        data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    return data.decode()


@pytest.mark.slow
@pytest.mark.parametrize("then", ["same-ids", "ids-changed"])
def test_sigkill_mid_copy_leaves_target_unchanged_and_a_rerun_completes(
    mlflow_db: ScratchDB,
    source_db: ScratchDB,
    bucket: str,
    s3_endpoint: str,
    tmp_path: Path,
    then: str,
) -> None:
    """Killed while the objects are copied (under TARGET's lock, before COMMIT): TARGET's rows are as they were,
    SOURCE's objects intact.  Re-run with the same ids, the copy finishes (nothing copied twice) and the killed
    run's journal shows nothing to clean; once TARGET's ids moved on, `db finish-relocation` with the killed run's
    journal deletes its orphaned copies."""
    import boto3

    from .test_relocate_crash import _listing, _settled_listing

    servers = Servers(f"s3://{bucket}/source-dest", f"s3://{bucket}/target-dest")
    populate(source_db, fill_source)
    populate(mlflow_db, fill_target)
    sizes = _put_many(s3_endpoint, bucket, "source-dest/1")
    before = mlflow_db.dump()
    # gzip too: a killed run's .gz journal ends without its gzip trailer, and finish-relocation still reads it
    killed = tmp_path / ("killed.jsonl" if then == "same-ids" else "killed.jsonl.gz")
    target = "target-dest/workspaces/team-a/10"
    command = [sys.executable, "-m", "mlflow_ws_admin", "db", "import-database", source_db.uri, mlflow_db.uri]
    proc = subprocess.Popen(
        [*command, "--workspace", "team-a", *servers.flags(), "-y", "--journal", str(killed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**s3_env(s3_endpoint), "PYTHONUNBUFFERED": "1"},
    )
    # Look at the target only once the plan is printed (the copy comes after it), with one client: each look
    # while the interpreter starts is a request to the server the copy then waits on.
    assert proc.stdout is not None
    assert any(line.startswith("Rows to copy:") for line in proc.stdout), f"no plan: {proc.communicate()}"
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    deadline = time.monotonic() + 400
    while not client.list_objects_v2(Bucket=bucket, Prefix=target + "/", MaxKeys=1).get("KeyCount", 0):
        assert proc.poll() is None, f"the run ended before the copy: {proc.communicate()}"
        assert time.monotonic() < deadline, "the copy never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    copied = len(_settled_listing(s3_endpoint, bucket, target))
    print(f"{copied} of {OBJECTS} object(s) copied before the kill")
    assert 0 < copied < OBJECTS, f"the kill landed outside the copy ({copied} of {OBJECTS}); make OBJECTS larger"
    _wait_for_server_sessions(mlflow_db)
    assert mlflow_db.dump() == before
    assert _listing(s3_endpoint, bucket, "source-dest/1") == sizes
    written = _readable_part(killed)
    assert '"type":"artifact_move"' in written and '"type":"sealed"' not in written

    finish = ("db", "finish-relocation", mlflow_db.uri, "--journal", str(killed))
    dry = run_cli(*finish, "--dry-run", env=s3_env(s3_endpoint))
    assert dry.exit_code == ExitStatus.OK, dry.output
    assert (
        f"{copied:,} copied object(s) of an import that never committed to delete. Nothing was changed." in dry.stdout
    )
    assert len(_listing(s3_endpoint, bucket, target)) == copied

    if then == "same-ids":
        rerun = import_db(source_db, mlflow_db, "--workspace", "team-a", *servers.flags(), "-y", "--format", "json")
        assert rerun.exit_code == ExitStatus.OK, rerun.output + rerun.stderr
        assert json.loads(rerun.stdout)["artifact_objects_copied"] == OBJECTS - copied  # not copied again
        assert _listing(s3_endpoint, bucket, target) == sizes
        assert mlflow_db.scalar("SELECT artifact_uri FROM runs WHERE run_uuid = :r", r=RUN) == f"{NEW}/{RUN}/artifacts"
        after = run_cli(*finish, "--dry-run", env=s3_env(s3_endpoint))
        assert (
            "experiment 10: " in after.stdout and "committed: nothing to delete (SOURCE's objects stay)" in after.stdout
        )
    else:
        # Someone created experiment 10 meanwhile: the import's ids move on, the killed run's copies are orphans.
        mlflow_db.execute(
            "INSERT INTO experiments (experiment_id, name, workspace, lifecycle_stage, artifact_location) "
            "VALUES (10, 'meanwhile', 'team-b', 'active', 'mlflow-artifacts:/workspaces/team-b/10')"
        )
        done = run_cli(*finish, "-y", env=s3_env(s3_endpoint))
        assert done.exit_code == ExitStatus.OK, done.output
        assert f"Done: deleted {copied:,} copied object(s) of an import that never committed" in done.stdout
        assert _listing(s3_endpoint, bucket, target) == {}
        rerun = import_db(source_db, mlflow_db, "--workspace", "team-a", *servers.flags(), "-y")
        assert rerun.exit_code == ExitStatus.OK, rerun.output + rerun.stderr
        assert _listing(s3_endpoint, bucket, "target-dest/workspaces/team-a/11") == sizes
    assert _listing(s3_endpoint, bucket, "source-dest/1") == sizes
    assert os.path.exists(killed)


def test_from_workspace_relocates_only_that_workspaces_experiments(
    mlflow_db: ScratchDB,
    source_db: ScratchDB,
    tmp_path: Path,
) -> None:
    """--from-workspace with relocate: the other workspace's experiments are not imported, so nothing of theirs is
    copied (their prefixes are not even planned)."""

    def two_workspaces(data: SampleData) -> None:
        data.workspace("team-x")
        data.workspace("team-y")
        # a legacy location (made before workspaces were on): it follows the derived layout of any workspace
        data.experiment("team-y", "y", experiment_id=1, artifact_location="mlflow-artifacts:/1")
        data.experiment("team-x", "x", experiment_id=2, artifact_location="mlflow-artifacts:/workspaces/team-x/2")

    populate(source_db, two_workspaces)
    populate(mlflow_db, fill_target)
    servers = Servers(str(tmp_path / "source-dest"), str(tmp_path / "target-dest"))
    servers.source.put("1/file", b"y")
    servers.source.put("workspaces/team-x/2/file", b"xx")

    result = import_db(
        source_db, mlflow_db, "--workspace", "team-a", "--from-workspace", "team-x", *servers.flags(), "-y",
        "--format", "json",
    )  # fmt: skip

    assert result.exit_code == ExitStatus.OK, result.output + result.stderr
    moved = "mlflow-artifacts:/workspaces/team-a/10"  # team-x's smallest id, 2, follows TARGET's 9
    doc = json.loads(result.stdout)
    assert doc["artifact_moves"] == [
        {"experiment_id": "10", "from": "mlflow-artifacts:/workspaces/team-x/2", "to": moved, "objects": 1, "bytes": 2}
    ]
    assert doc["artifact_locations_left_alone"] == []
    assert servers.target.listing("workspaces/team-a") == {"10/file": 2}
    assert mlflow_db.scalar("SELECT artifact_location FROM experiments WHERE experiment_id = 10") == moved
    assert mlflow_db.scalar("SELECT count(*) FROM experiments WHERE name = 'y'") == 0
