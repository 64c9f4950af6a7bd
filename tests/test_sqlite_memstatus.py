"""SQLite's memory statistics are turned off only in a process the command owns (``db.sqlite_memstatus``): its
entry point claims the process and the SQLite engine turns them off; a process that embeds the CLI keeps
SQLite as it found it.  Each case runs in a fresh interpreter: the setting is process-wide."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from mlflow_ws_admin.common.errors import ExitStatus

from .helpers import populate

# Sorts 20k rows in memory, then prints whether untrack_memory() turned the statistics off and the memory
# SQLite counts as in use (0 when nothing is counted).
_SORT_AND_COUNT = textwrap.dedent(
    """
    import ctypes, sqlite3, sys, _sqlite3
    from mlflow_ws_admin.db import sqlite_memstatus
    if sys.argv[1] == "claim":
        sqlite_memstatus.claim_process()
    print(sqlite_memstatus.untrack_memory())
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", ((str(i) * 10,) for i in range(20000)))
    conn.execute("SELECT x FROM t ORDER BY x").fetchall()
    lib = ctypes.CDLL(_sqlite3.__file__)
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    print(lib.sqlite3_memory_used())
    """
)


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)


def test_a_claimed_process_counts_no_memory() -> None:
    claimed = _run(_SORT_AND_COUNT, "claim")
    assert claimed.returncode == 0, claimed.stderr
    assert claimed.stdout.split() == ["True", "0"]


def test_an_unclaimed_process_keeps_the_statistics() -> None:
    embedded = _run(_SORT_AND_COUNT, "embedded")
    assert embedded.returncode == 0, embedded.stderr
    untracked, used = embedded.stdout.split()
    assert untracked == "False" and int(used) > 0


# The real entry point, with an audit hook that reports each library ctypes opens (the process leaves through
# os._exit, so the hook prints as it goes).
_ENTRY_POINT = textwrap.dedent(
    """
    import sys
    def hook(event, args):
        if event == "ctypes.dlopen" and args[0] is not None:  # None: ctypes' own import opens the process
            print("dlopen", args[0], file=sys.stderr, flush=True)
    sys.addaudithook(hook)
    from mlflow_ws_admin.cli.main import entry_point
    sys.argv = ["mlflow-ws-admin", "db", "migrate-to-default-workspace", sys.argv[1], "--dry-run"]
    entry_point()
    """
)


def test_the_command_turns_them_off_for_sqlite_only(mlflow_db, backend: str) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    result = _run(_ENTRY_POINT, mlflow_db.uri)

    assert result.returncode == ExitStatus.OK, result.stderr
    assert "would move to `default`; no conflicts. Nothing was changed." in result.stdout
    opened = [line for line in result.stderr.splitlines() if line.startswith("dlopen")]
    # Only a SQLite run loads the library's entry points; the others pay nothing for it.
    assert [("_sqlite3" in line) for line in opened] == ([True] if backend == "sqlite" else [])
    assert mlflow_db.fingerprint() == before
