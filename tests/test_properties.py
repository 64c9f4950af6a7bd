"""Property test: for random multi-workspace contents with hostile names and planted collisions, the plan's
conflicts are exactly what a brute-force Python model of the backend's comparison rules predicts; so are the
collisions the unique indexes refuse when ``-y`` leaves them to apply (rolled back, counted exactly); a
conflict-free plan applies with nothing left outside `default`; row totals never change.

The alphabet is ASCII letters of both cases, digits and hostile ASCII punctuation (quotes, `;`, `%`, `_`,
backslash, brackets, space).  Over it the model is exact: SQLite and PostgreSQL compare bytes; MariaDB's
default utf8mb4_general_ci folds ASCII case and ignores trailing spaces (PAD SPACE).  Non-ASCII letters are
left out on purpose: general_ci also folds accents and weighs all 4-byte characters alike, which this model
does not try to reproduce (the bad-input corpus covers 4-byte names).
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from mlflow_ws_admin.common.errors import ConflictsAppeared
from mlflow_ws_admin.db.connect import create_db_engine, resolve_target
from mlflow_ws_admin.db.schema import reflect_schema
from mlflow_ws_admin.engine.apply import apply_plan
from mlflow_ws_admin.engine.plan import build_plan

from .helpers import sample_data

ALPHABET = "aAbBzZ09'\";%_\\[] "
WORKSPACES = ("default", "team-a", "team-b", "w;s%_1", "it's")
TABLES = ("experiments", "registered_models")

names = st.text(alphabet=ALPHABET, min_size=1, max_size=6)
variants = st.sampled_from(["same", "swapcase", "trailing-space"])
entries = st.lists(
    st.tuples(
        st.sampled_from(TABLES),
        names,
        st.sampled_from(WORKSPACES),
        st.none() | st.tuples(st.sampled_from(WORKSPACES), variants),  # a planted near-twin elsewhere
    ),
    max_size=14,
)


def comparison_key(backend: str, name: str) -> str:
    """When two names are equal for the backend's unique index."""
    if backend == "mysql":
        return name.rstrip(" ").lower()
    return name


def _variant(name: str, kind: str) -> str:
    return {"same": name, "swapcase": name.swapcase(), "trailing-space": name + " "}[kind]


def _rows(backend: str, drawn: list) -> dict[str, list[tuple[str, str]]]:
    """(workspace, name) per table, at most one per workspace and comparison key (the index allows no more)."""
    rows: dict[str, list[tuple[str, str]]] = {t: [] for t in TABLES}
    seen: set[tuple[str, str, str]] = set()
    for table, name, ws, twin in drawn:
        candidates = [(ws, name)] + ([(twin[0], _variant(name, twin[1]))] if twin else [])
        for w, n in candidates:
            if (table, w, comparison_key(backend, n)) not in seen:
                seen.add((table, w, comparison_key(backend, n)))
                rows[table].append((w, n))
    return rows


def expected_conflicts(backend: str, rows: dict[str, list[tuple[str, str]]]) -> dict[str, dict[str, set[str]]]:
    """Brute force: comparison key -> workspaces, for keys held by more than one workspace."""
    out = {}
    for table, pairs in rows.items():
        by_key: dict[str, set[str]] = defaultdict(set)
        for ws, name in pairs:
            by_key[comparison_key(backend, name)].add(ws)
        out[table] = {k: wss for k, wss in by_key.items() if len(wss) > 1}
    return out


def _reset(conn, rows: dict[str, list[tuple[str, str]]]) -> None:
    for table in TABLES:
        conn.execute(text(f"DELETE FROM {table}"))
    conn.execute(text("DELETE FROM workspaces WHERE name <> 'default'"))
    with sample_data(conn) as data:
        for ws in WORKSPACES[1:]:
            data.workspace(ws)
        for ws, name in rows["experiments"]:
            data.experiment(ws, name)
        data.flush()
        for ws, name in rows["registered_models"]:
            data.add("registered_models", workspace=ws, name=name)


def _totals(conn) -> dict[str, int]:
    return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in TABLES}


def test_plan_conflicts_match_a_brute_force_model(mlflow_db, backend: str) -> None:
    target = resolve_target(mlflow_db.uri)
    engine = create_db_engine(target, read_only=False)
    with engine.connect() as conn:
        schema = reflect_schema(conn)
    applied = []

    @settings(
        max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(drawn=entries)
    def check(drawn: list) -> None:
        rows = _rows(backend, drawn)
        with mlflow_db.engine.begin() as conn:
            _reset(conn, rows)
        # Each plan's artifact check leaves an idle connection in the engine's pool: gone, or the next plan's
        # look for other sessions (a tracking server) waits its full settle (1 s) on it.  apply disposes too.
        engine.dispose()
        with engine.connect() as conn:
            totals = _totals(conn)
            plan = build_plan(conn, schema, database=target.display, sample_limit=None)

        expected = expected_conflicts(backend, rows)
        found: dict[str, dict[str, set[str]]] = {t: {} for t in TABLES}
        for tc in plan.conflicts:
            assert tc.table in TABLES, tc.table
            assert tc.group_count == len(tc.sample)
            for group in tc.sample:
                (_, value), *_ = group.key
                found[tc.table][comparison_key(backend, value)] = {r.workspace for r in group.rows}
        assert found == expected

        # What -y does: a plan without the conflict scan, the unique indexes refusing during apply.
        engine.dispose()
        with engine.connect() as conn:
            deferred = build_plan(conn, schema, database=target.display, defer_to_apply=True)
        if plan.has_blocking_conflicts:
            with pytest.raises(ConflictsAppeared) as caught:
                apply_plan(engine, deferred, lock_timeout_s=10)
            counted = [f"{t} (name): {len(groups)}" for t, groups in expected.items() if groups]
            assert caught.value.message.endswith("nothing changed: " + "; ".join(counted))
        else:
            apply_plan(engine, deferred, lock_timeout_s=10)
            applied.append(len(drawn))
            with engine.connect() as conn:
                for table in TABLES:
                    assert (
                        conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE workspace <> 'default'")).scalar() == 0
                    )
        with engine.connect() as conn:
            assert _totals(conn) == totals

    try:
        check()
    finally:
        engine.dispose()
    assert applied, "no example was conflict-free: the apply half of the property never ran"
