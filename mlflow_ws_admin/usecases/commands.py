"""The use cases: one function per command, in the style of alembic's ``command.py``.

Each takes a resolved Target, typed options and a ``UI`` (consoles, whether stdin is a terminal, the prompt),
and returns the command's ``ExitStatus``.  Reports are printed through the UI as the run goes, because a plan
is shown before its prompt and a long conflict report streams from the open cursor; the JSON document is
written once per run.  Nothing here knows about Click; errors are raised and mapped at the CLI boundary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.errors import (
    ArtifactFindingsBlock,
    ConflictsAppeared,
    ExitStatus,
    StoredContentRefused,
    UsageError,
)

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy.engine import Connection, Engine

    from mlflow_ws_admin.db.schema import WorkspaceSchema
    from mlflow_ws_admin.db.target import Target
    from mlflow_ws_admin.engine.apply import ApplyExtras, ApplyResult
    from mlflow_ws_admin.engine.import_apply import ImportResult
    from mlflow_ws_admin.engine.import_artifacts import ArtifactDestinations
    from mlflow_ws_admin.engine.import_plan import ImportPlan
    from mlflow_ws_admin.engine.import_undo import UndoResult
    from mlflow_ws_admin.engine.journal import JournalSummary, JournalWriter
    from mlflow_ws_admin.engine.move import Move, RenamePolicy
    from mlflow_ws_admin.engine.plan import Plan
    from mlflow_ws_admin.engine.relocate import Relocation
    from mlflow_ws_admin.engine.restore import RestoreResult
    from mlflow_ws_admin.engine.selection import ResourceSelection
    from mlflow_ws_admin.findings.checks import Check
    from mlflow_ws_admin.report.json_doc import RecordStream


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # Rich would exit with 1, the conflicts code: let the CLI boundary say "output closed" instead.
            self.quiet = True
            raise BrokenPipeError

    # highlight=False: no guessing at numbers/paths to colour; all user text is passed as rich Text.
    # soft_wrap=True: long lines stay whole in CI logs instead of wrapping at 80 columns.
    return _Console(stderr=stderr, highlight=False, soft_wrap=True)


def _ask(question: str) -> bool:
    import click

    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:  # Ctrl-C or Ctrl-D at the prompt: the same answer as "n"
        click.echo(err=True)
        return False


@dataclass
class UI:
    """What a use case needs of the outside world; tests build one instead of monkeypatching."""

    stdin_is_terminal: bool = field(default_factory=lambda: sys.stdin is not None and sys.stdin.isatty())
    confirm: Callable[[str], bool] = _ask
    #: where the JSON document goes
    stdout: Callable[[], IO[str]] = lambda: sys.stdout

    def console(self, *, stderr: bool = False) -> Console:
        return _console(stderr)

    def progress_console(self) -> Console | None:
        """Progress goes to stderr, and only when it is a terminal: never into logs or pipes."""
        console = _console(stderr=True)
        return console if console.is_terminal else None

    def say(self, message: str) -> None:
        """One line for the person at the terminal (stderr: stdout may carry a JSON document)."""
        print(message, file=sys.stderr)


@dataclass
class Output:
    """The run's report format and the one JSON document it owes (``--format json``)."""

    output_format: str = "text"
    max_conflicts: int | None = None
    dry_run: bool = False
    emitted: bool = False

    @property
    def json(self) -> bool:
        return self.output_format == "json"

    @property
    def markdown(self) -> bool:
        return self.output_format == "markdown"

    def check(self) -> None:
        if self.markdown and not self.dry_run:
            # A CI report of what would happen; a real run's outcome is the text or JSON report.
            raise UsageError("--format markdown reports a --dry-run; add --dry-run")

    def error_document(self, ui: UI, message: str, status: ExitStatus, target: Target | None) -> None:
        """The error as the run's JSON document, unless the document is out already (stderr carries it)."""
        if not self.json or self.emitted:
            return
        from mlflow_ws_admin.report.json_doc import error_document, write_document

        doc = error_document(
            message,
            exit_code=int(status),
            dry_run=self.dry_run,
            dialect=target.backend if target else None,
            url=target.display if target else None,
        )
        write_document(doc, ui.stdout())
        self.emitted = True


def refuse_without_terminal(ui: UI, *, dry_run: bool, yes: bool, verb: str) -> None:
    if not dry_run and not yes and not ui.stdin_is_terminal:
        raise UsageError(f"refusing to prompt without a terminal: pass -y to {verb}, or --dry-run")


def refuse_existing(path: str | None) -> None:
    if path and os.path.exists(path):
        raise UsageError(f"journal file {path} already exists; refusing to overwrite it")


def open_journal(path: str, operation: str, target: Target, schema: WorkspaceSchema) -> JournalWriter:
    from mlflow_ws_admin.engine.journal import JournalWriter, header

    database = {"dialect": target.backend, "url": target.display, "identity": target.identity}
    return JournalWriter(path, header(operation, database, schema.signature))


# --- db migrate-to-default-workspace -----------------------------------------------------------------------


@dataclass(frozen=True)
class MigrateOptions:
    dry_run: bool = False
    verbose: bool = False
    yes: bool = False
    lock_timeout: float = 30.0
    default_artifact_root: str | None = None
    allow_artifact_overlap: bool = False
    plan_out: str | None = None
    plan_file: str | None = None
    journal: str | None = None
    prune_workspaces: bool = False
    ignore_other_sessions: bool = False
    rename_conflicts: str | None = None
    keep: str | None = None

    def check(self) -> None:
        if self.keep and not self.rename_conflicts:
            raise UsageError("--keep chooses which row keeps its name under --rename-conflicts; add --rename-conflicts")
        if self.rename_conflicts is not None:
            self.rename_policy()  # a bad template is a usage error before anything is read
        if self.plan_out and not self.dry_run:
            raise UsageError("--plan-out writes the plan of a --dry-run; add --dry-run")
        if self.plan_file and self.dry_run:
            raise UsageError("--plan applies a plan file; it cannot be combined with --dry-run")
        if self.dry_run and (self.journal or self.prune_workspaces):
            raise UsageError("--journal and --prune-workspaces apply only to a real run, not --dry-run")
        refuse_existing(self.journal)

    def rename_policy(self) -> RenamePolicy | None:
        from mlflow_ws_admin.engine.move import RenamePolicy
        from mlflow_ws_admin.engine.rename_template import RenameTemplate

        if self.rename_conflicts is None:
            return None
        return RenamePolicy(RenameTemplate.parse(self.rename_conflicts), self.keep or "default")


def migrate(target: Target, options: MigrateOptions, output: Output, ui: UI) -> ExitStatus:
    """Every row into `default`: plan, report, confirm, apply (``_run_move``)."""
    return _run_move(target, options, output, ui, _migration)


def _run_move(
    target: Target,
    options: MigrateOptions,
    output: Output,
    ui: UI,
    choose: MoveChooser,
    operation: str = "migrate",
    check_workspaces: Callable[[Connection], None] | None = None,
) -> ExitStatus:
    """Plan the chosen Move, report it, confirm, apply; on a refusal under the lock, report again read-only
    (exit 1)."""
    from mlflow_ws_admin.db.connect import create_db_engine
    from mlflow_ws_admin.report.text import render_apply_result, render_artifact_findings, render_plan, render_renames

    options.check()
    output.check()
    refuse_without_terminal(ui, dry_run=options.dry_run, yes=options.yes, verb="apply")
    expected = _expected_fingerprints(options.plan_file, target)
    console = ui.console(stderr=output.json)
    progress_console = None if output.json else ui.progress_console()
    engine = create_db_engine(target, read_only=options.dry_run, busy_timeout_s=options.lock_timeout)
    report = _PlanReport(engine, target, options, output, ui, console, progress_console, choose)
    try:
        # Without a prompt nobody reviews the plan before apply, so what apply checks under its lock anyway is
        # left to it (one pass over the data instead of two); see plan.build_plan.
        plan, status = report.show(dry_run=options.dry_run, defer_to_apply=options.yes and not options.dry_run)
        if status is not None:
            return status
        if not options.yes:
            if output.json:
                render_plan(plan, console, dry_run=False, allow_artifact_overlap=options.allow_artifact_overlap)
            if not ui.confirm("Proceed?"):
                ui.say("Aborted: nothing changed.")
                _emit_plan(output, ui, None, plan, ExitStatus.ABORTED)
                return ExitStatus.ABORTED
        # Only a run that applies pays for these imports, a dry run never.
        from mlflow_ws_admin.engine.apply import apply_plan
        from mlflow_ws_admin.report.progress import apply_progress

        try:
            with apply_progress(plan, progress_console) as (on_moved, on_copy):
                result = apply_plan(
                    engine,
                    plan,
                    lock_timeout_s=options.lock_timeout,
                    on_table=on_moved,
                    extras=dataclasses.replace(
                        _apply_extras(options, target, plan.schema, expected, operation),
                        check_workspaces=check_workspaces,
                        keep_source_artifacts=getattr(options, "keep_source_artifacts", False),
                        on_copy=on_copy,
                    ),
                )
        except (ConflictsAppeared, ArtifactFindingsBlock, StoredContentRefused):
            # Rolled back, nothing changed: list every conflict and finding in a read-only report, exactly as a
            # dry run would; the boundary then prints the error line and exits 1.
            if not output.json:
                console.print()
            report.show(dry_run=True, defer_to_apply=False, status=ExitStatus.CONFLICTS)
            raise
        if plan.checked_during_apply:
            # With -y the renames, too, were read under the lock only: report what was renamed.
            plan = dataclasses.replace(plan, artifact_findings=result.artifact_findings, renames=result.renames)
            if not output.json:
                console.print()
                render_artifact_findings(plan, console)
                if result.renames is not None and result.renames.renames:
                    console.print()
                    render_renames(plan, console)
        if output.json:
            _emit_plan(output, ui, None, plan, ExitStatus.OK, applied=result)
        else:
            render_apply_result(result, console, plan.move.target, journal=options.journal)
        return ExitStatus.OK
    finally:
        engine.dispose()


#: Builds the Move a command runs, from the open connection and the reflected schema (read-only).
MoveChooser = Callable[["Connection", "WorkspaceSchema"], tuple["Move", "ResourceSelection | None"]]


def _migration(conn: Connection, schema: WorkspaceSchema) -> tuple[Move, None]:
    from mlflow_ws_admin.engine.move import MIGRATE

    return MIGRATE, None


class _PlanReport:
    """Reads a plan and reports it (text, or the JSON document when the run ends with it)."""

    def __init__(
        self,
        engine: Engine,
        target: Target,
        options: MigrateOptions | MoveOptions,
        output: Output,
        ui: UI,
        console: Console,
        progress_console: Console | None,
        choose: MoveChooser = _migration,
    ) -> None:
        self.engine = engine
        self.target = target
        self.options = options
        self.output = output
        self.ui = ui
        self.console = console
        self.progress_console = progress_console
        self.choose = choose

    def show(
        self, *, dry_run: bool, defer_to_apply: bool, status: ExitStatus | None = None
    ) -> tuple[Plan, ExitStatus | None]:
        """Build and report the plan.  Returns the exit status when the run ends here (dry run, blocked,
        nothing to do, or the given ``status``), else None: go on and apply."""
        from mlflow_ws_admin.db.schema import reflect_schema
        from mlflow_ws_admin.engine.plan import DEFAULT_SAMPLE_GROUPS, PARALLEL_AFTER_ROWS, build_plan
        from mlflow_ws_admin.engine.read_ahead import ReadAhead
        from mlflow_ws_admin.report.progress import planning_spinner
        from mlflow_ws_admin.report.text import render_plan

        options, output = self.options, self.output
        # --verbose text streams every conflict group from the cursor while it prints; the plan holds none.
        # JSON streams every group from the cursor when it writes them; the plan itself keeps none either.
        stream = options.verbose and not output.json
        text_limit = None if options.verbose else DEFAULT_SAMPLE_GROUPS
        with self.engine.connect() as conn:
            with planning_spinner(self.progress_console) as on_table:
                schema = reflect_schema(conn)
                move, resources = self.choose(conn, schema)
                if (policy := options.rename_policy()) is not None:
                    move = dataclasses.replace(move, rename=policy)
                plan = build_plan(
                    conn,
                    schema,
                    database=self.target.display,
                    sample_limit=0 if output.json else text_limit,
                    default_artifact_root=options.default_artifact_root,
                    stream_conflicts=stream,
                    on_table=on_table,
                    defer_to_apply=defer_to_apply,
                    move=move,
                    resources=resources,
                )

            # Every group of a key, for a report that lists them all: on a large database the next key's query
            # runs ahead, as the plan's conflict queries ran on two connections.
            ahead = plan.total_rows_to_move >= PARALLEL_AFTER_ROWS
            with ReadAhead(conn, schema, move, plan.conflicts, ahead=ahead) as reader:
                if not (output.json or output.markdown):
                    render_plan(
                        plan,
                        self.console,
                        dry_run=dry_run,
                        allow_artifact_overlap=options.allow_artifact_overlap,
                        groups_for=reader.groups if stream else None,
                        max_groups=output.max_conflicts,
                    )
                blocked = plan.is_blocked(allow_artifact_overlap=options.allow_artifact_overlap)
                if status is None and (blocked or dry_run or plan.nothing_to_do):
                    status = ExitStatus.CONFLICTS if blocked else ExitStatus.OK
                self._write_plan_file(conn, plan)
                if status is not None:
                    _emit_plan(output, self.ui, reader.records, plan, status)
                if status is not None and output.markdown:
                    from mlflow_ws_admin.report.markdown import render_plan_markdown

                    render_plan_markdown(
                        plan,
                        self.ui.stdout(),
                        exit_code=status,
                        groups_for=reader.groups if stream else None,
                        allow_artifact_overlap=options.allow_artifact_overlap,
                    )
        return plan, status

    def _write_plan_file(self, conn: Connection, plan: Plan) -> None:
        if not getattr(self.options, "plan_out", None):
            return
        from mlflow_ws_admin.engine.planfile import fingerprints, plan_document, write_plan_file

        write_plan_file(self.options.plan_out, plan_document(plan, self.target, fingerprints(conn, plan.schema)))
        self.ui.say(f"Plan written to {self.options.plan_out}")


def _expected_fingerprints(plan_file: str | None, target: Target) -> dict[str, str] | None:
    if not plan_file:
        return None
    from mlflow_ws_admin.engine.planfile import read_plan_file

    return read_plan_file(plan_file, target)


def _apply_extras(
    options: MigrateOptions,
    target: Target,
    schema: WorkspaceSchema,
    expected: dict[str, str] | None,
    operation: str,
) -> ApplyExtras:
    from mlflow_ws_admin.engine.apply import ApplyExtras

    return ApplyExtras(
        expected_fingerprints=expected,
        journal=open_journal(options.journal, operation, target, schema) if options.journal else None,
        prune_workspaces=options.prune_workspaces,
        default_artifact_root=options.default_artifact_root,
        allow_artifact_overlap=options.allow_artifact_overlap,
        ignore_other_sessions=options.ignore_other_sessions,
    )


def _emit_plan(
    output: Output,
    ui: UI,
    records: RecordStream | None,
    plan: Plan,
    status: ExitStatus,
    applied: ApplyResult | None = None,
) -> None:
    """With --format json: the one document, each key's conflict groups streamed from ``records`` (None: the
    plan is not in a state to list them)."""
    if not output.json:
        return
    from mlflow_ws_admin.report.json_doc import conflict_items, plan_document, write_document

    doc = plan_document(
        plan,
        status=_status_name(plan, status, applied),
        exit_code=int(status),
        dry_run=output.dry_run,
        conflicts=conflict_items(plan, records, output.max_conflicts) if records is not None else [],
        workspaces_pruned=applied.workspaces_pruned if applied else (),
        rows_moved=applied.total_moved if applied else None,
        artifact_locations_retargeted=applied.artifact_locations_retargeted if applied else None,
        rows_renamed=dict(applied.renamed) if applied and plan.renames is not None else None,
        relocated=applied.relocated if applied else None,
    )
    write_document(doc, ui.stdout())
    output.emitted = True


def _status_name(plan: Plan, status: ExitStatus, applied: ApplyResult | None) -> str:
    if status == ExitStatus.ABORTED:
        return "aborted"
    if status == ExitStatus.CONFLICTS:
        return "conflicts"
    if applied is not None:
        # Another run may have moved everything between our plan and our lock: say what happened under it.
        return "applied" if applied.total_moved or applied.created_default_workspace else "nothing_to_move"
    return "nothing_to_move" if plan.nothing_to_do else "ok"


# --- db move-resources ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MoveOptions(MigrateOptions):
    """``db move-resources``: migrate's options (no plan files, no pruning) plus what to move where."""

    source: str = ""
    target: str = ""
    resource_types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    artifact_policy: str = "preserve"
    workspace_store_uri: str | None = None
    #: the tracking server's --artifacts-destination: where ``mlflow-artifacts:`` objects are (relocate)
    artifacts_destination: str | None = None
    keep_source_artifacts: bool = False

    def check(self) -> None:
        super().check()
        relocating = self.artifact_policy == "relocate"
        if (self.artifacts_destination or self.keep_source_artifacts) and not relocating:
            raise UsageError(
                "--artifacts-destination and --keep-source-artifacts go with --artifact-policy relocate; add it"
            )
        if self.source == self.target:
            raise UsageError(f"--from and --to are both {self.source!r}: nothing would move")
        if self.names and self.tags:
            raise UsageError("--name and --tag are mutually exclusive")
        experiments = mlflow_facts.EXPERIMENTS_TABLE
        if self.artifact_policy != "preserve" and self.resource_types and experiments not in self.resource_types:
            # Only experiments carry an artifact root; MLflow refuses the combination too.
            raise UsageError(
                f"--artifact-policy {self.artifact_policy} moves experiments' artifact locations: "
                f"add --resource-type {experiments}, or use --artifact-policy preserve"
            )


def move_resources(target: Target, options: MoveOptions, output: Output, ui: UI) -> ExitStatus:
    """Selected resources of one workspace into another: plan, report, confirm, apply (``_run_move``)."""
    from mlflow_ws_admin.db.connect import resolve_workspace_store

    options.check()
    store = resolve_workspace_store(options.workspace_store_uri)

    def workspaces_still_there(conn: Connection) -> None:
        # Under the tracking database's lock: its own catalog is locked with it; a separate store is read
        # once more (it cannot share the transaction).
        from mlflow_ws_admin.engine.selection import check_workspaces

        check_workspaces(_workspace_catalog(conn, store), options.source, options.target)

    chooser = _resource_chooser(options, store)
    return _run_move(target, options, output, ui, chooser, "move", workspaces_still_there)


def _resource_chooser(options: MoveOptions, store: Target | None) -> MoveChooser:
    def choose(conn: Connection, schema: WorkspaceSchema) -> tuple[Move, ResourceSelection]:
        from mlflow_ws_admin.engine import selection

        workspaces = _workspace_catalog(conn, store)
        selection.check_workspaces(workspaces, options.source, options.target)
        wanted = selection.ResourceFilter(
            options.source, options.target, options.resource_types, options.names, options.tags
        )
        root = None
        if options.artifact_policy == "retarget":
            root = selection.workspace_root(options.default_artifact_root, workspaces[options.target], options.target)
            if root is None:
                raise UsageError(
                    f"--artifact-policy retarget needs an artifact root: workspace {options.target!r} has no "
                    "default_artifact_root in the catalog; pass the server's --default-artifact-root"
                )
        move, chosen = selection.select_resources(conn, schema, wanted)
        if options.artifact_policy == "relocate":
            chosen = dataclasses.replace(chosen, relocation=_relocation(conn, schema, move, options, workspaces))
        if root is not None:
            moving = next((s for s in chosen.selected if s.table == selection.EXPERIMENTS), None)
            ids = [k[0] for k in moving.keys] if moving else []
            move = dataclasses.replace(move, retarget={i: selection.retargeted(root, i) for i in ids})
            chosen = dataclasses.replace(chosen, retarget_root=root)
        return move, chosen

    return choose


def _relocation(
    conn: Connection, schema: WorkspaceSchema, move: Move, options: MoveOptions, workspaces: dict[str, str | None]
) -> Relocation:
    """Read-only: which artifact prefixes move where (``--artifact-policy relocate``)."""
    from mlflow_ws_admin.engine.relocate import PROXIED_ROOT, moving_experiments, plan_relocation

    # A server that serves artifacts gives new experiments mlflow-artifacts:/... unless told otherwise.
    root = options.default_artifact_root or (PROXIED_ROOT if options.artifacts_destination else None)
    if root is None and not workspaces.get(options.target):
        raise UsageError(
            f"--artifact-policy relocate needs the server's layout: workspace {options.target!r} has no "
            "default_artifact_root in the catalog; pass the server's --default-artifact-root (or "
            "--artifacts-destination when it serves artifacts)"
        )
    return plan_relocation(
        conn,
        schema,
        moving_experiments(conn, schema, move),
        source=options.source,
        target=options.target,
        workspaces=workspaces,
        root=root,
        artifacts_destination=options.artifacts_destination,
        move=move,
    )


def _workspace_catalog(conn: Connection, store: Target | None) -> dict[str, str | None]:
    """The workspaces and their roots: from the separate workspace store (read-only), else this database."""
    from mlflow_ws_admin.engine.selection import read_workspaces

    if store is None:
        return read_workspaces(conn)
    from mlflow_ws_admin.db.connect import create_db_engine

    engine = create_db_engine(store, read_only=True)
    try:
        with engine.connect() as store_conn:
            return read_workspaces(store_conn)
    finally:
        engine.dispose()


# --- db restore-workspaces ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreOptions:
    journal: str
    record_journal: str | None = None
    dry_run: bool = False
    yes: bool = False
    lock_timeout: float = 30.0
    ignore_other_sessions: bool = False

    def check(self) -> None:
        if self.record_journal and self.dry_run:
            raise UsageError("a --dry-run restore changes nothing, so it writes no journal")
        refuse_existing(self.record_journal)


def restore(target: Target, options: RestoreOptions, output: Output, ui: UI) -> ExitStatus:
    """Check the journal, report what would move back, confirm, and move it back; on a conflict found
    under the lock, report every conflict read-only (exit 1)."""
    from mlflow_ws_admin.db.connect import create_db_engine
    from mlflow_ws_admin.db.schema import reflect_schema
    from mlflow_ws_admin.engine.journal import check_journal
    from mlflow_ws_admin.engine.restore import apply_restore, plan_restore

    options.check()
    output.check()
    refuse_without_terminal(ui, dry_run=options.dry_run, yes=options.yes, verb="restore")
    console = ui.console(stderr=output.json)
    engine = create_db_engine(target, read_only=options.dry_run, busy_timeout_s=options.lock_timeout)

    def report(result: RestoreResult, status: ExitStatus | None = None, *, awaiting: bool = False) -> ExitStatus:
        return _restore_outcome(output, ui, target, result, console, summary.header, status, awaiting=awaiting)

    def plan() -> RestoreResult:
        return plan_restore(engine, schema, options.journal, summary, max_conflicts=output.max_conflicts)

    try:
        with engine.connect() as conn:
            schema = reflect_schema(conn)
        summary = check_journal(options.journal, target.identity, schema.signature)
        if summary.header.get("operation") == "import":
            return _undo_import(target, options, output, ui, schema, summary, engine)
        if options.record_journal and any("workspace" in c for c in summary.column_sets):
            # Undoing this restore would have to rename before moving, and restore moves before it renames.
            raise UsageError(
                "--record-journal cannot journal a restore that puts renamed names back (--rename-conflicts); "
                "run it without --record-journal"
            )
        if options.dry_run or not options.yes:
            check = plan()
            if options.dry_run or check.conflict_count or check.nothing_to_do:
                return report(check)
            if not output.json:
                report(check, awaiting=True)
            if not ui.confirm("Proceed?"):
                ui.say("Aborted: nothing changed.")
                return report(check, ExitStatus.ABORTED)
        out = open_journal(options.record_journal, "restore", target, schema) if options.record_journal else None
        try:
            result = apply_restore(
                engine,
                schema,
                options.journal,
                summary,
                out=out,
                lock_timeout_s=options.lock_timeout,
                ignore_other_sessions=options.ignore_other_sessions,
            )
        except ConflictsAppeared:
            report(plan(), ExitStatus.CONFLICTS)
            raise
        return report(result)
    finally:
        engine.dispose()


def _restore_outcome(
    output: Output,
    ui: UI,
    target: Target,
    result: RestoreResult,
    console: Console,
    journal_header: dict,
    status: ExitStatus | None,
    *,
    awaiting: bool,
) -> ExitStatus:
    from mlflow_ws_admin.report.json_doc import restore_document, write_document
    from mlflow_ws_admin.report.text import render_restore

    if status is None:
        status = ExitStatus.CONFLICTS if result.conflict_count else ExitStatus.OK
    if output.json:
        if status == ExitStatus.ABORTED:
            name = "aborted"
        elif status == ExitStatus.CONFLICTS:
            name = "conflicts"
        elif result.nothing_to_do:
            name = "nothing_to_move"
        else:
            name = "applied" if result.applied else "ok"
        doc = restore_document(result, status=name, exit_code=int(status), dialect=target.backend, url=target.display)
        write_document(doc, ui.stdout())
        output.emitted = True
    elif output.markdown:
        from mlflow_ws_admin.report.markdown import render_restore_markdown

        render_restore_markdown(
            result, ui.stdout(), exit_code=status, database=target.display, journal_header=journal_header
        )
    elif status != ExitStatus.ABORTED:
        render_restore(result, console, journal_header, awaiting_confirmation=awaiting)
    return status


# --- db finish-relocation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FinishOptions:
    journal: str
    dry_run: bool = False
    yes: bool = False


def finish_relocation(target: Target, options: FinishOptions, output: Output, ui: UI) -> ExitStatus:
    """After a relocating run died between its COMMIT and the end of its deletes: delete the old objects whose
    verified copy is at the new prefix, for the moves the database shows committed (read from the journal).
    On an import's journal: the copies of the moves that never committed (a killed import's orphans)."""
    from mlflow_ws_admin.db.connect import create_db_engine
    from mlflow_ws_admin.db.schema import reflect_schema
    from mlflow_ws_admin.engine.journal import artifact_move_records, journal_header
    from mlflow_ws_admin.engine.relocate import ArtifactMove, committed, delete_sources, leftovers

    refuse_without_terminal(ui, dry_run=options.dry_run, yes=options.yes, verb="delete")
    moves = [ArtifactMove.from_record(r) for r in artifact_move_records(options.journal, target.identity)]
    if not moves:
        raise UsageError(f"journal {options.journal} records no artifact moves (--artifact-policy relocate)")
    engine = create_db_engine(target, read_only=True)
    try:
        with engine.connect() as conn:
            done = committed(conn, reflect_schema(conn), moves)
    finally:
        engine.dispose()
    # An import only ever copies (SOURCE's objects stay): what a killed import leaves is the copies of moves
    # that never committed, found as the objects at the new prefix identical to SOURCE's.
    importing = journal_header(options.journal).get("operation") == "import"
    todo = [m.reversed() for m in moves if m not in done] if importing else done
    pending = leftovers(todo)
    what = "copied object(s) of an import that never committed" if importing else "old object(s)"
    from rich.text import Text

    console = ui.console(stderr=output.json)
    for m in moves:
        left = f"{pending.get(m.experiment_id, 0):,} {what} left"
        if importing:
            state = "committed: nothing to delete (SOURCE's objects stay)" if m in done else f"not committed: {left}"
        else:
            state = left if m in done else "not committed: untouched"
        console.print(Text(f"experiment {m.experiment_id}: {m.source} -> {m.target}: {state}"))
    total = sum(pending.values())
    if options.dry_run or not total:
        console.print(Text(f"{total:,} {what} to delete. Nothing was changed."))
        return ExitStatus.OK
    if not options.yes and not ui.confirm("Delete them?"):
        ui.say("Aborted: nothing changed.")
        return ExitStatus.ABORTED
    deleted = delete_sources(todo)
    verified = "identical to SOURCE's" if importing else "whose copy is verified at the new prefix"
    console.print(Text(f"Done: deleted {deleted:,} {what} {verified}."))
    return ExitStatus.OK


# --- db import-database ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportOptions:
    workspace: str
    create_workspace: bool = False
    from_workspace: str | None = None
    rename_conflicts: str | None = None
    artifact_policy: str = "preserve"
    dry_run: bool = False
    yes: bool = False
    journal: str | None = None
    lock_timeout: float = 30.0
    ignore_other_sessions: bool = False
    #: relocate: SOURCE's server's and TARGET's server's --artifacts-destination
    source_artifacts_destination: str | None = None
    artifacts_destination: str | None = None

    def check(self) -> ArtifactDestinations | None:
        """Refuse bad input before anything is read; the artifact destinations of ``relocate``."""
        from mlflow_ws_admin.engine.import_artifacts import check_policy

        if self.dry_run and self.journal:
            raise UsageError("--journal applies only to a real run, not --dry-run")
        destinations = check_policy(
            self.artifact_policy, (self.source_artifacts_destination, self.artifacts_destination)
        )
        self.rename_policy()  # a bad template is a usage error before anything is read
        refuse_existing(self.journal)
        return destinations

    def rename_policy(self) -> RenamePolicy | None:
        from mlflow_ws_admin.engine.move import RenamePolicy
        from mlflow_ws_admin.engine.rename_template import RenameTemplate

        if self.rename_conflicts is None:
            return None
        return RenamePolicy(RenameTemplate.parse(self.rename_conflicts))


def import_database(source: Target, target: Target, options: ImportOptions, output: Output, ui: UI) -> ExitStatus:
    """Every row of SOURCE into TARGET's workspace: plan (read-only on both), report, confirm, copy in one
    transaction on TARGET; keys that appeared in TARGET under the lock are reported read-only (exit 1)."""
    from mlflow_ws_admin.db.connect import create_db_engine
    from mlflow_ws_admin.engine.import_apply import ImportBlocked, apply_import, with_relocation
    from mlflow_ws_admin.engine.import_plan import build_import_plan
    from mlflow_ws_admin.report.import_report import render_import_plan, render_import_result
    from mlflow_ws_admin.report.progress import import_progress

    destinations = options.check()
    if output.markdown:
        raise UsageError("--format markdown is not available for import-database; use text or json")
    if source.identity == target.identity:
        raise UsageError("SOURCE and TARGET are the same database: nothing to import")
    refuse_without_terminal(ui, dry_run=options.dry_run, yes=options.yes, verb="import")
    console = ui.console(stderr=output.json)
    with _naming("SOURCE"):
        source_engine = create_db_engine(source, read_only=True)
    with _naming("TARGET"):
        target_engine = create_db_engine(target, read_only=options.dry_run, busy_timeout_s=options.lock_timeout)

    def emit(plan: ImportPlan | None, status: ExitStatus, result: ImportResult | None = None) -> ExitStatus:
        if output.json:
            from mlflow_ws_admin.report.import_report import import_document
            from mlflow_ws_admin.report.json_doc import write_document

            name = {ExitStatus.CONFLICTS: "conflicts", ExitStatus.ABORTED: "aborted"}.get(status)
            name = name or ("applied" if result is not None else "ok")
            database = {"dialect": target.backend, "url": target.display}
            doc = import_document(
                plan, status=name, exit_code=status, dry_run=options.dry_run, target=database, result=result
            )
            write_document(doc, ui.stdout())
            output.emitted = True
        return status

    try:
        with _connected("SOURCE", source_engine) as sc, _connected("TARGET", target_engine) as tc:
            plan, meta = build_import_plan(
                sc,
                tc,
                source_display=source.display,
                target_display=target.display,
                workspace=options.workspace,
                create_workspace=options.create_workspace,
                from_workspace=options.from_workspace,
                rename=options.rename_policy(),
            )
            if destinations is not None:
                plan = with_relocation(plan, sc, tc, meta, destinations)
        if not output.json:
            render_import_plan(plan, console, dry_run=options.dry_run)
        if plan.blocked:
            return emit(plan, ExitStatus.CONFLICTS)
        if options.dry_run:
            return emit(plan, ExitStatus.OK)
        if not options.yes and not ui.confirm("Proceed?"):
            ui.say("Aborted: nothing changed.")
            return emit(plan, ExitStatus.ABORTED)
        journal = open_journal(options.journal, "import", target, plan.schema) if options.journal else None
        try:
            with import_progress(plan, None if output.json else ui.progress_console()) as (on_rows, on_copy):
                result = apply_import(
                    source_engine,
                    target_engine,
                    plan,
                    meta,
                    create_workspace=options.create_workspace,
                    journal=journal,
                    lock_timeout_s=options.lock_timeout,
                    ignore_other_sessions=options.ignore_other_sessions,
                    on_rows=on_rows,
                    destinations=destinations,
                    on_copy=on_copy,
                )
        except ImportBlocked as exc:
            if not output.json:
                render_import_plan(exc.plan, console, dry_run=True)
            emit(exc.plan, ExitStatus.CONFLICTS)
            raise
        if not output.json:
            render_import_result(result, console, journal=options.journal)
        return emit(result.plan, ExitStatus.OK, result)
    finally:
        source_engine.dispose()
        target_engine.dispose()


@contextlib.contextmanager
def _naming(which: str) -> Iterator[None]:
    """A failure to reach one of the two databases names it (an import has two)."""
    from sqlalchemy.exc import SQLAlchemyError

    from mlflow_ws_admin.common.errors import WsAdminError
    from mlflow_ws_admin.db.translate import translate

    try:
        yield
    except SQLAlchemyError as exc:
        error = translate(exc, doing=f"connecting to {which}")
        raise type(error)(f"{which}: {error.message}") from None
    except WsAdminError as exc:
        raise type(exc)(f"{which}: {exc.message}") from None


@contextlib.contextmanager
def _connected(which: str, engine: Engine) -> Iterator[Connection]:
    with _naming(which):
        conn = engine.connect()
    with conn:
        yield conn


def _undo_import(
    target: Target,
    options: RestoreOptions,
    output: Output,
    ui: UI,
    schema: WorkspaceSchema,
    summary: JournalSummary,
    engine: Engine,
) -> ExitStatus:
    """``db restore-workspaces`` on an import's journal: delete exactly the rows it inserted."""
    from mlflow_ws_admin.engine.import_undo import apply_undo, plan_undo
    from mlflow_ws_admin.report.import_report import render_undo, undo_document

    if options.record_journal:
        raise UsageError("--record-journal cannot journal the undo of an import; run it without --record-journal")
    console = ui.console(stderr=output.json)

    def report(result: UndoResult, status: ExitStatus, *, awaiting: bool = False) -> ExitStatus:
        if output.json:
            from mlflow_ws_admin.report.json_doc import write_document

            name = {ExitStatus.ABORTED: "aborted"}.get(status) or ("applied" if result.applied else "ok")
            database = {"dialect": target.backend, "url": target.display}
            write_document(undo_document(result, status=name, exit_code=status, target=database), ui.stdout())
            output.emitted = True
        elif status != ExitStatus.ABORTED:
            render_undo(result, console, summary.header, awaiting=awaiting)
        return status

    if options.dry_run or not options.yes:
        check = plan_undo(engine, schema, options.journal, summary)
        if options.dry_run:
            return report(check, ExitStatus.OK)
        if not output.json:
            report(check, ExitStatus.OK, awaiting=True)
        if not ui.confirm("Proceed?"):
            ui.say("Aborted: nothing changed.")
            return report(check, ExitStatus.ABORTED)
    result = apply_undo(
        engine,
        schema,
        options.journal,
        summary,
        lock_timeout_s=options.lock_timeout,
        ignore_other_sessions=options.ignore_other_sessions,
    )
    return report(result, ExitStatus.OK)


# --- db preflight ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreflightOptions:
    default_artifact_root: str | None = None
    server: str | None = None
    server_timeout: float = 10.0
    direction: str = "disable"
    auth_uri: str | None = None
    default_permission: str = "READ"
    tracking_journal: str | None = None


def _auth_checks(tracking_conn: Connection, tracking: Target, options: PreflightOptions) -> list[Check]:
    """``--auth-uri``: what the auth migration would block on, read-only like the rest."""
    from mlflow_ws_admin.auth.preflight import auth_checks
    from mlflow_ws_admin.auth.rules import AuthConfig
    from mlflow_ws_admin.db.connect import create_db_engine, resolve_target

    auth = resolve_target(options.auth_uri)
    if options.tracking_journal is not None:
        from mlflow_ws_admin.db.schema import reflect_schema
        from mlflow_ws_admin.engine.journal import check_journal

        check_journal(options.tracking_journal, tracking.identity, reflect_schema(tracking_conn).signature)
    engine = create_db_engine(auth, read_only=True)
    try:
        with engine.connect() as conn:
            return auth_checks(
                conn,
                tracking_conn,
                AuthConfig(options.default_permission),
                case_insensitive_names=auth.backend == "mysql",
                tracking_journal=options.tracking_journal,
            )
    finally:
        engine.dispose()


def preflight(target: Target, options: PreflightOptions, output: Output, ui: UI) -> ExitStatus:
    """Read-only checks, each pass, warn or fail; exit 1 when one fails."""
    from mlflow_ws_admin.db.connect import create_db_engine
    from mlflow_ws_admin.engine.preflight import run_preflight
    from mlflow_ws_admin.findings.server_probe import probe_server_features
    from mlflow_ws_admin.report.preflight_text import render_preflight

    features = probe_server_features(options.server, timeout_s=options.server_timeout) if options.server else None
    engine = create_db_engine(target, read_only=True)
    try:
        with engine.connect() as conn:
            result = run_preflight(
                conn,
                database=target.display,
                default_artifact_root=options.default_artifact_root,
                server=features,
                direction=options.direction,
            )
            if options.auth_uri:
                result = dataclasses.replace(result, checks=(*result.checks, *_auth_checks(conn, target, options)))
    finally:
        engine.dispose()
    status = ExitStatus.CONFLICTS if result.failed else ExitStatus.OK
    if output.json:
        from mlflow_ws_admin.report.json_doc import preflight_document, write_document

        write_document(preflight_document(result, exit_code=status), ui.stdout())
        output.emitted = True
    elif output.markdown:
        from mlflow_ws_admin.report.markdown import render_preflight_markdown

        render_preflight_markdown(result, ui.stdout(), exit_code=status)
    else:
        render_preflight(result, ui.console())
    return status


# --- demo --------------------------------------------------------------------------------------------------


def demo(path: str | None, ui: UI) -> ExitStatus:
    """Build the demo database and dry-run the migration on it."""
    from mlflow_ws_admin.db.connect import resolve_target
    from mlflow_ws_admin.db.sample_data import build_demo_database

    # Built and closed before migrate's SQLite engine may tune the process (db.sqlite_memstatus: no connection open).
    db_path = build_demo_database(path)
    uri = f"sqlite:///{db_path}"
    print(f"Demo database: {db_path}\n")
    status = migrate(resolve_target(uri), MigrateOptions(dry_run=True), Output(dry_run=True), ui)
    print(
        f"\nThe demo exited with status {int(status)} ({status.name.lower()}). Try:\n"
        f"  mlflow-ws-admin db migrate-to-default-workspace {uri} --dry-run --verbose"
    )
    return status
