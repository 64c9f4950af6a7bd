"""Least privilege: a PostgreSQL role / MySQL user with only SELECT can preflight and dry-run; apply refuses
with one line naming the missing privilege (exit 3), before locking or changing anything."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.schema import reflect_schema

from .helpers import migrate, populate, run_cli

PASSWORD = "Ro-pass-7f3a9c"


@pytest.fixture
def select_only_uri(mlflow_db, backend: str) -> Iterator[str]:
    """The scratch database's URI as a freshly created user that may only SELECT (dropped afterwards)."""
    if backend == "sqlite":
        pytest.skip("SQLite has no users or privileges")
    user = f"mwa_ro_{uuid.uuid4().hex[:8]}"
    database = mlflow_db.url.database
    admin = create_engine(mlflow_db.url, isolation_level="AUTOCOMMIT")
    if backend == "postgresql":
        setup = [
            f"CREATE ROLE {user} LOGIN PASSWORD '{PASSWORD}'",
            f'GRANT CONNECT ON DATABASE "{database}" TO {user}',
            f"GRANT USAGE ON SCHEMA public TO {user}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user}",
        ]
        teardown = [f"DROP OWNED BY {user}", f"DROP ROLE {user}"]
        host = f"{user}:{PASSWORD}@{mlflow_db.url.host}:{mlflow_db.url.port or 5432}"
        scheme = "postgresql"
    else:
        setup = [
            f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'",
            f"GRANT SELECT ON `{database}`.* TO '{user}'@'%'",
        ]
        teardown = [f"DROP USER '{user}'@'%'"]
        host = f"{user}:{PASSWORD}@{mlflow_db.url.host}:{mlflow_db.url.port or 3306}"
        scheme = "mysql"
    with admin.connect() as conn:
        for sql in setup:
            conn.execute(text(sql))
    try:
        yield f"{scheme}://{host}/{database}"
    finally:
        with admin.connect() as conn:
            if backend == "postgresql":  # its sessions must end before the role can go
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :u"), {"u": user}
                )
            for sql in teardown:
                conn.execute(text(sql))
        admin.dispose()


def test_select_only_user_can_dry_run(mlflow_db, select_only_uri: str) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    result = migrate(select_only_uri, "--dry-run")

    assert result.exit_code == ExitStatus.OK, result.output
    assert "would move to `default`" in result.stdout
    assert PASSWORD not in result.output
    assert mlflow_db.fingerprint() == before


def test_select_only_user_can_preflight(mlflow_db, select_only_uri: str) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    result = run_cli("db", "preflight", select_only_uri)

    assert result.exit_code in (ExitStatus.OK, ExitStatus.CONFLICTS), result.output
    assert "Error:" not in result.output and "denied" not in result.output.lower()
    assert PASSWORD not in result.output
    assert mlflow_db.fingerprint() == before


def test_select_only_user_apply_names_the_missing_privilege(mlflow_db, select_only_uri: str) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    result = migrate(select_only_uri, "-y")

    assert result.exit_code == ExitStatus.DATABASE_ERROR, result.output
    error = result.stderr.strip()
    assert error.count("\n") == 0 and "Traceback" not in result.output
    assert error.startswith("Error: the database user needs UPDATE privilege on ")
    assert error.endswith("; nothing was changed")
    named = error.removeprefix("Error: the database user needs UPDATE privilege on ").split(";")[0].split(", ")
    assert named == sorted(_tables_of(mlflow_db)), "every workspace table and the catalog, once each"
    assert PASSWORD not in result.output
    assert mlflow_db.fingerprint() == before


def test_update_on_some_tables_names_only_the_rest(mlflow_db, select_only_uri: str, backend: str) -> None:
    populate(mlflow_db)
    user = select_only_uri.split("//")[1].split(":")[0]
    grantee = user if backend == "postgresql" else f"'{user}'@'%'"
    database = mlflow_db.url.database
    everything_but_jobs = [t for t in _tables_of(mlflow_db) if t != "jobs"]
    for table in everything_but_jobs:
        on = table if backend == "postgresql" else f"`{database}`.`{table}`"
        mlflow_db.execute(f"GRANT UPDATE ON {on} TO {grantee}")
    before = mlflow_db.fingerprint()

    result = migrate(select_only_uri, "-y")

    assert result.exit_code == ExitStatus.DATABASE_ERROR, result.output
    assert result.stderr.strip() == "Error: the database user needs UPDATE privilege on jobs; nothing was changed"
    assert mlflow_db.fingerprint() == before


def _tables_of(db) -> list[str]:
    """The workspace tables and the catalog: what apply updates."""
    with db.engine.connect() as conn:
        schema = reflect_schema(conn)
    return [t.name for t in schema.tables] + [schema.catalog.table]
