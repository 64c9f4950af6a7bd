"""Everything about failing: the exit codes, the tool's errors, driver messages, password scrubbing
(``db.translate`` maps driver errors onto these errors).

The engine raises ``WsAdminError`` subclasses (each carries its exit status); the CLI boundary maps every
exception to one scrubbed line and one exit status, once (``cli.boundary``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import IntEnum
from urllib.parse import quote, quote_plus

#: What a password is replaced with wherever it would be printed.
MASK = "***"


class ExitStatus(IntEnum):
    """The documented exit codes (README, "Exit codes").  1 always means "conflicts, nothing changed"."""

    OK = 0
    CONFLICTS = 1  # blocking conflicts or artifact findings; nothing changed
    USAGE = 2  # bad command line, option value, plan file or journal
    DATABASE_ERROR = 3  # cannot connect, not an MLflow workspace schema, locks, privileges, ...
    VERIFICATION_FAILED = 4  # post-verify or plan check failed; rolled back
    ABORTED = 5  # the user declined or interrupted; nothing changed
    INTERNAL_ERROR = 70  # a bug in this tool (sysexits' EX_SOFTWARE); the message names the exception
    OUTPUT_CLOSED = 141  # stdout was closed by its reader (`| head`), as a shell reports SIGPIPE (128 + 13)


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


class OtherSessions(WsAdminError):
    """Other sessions (a tracking server still running?) are connected to the database; apply refuses."""


class VerificationFailed(WsAdminError):
    """The in-transaction re-check or post-verify failed; the transaction was rolled back."""

    exit_status = ExitStatus.VERIFICATION_FAILED


class ConflictsAppeared(WsAdminError):
    """Apply found name conflicts under its lock (the plan had none); rolled back."""

    exit_status = ExitStatus.CONFLICTS


class ArtifactFindingsBlock(WsAdminError):
    """Apply found blocking artifact findings under its lock (not allowed by the caller); rolled back."""

    exit_status = ExitStatus.CONFLICTS


class StoredContentRefused(WsAdminError):
    """Rows to move whose content MLflow stores under their workspace (MLflow-stored skill versions): refused
    with no override, as MLflow refuses them; rolled back."""

    exit_status = ExitStatus.CONFLICTS


class Aborted(WsAdminError):
    """The user declined or interrupted; nothing changed."""

    exit_status = ExitStatus.ABORTED


class UsageError(WsAdminError):
    """The command line, an option value, a plan file or a journal is invalid."""

    exit_status = ExitStatus.USAGE


# --- passwords ---------------------------------------------------------------------------------------------

#: `scheme://user:password@` in any text, parsed or not.
_USERINFO_PASSWORD = re.compile(r"(//[^:/@\s]*:)([^@\s]*)@")


def password_in(text: str | None) -> str | None:
    """The password of a URI-like text that may not even parse (so it can still be scrubbed from errors)."""
    match = _USERINFO_PASSWORD.search(text or "")
    return match.group(2) if match else None


def mask_password_in(text: str) -> str:
    """``text`` with every `user:password@` shown as `user:***@`."""
    return _USERINFO_PASSWORD.sub(rf"\1{MASK}@", text)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret, raw or URL-encoded, with the mask; then any `user:password@` left."""
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, MASK)
    return mask_password_in(text)


# --- driver errors -----------------------------------------------------------------------------------------


def driver_message(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's statement dump and background links."""
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, BaseException) and len(orig.args) >= 2 and isinstance(orig.args[0], int):
        text = str(orig.args[1])  # pymysql: (code, message)
    else:
        text = str(orig)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(orig).__name__
