"""The process exit codes: one documented table, used only at the CLI boundary."""

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    CONFLICTS = 1  # blocking conflicts found; nothing changed
    USAGE = 2  # bad command line
    DATABASE_ERROR = 3  # cannot connect, not an MLflow workspace schema, locks, privileges, ...
    VERIFICATION_FAILED = 4  # post-verify or plan check failed; rolled back
    ABORTED = 5  # the user declined or interrupted; nothing changed
