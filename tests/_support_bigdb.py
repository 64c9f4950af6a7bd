"""Build an MLflow database big enough that apply takes a second or more (crash and concurrency tests).

Rows are deterministic, so two databases built with the same size hold the same rows: exactly the rows the
former row-by-row SampleData build inserted (the same columns given, the same values, in the same order), but
made by the database itself, one ``INSERT ... SELECT`` per table over a generated series of numbers.  Parents
are inserted before their children (PostgreSQL/MySQL enforce the registered_models -> model_versions ->
model_version_tags foreign keys on insert).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .helpers import sample_data

WORKSPACES = ("team-a", "team-b", "team-c", "default")

#: The numbers 0 to :last, as column n: three digits 0-99 (MariaDB stops a recursion at 1,000 rows) make up to
#: 999,999, and only the hundreds of thousands needed are joined in.
_NUMBERS = (
    "WITH RECURSIVE d (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM d WHERE i < 99), "
    "s (n) AS (SELECT a.i * 10000 + b.i * 100 + c.i FROM d a CROSS JOIN d b CROSS JOIN d c "
    "WHERE a.i <= :hi AND a.i * 10000 + b.i * 100 + c.i <= :last) "
)
#: WORKSPACES[n % 4]
_WORKSPACE = "CASE s.n % 4 WHEN 0 THEN 'team-a' WHEN 1 THEN 'team-b' WHEN 2 THEN 'team-c' ELSE 'default' END"
#: Each table's columns as the row-by-row build gave them; every other column is nullable or has a default.
_COLUMNS = {
    "experiments": ("experiment_id", "name", "workspace", "lifecycle_stage"),
    "registered_models": ("workspace", "name"),
    "model_versions": ("workspace", "name", "version"),
    "model_version_tags": ("workspace", "name", "version", "key"),
}


def build_big(conn: Connection, experiments: int) -> int:
    """Experiments plus half as many registered models, each with 2 versions and 2 version tags.  Returns
    the number of rows outside `default` (3 in 4 rows sit in a team workspace)."""
    models = experiments // 2
    quote = conn.dialect.identifier_preparer.quote
    mysql = conn.dialect.name in ("mysql", "mariadb")

    def named(prefix: str) -> str:
        return f"CONCAT('{prefix}', s.n)" if mysql else f"('{prefix}' || s.n)"

    with sample_data(conn) as data:
        for ws in WORKSPACES[:3]:
            data.workspace(ws)
        for table, columns in _COLUMNS.items():
            # Nothing left for SampleData to generate: these columns are all a row needs.
            assert set(data.row(table, **dict.fromkeys(columns, 1))) == set(columns), table
    versions = "(SELECT 1 AS v UNION ALL SELECT 2) v"
    selects = {
        # SampleData.experiment numbers experiments from 1,000,001
        "experiments": (f"1000001 + s.n, {named('exp-')}, {_WORKSPACE}, 'active' FROM s", experiments),
        "registered_models": (f"{_WORKSPACE}, {named('model-')} FROM s", models),
        "model_versions": (f"{_WORKSPACE}, {named('model-')}, v.v FROM s CROSS JOIN {versions}", models),
        "model_version_tags": (f"{_WORKSPACE}, {named('model-')}, v.v, 'k' FROM s CROSS JOIN {versions}", models),
    }
    for table, (select, count) in selects.items():
        if not count:
            continue
        columns = ", ".join(quote(c) for c in _COLUMNS[table])
        order = "s.n, v.v" if "v.v" in select else "s.n"
        conn.execute(
            text(f"INSERT INTO {table} ({columns}) {_NUMBERS}SELECT {select} ORDER BY {order}"),
            {"hi": (count - 1) // 10000, "last": count - 1},
        )
    total = experiments + models * 5
    return total - sum(1 for i in range(experiments) if i % 4 == 3) - 5 * sum(1 for i in range(models) if i % 4 == 3)
