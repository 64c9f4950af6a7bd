"""SQLite's memory statistics, turned off for a process that is only this command (``SQLITE_CONFIG_MEMSTATUS``).

With them on (the library's default), every allocation SQLite makes takes one process-wide mutex to count it.
A sort allocates all the time, so on its own it runs 1.4x longer than without, and two connections sorting in
two threads (the dry run's conflict readers, its artifact check) serialize on that mutex: 2 sorts of 140k
experiments took 1.4-1.7 s of wall time in parallel against 0.76 s one after the other, and 0.28 s once the
statistics were off (measured on this project's 2-core machine).  Nothing here reads the statistics.

The setting can only change while SQLite is shut down, i.e. with no connection open anywhere in the process.
So only the command's own entry point (``cli.boundary.run_process``) claims the process, before anything runs,
and the SQLite engine turns the statistics off when it is created in a claimed process, once.  A process that
embeds the CLI (Click's runner, another program) keeps SQLite as it found it unless it claims the process
itself, as the test suite's workers do at start.
"""

from __future__ import annotations

_SQLITE_CONFIG_MEMSTATUS = 9  # sqlite3.h
_SQLITE_OK = 0

_claimed = False
_untracked: bool | None = None  # the outcome, once tried


def claim_process() -> None:
    """Say that this process is the command alone: nothing has opened, or will open, SQLite behind its back."""
    global _claimed
    _claimed = True


def untrack_memory() -> bool:
    """In a claimed process, turn the statistics off in the SQLite library that Python's ``sqlite3`` module
    uses, once; call before opening the first connection.  True when they are off (now or already); False
    when the process is not claimed or the library refused (it then works as before)."""
    global _untracked
    if not _claimed:
        return False
    if _untracked is None:
        _untracked = _configure()
    return _untracked


def _configure() -> bool:
    try:
        import _sqlite3
        import ctypes

        # The extension module's handle resolves the library it was linked with, bundled or shared.
        lib = ctypes.CDLL(_sqlite3.__file__)
        if lib.sqlite3_shutdown() != _SQLITE_OK:
            return False
        configured = lib.sqlite3_config(_SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0)) == _SQLITE_OK
        return lib.sqlite3_initialize() == _SQLITE_OK and configured
    except (OSError, AttributeError, ImportError):  # no ctypes, or a library without these entry points
        return False
