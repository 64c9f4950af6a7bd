"""SQLite apply drops the plain secondary indexes on the workspace column of a table whose rows mostly move and
re-creates them after that table's UPDATE (``SQLiteDialect.suspend_indexes``): every index and its ANALYZE
statistics come back exactly, a refused move or a crash mid-move leaves them as they were, and no index that can
refuse a row (unique) is ever dropped.  The row threshold is lowered here so that small databases take the path;
bench/bench.py measures the speed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import create_engine

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.dialects.sqlite import SQLiteDialect, SuspendedIndex

from .helpers import migrate, populate

pytestmark = pytest.mark.sqlite_only


@pytest.fixture
def dropped(monkeypatch) -> list[str]:
    """The index names apply drops, in order; every table is big enough for the path."""
    names: list[str] = []
    suspend = SQLiteDialect.suspend_indexes

    def spy(self, *args, **kwargs) -> tuple[SuspendedIndex, ...]:
        found = suspend(self, *args, **kwargs)
        names.extend(index.name for index in found)
        return found

    monkeypatch.setattr(SQLiteDialect, "REBUILD_INDEX_MIN_ROWS", 1)
    monkeypatch.setattr(SQLiteDialect, "suspend_indexes", spy)
    return names


def _schema_and_stats(db) -> tuple[list[tuple], list[tuple]]:
    with db.engine.connect() as conn:
        indexes = conn.exec_driver_sql(
            "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
        ).all()
        stats = conn.exec_driver_sql("SELECT tbl, idx, stat FROM sqlite_stat1 ORDER BY tbl, idx").all()
    return [tuple(r) for r in indexes], [tuple(r) for r in stats]


def _integrity(db) -> str:
    with db.engine.connect() as conn:
        return "; ".join(r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check"))


def test_indexes_dropped_for_a_large_move_come_back_exactly(mlflow_db, dropped) -> None:
    populate(mlflow_db)  # three of the four workspaces move: three quarters of each table's rows
    mlflow_db.execute("ANALYZE")
    indexes, stats = _schema_and_stats(mlflow_db)

    result = migrate(mlflow_db.uri, "-y")

    assert result.exit_code == ExitStatus.OK, result.output
    assert {"idx_experiments_workspace", "idx_experiments_workspace_creation_time"} <= set(dropped)
    by_name = {name: sql for _, name, sql in indexes}
    assert all(by_name[name].startswith("CREATE INDEX") for name in dropped)  # never a unique one
    assert any(idx in dropped for _, idx, _ in stats)  # statistics that DROP INDEX deleted
    assert _schema_and_stats(mlflow_db) == (indexes, stats)
    assert _integrity(mlflow_db) == "ok"
    assert all(mlflow_db.outside_default(t) == 0 for t in ("experiments", "registered_models", "model_versions"))


def test_a_refused_move_puts_the_dropped_indexes_back(mlflow_db, dropped) -> None:
    # The models collide: experiments (before them in FK order) was moved with its indexes rebuilt, and
    # registered_models' own index was dropped, when its UPDATE is refused.  Everything rolls back.
    def fill(data) -> None:
        data.registered_model("team-a", "fraud", versions=2)
        data.registered_model("team-c", "fraud", versions=1)

    populate(mlflow_db, fill)
    mlflow_db.execute("ANALYZE")
    indexes, stats = _schema_and_stats(mlflow_db)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "-y")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert "registered_models (name): 1" in result.stderr
    assert {"idx_experiments_workspace", "idx_registered_models_workspace"} <= set(dropped)
    assert mlflow_db.fingerprint() == before  # the file, byte for byte
    assert _schema_and_stats(mlflow_db) == (indexes, stats)


#: Apply in a child process, SIGKILLed as it re-creates experiments' indexes: they are dropped, the table's
#: rows moved, nothing committed.  The smallest page cache makes SQLite write the move into the file already
#: (the rollback journal holds the original pages), so the next reader must roll it back; the artifact check
#: reads on the locked connection, since a second reader's lock would keep SQLite from writing early.
_KILLED_APPLY = textwrap.dedent(
    """
    import os, signal, sys
    from mlflow_ws_admin.cli.main import main
    from mlflow_ws_admin.db.dialects import sqlite

    sqlite.SQLiteDialect.REBUILD_INDEX_MIN_ROWS = 1
    sqlite.apply_cache_kib = lambda path: 1
    sqlite.SQLiteDialect.other_sessions_read_locked_tables = False
    restore = sqlite.SQLiteDialect.restore_indexes

    def killed(self, conn, suspended):
        if any(index.name.startswith("idx_experiments_") for index in suspended):
            os.kill(os.getpid(), signal.SIGKILL)
        restore(self, conn, suspended)

    sqlite.SQLiteDialect.restore_indexes = killed
    main.main(args=["db", "migrate-to-default-workspace", sys.argv[1], "-y"], standalone_mode=False)
    """
)


def test_sigkill_while_indexes_are_dropped_changes_nothing(mlflow_db) -> None:
    populate(mlflow_db)
    mlflow_db.execute("ANALYZE")
    indexes, stats = _schema_and_stats(mlflow_db)
    before = mlflow_db.fingerprint()
    original = mlflow_db.path.read_bytes()

    proc = subprocess.run([sys.executable, "-c", _KILLED_APPLY, mlflow_db.uri], capture_output=True, timeout=120)

    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert b"Ready:" in proc.stdout  # killed inside apply, not before it
    journal = mlflow_db.path.with_name(mlflow_db.path.name + "-journal")
    assert journal.exists() and mlflow_db.path.read_bytes() != original, "the kill left nothing to roll back"
    assert mlflow_db.dump() == before[1]  # the first reader rolls the hot journal back
    assert mlflow_db.fingerprint() == before
    assert _schema_and_stats(mlflow_db) == (indexes, stats)
    assert _integrity(mlflow_db) == "ok"


def test_only_plain_indexes_on_the_moving_column_are_dropped(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(SQLiteDialect, "REBUILD_INDEX_MIN_ROWS", 1)
    engine = create_engine(f"sqlite:///{tmp_path / 't.db'}")
    dialect = SQLiteDialect()
    schema = [
        "CREATE TABLE t (id INTEGER PRIMARY KEY, workspace TEXT, name TEXT, x INTEGER, UNIQUE (workspace, x))",
        "CREATE INDEX t_ws ON t (workspace)",
        "CREATE INDEX t_name_ws ON t (name, workspace)",
        "CREATE INDEX t_name ON t (name)",
        "CREATE UNIQUE INDEX t_unique ON t (workspace, name)",
        "CREATE INDEX t_partial ON t (workspace) WHERE x > 0",
        "CREATE INDEX t_expression ON t (lower(workspace))",
    ]
    try:
        with engine.begin() as conn:
            for sql in schema:
                conn.exec_driver_sql(sql)
            rows = [("default" if i <= 2 else "team-a", f"n{i}", i) for i in range(1, 11)]  # 8 of 10 move
            conn.exec_driver_sql("INSERT INTO t (workspace, name, x) VALUES (?, ?, ?)", rows)
        listed = "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
        with engine.connect() as conn, conn.begin():
            before = conn.exec_driver_sql(listed).all()
            found = dialect.suspend_indexes(conn, "t", ("workspace",), 8)
            assert [index.name for index in found] == ["t_name_ws", "t_ws"]
            left = {name for name, _ in conn.exec_driver_sql(listed)}
            assert left == {name for name, _ in before} - {"t_name_ws", "t_ws"}
            dialect.restore_indexes(conn, found)
            assert conn.exec_driver_sql(listed).all() == before
            # Too few of the rows move (4 of 10, under half), or too few at all: nothing is dropped.
            assert dialect.suspend_indexes(conn, "t", ("workspace",), 4) == ()
            monkeypatch.setattr(SQLiteDialect, "REBUILD_INDEX_MIN_ROWS", 9)
            assert dialect.suspend_indexes(conn, "t", ("workspace",), 8) == ()
            monkeypatch.setattr(SQLiteDialect, "REBUILD_INDEX_MIN_ROWS", 1)
            # A table with a trigger keeps every index (its statements may need them for each row).
            conn.exec_driver_sql("CREATE TRIGGER t_touch AFTER UPDATE ON t BEGIN SELECT 1; END")
            assert dialect.suspend_indexes(conn, "t", ("workspace",), 8) == ()
            assert conn.exec_driver_sql(listed).all() == before
    finally:
        engine.dispose()
