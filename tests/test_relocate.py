"""`db move-resources --artifact-policy relocate` end to end through the real CLI, on every backend, with the
objects on the local filesystem and on a real S3-protocol server (moto, 127.0.0.1): the plan (read-only), the
move of objects and every stored URI, the refusals, and `db restore-workspaces` moving it all back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.stores.locate import locate

from .helpers import populate, run_cli
from .test_json import MOVE_DOCUMENT, validate

EXP = 9001
RUN = "a" * 32
MODEL = "m-" + "b" * 32
TRACE = "tr-" + "c" * 32
FILES = {f"{RUN}/artifacts/model/MLmodel": b"flavors: {}\n", f"{RUN}/artifacts/data.csv": b"1,2,3\n" * 100}
MODEL_FILES = {f"models/{MODEL}/artifacts/model.pkl": b"\x80" * 512}


class Artifacts:
    """Where the server's objects live for one test: a local directory or a bucket, as --artifacts-destination."""

    def __init__(self, destination: str) -> None:
        self.destination = destination.rstrip("/")

    def put(self, path: str, data: bytes) -> None:
        loc = locate(f"{self.destination}/{path}")
        tmp = Path(__file__).parent / f".mwa-test-{abs(hash(path))}"
        # Through the store layer's own upload, so both kinds are written the same way.
        tmp.write_bytes(data)
        try:
            loc.store.upload(str(tmp), loc.prefix)
        finally:
            tmp.unlink()

    def listing(self, path: str) -> dict[str, int]:
        return {k: v.size for k, v in locate(f"{self.destination}/{path}").list().items()}


@pytest.fixture(params=["local", "s3"])
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Artifacts:
    if request.param == "local":
        return Artifacts(str(tmp_path / "dest"))
    return Artifacts(f"s3://{request.getfixturevalue('bucket')}/dest")


def _relocatable(data, location: str = f"mlflow-artifacts:/workspaces/team-a/{EXP}") -> None:
    """A team-a experiment as a --serve-artifacts server stores it: a run, a logged model, a registered version
    pointing at the model, a trace, and a param that happens to hold an artifact URI."""
    data.experiment("team-a", "relocated", experiment_id=EXP, artifact_location=location)
    data.add(
        "runs", run_uuid=RUN, experiment_id=EXP, artifact_uri=f"{location}/{RUN}/artifacts", lifecycle_stage="active"
    )
    data.add("params", run_uuid=RUN, key="output", value=f"{location}/{RUN}/artifacts/data.csv")
    data.add(
        "logged_models",
        model_id=MODEL,
        experiment_id=EXP,
        name="model",
        artifact_location=f"{location}/models/{MODEL}/artifacts",
    )
    data.add("registered_models", workspace="team-a", name="relocated-model")
    data.add(
        "model_versions",
        workspace="team-a",
        name="relocated-model",
        version=1,
        source=f"models:/{MODEL}",
        storage_location=f"{location}/models/{MODEL}/artifacts",
    )
    data.add("trace_info", request_id=TRACE, experiment_id=EXP, timestamp_ms=1, status="OK")
    data.add(
        "trace_tags", request_id=TRACE, key="mlflow.artifactLocation", value=f"{location}/traces/{TRACE}/artifacts"
    )


def _objects(artifacts: Artifacts, prefix: str) -> None:
    for key, data in {**FILES, **MODEL_FILES}.items():
        artifacts.put(f"{prefix}/{key}", data)


def _move(db, artifacts: Artifacts, *flags: str, env: dict[str, str] | None = None):
    return run_cli(
        "db", "move-resources", db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "experiments",
        "--resource-type", "registered_models", "--artifact-policy", "relocate",
        "--artifacts-destination", artifacts.destination, *flags, env=env,
    )  # fmt: skip


def stored_uris(db, experiment: int = EXP, model_name: str = "relocated-model") -> dict[str, object]:
    """Every stored URI of the relocated experiment's rows (also read by tests/test_import_relocate.py)."""
    return {
        "experiment": db.scalar("SELECT artifact_location FROM experiments WHERE experiment_id = :i", i=experiment),
        "run": db.scalar("SELECT artifact_uri FROM runs WHERE run_uuid = :r", r=RUN),
        "param": db.scalar("SELECT value FROM params WHERE run_uuid = :r", r=RUN),
        "model": db.scalar("SELECT artifact_location FROM logged_models WHERE model_id = :m", m=MODEL),
        "version": db.scalar("SELECT storage_location FROM model_versions WHERE name = :n", n=model_name),
        "source": db.scalar("SELECT source FROM model_versions WHERE name = :n", n=model_name),
        "trace": db.scalar("SELECT value FROM trace_tags WHERE request_id = :t", t=TRACE),
    }


def expected_uris(prefix: str) -> dict[str, object]:
    return {
        "experiment": prefix,
        "run": f"{prefix}/{RUN}/artifacts",
        "param": f"{prefix}/{RUN}/artifacts/data.csv",
        "model": f"{prefix}/models/{MODEL}/artifacts",
        "version": f"{prefix}/models/{MODEL}/artifacts",
        "source": f"models:/{MODEL}",
        "trace": f"{prefix}/traces/{TRACE}/artifacts",
    }


OLD = f"mlflow-artifacts:/workspaces/team-a/{EXP}"
NEW = f"mlflow-artifacts:/workspaces/team-b/{EXP}"
SIZES = {k: len(v) for k, v in {**FILES, **MODEL_FILES}.items()}


def test_dry_run_lists_the_relocation_and_changes_nothing(mlflow_db, artifacts) -> None:
    populate(mlflow_db, _relocatable)
    _objects(artifacts, f"workspaces/team-a/{EXP}")
    before = mlflow_db.fingerprint()

    text = _move(mlflow_db, artifacts, "--dry-run")
    result = _move(mlflow_db, artifacts, "--dry-run", "--format", "json")

    assert text.exit_code == ExitStatus.OK, text.output
    out = text.stdout
    total = sum(SIZES.values())
    assert f"Artifacts: relocate: 1 experiment prefix(es), 3 object(s), {total:,} byte(s)" in out
    assert f'experiment {EXP}: "{OLD}" -> "{NEW}" (3 object(s), {total:,} byte(s))' in out
    assert "stored URIs rewritten: runs.artifact_uri: 1 row(s)" in out
    assert "stored URIs rewritten: params.value: 1 row(s) (not a column MLflow is known to store URIs in" in out
    doc = json.loads(result.stdout)
    validate(doc, MOVE_DOCUMENT)
    assert doc["artifact_policy"] == "relocate"
    assert doc["artifact_moves"] == [{"experiment_id": str(EXP), "from": OLD, "to": NEW, "objects": 3, "bytes": total}]
    rewritten = {(c["table"], c["column"]): (c["rows"], c["known"]) for c in doc["artifact_uris_rewritten"]}
    assert rewritten == {
        ("experiments", "artifact_location"): (1, True),
        ("runs", "artifact_uri"): (1, True),
        ("params", "value"): (1, False),
        ("logged_models", "artifact_location"): (1, True),
        ("model_versions", "storage_location"): (1, True),
        ("trace_tags", "value"): (1, True),
    }
    assert doc["artifact_objects_copied"] is None
    assert mlflow_db.fingerprint() == before
    assert artifacts.listing(f"workspaces/team-a/{EXP}") == SIZES
    assert artifacts.listing(f"workspaces/team-b/{EXP}") == {}


def test_relocate_moves_objects_and_uris_and_restore_moves_them_back(mlflow_db, artifacts, tmp_path) -> None:
    populate(mlflow_db, _relocatable)
    _objects(artifacts, f"workspaces/team-a/{EXP}")
    before = mlflow_db.dump()
    journal = tmp_path / "move.jsonl"

    result = _move(mlflow_db, artifacts, "-y", "--journal", str(journal), "--format", "json")

    assert result.exit_code == ExitStatus.OK, result.output
    doc = json.loads(result.stdout)
    assert (doc["artifact_objects_copied"], doc["artifact_objects_deleted"]) == (3, 3)
    assert stored_uris(mlflow_db) == expected_uris(NEW)
    assert artifacts.listing(f"workspaces/team-b/{EXP}") == SIZES
    assert artifacts.listing(f"workspaces/team-a/{EXP}") == {}
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [r["from"] for r in records if r["type"] == "artifact_move"] == [OLD]

    # A run logged in team-b after the move, under the new prefix: restore must take it back too.
    late = "d" * 32
    mlflow_db.execute(
        "INSERT INTO runs (run_uuid, experiment_id, artifact_uri, lifecycle_stage) VALUES (:r, :e, :u, 'active')",
        r=late,
        e=EXP,
        u=f"{NEW}/{late}/artifacts",
    )
    artifacts.put(f"workspaces/team-b/{EXP}/{late}/artifacts/late.txt", b"late")

    undo = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y")

    assert undo.exit_code == ExitStatus.OK, undo.output
    assert f'artifacts of experiment {EXP}: "{NEW}" -> "{OLD}"' in undo.stdout
    assert "4 object(s) copied back, 4 deleted from the moved prefixes after the commit" in undo.stdout
    assert stored_uris(mlflow_db) == expected_uris(OLD)
    assert mlflow_db.scalar("SELECT artifact_uri FROM runs WHERE run_uuid = :r", r=late) == f"{OLD}/{late}/artifacts"
    assert artifacts.listing(f"workspaces/team-a/{EXP}") == {**SIZES, f"{late}/artifacts/late.txt": 4}
    assert artifacts.listing(f"workspaces/team-b/{EXP}") == {}
    mlflow_db.execute("DELETE FROM runs WHERE run_uuid = :r", r=late)
    assert mlflow_db.dump() == before


def test_rerun_after_a_partial_copy_finishes_it(mlflow_db, artifacts) -> None:
    populate(mlflow_db, _relocatable)
    _objects(artifacts, f"workspaces/team-a/{EXP}")
    # What a run killed mid-copy leaves: one object already at the target, the database untouched.
    artifacts.put(f"workspaces/team-b/{EXP}/{RUN}/artifacts/data.csv", FILES[f"{RUN}/artifacts/data.csv"])

    result = _move(mlflow_db, artifacts, "-y", "--format", "json")

    assert result.exit_code == ExitStatus.OK, result.output
    assert json.loads(result.stdout)["artifact_objects_copied"] == 2
    assert artifacts.listing(f"workspaces/team-b/{EXP}") == SIZES


def test_a_target_holding_other_objects_blocks(mlflow_db, artifacts) -> None:
    populate(mlflow_db, _relocatable)
    _objects(artifacts, f"workspaces/team-a/{EXP}")
    artifacts.put(f"workspaces/team-b/{EXP}/{RUN}/artifacts/data.csv", b"someone else's")
    before = mlflow_db.fingerprint()

    result = _move(mlflow_db, artifacts, "-y")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert f'/workspaces/team-b/{EXP}" already holds other objects (never overwritten)' in result.stdout
    assert "  blocking: " in result.stdout
    assert mlflow_db.fingerprint() == before
    assert artifacts.listing(f"workspaces/team-a/{EXP}") == SIZES
    assert artifacts.listing(f"workspaces/team-b/{EXP}") == {f"{RUN}/artifacts/data.csv": 14}


def test_keep_source_artifacts(mlflow_db, tmp_path) -> None:
    populate(mlflow_db, _relocatable)
    artifacts = Artifacts(str(tmp_path / "dest"))
    _objects(artifacts, f"workspaces/team-a/{EXP}")

    result = _move(mlflow_db, artifacts, "-y", "--keep-source-artifacts")

    assert result.exit_code == ExitStatus.OK, result.output
    assert "old objects, after the commit: kept (--keep-source-artifacts)" in result.stdout
    assert artifacts.listing(f"workspaces/team-a/{EXP}") == SIZES
    assert artifacts.listing(f"workspaces/team-b/{EXP}") == SIZES
    assert stored_uris(mlflow_db) == expected_uris(NEW)


def test_legacy_and_local_layouts_relocate_and_custom_ones_are_left_alone(mlflow_db, tmp_path) -> None:
    root = tmp_path / "root"

    def fill(data) -> None:
        data.experiment("team-a", "legacy", experiment_id=7001, artifact_location=f"{root}/7001")
        data.experiment("team-a", "custom", experiment_id=7002, artifact_location=f"file://{tmp_path}/elsewhere/x")

    populate(mlflow_db, fill)
    (root / "7001/r/artifacts").mkdir(parents=True)
    (root / "7001/r/artifacts/f.txt").write_text("legacy")
    (tmp_path / "elsewhere/x").mkdir(parents=True)
    (tmp_path / "elsewhere/x/g.txt").write_text("custom")

    result = run_cli(
        "db", "move-resources", mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type",
        "experiments", "--name", "legacy", "--name", "custom", "--artifact-policy", "relocate",
        "--default-artifact-root", f"file://{root}", "-y",
    )  # fmt: skip

    assert result.exit_code == ExitStatus.OK, result.output
    assert (
        f'left alone: experiment 7002 "file://{tmp_path}/elsewhere/x" follows no server-derived layout' in result.stdout
    )
    assert (root / "workspaces/team-b/7001/r/artifacts/f.txt").read_text() == "legacy"
    assert not (root / "7001").exists()
    assert mlflow_db.scalar("SELECT artifact_location FROM experiments WHERE experiment_id = 7001") == (
        f"file://{root}/workspaces/team-b/7001"
    )
    assert (tmp_path / "elsewhere/x/g.txt").read_text() == "custom"
    assert mlflow_db.scalar("SELECT artifact_location FROM experiments WHERE experiment_id = 7002") == (
        f"file://{tmp_path}/elsewhere/x"
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--artifacts-destination", "/tmp/x"), "--artifacts-destination and --keep-source-artifacts go with"),
        (("--keep-source-artifacts",), "--artifacts-destination and --keep-source-artifacts go with"),
        (("--artifact-policy", "relocate"), "--artifact-policy relocate needs the server's layout"),
    ],
)
def test_bad_relocate_options_are_one_line(mlflow_db, flags, message) -> None:
    populate(mlflow_db, _relocatable)
    before = mlflow_db.fingerprint()

    result = run_cli(
        "db", "move-resources", mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "experiments",
        *flags, "-y",
    )  # fmt: skip

    assert result.exit_code == ExitStatus.USAGE, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.output
    assert mlflow_db.fingerprint() == before


def test_an_unsupported_store_is_refused(mlflow_db) -> None:
    populate(mlflow_db, lambda data: _relocatable(data, f"gs://bucket/workspaces/team-a/{EXP}"))
    before = mlflow_db.fingerprint()

    result = run_cli(
        "db", "move-resources", mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "experiments",
        "--artifact-policy", "relocate", "--default-artifact-root", "gs://bucket", "-y",
    )  # fmt: skip

    assert result.exit_code == ExitStatus.USAGE, result.output
    assert "supported stores are local paths, file:, s3:// and mlflow-artifacts:" in result.stderr
    assert mlflow_db.fingerprint() == before


# --- the findings around proxied paths ------------------------------------------------------------------------


def test_move_names_relocate_for_proxied_paths_and_flags_legacy_ones(mlflow_db) -> None:
    def fill(data) -> None:
        data.experiment(
            "team-a", "prefixed", experiment_id=8001, artifact_location="mlflow-artifacts:/workspaces/team-a/8001"
        )
        data.experiment("team-a", "legacy", experiment_id=8002, artifact_location="mlflow-artifacts:/8002")

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = run_cli(
        "db", "move-resources", mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "experiments",
        "--name", "prefixed", "--name", "legacy", "--dry-run",
    )  # fmt: skip

    assert result.exit_code == ExitStatus.OK, result.output
    out = result.stdout
    assert "proxied-path — mlflow-artifacts: paths the proxy serves only to their own workspace" in out
    assert "fix: move with --artifact-policy relocate" in out
    assert "disable workspaces after the migration" not in out
    assert (
        'experiment 8002 (team-b) "mlflow-artifacts:/8002": legacy proxied path (no workspaces/ segment): the '
        "artifact proxy serves it only to `default`, so in `team-b` its artifacts list as empty"
    ) in out
    assert "fix: move it with --artifact-policy relocate, which moves its objects under workspaces/team-b/" in out
    assert "retarget" not in out.split("Artifact findings")[1].split("fix: move with")[0]
    assert mlflow_db.fingerprint() == before


def test_relocate_resolves_the_proxied_path_findings(mlflow_db, tmp_path) -> None:
    populate(mlflow_db, _relocatable)
    artifacts = Artifacts(str(tmp_path / "dest"))
    _objects(artifacts, f"workspaces/team-a/{EXP}")

    plain = _move(mlflow_db, artifacts, "--dry-run", "--format", "json")
    preserve = run_cli(
        "db", "move-resources", mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "experiments",
        "--dry-run", "--format", "json",
    )  # fmt: skip

    kinds = [(f["kind"], f["experiment_id"]) for f in json.loads(preserve.stdout)["artifact_findings"]]
    assert ("proxied-path", EXP) in kinds
    assert all(f["kind"] != "proxied-path" for f in json.loads(plain.stdout)["artifact_findings"])


def test_migrate_keeps_its_own_wording_and_no_legacy_finding(mlflow_db) -> None:
    def fill(data) -> None:
        data.experiment(
            "team-a", "prefixed", experiment_id=8001, artifact_location="mlflow-artifacts:/workspaces/team-a/8001"
        )
        data.experiment("team-a", "legacy", experiment_id=8002, artifact_location="mlflow-artifacts:/8002")

    populate(mlflow_db, fill)

    result = run_cli("db", "migrate-to-default-workspace", mlflow_db.uri, "--dry-run")

    assert "disable workspaces after the migration" in result.stdout
    assert "legacy proxied path" not in result.stdout


def test_a_version_left_behind_whose_files_move_is_reported(mlflow_db, tmp_path) -> None:
    populate(mlflow_db, _relocatable)
    artifacts = Artifacts(str(tmp_path / "dest"))
    _objects(artifacts, f"workspaces/team-a/{EXP}")
    before = mlflow_db.fingerprint()

    def dry(*flags: str):
        return run_cli(
            "db", "move-resources", mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type",
            "experiments", *flags, "--artifact-policy", "relocate", "--artifacts-destination", artifacts.destination,
            "--dry-run",
        )  # fmt: skip

    alone, together = dry(), dry("--resource-type", "registered_models")
    as_json = dry("--format", "json")

    assert alone.exit_code == ExitStatus.OK, alone.output
    assert (
        'split: registered model "relocated-model" version 1 stays behind while the files it points at move'
    ) in alone.stdout
    assert "split:" not in together.stdout
    assert json.loads(as_json.stdout)["artifact_versions_left_behind"] == [{"name": "relocated-model", "version": 1}]
    assert mlflow_db.fingerprint() == before


def test_copy_progress_only_on_a_terminal(mlflow_db, tmp_path) -> None:
    populate(mlflow_db, _relocatable)
    artifacts = Artifacts(str(tmp_path / "dest"))
    _objects(artifacts, f"workspaces/team-a/{EXP}")

    # FORCE_COLOR makes Rich treat stderr as a terminal.
    shown = _move(mlflow_db, artifacts, "-y", "--keep-source-artifacts", "--journal", str(tmp_path / "j"))
    assert shown.exit_code == ExitStatus.OK, shown.output
    assert "copy artifacts" not in shown.stderr  # a pipe: nothing
    run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(tmp_path / "j"), "-y")

    on_terminal = run_cli(
        "db", "move-resources", mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "experiments",
        "--artifact-policy", "relocate", "--artifacts-destination", artifacts.destination, "-y",
        env={"FORCE_COLOR": "1"},
    )  # fmt: skip

    assert on_terminal.exit_code == ExitStatus.OK, on_terminal.output
    flat = " ".join(on_terminal.stderr.split())
    assert "copy artifacts" in flat and "3/3 objects" in flat
    assert "copy artifacts" not in on_terminal.stdout


@pytest.mark.parametrize("output_format", ["text", "markdown"])
def test_move_into_default_names_relocate_not_the_migration(mlflow_db, output_format) -> None:
    """Into `default` too, move-resources' fix is relocate: its heading, its fix and each finding's own fix."""

    def fill(data) -> None:
        data.experiment(
            "team-a", "prefixed", experiment_id=8001, artifact_location="mlflow-artifacts:/workspaces/team-a/8001"
        )

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = run_cli(
        "db", "move-resources", mlflow_db.uri, "--from", "team-a", "--to", "default", "--resource-type",
        "experiments", "--name", "prefixed", "--dry-run", "--format", output_format,
    )  # fmt: skip

    assert result.exit_code == ExitStatus.OK, result.output
    out = " ".join(result.stdout.split())  # Markdown escapes nothing in these phrases, but wraps nothing either
    assert "proxied-path — mlflow-artifacts: paths the proxy serves only to their own workspace" in out
    assert "ix: move with --artifact-policy relocate: the objects move under the target workspace's path" in out
    assert "fix: move it with --artifact-policy relocate, which moves its objects under workspaces/default/" in out
    assert "disable workspaces" not in out
    assert mlflow_db.fingerprint() == before


def test_one_scan_per_table_counts_and_rewrites_each_column_on_its_own(mlflow_db) -> None:
    # Two columns of one table under a prefix, one of them in a row where the other is not, and a value LIKE
    # matches but that is not under the prefix (`.../9001x`): each column counted and rewritten on its own.
    from mlflow_ws_admin.db.schema import reflect_schema
    from mlflow_ws_admin.engine.relocate import candidate_tables, rewrite_uris, scan_uri_columns

    def fill(data) -> None:
        data.experiment("team-a", "scan", experiment_id=EXP, artifact_location=OLD)
        for run, source, uri in [
            ("1" * 32, f"{OLD}/src", f"{OLD}/r1"),
            ("2" * 32, "git://elsewhere", f"{OLD}/r2"),
            ("3" * 32, f"{OLD}x/src", f"{OLD}x/r3"),
        ]:
            data.add("runs", run_uuid=run, experiment_id=EXP, source_name=source, artifact_uri=uri)

    populate(mlflow_db, fill)
    with mlflow_db.engine.begin() as conn:
        tables = {"runs": candidate_tables(conn, reflect_schema(conn))["runs"]}
        assert [(c.table, c.column, c.rows) for c in scan_uri_columns(conn, tables, [OLD])] == [
            ("runs", "source_name", 1),
            ("runs", "artifact_uri", 2),
        ]
        rewritten = rewrite_uris(conn, tables, {OLD: NEW})
    assert [(c.column, c.rows) for c in rewritten] == [("source_name", 1), ("artifact_uri", 2)]
    with mlflow_db.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT run_uuid, source_name, artifact_uri FROM runs ORDER BY run_uuid").all()
    assert [tuple(r) for r in rows] == [
        ("1" * 32, f"{NEW}/src", f"{NEW}/r1"),
        ("2" * 32, "git://elsewhere", f"{NEW}/r2"),
        ("3" * 32, f"{OLD}x/src", f"{OLD}x/r3"),
    ]


#: A prefix holding both LIKE wildcards and the scan's escape character ('/'), and values that the wildcards
#: (or an unescaped '/') would match although they are not under it.
WILD = "s3://b_1/100%/x"
LOOKALIKES = ("s3://bX1/100%/x/r", "s3://b_1/100abc/x/r", "s3:/b_1/100%/x/r")


def test_a_prefix_with_like_wildcards_is_matched_literally(mlflow_db) -> None:
    from sqlalchemy import text

    from mlflow_ws_admin.db.schema import reflect_schema
    from mlflow_ws_admin.engine.relocate import _like_prefix, candidate_tables, scan_uri_columns

    def fill(data) -> None:
        data.experiment("team-a", "wild", experiment_id=EXP, artifact_location=WILD)
        for i, uri in enumerate((f"{WILD}/r", WILD, *LOOKALIKES)):
            data.add("runs", run_uuid=str(i) * 32, experiment_id=EXP, artifact_uri=uri)

    populate(mlflow_db, fill)
    with mlflow_db.engine.connect() as conn:
        # The database's own LIKE: every value under the prefix, and none of the look-alikes.
        like = text("SELECT :v LIKE :p ESCAPE '/'")
        matched = {
            v: bool(conn.execute(like, {"v": v, "p": _like_prefix(WILD)}).scalar())
            for v in (f"{WILD}/r", WILD, *LOOKALIKES)
        }
        assert matched == {f"{WILD}/r": True, WILD: True, **dict.fromkeys(LOOKALIKES, False)}
        # The scan: the two values under it, in the one column holding them.
        tables = {"runs": candidate_tables(conn, reflect_schema(conn))["runs"]}
        assert [(c.column, c.rows) for c in scan_uri_columns(conn, tables, [WILD])] == [("artifact_uri", 2)]
