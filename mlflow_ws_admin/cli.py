"""Click layer: parse, resolve the URI, call the engine, map results to exit codes.  Nothing else.

Heavy imports (SQLAlchemy, Rich, drivers) happen inside the commands so ``--help`` starts fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
    from sqlalchemy.engine import Connection, Engine

    from mlflow_ws_admin.apply import ApplyExtras, ApplyResult
    from mlflow_ws_admin.connect import Target
    from mlflow_ws_admin.journal import JournalWriter
    from mlflow_ws_admin.plan import ConflictGroup, Plan, TableConflicts
    from mlflow_ws_admin.restore import RestoreResult
    from mlflow_ws_admin.schema import WorkspaceSchema

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


def _format_option(command: Callable) -> Callable:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json", "markdown"]),
        default="text",
        show_default=True,
        help="json: one JSON document on stdout (contract in the README); progress and prompts go to stderr. "
        "markdown: a GitHub-flavoured report for CI summaries (dry runs and preflight only).",
    )(command)


def _format_options(command: Callable) -> Callable:
    """--format and --max-conflicts, shared by migrate and restore."""
    command = click.option(
        "--max-conflicts",
        type=click.IntRange(min=0),
        default=None,
        metavar="N",
        help="With --format json: list at most N conflict groups (conflict_count stays exact).",
    )(command)
    return _format_option(command)


def _lock_timeout_option(command: Callable) -> Callable:
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0.1),
        default=30.0,
        show_default=True,
        help="Seconds to wait for the table locks the change needs (exit 3 after that).",
    )(command)


@contextmanager
def _boundary(
    secrets: Callable[[], list[str | None]], on_error: Callable[[str, ExitStatus], None] | None = None
) -> Iterator[None]:
    """The one place exceptions become exit codes.  Every message is scrubbed of the URI's password.
    on_error also reports the (scrubbed) error, e.g. as the JSON document of ``--format json``."""
    from sqlalchemy.exc import SQLAlchemyError

    from mlflow_ws_admin.errors import WsAdminError
    from mlflow_ws_admin.failures import driver_message, scrub, translate

    def leave(message: str, status: ExitStatus) -> NoReturn:
        message = scrub(message, secrets())
        click.echo(f"Error: {message}", err=True)
        if on_error is not None:
            on_error(message, status)
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
        # Planning never writes, and apply holds Ctrl-C from COMMIT on (see apply._hold_interrupts), so an
        # interrupt that gets here always left the database as it was.
        leave("interrupted: rolled back, nothing changed", ExitStatus.ABORTED)
    except (OSError, ValueError, RuntimeError) as exc:
        leave(f"{type(exc).__name__}: {driver_message(exc)}", ExitStatus.DATABASE_ERROR)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlflow-ws-admin")
def main() -> None:
    """Administer MLflow workspaces: move every workspace-scoped row into `default`."""


def entry_point() -> NoReturn:
    """The installed command and ``python -m mlflow_ws_admin``: run ``main``, then leave at once.

    By the time a command returns, every connection, journal and plan file is closed, so the interpreter's
    teardown (freeing SQLAlchemy's and Rich's modules: ~0.07 s, 5% of a 600k-row SQLite apply) would only
    keep the shell waiting.  A still-running artifact-finder thread (apply failed early) is cut off too.
    Tests call ``main`` in-process instead."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`): nobody reads any more
            stream.flush()
    os._exit(code)


@main.group()
def db() -> None:
    """Commands that operate on an MLflow tracking database."""


@db.command("migrate-to-default-workspace")
@click.argument("uri", required=False)
@click.option("--dry-run", is_flag=True, help="Read-only preflight: print the plan and conflicts, change nothing.")
@click.option("-v", "--verbose", is_flag=True, help="List every conflict group instead of the first 5 per table.")
@click.option("-y", "--yes", is_flag=True, help="Apply without asking for confirmation.")
@_lock_timeout_option
@click.option(
    "--default-artifact-root",
    metavar="ROOT",
    default=None,
    help="The tracking server's --default-artifact-root: enables the reserved-path artifact checks.",
)
@click.option(
    "--allow-artifact-overlap",
    is_flag=True,
    help="Proceed despite blocking artifact findings (overlapping locations across workspaces).",
)
@_format_options
@click.option(
    "--plan-out",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --dry-run: write the reviewed plan, with per-table fingerprints of the rows to move, to this file.",
)
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Apply only if the database still matches this plan file (re-checked under lock; exit 4 if it drifted).",
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False),
    default=None,
    help="Record every moved row (JSON Lines; gzip when FILE ends in .gz) for db restore-workspaces.",
)
@click.option(
    "--prune-workspaces",
    is_flag=True,
    help="In the same transaction, delete the catalog rows of the workspaces the move emptied (never `default`).",
)
def migrate_to_default_workspace(
    uri: str | None,
    dry_run: bool,
    verbose: bool,
    yes: bool,
    lock_timeout: float,
    default_artifact_root: str | None,
    allow_artifact_overlap: bool,
    output_format: str,
    max_conflicts: int | None,
    plan_out: str | None,
    plan_file: str | None,
    journal: str | None,
    prune_workspaces: bool,
) -> None:
    """Move every workspace-scoped row into the reserved `default` workspace.

    Computes a plan (rows to move per table and every name collision), prints it, and, unless --dry-run
    or blocking conflicts, applies it in one transaction after confirmation.

    Exit codes: 0 ok, 1 blocking conflicts or artifact findings, 2 usage, 3 database error, 4 verification
    failed or the --plan file drifted (rolled back), 5 aborted (nothing changed).
    """
    target: Target | None = None
    root_password = _uri_password(default_artifact_root) if default_artifact_root else None
    run = _Run(output_format, max_conflicts, dry_run, plan_out, plan_file, journal, prune_workspaces)
    with _boundary(
        lambda: [target.password if target else None, _uri_password(uri), root_password],
        run.error_reporter(lambda: target),
    ):
        from mlflow_ws_admin.connect import resolve_target

        run.check_usage()
        target = resolve_target(uri)
        status = _migrate(
            target,
            dry_run=dry_run,
            verbose=verbose,
            yes=yes,
            lock_timeout=lock_timeout,
            default_artifact_root=_artifact_root(default_artifact_root),
            allow_artifact_overlap=allow_artifact_overlap,
            run=run,
        )
    sys.exit(int(status))


def _uri_password(uri: str | None) -> str | None:
    """The password of a URI that may not even parse (so it can still be scrubbed from errors)."""
    import re

    raw = uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    match = re.search(r"//[^:/@\s]*:([^@\s]*)@", raw)
    return match.group(1) if match else None


def _artifact_root(root: str | None) -> str | None:
    if root is not None and not root.strip():
        raise _Failure("--default-artifact-root must not be empty", ExitStatus.USAGE)
    return root.strip() if root else None


def _migrate(
    target: Target,
    *,
    dry_run: bool,
    verbose: bool,
    yes: bool,
    lock_timeout: float,
    default_artifact_root: str | None = None,
    allow_artifact_overlap: bool = False,
    run: _Run | None = None,
) -> ExitStatus:
    from mlflow_ws_admin.apply import apply_plan
    from mlflow_ws_admin.connect import create_db_engine
    from mlflow_ws_admin.errors import ArtifactFindingsBlock, ConflictsAppeared
    from mlflow_ws_admin.report.progress import apply_progress
    from mlflow_ws_admin.report.text import render_apply_result, render_artifact_findings, render_plan

    if not dry_run and not yes and not _stdin_is_interactive():
        raise _Failure("refusing to prompt without a terminal: pass -y to apply, or --dry-run", ExitStatus.USAGE)
    run = run or _Run()
    expected = run.expected_fingerprints(target)
    console = _console(stderr=run.json)
    progress_console = None if run.json else _terminal_stderr()
    engine = create_db_engine(target, read_only=dry_run, busy_timeout_s=lock_timeout)
    report = _PlanReport(
        engine, target, run, console, progress_console, verbose, default_artifact_root, allow_artifact_overlap
    )
    try:
        # Without a prompt nobody reviews the plan before apply, so what apply checks under its lock anyway is
        # left to it (one pass over the data instead of two); see plan.build_plan.
        plan, status = report.show(dry_run=dry_run, defer_to_apply=yes and not dry_run)
        if status is not None:
            return status
        if not yes:
            if run.json:
                render_plan(plan, console, dry_run=dry_run, allow_artifact_overlap=allow_artifact_overlap)
            if not click.confirm("Proceed?", default=False, err=True):
                click.echo("Aborted: nothing changed.", err=True)
                run.emit_plan(None, plan, ExitStatus.ABORTED)
                return ExitStatus.ABORTED
        try:
            with apply_progress(plan, progress_console) as on_moved:
                result = apply_plan(
                    engine,
                    plan,
                    lock_timeout_s=lock_timeout,
                    on_table=on_moved,
                    extras=run.apply_extras(
                        target, plan.schema, expected, default_artifact_root, allow_artifact_overlap
                    ),
                )
        except (ConflictsAppeared, ArtifactFindingsBlock):
            # Rolled back, nothing changed: list every conflict and finding in a read-only report, exactly as a
            # dry run would; the boundary then prints the error line and exits 1.
            if not run.json:
                console.print()
            report.show(dry_run=True, defer_to_apply=False, status=ExitStatus.CONFLICTS)
            raise
        if plan.checked_during_apply:
            plan = dataclasses.replace(plan, artifact_findings=result.artifact_findings)
            if not run.json:
                console.print()
                render_artifact_findings(plan, console)
        if run.json:
            run.emit_plan(None, plan, ExitStatus.OK, applied=result)
        else:
            render_apply_result(result, console)
        return ExitStatus.OK
    finally:
        engine.dispose()


class _PlanReport:
    """Reads a plan and reports it (text, or the JSON document when the run ends with it)."""

    def __init__(
        self,
        engine: Engine,
        target: Target,
        run: _Run,
        console: Console,
        progress_console: Console | None,
        verbose: bool,
        default_artifact_root: str | None,
        allow_artifact_overlap: bool,
    ) -> None:
        self.engine = engine
        self.target = target
        self.run = run
        self.console = console
        self.progress_console = progress_console
        self.verbose = verbose
        self.default_artifact_root = default_artifact_root
        self.allow_artifact_overlap = allow_artifact_overlap

    def show(
        self, *, dry_run: bool, defer_to_apply: bool, status: ExitStatus | None = None
    ) -> tuple[Plan, ExitStatus | None]:
        """Build and report the plan.  Returns the exit status when the run ends here (dry run, blocked,
        nothing to do, or the given ``status``), else None: go on and apply."""
        from mlflow_ws_admin.plan import DEFAULT_SAMPLE_GROUPS, build_plan, iter_conflict_groups
        from mlflow_ws_admin.report.progress import planning_spinner
        from mlflow_ws_admin.report.text import render_plan
        from mlflow_ws_admin.schema import reflect_schema

        run = self.run
        # --verbose text streams every conflict group from the cursor while it prints; the plan holds none.
        stream = self.verbose and not run.json
        with self.engine.connect() as conn:
            with planning_spinner(self.progress_console) as on_table:
                schema = reflect_schema(conn)
                plan = build_plan(
                    conn,
                    schema,
                    database=self.target.display,
                    sample_limit=run.sample_limit(None if self.verbose else DEFAULT_SAMPLE_GROUPS),
                    default_artifact_root=self.default_artifact_root,
                    stream_conflicts=stream,
                    on_table=on_table,
                    defer_to_apply=defer_to_apply,
                )

            def all_groups(tc: TableConflicts) -> Iterator[ConflictGroup]:
                return iter_conflict_groups(conn, schema, schema.table(tc.table), tc.key, None)

            if not (run.json or run.markdown):
                render_plan(
                    plan,
                    self.console,
                    dry_run=dry_run,
                    allow_artifact_overlap=self.allow_artifact_overlap,
                    groups_for=all_groups if stream else None,
                )
            blocked = plan.has_blocking_conflicts or (
                plan.has_blocking_artifact_findings and not self.allow_artifact_overlap
            )
            run.write_plan_file(conn, plan, self.target)
            if status is None and (blocked or dry_run or plan.nothing_to_do):
                status = ExitStatus.CONFLICTS if blocked else ExitStatus.OK
            if status is not None:
                run.emit_plan(conn, plan, status)
            if status is not None and run.markdown:
                from mlflow_ws_admin.report.markdown import render_plan_markdown

                render_plan_markdown(
                    plan,
                    sys.stdout,
                    exit_code=status,
                    groups_for=all_groups if stream else None,
                    allow_artifact_overlap=self.allow_artifact_overlap,
                )
        return plan, status


def _terminal_stderr() -> Console | None:
    """Progress goes to stderr, and only when it is a terminal: never into logs or pipes."""
    console = _console(stderr=True)
    return console if console.is_terminal else None


@db.command("preflight")
@click.argument("uri", required=False)
@click.option(
    "--default-artifact-root",
    metavar="ROOT",
    default=None,
    help="The tracking server's --default-artifact-root: enables the artifact-root checks.",
)
@click.option("--server", metavar="URL", default=None, help="Also ask this tracking server whether workspaces are on.")
@click.option(
    "--server-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the tracking server's answer.",
)
@_format_option
def preflight(
    uri: str | None, default_artifact_root: str | None, server: str | None, server_timeout: float, output_format: str
) -> None:
    """Read-only startup checks for turning workspaces on or off: each prints pass, warn or fail.

    Checks the workspace schema, the `default` row, workspace names, the artifact root, experiments under
    the reserved <root>/workspaces/ paths, overlapping artifact locations and, with --server, the server's
    `workspaces_enabled`.  Exit codes: 0 nothing failed, 1 a check failed, 2 usage, 3 database error.
    """
    target: Target | None = None
    secrets = [_uri_password(uri), _uri_password(server) if server else None]
    secrets.append(_uri_password(default_artifact_root) if default_artifact_root else None)
    run = _Run(output_format, dry_run=True)
    with _boundary(lambda: [target.password if target else None, *secrets], run.error_reporter(lambda: target)):
        from mlflow_ws_admin.connect import create_db_engine, resolve_target
        from mlflow_ws_admin.preflight import run_preflight
        from mlflow_ws_admin.report.preflight_text import render_preflight
        from mlflow_ws_admin.server_probe import probe_server_features

        root = _artifact_root(default_artifact_root)
        target = resolve_target(uri)
        features = probe_server_features(server, timeout_s=server_timeout) if server else None
        engine = create_db_engine(target, read_only=True)
        try:
            with engine.connect() as conn:
                result = run_preflight(conn, database=target.display, default_artifact_root=root, server=features)
        finally:
            engine.dispose()
        status = ExitStatus.CONFLICTS if result.failed else ExitStatus.OK
        if run.json:
            from mlflow_ws_admin.report.json_doc import preflight_document, write_document

            write_document(preflight_document(result, exit_code=status), sys.stdout)
        elif run.markdown:
            from mlflow_ws_admin.report.markdown import render_preflight_markdown

            render_preflight_markdown(result, sys.stdout, exit_code=status)
        else:
            render_preflight(result, _console())
    sys.exit(int(status))


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


class _Run:
    """The CI/audit options of one migrate run: output format, plan files, journal, pruning."""

    def __init__(
        self,
        output_format: str = "text",
        max_conflicts: int | None = None,
        dry_run: bool = False,
        plan_out: str | None = None,
        plan_file: str | None = None,
        journal: str | None = None,
        prune_workspaces: bool = False,
    ) -> None:
        self.json = output_format == "json"
        self.markdown = output_format == "markdown"
        self.max_conflicts = max_conflicts
        self.dry_run = dry_run
        self.plan_out = plan_out
        self.plan_file = plan_file
        self.journal = journal
        self.prune_workspaces = prune_workspaces
        self.emitted = False

    def check_usage(self) -> None:
        if self.markdown and not self.dry_run:
            # A CI report of what would happen; a real run's outcome is the text or JSON report.
            raise _Failure("--format markdown reports a --dry-run; add --dry-run", ExitStatus.USAGE)
        if self.plan_out and not self.dry_run:
            raise _Failure("--plan-out writes the plan of a --dry-run; add --dry-run", ExitStatus.USAGE)
        if self.plan_file and self.dry_run:
            raise _Failure("--plan applies a plan file; it cannot be combined with --dry-run", ExitStatus.USAGE)
        if self.dry_run and (self.journal or self.prune_workspaces):
            raise _Failure("--journal and --prune-workspaces apply only to a real run, not --dry-run", ExitStatus.USAGE)
        if self.journal and os.path.exists(self.journal):
            raise _Failure(f"journal file {self.journal} already exists; refusing to overwrite it", ExitStatus.USAGE)

    def sample_limit(self, text_limit: int | None) -> int | None:
        # JSON streams every group from the cursor when it writes them; the plan itself keeps none.
        return 0 if self.json else text_limit

    def error_reporter(self, target: Callable[[], Target | None]) -> Callable[[str, ExitStatus], None] | None:
        if not self.json:
            return None

        def report(message: str, status: ExitStatus) -> None:
            from mlflow_ws_admin.report.json_doc import error_document, write_document

            if self.emitted:
                return  # the document is out already; stderr carries the error
            t = target()
            doc = error_document(
                message,
                exit_code=int(status),
                dry_run=self.dry_run,
                dialect=t.backend if t else None,
                url=t.display if t else None,
            )
            write_document(doc, sys.stdout)

        return report

    def expected_fingerprints(self, target: Target) -> dict[str, str] | None:
        if not self.plan_file:
            return None
        from mlflow_ws_admin.planfile import read_plan_file

        return read_plan_file(self.plan_file, target)

    def write_plan_file(self, conn: Connection, plan: Plan, target: Target) -> None:
        if not self.plan_out:
            return
        from mlflow_ws_admin.planfile import fingerprints, plan_document, write_plan_file

        write_plan_file(self.plan_out, plan_document(plan, target, fingerprints(conn, plan.schema)))
        click.echo(f"Plan written to {self.plan_out}", err=True)

    def apply_extras(
        self,
        target: Target,
        schema: WorkspaceSchema,
        expected: dict[str, str] | None,
        default_artifact_root: str | None,
        allow_artifact_overlap: bool,
    ) -> ApplyExtras:
        from mlflow_ws_admin.apply import ApplyExtras

        return ApplyExtras(
            expected_fingerprints=expected,
            journal=_open_journal(self.journal, "migrate", target, schema) if self.journal else None,
            prune_workspaces=self.prune_workspaces,
            default_artifact_root=default_artifact_root,
            allow_artifact_overlap=allow_artifact_overlap,
        )

    def emit_plan(
        self, conn: Connection | None, plan: Plan, status: ExitStatus, applied: ApplyResult | None = None
    ) -> None:
        """With --format json: the one document, conflicts streamed from ``conn`` while it is open."""
        if not self.json:
            return
        from mlflow_ws_admin.plan import iter_conflict_groups
        from mlflow_ws_admin.report.json_doc import conflict_items, plan_document, write_document

        def groups(tc: TableConflicts, limit: int | None) -> Iterator[ConflictGroup]:
            assert conn is not None
            return iter_conflict_groups(conn, plan.schema, plan.schema.table(tc.table), tc.key, limit)

        doc = plan_document(
            plan,
            status=_status_name(plan, status, applied),
            exit_code=int(status),
            dry_run=self.dry_run,
            conflicts=conflict_items(plan, groups, self.max_conflicts) if conn is not None else [],
            workspaces_pruned=applied.workspaces_pruned if applied else (),
        )
        write_document(doc, sys.stdout)
        self.emitted = True


def _status_name(plan: Plan, status: ExitStatus, applied: ApplyResult | None) -> str:
    if status == ExitStatus.ABORTED:
        return "aborted"
    if status == ExitStatus.CONFLICTS:
        return "conflicts"
    if applied is not None:
        return "applied"
    return "nothing_to_move" if plan.nothing_to_do else "ok"


def _open_journal(path: str, operation: str, target: Target, schema: WorkspaceSchema) -> JournalWriter:
    from mlflow_ws_admin.journal import JournalWriter, header
    from mlflow_ws_admin.planfile import database_identity, schema_signature

    database = {"dialect": target.backend, "url": target.display, "identity": database_identity(target)}
    return JournalWriter(path, header(operation, database, schema_signature(schema)))


@db.command("restore-workspaces")
@click.argument("uri", required=False)
@click.option(
    "--journal",
    "journals",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="The journal of the run to undo.  Give --journal a second time to journal this restore (undoable too).",
)
@click.option("--dry-run", is_flag=True, help="Read-only: check the journal and report what would move back.")
@click.option("-y", "--yes", is_flag=True, help="Restore without asking for confirmation.")
@_lock_timeout_option
@_format_options
def restore_workspaces(
    uri: str | None,
    journals: tuple[str, ...],
    dry_run: bool,
    yes: bool,
    lock_timeout: float,
    output_format: str,
    max_conflicts: int | None,
) -> None:
    """Move the rows a journaled run moved back to their original workspaces, in one transaction.

    Re-creates pruned catalog rows, and refuses a journal that is incomplete or belongs to another database.
    Exit codes: 0 ok, 1 restore conflicts (nothing changed), 2 usage or journal refused, 3 database error,
    4 verification failed (rolled back), 5 aborted.
    """
    target: Target | None = None
    run = _Run(output_format, max_conflicts, dry_run)
    with _boundary(
        lambda: [target.password if target else None, _uri_password(uri)], run.error_reporter(lambda: target)
    ):
        from mlflow_ws_admin.connect import resolve_target

        run.check_usage()
        if len(journals) > 2:
            raise _Failure(
                "--journal takes the journal to restore and, optionally, one output journal", ExitStatus.USAGE
            )
        out_path = journals[1] if len(journals) == 2 else None
        if out_path and dry_run:
            raise _Failure("a --dry-run restore changes nothing, so it writes no journal", ExitStatus.USAGE)
        if out_path and os.path.exists(out_path):
            raise _Failure(f"journal file {out_path} already exists; refusing to overwrite it", ExitStatus.USAGE)
        if not dry_run and not yes and not _stdin_is_interactive():
            raise _Failure("refusing to prompt without a terminal: pass -y to restore, or --dry-run", ExitStatus.USAGE)
        target = resolve_target(uri)
        status = _restore(target, journals[0], out_path, run=run, yes=yes, lock_timeout=lock_timeout)
    sys.exit(int(status))


def _restore(
    target: Target, journal: str, out_path: str | None, *, run: _Run, yes: bool, lock_timeout: float
) -> ExitStatus:
    from mlflow_ws_admin.connect import create_db_engine
    from mlflow_ws_admin.journal import check_journal
    from mlflow_ws_admin.planfile import database_identity, schema_signature
    from mlflow_ws_admin.report.text import render_restore
    from mlflow_ws_admin.restore import restore_journal
    from mlflow_ws_admin.schema import reflect_schema

    console = _console(stderr=run.json)
    engine = create_db_engine(target, read_only=run.dry_run, busy_timeout_s=lock_timeout)
    try:
        with engine.connect() as conn:
            schema = reflect_schema(conn)
        summary = check_journal(journal, database_identity(target), schema_signature(schema))
        if run.dry_run or not yes:
            check = restore_journal(engine, schema, journal, dry_run=True, max_conflicts=run.max_conflicts)
            if run.dry_run or check.conflict_count or check.nothing_to_do:
                return _restore_outcome(run, target, check, console, summary.header)
            render_restore(check, console, summary.header)
            if not click.confirm("Proceed?", default=False, err=True):
                click.echo("Aborted: nothing changed.", err=True)
                return _restore_outcome(run, target, check, console, None, ExitStatus.ABORTED)
        out = _open_journal(out_path, "restore", target, schema) if out_path else None
        result = restore_journal(
            engine,
            schema,
            journal,
            dry_run=False,
            out=out,
            lock_timeout_s=lock_timeout,
            max_conflicts=run.max_conflicts,
        )
        return _restore_outcome(run, target, result, console, summary.header)
    finally:
        engine.dispose()


def _restore_outcome(
    run: _Run,
    target: Target,
    result: RestoreResult,
    console: Console,
    journal_header: dict | None,
    status: ExitStatus | None = None,
) -> ExitStatus:
    from mlflow_ws_admin.report.json_doc import restore_document, write_document
    from mlflow_ws_admin.report.text import render_restore

    if status is None:
        status = ExitStatus.CONFLICTS if result.conflict_count else ExitStatus.OK
    if run.json:
        if status == ExitStatus.ABORTED:
            name = "aborted"
        elif status == ExitStatus.CONFLICTS:
            name = "conflicts"
        elif result.nothing_to_do:
            name = "nothing_to_move"
        else:
            name = "applied" if result.applied else "ok"
        doc = restore_document(result, status=name, exit_code=int(status), dialect=target.backend, url=target.display)
        write_document(doc, sys.stdout)
        run.emitted = True
    elif run.markdown:
        from mlflow_ws_admin.report.markdown import render_restore_markdown

        render_restore_markdown(
            result, sys.stdout, exit_code=status, database=target.display, journal_header=journal_header or {}
        )
    elif journal_header is not None:
        render_restore(result, console, journal_header)
    return status
