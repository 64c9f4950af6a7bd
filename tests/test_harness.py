"""The suite's own shortcuts must never hide a difference: reflected tables are reused only between databases
whose schema is exactly the same (tests/helpers.py, `sample_data`), the crash tests' database state (a digest
of every table's rows on a server, tests/test_crash.py `_state`) changes with any row, and the "nothing changed"
witness counts every table (on PostgreSQL it counts only tables whose file holds something).  And the CLI processes the
tests start load no CA bundle (tests/conftest.py: PyMySQL would load it on every connection)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import inspect

from .conftest import row_counts
from .helpers import populate, sample_data, schema_digest
from .test_crash import _state

#: Schema changes a reused table would miss, per backend (SQLite alters little in place).
CHANGES = {
    "added column": {
        b: "ALTER TABLE experiments ADD COLUMN planted INTEGER" for b in ("sqlite", "postgresql", "mysql")
    },
    "dropped column": {b: "ALTER TABLE experiments DROP COLUMN artifact_location" for b in ("sqlite", "postgresql")}
    | {"mysql": "ALTER TABLE experiments DROP COLUMN artifact_location"},
    "longer type": {
        "postgresql": "ALTER TABLE experiments ALTER COLUMN artifact_location TYPE VARCHAR(999)",
        "mysql": "ALTER TABLE experiments MODIFY artifact_location VARCHAR(999)",
    },
    "new default": {
        "postgresql": "ALTER TABLE experiments ALTER COLUMN artifact_location SET DEFAULT 'x'",
        "mysql": "ALTER TABLE experiments ALTER artifact_location SET DEFAULT 'x'",
    },
    "dropped not null": {
        "postgresql": "ALTER TABLE experiments ALTER COLUMN name DROP NOT NULL",
        "mysql": "ALTER TABLE experiments MODIFY name VARCHAR(256) NULL",
    },
}


def _columns(table) -> list[tuple]:
    return [(c.name, repr(c.type), c.nullable, str(getattr(c.server_default, "arg", None))) for c in table.columns]


@pytest.mark.parametrize("change", CHANGES)
def test_sample_data_reuses_tables_only_for_the_same_schema(backend: str, mlflow_db, source_db, change) -> None:
    if backend not in CHANGES[change]:
        pytest.skip(f"{backend} cannot make this change in place")
    with mlflow_db.engine.connect() as conn:
        reused = sample_data(conn).table("experiments")
    with source_db.engine.connect() as conn:
        assert sample_data(conn).table("experiments") is reused  # a copy of the same template: reused
    source_db.execute(CHANGES[change][backend])
    with source_db.engine.connect() as conn:
        table = sample_data(conn).table("experiments")
        fresh = sample_data(conn).__class__(conn).table("experiments")  # reflected anew, no reuse
    assert table is not reused
    assert _columns(table) == _columns(fresh) != _columns(reused)


def test_another_schema_is_never_served_mlflow_tables(backend: str, mlflow_db, auth_db) -> None:
    with mlflow_db.engine.connect() as conn:
        mlflow_digest, mlflow_meta = schema_digest(conn), sample_data(conn).meta
        sample_data(conn).table("experiments")
    with auth_db.engine.connect() as conn:
        assert schema_digest(conn) != mlflow_digest
        data = sample_data(conn)
    assert data.meta is not mlflow_meta and "experiments" not in data.meta.tables


def _set(column: str, values: dict[str, str | None]) -> str:
    cases = " ".join(f"WHEN '{name}' THEN {'NULL' if v is None else repr(v)}" for name, v in values.items())
    names = ", ".join(f"'{name}'" for name in values)
    return f"UPDATE experiments SET {column} = CASE name {cases} END WHERE name IN ({names})"


A, B = "team-a-exp-0", "team-b-exp-0"
#: (change, undo), from A's artifact_location 'x,y' and B's NULL: each change keeps every count but the last.
ROW_CHANGES = {
    "one value": (_set("artifact_location", {A: "x,Y"}), _set("artifact_location", {A: "x,y"})),
    "values swapped between two rows": (
        _set("artifact_location", {A: None, B: "x,y"}),
        _set("artifact_location", {A: "x,y", B: None}),
    ),
    "an empty string for NULL": (_set("artifact_location", {B: ""}), _set("artifact_location", {B: None})),
    "text moved across a column boundary": (
        f"UPDATE experiments SET name = '{A},x', artifact_location = 'y' WHERE name = '{A}'",
        f"UPDATE experiments SET name = '{A}', artifact_location = 'x,y' WHERE name = '{A},x'",
    ),
    "an extra row": (
        "INSERT INTO experiments (experiment_id, name, workspace, lifecycle_stage) VALUES (7, 'extra', 'default', "
        "'active')",
        "DELETE FROM experiments WHERE experiment_id = 7",
    ),
}


@pytest.mark.parametrize("change", ROW_CHANGES)
def test_the_crash_tests_state_changes_with_any_row(backend: str, mlflow_db, change: str) -> None:
    populate(mlflow_db)
    mlflow_db.execute(_set("artifact_location", {A: "x,y", B: None}))
    before = _state(mlflow_db)
    assert _state(mlflow_db) == before
    change, undo = ROW_CHANGES[change]
    mlflow_db.execute(change)
    changed = _state(mlflow_db)
    assert changed != before and repr(changed) != repr(before)  # the message shows it too
    mlflow_db.execute(undo)
    assert _state(mlflow_db) == before


def test_row_counts_are_every_tables_own_count(mlflow_db) -> None:
    """A table never written, one written and emptied again, one written: each counted as COUNT(*) counts it."""

    def fill(data) -> None:
        data.job("default")
        data.webhook("default", "hook")

    populate(mlflow_db, fill)
    mlflow_db.execute("DELETE FROM webhooks")
    with mlflow_db.engine.connect() as conn:
        names = inspect(conn).get_table_names()
        each = {n: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {conn.dialect.identifier_preparer.quote(n)}").scalar()
                for n in names}  # fmt: skip
        counted = row_counts(conn)
    assert counted == each and list(counted) == sorted(names)
    assert counted["jobs"] > 0 and counted["webhooks"] == 0 and counted["experiments"] > 0
    assert any(n == 0 for n in counted.values())


def test_cli_processes_load_no_ca_bundle() -> None:
    probe = "import ssl; print(ssl.create_default_context().cert_store_stats()['x509_ca'])"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "0"
