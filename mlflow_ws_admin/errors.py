"""Exceptions the engine raises; the CLI maps each to one exit code and a one-line message."""

from mlflow_ws_admin.exit_codes import ExitStatus


class WsAdminError(Exception):
    """An expected failure with a user-facing one-line message."""

    exit_status: ExitStatus = ExitStatus.DATABASE_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DatabaseError(WsAdminError):
    """Connecting, reading or writing failed."""


class NotAWorkspaceDatabase(WsAdminError):
    """The database has no MLflow workspace schema (no catalog, no workspace columns)."""


class LockTimeout(WsAdminError):
    """The locks apply needs could not be taken in time."""


class VerificationFailed(WsAdminError):
    """The in-transaction re-check or post-verify failed; the transaction was rolled back."""

    exit_status = ExitStatus.VERIFICATION_FAILED


class ConflictsAppeared(WsAdminError):
    """Apply found name conflicts under its lock (the plan had none); rolled back."""

    exit_status = ExitStatus.CONFLICTS


class ArtifactFindingsBlock(WsAdminError):
    """Apply found blocking artifact findings under its lock (not allowed by the caller); rolled back."""

    exit_status = ExitStatus.CONFLICTS


class Aborted(WsAdminError):
    """The user declined or interrupted; nothing changed."""

    exit_status = ExitStatus.ABORTED


class UsageError(WsAdminError):
    """The command line or an option value is invalid."""

    exit_status = ExitStatus.USAGE
