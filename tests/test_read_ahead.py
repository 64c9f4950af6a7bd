"""Reading every conflict group one key ahead (``engine.read_ahead``): the groups are exactly those one
connection reads key after key; the next key's query is running before the caller asks for it; a reader left
half read, or one whose query fails, leaves no connection open; a failure reaches the caller."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.connect import create_db_engine, resolve_target
from mlflow_ws_admin.db.schema import reflect_schema
from mlflow_ws_admin.engine.plan import PARALLEL_AFTER_ROWS, Plan, build_plan, iter_conflict_groups
from mlflow_ws_admin.engine.read_ahead import ReadAhead

from .helpers import migrate, populate
from .test_json import document


def _plan_with_three_keys(db, more: Callable | None = None) -> tuple:
    def fill(data) -> None:
        if more:
            more(data)
        for i in range(30):
            data.experiment("team-a", f"exp-{i:02d}")
            data.experiment("team-b", f"exp-{i:02d}")
        for i in range(4):
            data.registered_model("team-a", f"model-{i}", versions=2, tags=1)
            data.registered_model("team-c", f"model-{i}")
        data.add("evaluation_datasets", workspace="team-a", dataset_id="d-a", name="shared-set")
        data.add("evaluation_datasets", workspace="team-b", dataset_id="d-b", name="shared-set")

    populate(db, fill)
    engine = create_db_engine(resolve_target(db.uri), read_only=True)
    with engine.connect() as conn:
        schema = reflect_schema(conn)
        plan = build_plan(conn, schema, database="test", sample_limit=0, stream_conflicts=True)
    assert [tc.table for tc in plan.conflicts] == ["evaluation_datasets", "experiments", "registered_models"]
    return engine, plan


def _one_connection(engine, plan: Plan, limit: int | None) -> list[list]:
    with engine.connect() as conn:
        return [
            list(iter_conflict_groups(conn, plan.schema, plan.schema.table(tc.table), tc.key, limit, plan.move))
            for tc in plan.conflicts
        ]


def _eventually(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _opened(engine) -> list[Connection]:
    """Every connection the engine hands out from now on."""
    opened: list[Connection] = []
    event.listen(engine, "engine_connect", opened.append)
    return opened


@pytest.mark.parametrize("limit", [None, 3])
@pytest.mark.parametrize("ahead", [True, False])
def test_read_ahead_lists_what_one_connection_lists(mlflow_db, limit: int | None, ahead: bool) -> None:
    engine, plan = _plan_with_three_keys(mlflow_db)
    try:
        expected = _one_connection(engine, plan, limit)
        with engine.connect() as conn:
            opened = _opened(engine)
            with ReadAhead(conn, plan.schema, plan.move, plan.conflicts, ahead=ahead) as reader:
                listed = [list(reader.groups(tc, limit)) for tc in plan.conflicts]
        assert listed == expected
        assert [len(groups) for groups in listed] == ([1, 30, 4] if limit is None else [1, 3, 3])
        assert listed[2][0].dependents == (
            ("model_versions", 3),
            ("model_version_tags", 3),
            ("registered_model_tags", 1),
        )
        # Ahead, a connection per key; else every key on the caller's.
        assert len(opened) == (3 if ahead else 0)
    finally:
        engine.dispose()


def test_next_key_runs_ahead_and_every_connection_closes(mlflow_db) -> None:
    engine, plan = _plan_with_three_keys(mlflow_db)
    try:
        with engine.connect() as conn:
            opened = _opened(engine)
            with ReadAhead(conn, plan.schema, plan.move, plan.conflicts, ahead=True) as reader:
                first = reader.groups(plan.conflicts[0])
                # this key's query and the next one's, before a row is read
                assert _eventually(lambda: len(opened) == 2), len(opened)
                assert len(list(first)) == 1
                # read to the end: its connection is closed at once (the two connect in either order)
                assert [c.closed for c in opened].count(True) == 1
                second = reader.groups(plan.conflicts[1])
                assert _eventually(lambda: len(opened) == 3), len(opened)
                next(second)  # left half read: its connection and the next key's stay open
                assert [c.closed for c in opened].count(True) == 1
            assert all(c.closed for c in opened)
            # Only a whole list runs ahead: a capped one cannot know the next key's share of the cap.
            with ReadAhead(conn, plan.schema, plan.move, plan.conflicts, ahead=True) as reader:
                assert len(list(reader.groups(plan.conflicts[0], 10))) == 1
                assert not _eventually(lambda: len(opened) > 4, seconds=0.5), len(opened)
            assert len(opened) == 4 and all(c.closed for c in opened)
    finally:
        engine.dispose()


def test_a_failing_query_is_raised_in_the_caller(mlflow_db) -> None:
    engine, plan = _plan_with_three_keys(mlflow_db)
    try:
        # The key's column disappears between the plan and the listing: the reader's query fails in its thread.
        mlflow_db.execute("ALTER TABLE evaluation_datasets RENAME COLUMN name TO renamed")
        with engine.connect() as conn:
            opened = _opened(engine)
            with (
                ReadAhead(conn, plan.schema, plan.move, plan.conflicts, ahead=True) as reader,
                pytest.raises(DBAPIError),
            ):
                list(reader.groups(plan.conflicts[0]))
        assert opened and all(c.closed for c in opened)
    finally:
        engine.dispose()


def test_a_large_plan_lists_every_group_through_the_cli(mlflow_db) -> None:
    """Past PARALLEL_AFTER_ROWS rows to move the CLI reads ahead: JSON and --verbose list every group, as
    the one-connection reader does, and the dry run changes nothing."""

    def fill(data) -> None:
        for _ in range(PARALLEL_AFTER_ROWS):
            data.add("jobs", workspace="team-c")

    engine, plan = _plan_with_three_keys(mlflow_db, fill)
    try:
        expected = _one_connection(engine, plan, None)
    finally:
        engine.dispose()
    before = mlflow_db.fingerprint()

    doc = document(migrate(mlflow_db.uri, "--dry-run", "--format", "json"))
    verbose = migrate(mlflow_db.uri, "--dry-run", "--verbose")

    assert doc["total_rows_to_move"] >= PARALLEL_AFTER_ROWS
    listed = [(c["table"], c["key"], [r["workspace"] for r in c["rows"]]) for c in doc["conflicts"]]
    assert listed == [
        (tc.table, dict(g.key), [r.workspace for r in g.rows])
        for tc, groups in zip(plan.conflicts, expected, strict=True)
        for g in groups
    ]
    assert len(listed) == doc["conflict_count"] == 35
    assert verbose.exit_code == ExitStatus.CONFLICTS
    assert [line.split('"')[1] for line in verbose.stdout.splitlines() if line.startswith('  name="exp-')] == [
        f"exp-{i:02d}" for i in range(30)
    ]
    assert mlflow_db.fingerprint() == before
