"""`db import-database`: every row of SOURCE into TARGET's workspace W, on every backend (SOURCE and TARGET on the
same server, each its own database; one test crosses SQLite -> PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.sample_data import SampleData

from .conftest import NEWEST, ScratchDB, _create_scratch
from .helpers import run_cli, sample_data
from .test_crash import _wait_for_server_sessions, start_cli

SEED = int(os.environ.get("MWA_CRASH_SEED", random.SystemRandom().randrange(2**32)))


def fill_source(data: SampleData, *, runs: int = 3, metrics: int = 4) -> None:
    """A database that ran without workspaces: everything in `default`, one of each kind of row."""
    for e in (1, 2):
        data.experiment("default", f"exp-{e}", experiment_id=e, artifact_location=f"mlflow-artifacts:/{e}")
        data.add("experiment_tags", experiment_id=e, key="team", value="a")
    data.flush()
    for r in range(runs):
        run = f"run-{r}"
        data.add("runs", run_uuid=run, experiment_id=1 + r % 2, lifecycle_stage="active", artifact_uri=f"s3://b/{r}")
    data.flush()
    for r in range(runs):
        run = f"run-{r}"
        data.add("params", run_uuid=run, key="lr", value=str(r))
        data.add("tags", run_uuid=run, key="mlflow.runName", value=f"name-{r}")
        data.add(
            "latest_metrics",
            run_uuid=run,
            key="loss",
            value=float(metrics),
            timestamp=metrics,
            step=metrics,
            is_nan=False,
        )
        for step in range(metrics):
            data.add("metrics", run_uuid=run, key="loss", value=step / 3, timestamp=step, step=step, is_nan=False)
    data.add("trace_info", request_id="tr-1", experiment_id=2, timestamp_ms=1, execution_time_ms=1, status="OK")
    data.flush()
    data.add("trace_tags", request_id="tr-1", key="k", value="v")
    # spans.duration_ns is a generated column: TARGET computes it and refuses a value
    data.add("spans", trace_id="tr-1", span_id="sp-1", experiment_id=2, start_time_unix_nano=5, end_time_unix_nano=12)
    data.add("logged_models", model_id="m-1", experiment_id=1, name="lm", lifecycle_stage="active", status=1)
    data.registered_model("default", "fraud", versions=2, tags=1, aliases=1)
    data.add(
        "entity_associations",
        association_id="as-1",
        source_type="evaluation_dataset",
        source_id="d-1",
        destination_type="experiment",
        destination_id="2",
    )
    data.add("sql_trace_rollup_rebuild_queue", experiment_id=2, rollup_day=dt.date(2026, 1, 1), rollup_family="trace")
    data.dataset("default", "golden")
    data.webhook("default", "hook")


def fill_target(data: SampleData) -> None:
    """TARGET already serves two teams: W = team-a exists, with rows of its own."""
    data.workspace("team-a")
    data.workspace("team-b")
    data.experiment("default", "Default", experiment_id=3)
    data.experiment("team-a", "a-exp", experiment_id=7)
    data.experiment("team-b", "b-exp", experiment_id=9)
    data.registered_model("team-a", "a-model")


def populate(db: ScratchDB, fill) -> None:
    with db.engine.begin() as conn, sample_data(conn) as data:
        fill(data)


def rows(db: ScratchDB, sql: str) -> list[tuple]:
    with db.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(text(sql)))


def import_db(source: ScratchDB, target: ScratchDB, *args: str):
    return run_cli("db", "import-database", source.uri, target.uri, *args)


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


# --- the copy ----------------------------------------------------------------------------------------------


def test_import_copies_every_row_into_the_workspace(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    populate(source_db, fill_source)
    populate(mlflow_db, fill_target)
    source_before = source_db.fingerprint()
    counts = {t: len(r) for t, r in source_db.dump().items()}

    result = import_db(source_db, mlflow_db, "--workspace", "team-a", "-y")
    assert result.exit_code == 0, result.output + result.stderr
    assert "Imported " in result.stdout

    after = mlflow_db.dump()
    for table, n in counts.items():
        if table in ("alembic_version", "workspaces"):
            continue
        before = {"experiments": 3, "registered_models": 1, "model_versions": 1, "model_version_tags": 1}
        assert len(after[table]) == n + before.get(table, 0), table
    # experiment ids start after TARGET's highest (9); every reference follows, string ids are kept
    assert rows(mlflow_db, "SELECT experiment_id, name, workspace FROM experiments WHERE experiment_id > 9") == [
        (10, "exp-1", "team-a"),
        (11, "exp-2", "team-a"),
    ]
    assert rows(mlflow_db, "SELECT run_uuid, experiment_id FROM runs") == [
        ("run-0", 10),
        ("run-1", 11),
        ("run-2", 10),
    ]
    assert rows(mlflow_db, "SELECT experiment_id, value FROM experiment_tags") == [(10, "a"), (11, "a")]
    assert rows(mlflow_db, "SELECT request_id, experiment_id FROM trace_info") == [("tr-1", 11)]
    assert rows(mlflow_db, "SELECT span_id, experiment_id, duration_ns FROM spans") == [("sp-1", 11, 7)]
    assert rows(mlflow_db, "SELECT model_id, experiment_id FROM logged_models") == [("m-1", 10)]
    assert rows(mlflow_db, "SELECT source_id, destination_id FROM entity_associations") == [("d-1", "11")]
    assert rows(mlflow_db, "SELECT experiment_id FROM sql_trace_rollup_rebuild_queue") == [(11,)]
    # metric histories: every row, equal values
    query = "SELECT run_uuid, step, timestamp, value FROM metrics"
    assert rows(mlflow_db, query) == rows(source_db, query) and len(rows(source_db, query)) == 12
    assert rows(mlflow_db, "SELECT name, workspace FROM registered_models") == [
        ("a-model", "team-a"),
        ("fraud", "team-a"),
    ]
    assert rows(mlflow_db, "SELECT workspace, name, version FROM model_versions WHERE name = 'fraud'") == [
        ("team-a", "fraud", 1),
        ("team-a", "fraud", 2),
    ]
    assert rows(mlflow_db, "SELECT workspace FROM webhooks") == [("team-a",)]
    assert rows(mlflow_db, "SELECT workspace FROM evaluation_datasets") == [("team-a",)]
    # nothing else moved, and SOURCE was only read
    assert rows(mlflow_db, "SELECT experiment_id, workspace FROM experiments WHERE experiment_id <= 9") == [
        (3, "default"),
        (7, "team-a"),
        (9, "team-b"),
    ]
    assert source_db.fingerprint() == source_before


def test_the_next_id_target_allocates_follows_the_imported_ones(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    """PostgreSQL's sequence does not move with explicit ids: the import sets it, or the next experiment
    MLflow creates would collide."""
    populate(source_db, fill_source)
    populate(mlflow_db, fill_target)
    assert import_db(source_db, mlflow_db, "--workspace", "team-a", "-y").exit_code == 0
    mlflow_db.execute(
        "INSERT INTO experiments (name, workspace, lifecycle_stage) VALUES ('created-after', 'team-a', 'active')"
    )
    assert mlflow_db.scalar("SELECT experiment_id FROM experiments WHERE name = 'created-after'") == 12


def test_an_empty_target_keeps_the_source_ids(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    """Including MLflow's Default experiment, id 0 (which MySQL's AUTO_INCREMENT would replace)."""
    populate(source_db, fill_source)
    with source_db.engine.begin() as conn:
        if source_db.backend == "mysql":
            conn.execute(text("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')"))
        conn.execute(
            text("INSERT INTO experiments (experiment_id, name, lifecycle_stage) VALUES (0, 'Default', 'active')")
        )
        conn.execute(text("INSERT INTO runs (run_uuid, experiment_id, lifecycle_stage) VALUES ('run-d', 0, 'active')"))
    assert source_db.scalar("SELECT experiment_id FROM runs WHERE run_uuid = 'run-d'") == 0
    result = import_db(source_db, mlflow_db, "--workspace", "team-x", "--create-workspace", "-y")
    assert result.exit_code == 0, result.output + result.stderr
    assert rows(mlflow_db, "SELECT experiment_id, workspace FROM experiments") == [
        (0, "team-x"),
        (1, "team-x"),
        (2, "team-x"),
    ]
    assert mlflow_db.scalar("SELECT experiment_id FROM runs WHERE run_uuid = 'run-d'") == 0
    assert rows(mlflow_db, "SELECT name FROM workspaces WHERE name = 'team-x'") == [("team-x",)]


# --- dry run, blocking keys, bad input -----------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_changes_nothing(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    populate(source_db, fill_source)
    populate(mlflow_db, fill_target)
    before, source_before = mlflow_db.fingerprint(), source_db.fingerprint()

    result = import_db(source_db, mlflow_db, "--workspace", "team-a", "--dry-run")

    assert result.exit_code == 0, result.output + result.stderr
    out = result.stdout
    assert "(dry run, read-only)" in out
    total = sum(len(r) for t, r in source_db.dump().items() if t not in ("alembic_version", "workspaces"))
    assert f"Rows to copy: {total:,}" in out
    assert "  metrics: 12" in out
    assert "Ids remapped: experiments.experiment_id + 9 (followed by " in out and "runs.experiment_id" in out
    assert "experiments.artifact_location: 2 mlflow-artifacts: location(s)" in out
    assert "Blocking" not in out
    assert mlflow_db.fingerprint() == before
    assert source_db.fingerprint() == source_before


def test_keys_already_in_target_block_and_change_nothing(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    populate(source_db, fill_source)

    def clashing(data: SampleData) -> None:
        fill_target(data)
        data.experiment("team-a", "exp-2", experiment_id=20)  # a name W already has
        data.flush()
        data.add("runs", run_uuid="run-1", experiment_id=20, lifecycle_stage="active")  # an id TARGET has

    populate(mlflow_db, clashing)
    before = mlflow_db.fingerprint()

    result = import_db(source_db, mlflow_db, "--workspace", "team-a", "-y")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output + result.stderr
    assert "Blocking: 2 key(s) already in TARGET" in result.stdout
    assert 'experiments (name) exists in workspace team-a: "exp-2"' in result.stdout
    assert 'runs (run_uuid) exists in TARGET: "run-1"' in result.stdout
    assert mlflow_db.fingerprint() == before
    # the same name in another workspace is no clash
    assert import_db(source_db, mlflow_db, "--workspace", "team-b", "--dry-run").exit_code == ExitStatus.CONFLICTS
    again = import_db(source_db, mlflow_db, "--workspace", "team-b", "--dry-run")
    assert "experiments (name)" not in again.stdout and 'runs (run_uuid) exists in TARGET: "run-1"' in again.stdout


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            "SOURCE: UPDATE alembic_version SET version_num = 'abc123older'",
            "SOURCE is at MLflow schema revision abc123older and TARGET at {revision}",
        ),
        ("SOURCE: DROP TABLE alembic_version", "SOURCE has no alembic_version table, so its MLflow schema revision is"),
        ("TARGET: DROP TABLE alembic_version", "TARGET has no alembic_version table, so its MLflow schema revision is"),
    ],
    ids=["older", "source-without", "target-without"],
)
def test_a_revision_that_differs_or_is_missing_refuses(
    mlflow_db: ScratchDB, source_db: ScratchDB, change: str, expected: str
) -> None:
    populate(source_db, fill_source)
    revision = mlflow_db.scalar("SELECT version_num FROM alembic_version")
    which, sql = change.split(": ", 1)
    (source_db if which == "SOURCE" else mlflow_db).execute(sql)
    before = mlflow_db.fingerprint()

    result = import_db(source_db, mlflow_db, "--workspace", "team-x", "--create-workspace", "-y")

    assert result.exit_code == ExitStatus.DATABASE_ERROR
    line = one_error_line(result)
    assert expected.format(revision=revision) in line
    assert "mlflow db upgrade" in line and "nothing was changed" in line
    assert mlflow_db.fingerprint() == before


def test_bad_input_is_one_line_and_changes_nothing(mlflow_db: ScratchDB, source_db: ScratchDB, tmp_path: Path) -> None:
    populate(source_db, fill_source)
    before = mlflow_db.fingerprint()

    same = run_cli("db", "import-database", mlflow_db.uri, mlflow_db.uri, "--workspace", "team-a", "-y")
    assert same.exit_code == ExitStatus.USAGE
    assert "SOURCE and TARGET are the same database" in one_error_line(same)

    missing = import_db(source_db, mlflow_db, "--workspace", "team-q", "-y")
    assert missing.exit_code == ExitStatus.USAGE
    assert "workspace 'team-q' does not exist in TARGET; pass --create-workspace" in one_error_line(missing)

    invalid = import_db(source_db, mlflow_db, "--workspace", "Team_Q", "--create-workspace", "-y")
    assert invalid.exit_code == ExitStatus.USAGE
    assert "not a valid workspace name" in one_error_line(invalid)

    if mlflow_db.backend == "sqlite":
        gone = f"sqlite:///{tmp_path / 'nowhere.db'}"
    else:
        gone = mlflow_db.url.set(port=1).render_as_string(hide_password=False)
    unreachable = run_cli("db", "import-database", gone, mlflow_db.uri, "--workspace", "team-a", "-y")
    assert unreachable.exit_code == ExitStatus.DATABASE_ERROR
    assert one_error_line(unreachable).startswith("Error: SOURCE: ")

    (tmp_path / "other").mkdir()
    other_gen = _create_scratch(mlflow_db.backend, tmp_path / "other")
    other = next(other_gen)
    try:
        other.execute("CREATE TABLE unrelated (id INTEGER PRIMARY KEY)")
        not_mlflow = run_cli("db", "import-database", other.uri, mlflow_db.uri, "--workspace", "team-a", "-y")
    finally:
        with pytest.raises(StopIteration):
            next(other_gen)
    assert not_mlflow.exit_code == ExitStatus.DATABASE_ERROR
    assert "SOURCE: not an MLflow tracking database" in one_error_line(not_mlflow)
    assert mlflow_db.fingerprint() == before


def test_a_source_with_several_workspaces_is_refused(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    def two(data: SampleData) -> None:
        data.workspace("x1")
        data.experiment("default", "d")
        data.experiment("x1", "e")

    populate(source_db, two)
    before = mlflow_db.fingerprint()
    result = import_db(source_db, mlflow_db, "--workspace", "team-x", "--create-workspace", "-y")
    assert result.exit_code == ExitStatus.USAGE
    assert "SOURCE holds rows in 2 workspaces (default, x1)" in one_error_line(result)
    assert mlflow_db.fingerprint() == before


def test_relocate_without_the_destinations_is_refused_before_anything_is_read(
    mlflow_db: ScratchDB, source_db: ScratchDB
) -> None:
    """The rest of relocate: tests/test_import_relocate.py."""
    populate(source_db, fill_source)
    before = mlflow_db.fingerprint()
    result = import_db(
        source_db, mlflow_db, "--workspace", "team-x", "--create-workspace", "--artifact-policy", "relocate"
    )
    assert result.exit_code == ExitStatus.USAGE
    assert "--artifact-policy relocate needs both servers' artifact stores" in one_error_line(result)
    assert mlflow_db.fingerprint() == before


# --- JSON, journal and undo ----------------------------------------------------------------------------------


def test_json_dry_run_document(mlflow_db: ScratchDB, source_db: ScratchDB) -> None:
    populate(source_db, fill_source)
    populate(mlflow_db, fill_target)
    before = mlflow_db.fingerprint()
    result = import_db(source_db, mlflow_db, "--workspace", "team-a", "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["status"] == "ok" and doc["dry_run"] is True and doc["workspace"] == "team-a"
    assert {"table": "metrics", "rows": 12} in doc["tables"]
    remap = next(r for r in doc["id_remaps"] if r["table"] == "experiments")
    assert remap["offset"] == 9 and "runs.experiment_id" in remap["followed_by"]
    assert doc["clashes"] == [] and doc["rows_inserted"] is None
    proxied = [f for f in doc["artifact_findings"] if f["kind"] == "proxied"]
    assert proxied == [
        {
            "table": "experiments",
            "column": "artifact_location",
            "kind": "proxied",
            "count": 2,
            "examples": ["mlflow-artifacts:/1", "mlflow-artifacts:/2"],
        }
    ]
    assert mlflow_db.fingerprint() == before


def test_the_journal_undoes_exactly_the_import(mlflow_db: ScratchDB, source_db: ScratchDB, tmp_path: Path) -> None:
    populate(source_db, fill_source)
    populate(mlflow_db, fill_target)
    before = mlflow_db.dump()
    journal = tmp_path / "import.jsonl.gz"
    result = import_db(
        source_db, mlflow_db, "--workspace", "team-new", "--create-workspace", "-y", "--journal", str(journal)
    )
    assert result.exit_code == 0, result.output + result.stderr
    inserted = mlflow_db.dump()
    assert inserted != before

    dry = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "--dry-run")
    assert dry.exit_code == 0, dry.output + dry.stderr
    assert "metrics: 12 row(s) to delete" in dry.stdout
    assert mlflow_db.dump() == inserted

    undo = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y")
    assert undo.exit_code == 0, undo.output + undo.stderr
    assert 'workspace "team-new" (created by the import) deleted' in undo.stdout
    assert mlflow_db.dump() == before


def test_sqlite_source_into_postgresql(tmp_path: Path) -> None:
    """Across backends: booleans, floats and JSON text arrive as they were."""
    src = next(_create_scratch("sqlite", tmp_path, NEWEST, filename="source.db"))
    dst_gen = _create_scratch("postgresql", tmp_path, NEWEST)
    dst = next(dst_gen)
    try:
        populate(src, fill_source)
        src.execute(
            "INSERT INTO jobs (id, creation_time, job_name, params, status, retry_count, last_update_time, workspace,"
            " status_details) VALUES ('j-1', 1, 'n', '{}', 1, 0, 1, 'default', '{\"a\": [1, null]}')"
        )
        result = import_db(src, dst, "--workspace", "team-x", "--create-workspace", "-y")
        assert result.exit_code == 0, result.output + result.stderr
        query = "SELECT run_uuid, key, step, value, is_nan FROM metrics"
        assert rows(dst, query) == rows(src, query)
        assert dst.scalar("SELECT status_details::text FROM jobs") == '{"a": [1, null]}'
    finally:
        with pytest.raises(StopIteration):
            next(dst_gen)


# --- crash safety --------------------------------------------------------------------------------------------

#: metric rows in SOURCE: the copy takes half a second or more on the 2-core CI machine (0.75-1.25 s with only the
#: three of this test running); the kill points are fractions of the measured copy, so more rows prove nothing more
CRASH_METRICS = {"sqlite": 50_000, "postgresql": 50_000, "mysql": 25_000}


def _add_metric_rows(db: ScratchDB, steps: int) -> None:
    """Metric rows for steps 1 to ``steps`` - 1 of every run, made by the database itself in one INSERT ... SELECT:
    what SampleData would insert row by row, for a fraction of the time (the bulk is what makes the copy long;
    the values are never compared)."""
    with db.engine.begin() as conn:
        key = conn.dialect.identifier_preparer.quote("key")
        conn.execute(
            text(
                f"INSERT INTO metrics ({key}, value, timestamp, run_uuid, step, is_nan) "
                # digits 0-99 (MariaDB stops a recursion at 1,000 rows), three of them for n up to 999,999
                "WITH RECURSIVE d (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM d WHERE i < 99) "
                "SELECT 'loss', s.n * 0.5, s.n, runs.run_uuid, s.n, FALSE FROM ("
                "SELECT a.i * 10000 + b.i * 100 + c.i AS n FROM d a CROSS JOIN d b CROSS JOIN d c "
                "WHERE a.i <= :hi AND a.i * 10000 + b.i * 100 + c.i BETWEEN 1 AND :last) s CROSS JOIN runs"
            ),
            {"hi": (steps - 1) // 10000, "last": steps - 1},
        )


def _start_import(source: ScratchDB, target: ScratchDB) -> tuple[subprocess.Popen, float]:
    """A real import process, once it printed its plan's last line (the copy starts then), and that moment."""
    return start_cli(["db", "import-database", source.uri, target.uri, "--workspace", "team-a", "-y"], "Artifacts:")


def _copy_window(source: ScratchDB, tmp_path: Path) -> float:
    """Seconds from the plan's last line to the exit of an import that is left to finish, into a target like the
    test's: the kill points are fractions of it, so they fall inside the copy however fast the machine is."""
    made = _create_scratch(source.backend, tmp_path, NEWEST, filename="calibration.db")
    target = next(made)
    try:
        populate(target, fill_target)
        proc, started = _start_import(source, target)
        proc.communicate(timeout=300)
        assert proc.returncode == ExitStatus.OK, "the calibration import failed"
        return time.monotonic() - started
    finally:
        for _ in made:
            pass


@pytest.mark.slow
def test_sigkill_mid_import_leaves_target_unchanged(mlflow_db: ScratchDB, source_db: ScratchDB, tmp_path: Path) -> None:
    n = CRASH_METRICS[mlflow_db.backend]
    populate(source_db, lambda data: fill_source(data, runs=10, metrics=1))  # step 0 of each run
    _add_metric_rows(source_db, n // 10)
    assert source_db.scalar("SELECT COUNT(*) FROM metrics") == n
    populate(mlflow_db, fill_target)
    before = mlflow_db.dump()
    window = _copy_window(source_db, tmp_path)
    rng = random.Random(SEED)
    made = []

    def fresh_target() -> ScratchDB:
        """Another target like the first, for a retry after an import that finished before its kill."""
        made.append(_create_scratch(mlflow_db.backend, tmp_path, NEWEST, filename=f"target-{len(made)}.db"))
        target = next(made[-1])
        populate(target, fill_target)
        assert target.dump() == before
        return target

    target, kills, late = mlflow_db, 0, 0
    try:
        while kills < 2:
            proc, started = _start_import(source_db, target)
            delay = rng.uniform(0.1, 0.6) * window
            time.sleep(max(0.0, started + delay - time.monotonic()))
            context = f"kill {kills}, {delay:.2f} s of a {window:.2f} s copy, seed {SEED}, {target.backend}"
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            if proc.returncode != -signal.SIGKILL:
                # Done before the kill point (faster than the calibration, on warm caches): a committed import, not
                # a crash.  Aim earlier, on a fresh target.
                assert proc.returncode == ExitStatus.OK, context
                late += 1
                assert late <= 3, f"the imports keep finishing before the kill ({context}); make CRASH_METRICS larger"
                window = delay
                target = fresh_target()
                continue
            kills += 1
            _wait_for_server_sessions(target)
            assert target.dump() == before, context
        print(
            f"{target.backend}: import copy window {window:.2f} s, killed {kills} times ({late} retried after the end)"
        )
    finally:
        for gen in made:
            for _ in gen:
                pass


def test_a_row_target_refuses_mid_copy_rolls_everything_back(tmp_path: Path) -> None:
    """SQLite does not enforce VARCHAR lengths, PostgreSQL does: its COPY refuses a run's long tag value in
    the middle of the copy; the whole import rolls back, one error line, exit 3."""
    src = next(_create_scratch("sqlite", tmp_path, NEWEST, filename="source.db"))
    dst_gen = _create_scratch("postgresql", tmp_path, NEWEST)
    dst = next(dst_gen)
    try:
        populate(src, lambda data: fill_source(data, runs=3, metrics=4000))
        src.execute("UPDATE tags SET value = :v WHERE run_uuid = 'run-2'", v="x" * 9000)
        before = dst.dump()
        result = import_db(src, dst, "--workspace", "team-x", "--create-workspace", "-y")
        assert result.exit_code == ExitStatus.DATABASE_ERROR, result.output + result.stderr
        assert "rolled back: nothing was imported" in one_error_line(result)
        assert dst.dump() == before
    finally:
        with pytest.raises(StopIteration):
            next(dst_gen)
