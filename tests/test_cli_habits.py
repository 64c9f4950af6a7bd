"""Prompts, pipes, exit codes and MLflow users' habits (issue 14), on every backend where they apply."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import warnings

import pytest
from sqlalchemy import text

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.connect import create_db_engine, resolve_target

from .helpers import migrate, populate, run_cli


def _plant_conflicts(db, groups: int = 3) -> None:
    def fill(data) -> None:
        for i in range(groups):
            data.experiment("default", f"dup-{i}")
            data.experiment("team-a", f"dup-{i}")

    populate(db, fill)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlflow_ws_admin", *args]


class _Terminal:
    """The real CLI with a pseudo-terminal as stdin (so it prompts), stdout and stderr as pipes."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            _cli(*args),
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        os.close(slave)
        self.err = b""

    def wait_for_prompt(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while b"Proceed?" not in self.err:
            assert time.monotonic() < deadline, f"no prompt; stderr so far: {self.err!r}"
            ready, _, _ = select.select([self.proc.stderr], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stderr.fileno(), 4096)
                assert chunk, f"the CLI ended before prompting: {self.err!r}"
                self.err += chunk

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=120)
        os.close(self.master)
        return self.proc.returncode, out.decode(), (self.err + err).decode()


def _answer_prompt(args: tuple[str, ...], answer: str) -> tuple[int, str, str]:
    term = _Terminal(*args)
    term.wait_for_prompt()
    time.sleep(0.5)  # a person answers once the prompt is shown, not while input() is still being entered
    if answer == "ctrl-c":
        term.proc.send_signal(signal.SIGINT)  # what the terminal sends the foreground process on Ctrl-C
    else:
        os.write(term.master, b"\x04" if answer == "ctrl-d" else b"n\n")
    return term.finish()


def _assert_aborted(code: int, err: str) -> None:
    assert code == ExitStatus.ABORTED, err
    assert "Aborted: nothing changed." in err
    assert "Traceback" not in err and "Error: Abort" not in err


@pytest.mark.parametrize("answer", ["ctrl-c", "ctrl-d", "n"])
def test_interrupt_or_eof_at_the_prompt_aborts_like_no(mlflow_db, tmp_path, answer: str) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    _assert_aborted(*_answer_prompt(("db", "migrate-to-default-workspace", mlflow_db.uri), answer)[::2])
    assert mlflow_db.fingerprint() == before

    journal = tmp_path / "move.jsonl"
    assert migrate(mlflow_db.uri, "-y", "--journal", str(journal)).exit_code == ExitStatus.OK
    migrated = mlflow_db.fingerprint()

    _assert_aborted(
        *_answer_prompt(("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal)), answer)[::2]
    )
    assert mlflow_db.fingerprint() == migrated


def test_interactive_restore_says_ready_not_dry_run(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    journal = tmp_path / "move.jsonl"
    assert migrate(mlflow_db.uri, "-y", "--journal", str(journal)).exit_code == ExitStatus.OK
    before = mlflow_db.fingerprint()

    code, out, _ = _answer_prompt(("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal)), "n")

    assert code == ExitStatus.ABORTED
    assert "Ready: 60 row(s) will move back" in out
    assert "dry run" not in out.lower()
    assert mlflow_db.fingerprint() == before


def test_closed_stdout_never_exits_with_the_conflicts_code(mlflow_db) -> None:
    _plant_conflicts(mlflow_db, groups=50)
    before = mlflow_db.fingerprint()
    for fmt in ("text", "json"):
        proc = subprocess.Popen(
            _cli("db", "migrate-to-default-workspace", mlflow_db.uri, "--dry-run", "--verbose", "--format", fmt),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        proc.stdout.close()  # the reader is gone before the first line (`| head -0`)
        _, err = proc.communicate(timeout=120)

        assert proc.returncode == ExitStatus.OUTPUT_CLOSED == 141, err
        assert b"Traceback" not in err
    assert mlflow_db.fingerprint() == before


@pytest.mark.parametrize("value", ["9223372036854775808", "99999999999999999999999"])
def test_huge_max_conflicts_gives_one_complete_document(mlflow_db, value: str) -> None:
    _plant_conflicts(mlflow_db)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run", "--format", "json", "--max-conflicts", value)

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    doc = json.loads(result.stdout)
    assert doc["conflict_count"] == len(doc["conflicts"]) == 3
    assert mlflow_db.fingerprint() == before


def test_max_conflicts_limits_the_text_report_too(mlflow_db) -> None:
    _plant_conflicts(mlflow_db)
    before = mlflow_db.fingerprint()

    capped = migrate(mlflow_db.uri, "--dry-run", "--verbose", "--max-conflicts", "1")
    full = migrate(mlflow_db.uri, "--dry-run", "--verbose")

    assert capped.exit_code == full.exit_code == ExitStatus.CONFLICTS
    assert sum(line.startswith('  name="dup-') for line in full.stdout.splitlines()) == 3
    assert sum(line.startswith('  name="dup-') for line in capped.stdout.splitlines()) == 1
    assert "Conflicts: 3 group(s)" in capped.stdout  # the count stays exact
    assert mlflow_db.fingerprint() == before


def test_no_dry_run_is_accepted(mlflow_db) -> None:
    populate(mlflow_db)

    result = migrate(mlflow_db.uri, "--no-dry-run", "-y")

    assert result.exit_code == ExitStatus.OK, result.output
    assert mlflow_db.outside_default("experiments") == 0


def test_unusable_uri_from_the_environment_says_where_it_came_from() -> None:
    env = {"MLFLOW_TRACKING_URI": "http://tracking.example:5000"}

    result = run_cli("db", "migrate-to-default-workspace", "--dry-run", env=env)
    help_text = run_cli("db", "migrate-to-default-workspace", "--help").stdout

    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr.startswith("Error: $MLFLOW_TRACKING_URI (used because no URI was given): ")
    assert "$MLFLOW_TRACKING_URI" in " ".join(help_text.split())


def test_record_journal_names_the_restores_own_journal(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    journal, undo = tmp_path / "move.jsonl", tmp_path / "undo.jsonl"
    assert migrate(mlflow_db.uri, "-y", "--journal", str(journal)).exit_code == ExitStatus.OK
    migrated = mlflow_db.dump()

    back = run_cli(
        "db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y", "--record-journal", str(undo)
    )
    again = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(undo), "-y")

    assert back.exit_code == again.exit_code == ExitStatus.OK, back.output + again.output
    assert mlflow_db.dump() == migrated


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_apply_that_found_nothing_left_under_the_lock_says_so(mlflow_db, capsys, fmt: str) -> None:
    """Two applies at once: the second planned 60 rows, but another run moved them while it waited at its
    prompt.  Its report must say what happened under its lock."""
    from mlflow_ws_admin.db.connect import resolve_target
    from mlflow_ws_admin.usecases import commands

    populate(mlflow_db)

    def confirm(question: str) -> bool:
        # The other admin's run, between our plan and our lock (our idle plan session is "another session" to it).
        other = migrate(mlflow_db.uri, "-y", "--ignore-other-sessions")
        assert other.exit_code == ExitStatus.OK, other.output
        return True

    ui = commands.UI(stdin_is_terminal=True, confirm=confirm)
    status = commands.migrate(resolve_target(mlflow_db.uri), commands.MigrateOptions(), commands.Output(fmt), ui)

    out = capsys.readouterr().out
    assert status == ExitStatus.OK
    assert mlflow_db.outside_default("experiments") == 0
    if fmt == "json":
        doc = json.loads(out)
        assert doc["total_rows_to_move"] == 60  # what the plan saw
        assert doc["rows_moved"] == 0 and doc["status"] == "nothing_to_move"  # what happened under the lock
    else:
        assert "Ready: 60 row(s)" in out
        assert "Nothing left to move under the lock" in out and "Done: moved" not in out


# Raise KeyboardInterrupt at the last instruction of a command's boundary, as a Ctrl-C landing there would:
# the one spot where an interrupt escapes the boundary and meets Click, which would say "Aborted!", exit 1.
_INTERRUPT_AT_THE_EXIT = """
import sys
from mlflow_ws_admin.cli import boundary
from mlflow_ws_admin.cli.main import entry_point

def tracer(frame, event, arg):
    return local if frame.f_code is boundary.boundary.__wrapped__.__code__ else None

def local(frame, event, arg):
    # The generator's "return" as it is left for good by boundary.run (its exit, not its yield).
    exiting = frame.f_back is not None and frame.f_back.f_code.co_name == "__exit__"
    if event == "return" and exiting and frame.f_back.f_back.f_code is boundary.run.__code__:
        raise KeyboardInterrupt
    return local

sys.settrace(tracer)
sys.argv = ["mlflow-ws-admin", *sys.argv[1:]]
entry_point()
"""


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "apply"])
def test_a_ctrl_c_as_a_command_leaves_is_never_read_as_conflicts(mlflow_db, dry_run: bool) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()
    flag = "--dry-run" if dry_run else "-y"

    proc = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_AT_THE_EXIT, "db", "migrate-to-default-workspace", mlflow_db.uri, flag],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert "Aborted!" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    if dry_run:
        assert proc.returncode == ExitStatus.ABORTED, proc.stderr
        assert "interrupted: rolled back, nothing changed" in proc.stderr
        assert "Migrate to the `default` workspace (dry run, read-only)" in proc.stdout  # printed before the exit
        assert mlflow_db.fingerprint() == before
    else:
        assert proc.returncode == ExitStatus.OK, proc.stderr
        assert "interrupted after the change was committed" in proc.stderr
        assert mlflow_db.outside_default("experiments") == 0


def test_a_ctrl_c_that_cuts_a_streamed_read_short_adds_no_driver_warning(mlflow_db, recwarn) -> None:
    """Ctrl-C lands while rows are streamed from a server-side cursor (a crash test caught it mid-apply): the
    rollback that follows must not make the driver warn, a second line under the one-line error.  PyMySQL does
    ("Previous unbuffered result was left incomplete") unless the tool's engine silences it."""
    rows = text(
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20) "
        "SELECT a.i, b.i FROM n a CROSS JOIN n b"
    ).execution_options(stream_results=True, yield_per=10)

    def read_until_interrupted(conn) -> None:
        # The result stays referenced by this frame (in the traceback) while the rollback runs, as the tool's
        # own reads' results do: it is neither read to its end nor closed first.
        result = conn.execute(rows)
        for n, _ in enumerate(result):
            if n == 15:  # past the first batch, well before the 400th row
                raise KeyboardInterrupt

    warnings.simplefilter("always")  # every warning recorded, however often it was seen before
    engine = create_db_engine(resolve_target(mlflow_db.uri), read_only=True)
    try:
        with pytest.raises(KeyboardInterrupt), engine.connect() as conn, conn.begin():
            read_until_interrupted(conn)
    finally:
        engine.dispose()

    assert [str(w.message) for w in recwarn] == []
