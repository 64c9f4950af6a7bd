"""A tracking server still connected to the database: dry run and preflight warn, apply and restore refuse."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import create_engine, text

from mlflow_ws_admin.common.errors import ExitStatus

from .helpers import migrate, populate, run_cli


def test_sqlite_says_it_cannot_tell(mlflow_db) -> None:
    if mlflow_db.backend != "sqlite":
        pytest.skip("sqlite_only: servers can tell")
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    dry = migrate(mlflow_db.uri, "--dry-run")
    doc = json.loads(migrate(mlflow_db.uri, "--dry-run", "--format", "json").stdout)

    assert dry.exit_code == ExitStatus.OK
    assert "SQLite cannot tell whether a tracking server still uses this file" in dry.stdout
    assert doc["other_sessions"] is None
    assert mlflow_db.fingerprint() == before


def test_a_connected_session_makes_apply_and_restore_refuse(mlflow_db, tmp_path) -> None:
    if mlflow_db.backend == "sqlite":
        pytest.skip("SQLite cannot tell which processes have the file open")
    populate(mlflow_db)
    server = create_engine(
        mlflow_db.url, connect_args={"application_name": "gunicorn"} if mlflow_db.backend == "postgresql" else {}
    )
    held = server.connect()  # a tracking server's idle pooled connection
    held.execute(text("SELECT 1"))
    try:
        before = mlflow_db.fingerprint()
        dry = migrate(mlflow_db.uri, "--dry-run")
        doc = json.loads(migrate(mlflow_db.uri, "--dry-run", "--format", "json").stdout)
        refused = migrate(mlflow_db.uri, "-y")

        assert dry.exit_code == ExitStatus.OK, dry.output
        assert "Warning: 1 other session(s) are connected to this database" in dry.stdout
        assert len(doc["other_sessions"]) == 1
        assert refused.exit_code == ExitStatus.DATABASE_ERROR, refused.output
        assert "1 other session(s) are connected to this database" in refused.stderr
        assert "--ignore-other-sessions" in refused.stderr
        if mlflow_db.backend == "postgresql":
            assert "application 'gunicorn'" in refused.stderr
        assert mlflow_db.fingerprint() == before

        journal = tmp_path / "move.jsonl"
        applied = migrate(mlflow_db.uri, "-y", "--ignore-other-sessions", "--journal", str(journal))
        assert applied.exit_code == ExitStatus.OK, applied.output
        assert mlflow_db.outside_default("experiments") == 0

        back = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y")
        assert back.exit_code == ExitStatus.DATABASE_ERROR and "other session(s)" in back.stderr
        assert mlflow_db.outside_default("experiments") == 0
    finally:
        held.close()
        server.dispose()

    back = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y")
    assert back.exit_code == ExitStatus.OK, back.output
    assert mlflow_db.outside_default("experiments") == 9


def test_a_session_that_is_closing_does_not_count(mlflow_db) -> None:
    """A client that just disconnected stays listed by the server for a moment (seen on PostgreSQL, where
    pg_stat_activity is also a per-transaction snapshot): it must not make apply refuse, while one that
    stays connected must (the test above)."""
    if mlflow_db.backend == "sqlite":
        pytest.skip("SQLite cannot tell which processes have the file open")
    from mlflow_ws_admin.db.dialects import for_backend

    dialect = for_backend(mlflow_db.backend)
    leaving = create_engine(mlflow_db.url)
    looking = create_engine(mlflow_db.url)
    held = leaving.connect()
    held.execute(text("SELECT 1"))
    closer = threading.Timer(0.3, lambda: (held.close(), leaving.dispose()))
    try:
        with looking.connect() as conn, conn.begin():
            assert len(dialect.list_sessions(conn)) == 1  # seen at first look, as a closing one would be
            closer.start()
            assert dialect.other_sessions(conn) == []
    finally:
        closer.join()
        looking.dispose()
