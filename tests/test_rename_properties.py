"""Property test for --rename-conflicts: for random names and workspaces (hostile punctuation, names that differ
only in case or a trailing space, which MariaDB's collation folds together), the renamed result satisfies every
unique index, and the database ends up holding exactly the names the plan predicted."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from sqlalchemy import text

from mlflow_ws_admin.db.connect import create_db_engine, resolve_target
from mlflow_ws_admin.db.schema import reflect_schema
from mlflow_ws_admin.engine.apply import apply_plan
from mlflow_ws_admin.engine.move import Move, RenamePolicy
from mlflow_ws_admin.engine.plan import build_plan
from mlflow_ws_admin.engine.rename_template import RenameTemplate

from .test_properties import TABLES, _reset, _rows, _totals, comparison_key, entries

POLICY = RenamePolicy(RenameTemplate.parse("{name}.{workspace}.{n}"), "oldest")


def _state(conn) -> dict[str, list[tuple[str, str]]]:
    return {t: sorted(tuple(r) for r in conn.execute(text(f"SELECT workspace, name FROM {t}"))) for t in TABLES}


def test_renamed_names_satisfy_every_unique_index_as_planned(mlflow_db, backend: str) -> None:
    target = resolve_target(mlflow_db.uri)
    engine = create_db_engine(target, read_only=False)
    with engine.connect() as conn:
        schema = reflect_schema(conn)
    move = Move(rename=POLICY)
    renamed_any = []

    @settings(
        max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(drawn=entries)
    def check(drawn: list) -> None:
        rows = _rows(backend, drawn)
        with mlflow_db.engine.begin() as conn:
            _reset(conn, rows)
        # Idle pooled connections (this reset's, the last example's plan reader's) would be other sessions, which
        # the plan watches for a second before it counts them.
        mlflow_db.engine.dispose()
        engine.dispose()
        with engine.connect() as conn:
            totals = _totals(conn)
            before = _state(conn)
            plan = build_plan(conn, schema, database=target.display, sample_limit=None, move=move)
        assert plan.renames is not None and not plan.renames.refused
        assert not plan.has_blocking_conflicts

        apply_plan(engine, plan, lock_timeout_s=10)

        # What the plan predicted: every row in `default`, the renamed ones under their new names.
        new_names = {(r.table, r.workspace, r.old): r.new for r in plan.renames.renames}
        expected = {
            t: sorted(("default", new_names.get((t, ws, name), name)) for ws, name in pairs)
            for t, pairs in before.items()
        }
        with engine.connect() as conn:
            after = _state(conn)
            assert _totals(conn) == totals
        assert after == expected
        for t, pairs in after.items():
            keys = [comparison_key(backend, name) for _, name in pairs]
            assert len(keys) == len(set(keys)), f"{t}: two names the unique index calls equal"
        renamed_any.append(len(new_names))

    try:
        check()
    finally:
        engine.dispose()
    assert any(renamed_any), "no example renamed anything: the property never ran"
