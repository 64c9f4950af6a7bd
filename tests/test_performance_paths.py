"""The fast paths added for large databases keep the exact behaviour: the cheap conflict pre-tests never
miss a collision the database itself would see; apply's one-pass checks under the lock (the unique indexes
refusing a colliding UPDATE, the code-only keys re-tested, the artifact locations re-read and checked in a
thread) roll back and report exactly what a dry run would; --verbose streams every group; progress appears
only on a terminal (stderr), never with --format json.  Speed itself is measured by bench/bench.py, not here."""

from __future__ import annotations

import pytest
from sqlalchemy import String, column, event, inspect, select, table, text

from mlflow_ws_admin.common.errors import ArtifactFindingsBlock, ConflictsAppeared, ExitStatus
from mlflow_ws_admin.db.connect import create_db_engine, resolve_target
from mlflow_ws_admin.db.dialects import for_backend
from mlflow_ws_admin.db.sample_data import SampleData
from mlflow_ws_admin.db.schema import reflect_schema
from mlflow_ws_admin.engine import queries, relocate
from mlflow_ws_admin.engine.apply import ApplyExtras, apply_plan
from mlflow_ws_admin.engine.plan import build_plan
from mlflow_ws_admin.engine.relocate import candidate_tables
from mlflow_ws_admin.findings.artifacts import OVERLAP
from mlflow_ws_admin.report.text import GROUP_PRINT_BATCH

from .conftest import VERSIONS
from .helpers import TEAMS, migrate, populate
from .test_json import document


def _database_sees_collision(db) -> bool:
    """Ask the database itself whether the two planted names are equal under the column's collation."""
    with db.engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT COUNT(*) FROM experiments a JOIN experiments b"
                    " ON a.name = b.name AND a.workspace = 'team-a' AND b.workspace = 'team-b'"
                )
            ).scalar()
        )


def test_trailing_space_and_case_collisions_follow_the_database(mlflow_db, backend: str) -> None:
    # MySQL's PAD SPACE collations compare 'Churn' and 'churn  ' equal; the hashed MySQL pre-test must too.
    def fill(data) -> None:
        data.experiment("team-a", "Churn")
        data.experiment("team-b", "churn  ")

    populate(mlflow_db, fill)
    collides = _database_sees_collision(mlflow_db)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run")

    assert collides == (backend == "mysql")
    if collides:
        assert result.exit_code == ExitStatus.CONFLICTS, result.output
        assert "experiments — key (name)" in result.stdout
        assert "team-a (experiment_id=" in result.stdout and "team-b (experiment_id=" in result.stdout
    else:
        assert result.exit_code == ExitStatus.OK, result.output
    assert mlflow_db.fingerprint() == before


def test_verbose_streams_every_group_in_key_order(mlflow_db) -> None:
    groups = GROUP_PRINT_BATCH * 2 + 7  # several print batches, and a partial one at the end

    def fill(data) -> None:
        for i in range(groups):
            data.experiment("team-a", f"dup-{i:05d}")
            data.experiment("team-b", f"dup-{i:05d}")
        data.registered_model("team-a", "shared-model", versions=3, tags=1)
        data.registered_model("team-c", "shared-model", versions=2)

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run", "--verbose")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith('  name="dup-')]
    assert [line.split('"')[1] for line in lines] == [f"dup-{i:05d}" for i in range(groups)]
    assert all(": team-a (experiment_id=" in line and "; team-b (experiment_id=" in line for line in lines)
    assert "more (use --verbose" not in result.stdout
    # The model group carries its versions (3 + 2), version tags (3 + 2) and tag (1) as dependent rows.
    assert 'name="shared-model": team-a; team-c (+11 dependent rows:' in result.stdout
    assert f"Blocked: {groups + 1:,} conflict group(s)" in result.stdout
    assert mlflow_db.fingerprint() == before


def test_apply_progress_only_on_a_terminal(mlflow_db) -> None:
    populate(mlflow_db)

    quiet = migrate(mlflow_db.uri, "-y")

    assert quiet.exit_code == ExitStatus.OK, quiet.output
    assert "verify and commit" not in quiet.stderr
    assert "Done: moved" in quiet.stdout
    assert mlflow_db.outside_default("experiments") == 0


def test_apply_progress_goes_to_stderr_on_a_terminal(mlflow_db) -> None:
    populate(mlflow_db)
    moving = int(mlflow_db.scalar("SELECT COUNT(*) FROM experiments WHERE workspace <> 'default'"))

    # FORCE_COLOR makes Rich treat stderr as a terminal.
    result = migrate(mlflow_db.uri, "-y", env={"FORCE_COLOR": "1"})

    assert result.exit_code == ExitStatus.OK, result.output
    assert "verify and commit" in result.stderr
    assert f"experiments {moving:,} rows" in " ".join(result.stderr.split())
    assert "verify and commit" not in result.stdout
    assert mlflow_db.outside_default("experiments") == 0


def test_no_progress_with_json_even_on_a_terminal(mlflow_db) -> None:
    populate(mlflow_db)

    result = migrate(mlflow_db.uri, "-y", "--format", "json", env={"FORCE_COLOR": "1"})

    assert result.exit_code == ExitStatus.OK, result.output
    assert "verify and commit" not in result.stderr
    assert mlflow_db.outside_default("experiments") == 0


def test_conflict_appearing_after_the_plan_is_caught_under_the_lock(mlflow_db) -> None:
    # The plan sees a clean database; then a writer creates collisions before apply takes its locks.
    populate(mlflow_db)
    target = resolve_target(mlflow_db.uri)
    engine = create_db_engine(target, read_only=False)
    try:
        with engine.connect() as conn:
            plan = build_plan(conn, reflect_schema(conn), database=target.display)
        assert not plan.has_blocking_conflicts

        with mlflow_db.engine.begin() as conn, SampleData(conn) as data:
            data.experiment("team-a", "late-exp", experiment_id=5_000_001)
            data.experiment("team-b", "late-exp", experiment_id=5_000_002)
            data.registered_model("team-b", "late-model", versions=2)
            data.registered_model("team-c", "late-model", versions=1)
        before = mlflow_db.fingerprint()

        with pytest.raises(ConflictsAppeared) as caught:
            apply_plan(engine, plan, lock_timeout_s=10)
    finally:
        engine.dispose()

    assert caught.value.exit_status == ExitStatus.CONFLICTS
    assert caught.value.message.startswith("conflicts found under the lock, rolled back, nothing changed: ")
    assert "experiments (name): 1" in caught.value.message
    assert "registered_models (name): 1" in caught.value.message
    assert "model_versions" not in caught.value.message  # rolled up under its model
    assert mlflow_db.fingerprint() == before


def _plan_then(mlflow_db, late_writes, seen: dict, **apply_kwargs):
    """Build a plan on the clean database, let a writer change it, then apply that plan.  seen["before"] is
    the database as apply finds it."""
    target = resolve_target(mlflow_db.uri)
    engine = create_db_engine(target, read_only=False)
    try:
        with engine.connect() as conn:
            plan = build_plan(conn, reflect_schema(conn), database=target.display)
        assert not plan.has_blocking_conflicts and not plan.has_blocking_artifact_findings
        with mlflow_db.engine.begin() as conn, SampleData(conn) as data:
            late_writes(data)
        seen["before"] = mlflow_db.fingerprint()
        return apply_plan(engine, plan, lock_timeout_s=10, **apply_kwargs)
    finally:
        engine.dispose()


def test_code_only_key_collision_after_the_plan_is_caught_under_the_lock(mlflow_db) -> None:
    # No index guards evaluation_datasets.name, so apply re-tests it explicitly before moving anything.
    populate(mlflow_db)

    def late(data) -> None:
        data.add("evaluation_datasets", dataset_id="late-1", name="late-ds", workspace="team-a")
        data.add("evaluation_datasets", dataset_id="late-2", name="late-ds", workspace="team-b")

    seen: dict = {}
    with pytest.raises(ConflictsAppeared) as caught:
        _plan_then(mlflow_db, late, seen)
    assert caught.value.message.endswith("nothing changed: evaluation_datasets (name): 1")
    assert mlflow_db.fingerprint() == seen["before"]


def test_artifact_overlap_after_the_plan_is_caught_under_the_lock(mlflow_db) -> None:
    populate(mlflow_db)

    def late(data) -> None:
        data.experiment("team-a", "late-a", experiment_id=5_000_001, artifact_location="s3://bucket/shared")
        data.experiment("team-b", "late-b", experiment_id=5_000_002, artifact_location="s3://bucket/shared/sub")

    seen: dict = {}
    with pytest.raises(ArtifactFindingsBlock) as caught:
        _plan_then(mlflow_db, late, seen)
    assert caught.value.exit_status == ExitStatus.CONFLICTS
    assert "1 blocking artifact finding(s) under the lock, rolled back, nothing changed" in caught.value.message
    assert mlflow_db.fingerprint() == seen["before"]


def test_allowed_artifact_overlap_is_applied_and_reported(mlflow_db) -> None:
    populate(mlflow_db)
    ids: dict[str, int] = {}

    def late(data) -> None:
        ids["a"] = data.experiment("team-a", "late-a", experiment_id=5_000_001, artifact_location="s3://bucket/shared")
        ids["b"] = data.experiment(
            "team-b", "late-b", experiment_id=5_000_002, artifact_location="s3://bucket/shared/sub"
        )

    result = _plan_then(mlflow_db, late, {}, extras=ApplyExtras(allow_artifact_overlap=True))

    assert [(f.kind, f.experiment_id, f.other_experiment_id, f.blocking) for f in result.artifact_findings] == [
        (OVERLAP, ids["b"], ids["a"], True)
    ]
    assert mlflow_db.outside_default("experiments") == 0


def _collide(data) -> None:
    for i in range(3):
        data.experiment("team-a", f"dup-{i}")
        data.experiment("team-b", f"dup-{i}")
    data.registered_model("team-a", "fraud", versions=2)
    data.registered_model("team-c", "fraud", versions=1)


def test_apply_without_prompt_reports_every_collision_the_indexes_refuse(mlflow_db) -> None:
    # With -y the plan leaves the indexed keys to apply: the first colliding UPDATE is refused, everything is
    # rolled back, and the report that follows lists every group, as the dry run does.
    populate(mlflow_db, _collide)
    before = mlflow_db.fingerprint()
    dry = migrate(mlflow_db.uri, "--dry-run")

    result = migrate(mlflow_db.uri, "-y")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert "checked under the lock as the rows move" in result.stdout
    assert (
        "Error: conflicts found under the lock, rolled back, nothing changed: "
        "experiments (name): 3; registered_models (name): 1" in result.stderr
    )
    report = result.stdout[result.stdout.index("Migrate to the `default` workspace (dry run, read-only)") :]
    assert "Ready: " in result.stdout[: -len(report)]  # the plan printed before the move was attempted
    assert "Blocked: 4 conflict group(s) in 2 table(s)" in report
    conflicts = [line for line in report.splitlines() if line.startswith('  name="')]
    assert conflicts == [line for line in dry.stdout.splitlines() if line.startswith('  name="')]
    assert len(conflicts) == 4
    assert "Done: moved" not in result.stdout
    assert mlflow_db.fingerprint() == before


def test_apply_without_prompt_reports_a_code_only_collision(mlflow_db) -> None:
    def fill(data) -> None:
        data.dataset("team-a", "shared-ds")
        data.dataset("team-c", "shared-ds")

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "-y")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert "evaluation_datasets (name): 1" in result.stderr
    assert 'name="shared-ds": team-a (dataset_id=' in result.stdout
    assert mlflow_db.fingerprint() == before


def test_apply_without_prompt_in_json_is_one_document_listing_every_conflict(mlflow_db) -> None:
    populate(mlflow_db, _collide)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "-y", "--format", "json")

    assert result.exit_code == ExitStatus.CONFLICTS
    doc = document(result)
    assert doc["status"] == "conflicts" and doc["dry_run"] is False
    assert doc["conflict_count"] == 4 == len(doc["conflicts"])
    assert {c["table"] for c in doc["conflicts"]} == {"experiments", "registered_models"}
    assert "conflicts found under the lock" in result.stderr
    assert mlflow_db.fingerprint() == before


def _refuse_with_integrity_error(db) -> None:
    """A trigger whose refusal is an integrity error (like a duplicate key) but no collision."""
    if db.backend == "sqlite":
        db.execute(
            "CREATE TRIGGER mwa_refuse BEFORE UPDATE OF workspace ON jobs BEGIN SELECT RAISE(ABORT, 'jobs stay'); END"
        )
    elif db.backend == "postgresql":
        db.execute(
            "CREATE FUNCTION mwa_refuse() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'jobs stay' USING ERRCODE = 'check_violation'; END $$ LANGUAGE plpgsql"
        )
        db.execute("CREATE TRIGGER mwa_refuse BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION mwa_refuse()")
    else:  # a NULL in a NOT NULL column: MySQL's "cannot be null" is an integrity error
        db.execute("CREATE TRIGGER mwa_refuse BEFORE UPDATE ON jobs FOR EACH ROW SET NEW.status = NULL")


def test_an_integrity_error_that_is_no_collision_stays_a_database_error(mlflow_db) -> None:
    populate(mlflow_db)
    _refuse_with_integrity_error(mlflow_db)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "-y")

    assert result.exit_code == ExitStatus.DATABASE_ERROR, result.output
    assert "Error: database error while applying (rolled back: nothing was applied" in result.stderr
    assert "conflicts found" not in result.output
    assert mlflow_db.fingerprint() == before


@pytest.mark.sqlite_only
def test_sqlite_apply_cache_holds_the_whole_database_within_bounds(mlflow_db, tmp_path) -> None:
    """Apply's page cache holds every page (a smaller one spills dirty pages mid-transaction), never less than
    the 64 MB floor nor more than the cap; dry runs keep SQLite's small default."""
    from mlflow_ws_admin.db.dialects.sqlite import SQLITE_APPLY_CACHE_KIB, SQLITE_APPLY_CACHE_MAX_KIB, apply_cache_kib

    target = resolve_target(mlflow_db.uri)
    for read_only, expected in ((False, SQLITE_APPLY_CACHE_KIB), (True, 2000)):
        engine = create_db_engine(target, read_only=read_only)
        try:
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -expected
        finally:
            engine.dispose()

    big = tmp_path / "big.db"
    with open(big, "wb") as f:
        f.truncate(200 * 1024 * 1024)  # sparse: the size is what counts
    assert apply_cache_kib(big) == 250 * 1024  # the file and a quarter more
    with open(big, "wb") as f:
        f.truncate(4 * 1024 * 1024 * 1024)
    assert apply_cache_kib(big) == SQLITE_APPLY_CACHE_MAX_KIB


def _plans_with_and_without_roll_up_proof(db, monkeypatch) -> tuple:
    """The plan as built, and as built with the orphan test's fast path turned off (every key aggregated)."""
    from mlflow_ws_admin.engine import plan as plan_module

    def build() -> tuple:
        with db.engine.connect() as conn:
            p = build_plan(conn, reflect_schema(conn), database="x", sample_limit=3)
        return p.conflicts, p.conflict_groups_by_workspace()

    fast = build()
    with monkeypatch.context() as m:
        m.setattr(plan_module, "_all_rolled_up", lambda *args: False)
        slow = build()
    return fast, slow


def test_child_collisions_under_colliding_parents_roll_up_without_aggregating(mlflow_db, monkeypatch) -> None:
    # Versions, tags and aliases of a model two workspaces share: every child group sits under the parent.
    def fill(data) -> None:
        data.registered_model("team-a", "shared", versions=3, tags=2, aliases=2)
        data.registered_model("team-b", "shared", versions=2, tags=2, aliases=1)
        data.registered_model("team-b", "alone", versions=2, tags=1)

    populate(mlflow_db, fill)
    fast, slow = _plans_with_and_without_roll_up_proof(mlflow_db, monkeypatch)

    assert fast == slow
    assert [tc.table for tc in fast[0]] == ["registered_models"]


@pytest.mark.sqlite_only
def test_orphan_child_rows_on_sqlite_still_form_their_own_groups(mlflow_db, monkeypatch) -> None:
    # SQLite enforces no foreign keys: versions whose model row is missing in one workspace (or both) collide
    # on their own, not under a colliding parent.
    def fill(data) -> None:
        data.registered_model("team-a", "half", versions=1)
        data.registered_model("team-a", "shared", versions=1)
        data.registered_model("team-b", "shared", versions=1)

    populate(mlflow_db, fill)
    with mlflow_db.engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
        for ws, name in (("team-b", "half"), ("team-a", "gone"), ("team-b", "gone")):
            conn.execute(
                text("INSERT INTO model_versions (workspace, name, version, creation_time) VALUES (:w, :n, 1, 0)"),
                {"w": ws, "n": name},
            )
    fast, slow = _plans_with_and_without_roll_up_proof(mlflow_db, monkeypatch)

    assert fast == slow
    versions = next(tc for tc in fast[0] if tc.table == "model_versions")
    assert versions.group_count == 2
    assert [dict(g.key)["name"] for g in versions.sample] == ["gone", "half"]


def test_conflicts_read_on_two_connections_are_those_read_on_one(mlflow_db) -> None:
    """Past ``parallel_after_rows`` a second connection reads some keys' conflicts, and the artifact check reads
    on a session of its own: the plan is the same, every group of every key (roll-ups, samples, per-workspace
    counts) in the same order, and every artifact finding.  Below it, the plan opens no session but its own."""

    def fill(data) -> None:
        for i in range(4):
            data.experiment("team-a", f"exp-{i}")
            data.experiment("team-b", f"exp-{i}")
        data.registered_model("team-a", "shared", versions=3, tags=2, aliases=2)
        data.registered_model("team-b", "shared", versions=2, tags=2, aliases=1)
        data.registered_model("team-c", "other", versions=1)
        data.registered_model("default", "other", versions=2)
        data.dataset("team-a", "ds")
        data.dataset("team-c", "ds")
        data.experiment("team-a", "one", artifact_location="s3://bucket/shared")
        data.experiment("team-c", "other", artifact_location="s3://bucket/shared")

    populate(mlflow_db, fill)
    connections: list[object] = []
    event.listen(mlflow_db.engine, "connect", lambda *_: connections.append(None))

    def build(parallel_after_rows: int) -> tuple:
        with mlflow_db.engine.connect() as conn:
            p = build_plan(
                conn, reflect_schema(conn), database="x", sample_limit=None, parallel_after_rows=parallel_after_rows
            )
        return p.conflicts, p.conflict_groups_by_workspace(), p.moves, p.artifact_findings

    one = build(parallel_after_rows=10**9)
    opened_for_one = len(connections)
    two = build(parallel_after_rows=0)

    assert opened_for_one == 1, "a small plan opened a session besides its own"
    assert len(connections) - opened_for_one == 3, "the artifact check or the second reader did not read beside"
    assert two == one
    assert one[3], "no artifact finding to compare"
    assert {tc.table for tc in one[0]} == {"experiments", "registered_models", "evaluation_datasets"}


def test_streamed_rows_are_the_rows_sqlalchemy_reads(mlflow_db, backend: str) -> None:
    """``Dialect.stream_rows`` (the artifact check's read of every experiment): the rows SQLAlchemy reads, in
    several batches, with and without parameters; on SQLite a statement without parameters goes straight
    through the driver (its rows are plain tuples)."""

    def fill(data) -> None:
        for i in range(20):
            data.experiment(TEAMS[i % 3], f"exp-{i}", artifact_location=f"s3://bucket/{i}" if i % 4 else None)

    populate(mlflow_db, fill)
    dialect = for_backend(backend)
    engine = create_db_engine(resolve_target(mlflow_db.uri), read_only=True)
    try:
        with engine.connect() as conn:
            wt = reflect_schema(conn).table("experiments")
            plain = queries.experiment_locations(wt)
            t = table("experiments", column("experiment_id"), column("workspace"), column("artifact_location"))
            bound = select(t.c.experiment_id, t.c.artifact_location).where(t.c.workspace == "team-a")
            for stmt in (plain, bound):
                streamed = list(dialect.stream_rows(conn, stmt, 7))
                assert sorted(map(tuple, streamed), key=repr) == sorted(map(tuple, conn.execute(stmt)), key=repr)
                assert len(streamed) >= (8 if stmt is bound else 20)
            assert all(type(r) is tuple for r in dialect.stream_rows(conn, plain, 7)) == (backend == "sqlite")
            assert not any(type(r) is tuple for r in dialect.stream_rows(conn, bound, 7))
    finally:
        engine.dispose()


@pytest.mark.parametrize("version", VERSIONS)
def test_uri_columns_are_those_read_table_by_table(scratch_db, version: str) -> None:
    """The relocation's candidate columns (every table's columns and primary key read in one go, the foreign keys
    taken from the schema) are exactly those read through the Inspector table by table, as before, on every
    captured schema."""
    scratch_db.load(version)
    with scratch_db.engine.connect() as conn:
        schema = reflect_schema(conn)
        insp = inspect(conn)
        expected = {}
        for name in sorted(schema.all_table_names):
            cols = insp.get_columns(name)
            tied = (
                name in {wt.name for wt in schema.tables} or {c["name"] for c in cols} & relocate._RUN_OR_TRACE_COLUMNS
            )
            pk = tuple(insp.get_pk_constraint(name)["constrained_columns"] or ())
            fks = {c for fk in insp.get_foreign_keys(name) for c in fk["constrained_columns"]}
            strings = [
                c["name"]
                for c in cols
                if isinstance(c["type"], String)
                and c["name"] not in {*pk, *fks}
                and c["name"] not in relocate._NOT_URI_COLUMNS
                and not c["name"].endswith("_id")
            ]
            if tied and strings and pk:
                expected[name] = (pk, strings)
        assert "runs" in expected and "experiments" in expected
        assert candidate_tables(conn, schema) == expected
