"""Concurrent writers: apply's locks keep a live MLflow writer from slipping a row past the move, and a lock
that is never released makes apply give up on time (exit 3), naming the holder where the database can tell."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import create_engine, text

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.connect import create_db_engine, resolve_target
from mlflow_ws_admin.db.schema import reflect_schema
from mlflow_ws_admin.engine.apply import ApplyExtras, apply_plan
from mlflow_ws_admin.engine.plan import build_plan

from ._support_bigdb import build_big
from .helpers import migrate, populate

INSERT = (
    "INSERT INTO experiments (experiment_id, name, lifecycle_stage, workspace) VALUES (:id, :name, 'active', 'team-a')"
)
WRITER_ID = 9_000_000


@dataclass
class Writer:
    """Inserts one experiment into `team-a` per transaction, as an MLflow server would, until stopped."""

    db: object
    #: (row number, started, committed) with monotonic times
    done: list[tuple[int, float, float]] = field(default_factory=list)
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            if self.db.backend == "sqlite":
                self._run_sqlite()
            else:
                self._run_server()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _insert_all(self, insert_one) -> None:
        i = 0
        while not self.stop.is_set():
            started = time.monotonic()
            insert_one({"id": WRITER_ID + i, "name": f"writer-{i}"})
            self.done.append((i, started, time.monotonic()))
            i += 1
            # A breath between requests, as a server has: SQLite's busy handler is not fair, so a writer
            # that never lets go would starve apply's BEGIN IMMEDIATE until its timeout.
            time.sleep(0.002)

    def _run_sqlite(self) -> None:
        # BEGIN IMMEDIATE: a deferred writer holding a read lock could deadlock with apply's commit.
        conn = sqlite3.connect(str(self.db.path), timeout=60, isolation_level=None)
        sql = INSERT.replace(":id", "?").replace(":name", "?")

        def insert_one(row: dict) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, (row["id"], row["name"]))
            conn.execute("COMMIT")

        try:
            self._insert_all(insert_one)
        finally:
            conn.close()

    def _run_server(self) -> None:
        engine = create_engine(self.db.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                self._insert_all(lambda row: conn.execute(text(INSERT), row))
        finally:
            engine.dispose()


def test_concurrent_writer_loses_nothing_and_slips_nothing_past_apply(mlflow_db) -> None:
    with mlflow_db.engine.begin() as conn:
        build_big(conn, 10_000)
    target = resolve_target(mlflow_db.uri)
    engine = create_db_engine(target, read_only=False)
    with engine.connect() as conn:
        plan = build_plan(conn, reflect_schema(conn), database=target.display)

    writer = Writer(mlflow_db)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    while len(writer.done) < 20 and thread.is_alive():
        time.sleep(0.01)
    moved_at: list[float] = []
    try:
        # The writer is another session on purpose: the locks, not the session check, are what is tested.
        apply_plan(
            engine,
            plan,
            lock_timeout_s=60,
            on_table=lambda *_: moved_at.append(time.monotonic()),
            extras=ApplyExtras(ignore_other_sessions=True),
        )
        applied = time.monotonic()
        rows_at_apply = len(writer.done)
        while len(writer.done) < rows_at_apply + 20 and thread.is_alive():
            time.sleep(0.01)
    finally:
        writer.stop.set()
        thread.join(timeout=120)
        engine.dispose()
    assert writer.error is None, repr(writer.error)
    first_move, last_move = moved_at[0], moved_at[-1]

    # Nothing lost: every committed insert is there, and nothing else was added or removed.
    names = {r[0]: r[1] for r in _writer_rows(mlflow_db)}
    assert sorted(names) == sorted(f"writer-{i}" for i, _, _ in writer.done)
    # The locks held the writer: no insert committed while apply was moving rows ...
    assert not [i for i, _, committed in writer.done if first_move < committed < last_move]
    # ... one that started before apply's last UPDATE waited until after it ...
    assert [i for i, started, committed in writer.done if started < last_move and committed > last_move]
    # ... and every row committed before apply's last UPDATE is in `default`; later ones are legitimately
    # new team-a rows (the server kept writing after the move).
    before = [f"writer-{i}" for i, _, committed in writer.done if committed < last_move]
    after = [f"writer-{i}" for i, started, _ in writer.done if started > applied]
    assert before and after
    assert {names[n] for n in before} == {"default"}
    assert {names[n] for n in after} == {"team-a"}
    # Apply's own rows all moved.
    assert mlflow_db.scalar("SELECT COUNT(*) FROM model_version_tags WHERE workspace <> 'default'") == 0
    assert mlflow_db.scalar("SELECT COUNT(*) FROM experiments WHERE workspace <> 'default' AND name LIKE 'exp-%'") == 0


def _writer_rows(db) -> list[tuple[str, str]]:
    with db.engine.connect() as conn:
        return list(conn.execute(text("SELECT name, workspace FROM experiments WHERE name LIKE 'writer-%'")))


LOCK_TIMEOUT_S = 2.0


def _hold_lock(db):
    """A second session holding a write lock on `experiments` (an uncommitted MLflow insert)."""
    if db.backend == "sqlite":
        conn = sqlite3.connect(str(db.path), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        return conn, None, conn.rollback
    engine = create_engine(db.url)
    conn = engine.connect()
    if db.backend == "postgresql":
        conn.execute(text("SET application_name = 'mwa-test-holder'"))
        who = f"pid {conn.execute(text('SELECT pg_backend_pid()')).scalar()}"
    else:
        who = f"connection {conn.execute(text('SELECT CONNECTION_ID()')).scalar()}"
    conn.execute(text(INSERT), {"id": WRITER_ID, "name": "held"})

    def release() -> None:
        conn.rollback()
        conn.close()
        engine.dispose()

    return conn, who, release


def test_held_lock_makes_apply_exit_3_on_time_naming_the_holder(mlflow_db, backend: str) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()
    _, who, release = _hold_lock(mlflow_db)
    try:
        started = time.monotonic()
        result = migrate(mlflow_db.uri, "-y", "--lock-timeout", str(LOCK_TIMEOUT_S), "--ignore-other-sessions")
        elapsed = time.monotonic() - started
    finally:
        release()

    assert result.exit_code == ExitStatus.DATABASE_ERROR, result.output
    error = result.stderr.strip()
    assert error.count("\n") == 0 and "Traceback" not in result.output
    assert error.startswith("Error: timed out waiting for table locks while applying (rolled back")
    # Bounded: waited for the timeout, then gave up (plan + connection overhead well under 10 s).
    assert LOCK_TIMEOUT_S * 0.9 <= elapsed < LOCK_TIMEOUT_S + 10, elapsed
    if backend == "postgresql":
        assert f"blocked by {who} (user postgres, application 'mwa-test-holder', idle in transaction" in error
        assert "experiments RowExclusiveLock" in error
    elif backend == "mysql":
        assert f"{who} (root@" in error and "in a transaction" in error
    else:
        assert "blocked by" not in error  # SQLite cannot tell who holds its lock
    assert mlflow_db.fingerprint() == before
