"""Crash safety: SIGKILL and SIGINT the real CLI at random points of an apply; the database must not change.

The kill points are random delays inside the apply window, measured first by a complete apply of an
identical database.  The seed is printed (and in every assertion message); set MWA_CRASH_SEED to replay.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import inspect, text

from mlflow_ws_admin.common.errors import ExitStatus

from ._support_bigdb import build_big
from .conftest import NEWEST, _create_scratch
from .helpers import run_cli, table_digests

SEED = int(os.environ.get("MWA_CRASH_SEED", random.SystemRandom().randrange(2**32)))
#: experiments per database: apply (after the plan is printed) took 0.50-0.73 s on the 2-core CI machine with the
#: other crash tests running.  The kill points are fractions of the measured window, so a bigger database proves
#: nothing more (a kill still lands inside the transaction, mostly inside a statement); it only costs more time.
SIZES = {"sqlite": 30_000, "postgresql": 10_000, "mysql": 10_000}
SIGKILLS = 3
SIGINTS = 1
#: Kill points fall in this share of the measured apply window.  The upper bound leaves room for a run that
#: goes faster than the calibration run did (a shared CI machine); one that still finishes first is retried.
WINDOW = (0.05, 0.5)
READY = "Ready:"
BIG_TABLES = (
    "experiments",
    "registered_models",
    "model_versions",
    "model_version_tags",
)  # the summary line printed right before apply starts


def start_cli(args: list[str], ready: str) -> tuple[subprocess.Popen, float]:
    """Start a real CLI process; return once it printed a line starting with ``ready``, with that moment."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow_ws_admin", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(ready):
            return proc, time.monotonic()
    _, err = proc.communicate(timeout=60)
    raise AssertionError(f"{args[1]} never got to {ready!r} (exit {proc.returncode}): {err}")


def _start(uri: str) -> tuple[subprocess.Popen, float]:
    """Start a real apply; return once it printed its plan (apply begins), with that moment."""
    return start_cli(["db", "migrate-to-default-workspace", uri, "-y"], READY)


def _wait_for_server_sessions(db) -> None:
    """A killed client's server session may finish its statement before it notices and rolls back."""
    if db.backend == "sqlite":
        return
    db.engine.dispose()
    sql = {
        "postgresql": "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'mlflow-ws-admin'",
        "mysql": "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()",
    }[db.backend]
    deadline = time.monotonic() + 120
    while db.scalar(sql):
        assert time.monotonic() < deadline, "the killed client's session never ended"
        time.sleep(0.2)


class State:
    """Every table's rows and foreign keys (PostgreSQL apply drops and re-adds some); on SQLite the rows themselves
    and the file's sha256, on a server a count and a digest of each table's rows, and every column's type."""

    def __init__(self, digest: str | None, content: tuple) -> None:
        self.digest = digest
        self.content = content

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and (self is other or self.content == other.content)

    def __repr__(self) -> str:
        """What a failed comparison prints instead of two dumps of 200k rows: per table its row count and a
        digest of its rows, so that the tables that differ stand out."""
        rows, fks, *columns = self.content
        tables = {}
        for table, r in rows.items():
            count, digest = r if isinstance(r, tuple) else (len(r), _sha(r))
            if count:
                tables[table] = f"{count} rows {digest[:8]}"
        return (
            f"State(sha256={self.digest}, {tables}, fks {_sha(fks)}"
            + "".join(f", columns {_sha(c)}" for c in columns)
            + ")"
        )


def _sha(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:8]


#: Every column's type, for the servers' digests (a value's text can outlive a change of its type).
_COLUMNS = {
    "postgresql": "SELECT table_name, column_name, ordinal_position, data_type, character_maximum_length, "
    "numeric_precision, numeric_scale, datetime_precision, is_nullable FROM information_schema.columns "
    "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
    "mysql": "SELECT table_name, column_name, ordinal_position, column_type, is_nullable FROM "
    "information_schema.columns WHERE table_schema = DATABASE() ORDER BY table_name, ordinal_position",
}


def _file_digest(db) -> str | None:
    """The SQLite file's sha256 once no transaction is pending in it (None elsewhere, or if one still is)."""
    if db.backend != "sqlite":
        return None
    db.scalar("SELECT COUNT(*) FROM sqlite_master")  # a reader rolls back a killed writer's hot journal first
    db.engine.dispose()
    # A journal still there after that read is not hot (killed before its header reached the disk, SQLite leaves
    # it zeroed): the file alone holds the database.  A WAL would hold part of it.
    if db.path.with_name(db.path.name + "-wal").exists():
        return None
    return hashlib.sha256(db.path.read_bytes()).hexdigest()


def _state(db, *known: State) -> State:
    """The database's state.  On SQLite a file byte for byte the same as one of ``known`` states' files holds the
    same rows, so that state is returned without reading ~200k rows again (a rolled-back transaction puts its
    pages back as they were); any other file is read in full.  A server digests each table's rows itself."""
    digest = _file_digest(db)
    for state in known:
        if digest is not None and state.digest == digest:
            return state
    with db.engine.connect() as conn:
        insp = inspect(conn)
        multi = insp.get_multi_foreign_keys()  # every table's, in one query where the database allows
        names = insp.get_table_names()
        fks = {t: sorted(repr(fk) for fk in multi[(None, t)]) for t in names}
        if db.backend != "sqlite":
            columns = [tuple(r) for r in conn.exec_driver_sql(_COLUMNS[db.backend]) if r[0] in fks]
            return State(digest, (table_digests(conn, sorted(names)), fks, columns))
    return State(digest, (db.dump(), fks))


def _integrity(db) -> str:
    with db.engine.connect() as conn:
        return "; ".join(r[0] for r in conn.execute(text("PRAGMA integrity_check")))


@pytest.mark.slow
def test_sigkill_and_sigint_during_apply_change_nothing(backend: str, tmp_path: Path) -> None:
    print(f"crash seed: {SEED} (replay with MWA_CRASH_SEED={SEED})")
    rng = random.Random(f"{SEED}-{backend}")
    made = []
    pristine: list[tuple[Path, int]] = []

    def fresh() -> tuple[object, int]:
        """A new scratch database holding the big deterministic contents."""
        folder = tmp_path / f"db{len(made)}"
        folder.mkdir()
        made.append(_create_scratch(backend, folder, NEWEST))
        db = next(made[-1])
        if pristine:  # SQLite: a copy of the first one's file (the same rows; a copy takes a fraction of a build)
            shutil.copyfile(pristine[0][0], db.path)
            return db, pristine[0][1]
        with db.engine.begin() as conn:
            to_move = build_big(conn, SIZES[backend])
        if backend == "sqlite":
            db.engine.dispose()
            pristine.append((tmp_path / "pristine.db", to_move))
            shutil.copyfile(db.path, pristine[0][0])
        return db, to_move

    try:
        # The apply window: a complete apply of an identical database.
        twin, to_move = fresh()
        proc, ready = _start(twin.uri)
        proc.communicate(timeout=300)
        window = time.monotonic() - ready
        assert proc.returncode == ExitStatus.OK
        print(f"{backend}: {to_move:,} rows to move, apply window {window:.2f} s")

        db, _ = fresh()
        before = _state(db)
        points = [("SIGKILL", signal.SIGKILL)] * SIGKILLS + [("SIGINT", signal.SIGINT)] * SIGINTS
        late = 0
        while points:
            name, sig = points[0]
            delay = rng.uniform(*WINDOW) * window
            context = f"{name} {delay:.2f} s into apply (seed {SEED}, {backend})"
            proc, ready = _start(db.uri)
            time.sleep(max(0.0, ready + delay - time.monotonic()))
            if proc.poll() is None:  # one that already finished committed whole, or failed: both caught below
                proc.send_signal(sig)
            out, err = proc.communicate(timeout=120)
            _wait_for_server_sessions(db)
            if _state(db, before) != before:
                left = {t: db.outside_default(t) for t in BIG_TABLES}
                assert not any(left.values()), f"HALF-MOVED after {context}: rows outside default: {left}"
                # Complete: this run beat the calibration and committed before the kill point (or even finished
                # before it).  Atomic, but not the mid-apply point wanted: shrink the window and retry on a fresh
                # database.
                late += 1
                assert late <= 3, f"kill points keep landing after COMMIT or after the apply had finished ({context})"
                window = delay
                db, _ = fresh()
                before = _state(db)
                continue
            points.pop(0)
            if sig == signal.SIGINT:
                assert proc.returncode == ExitStatus.ABORTED, f"{context}: exit {proc.returncode}: {err}"
                assert err.strip() == "Error: interrupted: rolled back, nothing changed", context
                assert "Done:" not in out, context
            else:
                assert proc.returncode == -signal.SIGKILL, context
            if backend == "sqlite":
                assert _integrity(db) == "ok", context
        print(f"{backend}: {SIGKILLS} SIGKILL + {SIGINTS} SIGINT points, 0 rows changed ({late} retried after COMMIT)")

        # Still a healthy database: a full apply succeeds and moves exactly the planned rows (in-process: nothing
        # kills this one, so it needs no process of its own).
        result = run_cli("db", "migrate-to-default-workspace", db.uri, "-y")
        assert result.exit_code == ExitStatus.OK, result.stderr
        assert f"Done: moved {to_move:,} row(s)" in result.stdout
        assert not any(db.outside_default(t) for t in BIG_TABLES)
    finally:
        for gen in made:
            for _ in gen:
                pass


def _run_restore(uri: str, journal: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mlflow_ws_admin", "db", "restore-workspaces", uri, "--journal", str(journal), "-y"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_sigint_during_restore_is_never_reported_as_rolled_back_after_commit(backend: str, tmp_path: Path) -> None:
    """Ctrl-C at random points of a restore, late ones included (its COMMIT): either nothing changed and it
    says so (exit 5), or the restore committed whole and says so (exit 0).  Never both, never half."""
    print(f"crash seed: {SEED} (replay with MWA_CRASH_SEED={SEED})")
    rng = random.Random(f"{SEED}-restore-{backend}")
    made = [_create_scratch(backend, tmp_path, NEWEST)]
    try:
        db = next(made[0])
        with db.engine.begin() as conn:
            build_big(conn, SIZES[backend] // 2)
        original = _state(db)

        def migrated(n: int) -> tuple[Path, State]:
            # In-process: only the restores are interrupted, so the migrations need no process of their own.
            journal = tmp_path / f"move-{n}.jsonl"
            result = run_cli("db", "migrate-to-default-workspace", db.uri, "-y", "--journal", str(journal))
            assert result.exit_code == ExitStatus.OK, result.stderr
            return journal, _state(db)

        # The restore window, from process start to exit, measured by one complete restore.
        journal, moved = migrated(0)
        started = time.monotonic()
        proc = _run_restore(db.uri, journal)
        proc.communicate(timeout=300)
        window = time.monotonic() - started
        assert proc.returncode == ExitStatus.OK and _state(db) == original
        journal, moved = migrated(1)
        outcomes = []
        for n in range(4):
            # Past interpreter start-up, up to the end: the last points fall on or near COMMIT.
            delay = rng.uniform(0.45, 1.0) * window
            context = f"SIGINT {delay:.2f} s into restore (seed {SEED}, {backend})"
            proc = _run_restore(db.uri, journal)
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=120)
            _wait_for_server_sessions(db)
            state = _state(db, moved, original)
            if proc.returncode == ExitStatus.ABORTED:
                assert "rolled back, nothing changed" in err, context
                assert state == moved, f"{context}: said 'rolled back' but the database changed"
                outcomes.append("rolled back")
            else:
                assert proc.returncode == ExitStatus.OK, f"{context}: exit {proc.returncode}: {err}"
                assert state == original, f"{context}: committed but not whole"
                # Interrupted while printing the result: it says the change was committed, never "rolled back".
                assert "Done: moved" in out or "interrupted after the change was committed" in err, context
                outcomes.append("committed")
                journal, moved = migrated(n + 2)
        print(f"{backend}: restore window {window:.2f} s, interrupted 4 times: {outcomes}")
    finally:
        for gen in made:
            for _ in gen:
                pass


#: move-resources under SIGKILL: every team-a experiment (retargeted) and registered model (with its versions and
#: their tags) into team-b, journaled.
MOVE_ARGS = (
    "--from",
    "team-a",
    "--to",
    "team-b",
    "--resource-type",
    "experiments",
    "--resource-type",
    "registered_models",
    "--artifact-policy",
    "retarget",
    "--default-artifact-root",
    "s3://crash-root",
    "-y",
)
MOVE_SIGKILLS = 4
#: experiments per database of the move-resources test: half of SIZES.  The kill points are fractions of the
#: measured window, so a smaller database would prove the same (unchanged or moved, never between), but half
#: this made its kills land after the end and retry (the sixteenth session), which cost more than it saved.
MOVE_SIZES = {backend: n // 2 for backend, n in SIZES.items()}


def _start_move(uri: str, journal: Path) -> tuple[subprocess.Popen, float]:
    """Start a journaled move-resources; return once it printed its plan (apply begins), with that moment."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow_ws_admin", "db", "move-resources", uri, *MOVE_ARGS, "--journal", str(journal)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(READY):
            return proc, time.monotonic()
    _, err = proc.communicate(timeout=60)
    raise AssertionError(f"move-resources never started (exit {proc.returncode}): {err}")


def _journal_is_complete(journal: Path) -> bool:
    if not journal.exists():
        return False
    lines = journal.read_text().splitlines()
    return bool(lines) and lines[-1].startswith('{"type":"complete"')


@pytest.mark.slow
def test_sigkill_during_move_resources_leaves_it_unchanged_or_moved_and_undoable(backend: str, tmp_path: Path) -> None:
    """SIGKILL at random points of a journaled `db move-resources -y`, from apply's start to its exit (COMMIT and
    the journal's completion mark included): the database is exactly as before, or exactly as a complete run
    leaves it, never in between.  A complete journal restores it to exactly as before; an incomplete one is
    refused (exit 2) and changes nothing."""
    print(f"crash seed: {SEED} (replay with MWA_CRASH_SEED={SEED})")
    rng = random.Random(f"{SEED}-move-{backend}")
    made = []
    pristine = tmp_path / "pristine.db"

    def fresh() -> object:
        folder = tmp_path / f"db{len(made)}"
        folder.mkdir()
        made.append(_create_scratch(backend, folder))
        db = next(made[-1]).load()
        if pristine.exists():  # SQLite: a copy of the first one's file (the same rows, for a fraction of a build)
            shutil.copyfile(pristine, db.path)
            return db
        with db.engine.begin() as conn:
            build_big(conn, MOVE_SIZES[backend])
        if backend == "sqlite":
            db.engine.dispose()
            shutil.copyfile(db.path, pristine)
        return db

    def restore(db, journal: Path) -> Result:
        # In-process: restores are never killed, so they need no process of their own.
        return run_cli("db", "restore-workspaces", db.uri, "--journal", str(journal), "-y")

    try:
        # The moved state and the apply window: complete runs on the database the kills then start from, restored
        # in between.
        db = fresh()
        original = built = _state(db)
        for attempt in range(2):  # the second run, on warm caches, gives the window
            journal = tmp_path / f"twin-{attempt}.jsonl"
            proc, ready = _start_move(db.uri, journal)
            out, err = proc.communicate(timeout=300)
            window = time.monotonic() - ready
            assert proc.returncode == ExitStatus.OK, err
            assert "Done: moved" in out and "repointed the artifact_location of" in out
            moved = _state(db)
            assert moved != original
            for table in BIG_TABLES:
                assert db.scalar(f"SELECT COUNT(*) FROM {table} WHERE workspace = 'team-a'") == 0, table
            undone = restore(db, journal)
            assert undone.exit_code == ExitStatus.OK, undone.stderr
            restored = _state(db)
            assert restored == original
        # The same rows; on SQLite its file is the one a rolled-back kill leaves byte for byte.
        original = restored
        print(f"{backend}: move-resources apply window {window:.2f} s")

        outcomes = []
        late = 0
        while len(outcomes) < MOVE_SIGKILLS:
            delay = rng.uniform(0.05, 1.0) * window
            journal = tmp_path / f"move-{len(outcomes)}-{late}.jsonl"
            context = f"SIGKILL {delay:.2f} s into move-resources (seed {SEED}, {backend})"
            proc, ready = _start_move(db.uri, journal)
            time.sleep(max(0.0, ready + delay - time.monotonic()))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=120)
            if proc.returncode != -signal.SIGKILL:
                # It finished before the kill landed (a run faster than the calibration, or one that ended between
                # the look and the signal): not a kill; restore it from its journal and aim earlier.
                assert proc.returncode == ExitStatus.OK, f"{context}: exit {proc.returncode}: {err}"
                late += 1
                assert late <= 6, f"kill points keep landing after the run ended ({context})"
                window = delay
                assert restore(db, journal).exit_code == ExitStatus.OK, context
                restored = _state(db)
                assert restored == original, context
                original = restored
                continue
            _wait_for_server_sessions(db)
            if backend == "sqlite":
                assert _integrity(db) == "ok", context
            state = _state(db, original, moved)
            assert state in (original, moved), f"HALF-MOVED after {context}"
            complete = _journal_is_complete(journal)
            if state == original:
                assert not complete, f"{context}: journal marked complete but nothing committed"
                if journal.exists():  # killed before its header was written, it is empty: not a journal yet
                    refused = restore(db, journal)
                    assert refused.exit_code == ExitStatus.USAGE, f"{context}: {refused.stderr}"
                    assert "incomplete" in refused.stderr or "not an mlflow-ws-admin journal" in refused.stderr
                    assert _state(db, original) == original, context
                outcomes.append("unchanged")
            elif complete:
                undone = restore(db, journal)
                assert undone.exit_code == ExitStatus.OK, f"{context}: {undone.stderr}"
                restored = _state(db)
                assert restored == original, f"{context}: restore did not give back the original database"
                original = restored
                outcomes.append("moved, restored")
            else:
                # Killed between COMMIT and the journal's completion mark: moved, and the journal says it cannot
                # vouch for that.  Restore refuses it; go on with a fresh database.
                refused = restore(db, journal)
                assert refused.exit_code == ExitStatus.USAGE, f"{context}: {refused.stderr}"
                assert "incomplete" in refused.stderr, context
                assert _state(db, moved) == moved, context
                outcomes.append("moved, journal incomplete")
                db = fresh()
                original = _state(db, built)
                assert original == built, context
        print(f"{backend}: move-resources killed {MOVE_SIGKILLS} times: {outcomes} ({late} retried after the end)")
    finally:
        for gen in made:
            for _ in gen:
                pass
