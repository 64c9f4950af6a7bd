"""The suite's own shortcuts must never hide a difference: reflected tables are reused only between databases
whose schema is exactly the same (tests/helpers.py, `sample_data`)."""

from __future__ import annotations

import pytest

from .helpers import sample_data, schema_digest

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
