"""The CLI's boundary: one command's invocation (its secrets, output and UI) and the one place where
exceptions become exit codes.  ``main`` calls ``run`` once per command, and ``run_process`` once per process
(for what escapes a command: Click's usage errors, a Ctrl-C at start-up or exit, a closed stdout).  It knows
Click only for ``click.echo`` and Click's exceptions.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import click

from mlflow_ws_admin.common.errors import ExitStatus, UsageError, password_in
from mlflow_ws_admin.db.sqlite_memstatus import claim_process

if TYPE_CHECKING:
    from mlflow_ws_admin.db.target import Target
    from mlflow_ws_admin.usecases.commands import UI, Output


class Invocation:
    """One command's run: where its secrets are, its output, and its UI (the boundary reports through them)."""

    def __init__(self, uri: str | None, *secret_texts: str | None, output: Output | None = None) -> None:
        from mlflow_ws_admin.usecases.commands import UI, Output

        self.uri = uri
        self.secret_texts = [uri or os.environ.get("MLFLOW_TRACKING_URI"), *secret_texts]
        self.target: Target | None = None
        self.output = output or Output()
        self.ui: UI = UI()

    def secrets(self) -> list[str | None]:
        return [self.target.password if self.target else None, *(password_in(t) for t in self.secret_texts)]

    def resolve(self) -> Target:
        from mlflow_ws_admin.db.connect import resolve_target

        self.target = resolve_target(self.uri)
        return self.target


@contextmanager
def boundary(run: Invocation) -> Iterator[None]:
    """The one place exceptions become exit codes.  Every message is scrubbed of the passwords; with
    ``--format json`` the error is also the run's JSON document.  Exit 1 only ever means "conflicts"."""
    from sqlalchemy.exc import SQLAlchemyError

    from mlflow_ws_admin.common.errors import WsAdminError, driver_message, scrub
    from mlflow_ws_admin.db.translate import translate

    def leave(message: str, status: ExitStatus) -> NoReturn:
        message = scrub(message, run.secrets())
        with contextlib.suppress(OSError, ValueError):
            click.echo(f"Error: {message}", err=True)
            run.output.error_document(run.ui, message, status, run.target)
        sys.exit(int(status))

    from mlflow_ws_admin.db.transaction import commit_count

    commits = commit_count()
    try:
        yield
    except WsAdminError as exc:
        leave(exc.message, exc.exit_status)
    except SQLAlchemyError as exc:
        err = translate(exc, doing="reading the database")
        leave(err.message, err.exit_status)
    except KeyboardInterrupt:
        leave(*interrupted(commit_count() > commits))
    except BrokenPipeError:
        # The reader of stdout went away (`| head`): the report is lost, not the run; never "conflicts".
        with contextlib.suppress(OSError, ValueError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout once more at exit
        sys.exit(int(ExitStatus.OUTPUT_CLOSED))
    except OSError as exc:  # a plan file or journal that cannot be written, a full disk
        leave(f"{type(exc).__name__}: {driver_message(exc)}", ExitStatus.DATABASE_ERROR)
    except click.exceptions.Exit:
        raise
    except Exception as exc:  # a bug: one line naming it, and a code a CI script cannot mistake for conflicts
        leave(
            f"internal error ({type(exc).__name__}: {driver_message(exc)}); please report it", ExitStatus.INTERNAL_ERROR
        )


def interrupted(committed: bool) -> tuple[str, ExitStatus]:
    """What Ctrl-C means.  Planning never writes, and the transaction core holds Ctrl-C from COMMIT until it
    has returned, so an interrupt before any commit left the database as it was; one after it only cut the
    report short."""
    if committed:
        return "interrupted after the change was committed; only its report was cut short", ExitStatus.OK
    return "interrupted: rolled back, nothing changed", ExitStatus.ABORTED


def run(run: Invocation, use_case: Callable[[Target], ExitStatus]) -> NoReturn:
    with boundary(run):
        # Leave from inside the boundary: a Ctrl-C between the use case's return and the exit is still its own.
        sys.exit(int(use_case(run.resolve())))


def artifact_root(root: str | None) -> str | None:
    if root is not None and not root.strip():
        raise UsageError("--default-artifact-root must not be empty")
    return root.strip() if root else None


def run_process(main: click.Command) -> NoReturn:
    """The process around the command tree (``cli.entry_point``): run ``main``, then leave at once.  Everything
    is closed by then, so the interpreter's teardown (~0.07 s) would only keep the shell waiting."""
    claim_process()  # this process is the command alone: SQLite may be tuned for it
    try:
        # Not standalone: Click would turn a Ctrl-C that lands outside a command's boundary (start-up, or its
        # last instructions) into "Aborted!" and exit 1, which means "conflicts" here.
        returned = main.main(standalone_mode=False)
        code = returned if isinstance(returned, int) else 0  # --help and --version return 0
    except (KeyboardInterrupt, click.Abort):
        message, status = interrupted(_committed())
        print(f"Error: {message}", file=sys.stderr)
        code = int(status)
    except click.ClickException as exc:  # a usage error: Click's own message and exit code 2
        exc.show()
        code = exc.exit_code
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else int(ExitStatus.USAGE))
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        # A closed pipe (`| head`): the report is lost, so neither "ok" nor "conflicts" can be trusted.
        if code in (ExitStatus.OK, ExitStatus.CONFLICTS):
            code = int(ExitStatus.OUTPUT_CLOSED)
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


def _committed() -> bool:
    """Whether this process committed a change (only possible once the transaction core was imported)."""
    transaction = sys.modules.get("mlflow_ws_admin.db.transaction")
    return transaction is not None and transaction.commit_count() > 0
