"""Click layer: parse, resolve the URI, call the engine, map results to exit codes.  Nothing else.

Heavy imports (SQLAlchemy, Rich, drivers) happen inside the commands so ``--help`` starts fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import click

from mlflow_ws_admin import __version__
from mlflow_ws_admin.exit_codes import ExitStatus

if TYPE_CHECKING:
    from rich.console import Console

    from mlflow_ws_admin.connect import Target

URI_HELP = "Database URI (sqlite:///mlflow.db, postgresql://…, mysql://…). Defaults to $MLFLOW_TRACKING_URI."


class _Failure(Exception):
    """Raised inside a command to leave with a message and an exit status (handled in ``_boundary``)."""

    def __init__(self, message: str, status: ExitStatus) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _stdin_is_interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    # highlight=False: no guessing at numbers/paths to colour; all user text is passed as rich Text.
    # soft_wrap=True: long lines stay whole in CI logs instead of wrapping at 80 columns.
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


@contextmanager
def _boundary(secrets: Callable[[], list[str | None]]) -> Iterator[None]:
    """The one place exceptions become exit codes.  Every message is scrubbed of the URI's password."""
    from sqlalchemy.exc import SQLAlchemyError

    from mlflow_ws_admin.errors import WsAdminError
    from mlflow_ws_admin.failures import driver_message, scrub, translate

    def leave(message: str, status: ExitStatus) -> NoReturn:
        click.echo(f"Error: {scrub(message, secrets())}", err=True)
        sys.exit(int(status))

    try:
        yield
    except _Failure as exc:
        leave(exc.message, exc.status)
    except WsAdminError as exc:
        leave(exc.message, exc.exit_status)
    except SQLAlchemyError as exc:
        err = translate(exc, doing="reading the database")
        leave(err.message, err.exit_status)
    except KeyboardInterrupt:
        leave("interrupted: the transaction was rolled back, nothing changed", ExitStatus.ABORTED)
    except (OSError, ValueError, RuntimeError) as exc:
        leave(f"{type(exc).__name__}: {driver_message(exc)}", ExitStatus.DATABASE_ERROR)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlflow-ws-admin")
def main() -> None:
    """Administer MLflow workspaces: move every workspace-scoped row into `default`."""


@main.group()
def db() -> None:
    """Commands that operate on an MLflow tracking database."""


@db.command("migrate-to-default-workspace")
@click.argument("uri", required=False)
@click.option("--dry-run", is_flag=True, help="Read-only preflight: print the plan and conflicts, change nothing.")
@click.option("-v", "--verbose", is_flag=True, help="List every conflict group instead of the first 5 per table.")
@click.option("-y", "--yes", is_flag=True, help="Apply without asking for confirmation.")
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the table locks apply needs.",
)
def migrate_to_default_workspace(uri: str | None, dry_run: bool, verbose: bool, yes: bool, lock_timeout: float) -> None:
    """Move every workspace-scoped row into the reserved `default` workspace.

    Computes a plan (rows to move per table and every name collision), prints it, and, unless --dry-run
    or blocking conflicts, applies it in one transaction after confirmation.

    Exit codes: 0 ok, 1 blocking conflicts, 2 usage, 3 database error, 4 verification failed (rolled
    back), 5 aborted (nothing changed).
    """
    target: Target | None = None
    with _boundary(lambda: [target.password if target else None, _uri_password(uri)]):
        from mlflow_ws_admin.connect import resolve_target

        target = resolve_target(uri)
        status = _migrate(target, dry_run=dry_run, verbose=verbose, yes=yes, lock_timeout=lock_timeout)
    sys.exit(int(status))


def _uri_password(uri: str | None) -> str | None:
    """The password of a URI that may not even parse (so it can still be scrubbed from errors)."""
    import re

    raw = uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    match = re.search(r"//[^:/@\s]*:([^@\s]*)@", raw)
    return match.group(1) if match else None


def _migrate(target: Target, *, dry_run: bool, verbose: bool, yes: bool, lock_timeout: float) -> ExitStatus:
    from mlflow_ws_admin.apply import apply_plan
    from mlflow_ws_admin.connect import create_db_engine
    from mlflow_ws_admin.plan import DEFAULT_SAMPLE_GROUPS, build_plan
    from mlflow_ws_admin.report.text import render_apply_result, render_plan
    from mlflow_ws_admin.schema import reflect_schema

    if not dry_run and not yes and not _stdin_is_interactive():
        raise _Failure("refusing to prompt without a terminal: pass -y to apply, or --dry-run", ExitStatus.USAGE)
    console = _console()
    engine = create_db_engine(target, read_only=dry_run, busy_timeout_s=lock_timeout)
    try:
        with engine.connect() as conn:
            schema = reflect_schema(conn)
            plan = build_plan(
                conn, schema, database=target.display, sample_limit=None if verbose else DEFAULT_SAMPLE_GROUPS
            )
            render_plan(plan, console, dry_run=dry_run)
        if plan.has_blocking_conflicts:
            return ExitStatus.CONFLICTS
        if dry_run or plan.nothing_to_do:
            return ExitStatus.OK
        if not yes and not click.confirm("Proceed?", default=False, err=True):
            click.echo("Aborted: nothing changed.", err=True)
            return ExitStatus.ABORTED
        result = apply_plan(engine, plan, lock_timeout_s=lock_timeout)
        render_apply_result(result, console)
        return ExitStatus.OK
    finally:
        engine.dispose()


@main.command()
@click.option(
    "--path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the demo SQLite database (default: a new temporary directory).",
)
def demo(path: str | None) -> None:
    """Build a small multi-workspace SQLite database with planted conflicts and dry-run the migration on it."""
    with _boundary(lambda: []):
        from mlflow_ws_admin.connect import resolve_target
        from mlflow_ws_admin.sample_data import build_demo_database

        db_path = build_demo_database(path)
        uri = f"sqlite:///{db_path}"
        click.echo(f"Demo database: {db_path}\n")
        status = _migrate(resolve_target(uri), dry_run=True, verbose=False, yes=False, lock_timeout=30.0)
        click.echo(
            f"\nThe demo exited with status {int(status)} ({status.name.lower()}). Try:\n"
            f"  mlflow-ws-admin db migrate-to-default-workspace {uri} --dry-run --verbose"
        )
