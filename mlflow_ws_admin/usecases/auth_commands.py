"""The auth database's use cases (``auth migrate-to-default-workspace``, ``auth restore``), in the style of
``usecases.commands``: a resolved Target, typed options and the UI in, an ``ExitStatus`` out."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlflow_ws_admin.common.errors import ExitStatus, UsageError
from mlflow_ws_admin.usecases.commands import UI, Output, refuse_existing, refuse_without_terminal

if TYPE_CHECKING:
    from mlflow_ws_admin.db.target import Target
    from mlflow_ws_admin.engine.journal import JournalWriter


# --- auth migrate-to-default-workspace ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthMigrateOptions:
    tracking_uri: str | None = None
    tracking_journal: str | None = None
    dry_run: bool = False
    verbose: bool = False
    yes: bool = False
    widen: bool = False
    drop: bool = False
    per_resource: bool = False
    rename_conflicts: str | None = None
    default_permission: str = "READ"
    grant_default_workspace_access: bool = False
    journal: str | None = None
    lock_timeout: float = 30.0
    ignore_other_sessions: bool = False

    def check(self) -> None:
        if self.widen and self.drop:
            raise UsageError("--widen and --drop are exclusive: each grant is either kept default-wide or removed")
        if self.dry_run and self.journal:
            raise UsageError("--journal applies only to a real run, not --dry-run")
        refuse_existing(self.journal)


def auth_migrate(target: Target, options: AuthMigrateOptions, output: Output, ui: UI) -> ExitStatus:
    """The basic-auth database's roles into `default`, preserving every user's effective permissions."""
    from mlflow_ws_admin.auth.apply import AuthVerificationFailed, apply_auth_plan
    from mlflow_ws_admin.auth.plan import build_auth_plan
    from mlflow_ws_admin.auth.rules import AuthConfig
    from mlflow_ws_admin.auth.state import legacy_rows, read_auth_state, read_ownership
    from mlflow_ws_admin.db.connect import create_db_engine, resolve_target
    from mlflow_ws_admin.engine.rename_template import RenameTemplate
    from mlflow_ws_admin.report.auth import auth_document, render_auth_applied, render_auth_plan
    from mlflow_ws_admin.report.json_doc import write_document

    options.check()
    template = RenameTemplate.parse(options.rename_conflicts) if options.rename_conflicts is not None else None
    refuse_without_terminal(ui, dry_run=options.dry_run, yes=options.yes, verb="apply")
    tracking = resolve_target(options.tracking_uri)
    ownership = _read_ownership(tracking, options.tracking_journal, read_ownership)
    engine = create_db_engine(target, read_only=options.dry_run, busy_timeout_s=options.lock_timeout)
    console = ui.console(stderr=output.json)
    database = {"dialect": target.backend, "url": target.display}
    tracking_db = {"dialect": tracking.backend, "url": tracking.display}

    def emit(status: str, code: ExitStatus, plan: Any = None, result: Any = None, message: str | None = None) -> None:
        if output.json:
            doc = auth_document(
                plan,
                status=status,
                exit_code=int(code),
                dry_run=options.dry_run,
                database=database,
                tracking_database=tracking_db,
                result=result,
                message=message,
            )
            write_document(doc, ui.stdout())
            output.emitted = True

    try:
        with engine.connect() as conn:
            state = read_auth_state(conn)
            legacy = legacy_rows(conn)
        plan = build_auth_plan(
            state,
            ownership,
            AuthConfig(options.default_permission, options.grant_default_workspace_access),
            template=template,
            widen=options.widen,
            drop=options.drop,
            per_resource=options.per_resource,
            case_insensitive_names=target.backend == "mysql",
        )
        plan = dataclasses.replace(plan, legacy=legacy)
        render_auth_plan(plan, console, verbose=options.verbose, dry_run=options.dry_run)
        if plan.blocking or plan.unaccepted_gains:
            emit("conflicts", ExitStatus.CONFLICTS, plan)
            return ExitStatus.CONFLICTS
        if plan.unaccepted:
            emit("verification_failed", ExitStatus.VERIFICATION_FAILED, plan)
            return ExitStatus.VERIFICATION_FAILED
        if plan.nothing_to_do:
            emit("nothing_to_move", ExitStatus.OK, plan)
            return ExitStatus.OK
        if options.dry_run:
            emit("ok", ExitStatus.OK, plan)
            return ExitStatus.OK
        if not options.yes and not ui.confirm("Proceed?"):
            ui.say("Aborted: nothing changed.")
            emit("aborted", ExitStatus.ABORTED, plan)
            return ExitStatus.ABORTED
        journal = _auth_journal(options.journal, target) if options.journal else None
        try:
            result = apply_auth_plan(
                engine,
                plan,
                target.backend,
                lock_timeout_s=options.lock_timeout,
                journal=journal,
                ignore_other_sessions=options.ignore_other_sessions,
            )
        except AuthVerificationFailed as exc:
            emit("verification_failed", exc.exit_status, plan, message=exc.message)
            raise
        render_auth_applied(result, console)
        emit("applied", ExitStatus.OK, plan, result)
        return ExitStatus.OK
    finally:
        engine.dispose()


def _read_ownership(tracking: Target, journal: str | None, read: Callable[..., Any]) -> Any:
    """Which workspace owned each resource: the tracking database, read-only, and its migration's journal."""
    from mlflow_ws_admin.db.connect import create_db_engine
    from mlflow_ws_admin.db.schema import reflect_schema
    from mlflow_ws_admin.engine.journal import check_journal

    engine = create_db_engine(tracking, read_only=True)
    try:
        with engine.connect() as conn:
            if journal is not None:
                check_journal(journal, tracking.identity, reflect_schema(conn).signature)
            return read(conn, journal)
    finally:
        engine.dispose()


def _auth_journal(path: str, target: Target) -> JournalWriter:
    from mlflow_ws_admin.auth.state import auth_signature
    from mlflow_ws_admin.engine.journal import JournalWriter, header

    database = {"dialect": target.backend, "url": target.display, "identity": target.identity}
    return JournalWriter(path, header("auth-migrate", database, auth_signature()))


@dataclass(frozen=True)
class AuthRestoreOptions:
    journal: str
    dry_run: bool = False
    yes: bool = False
    lock_timeout: float = 30.0
    ignore_other_sessions: bool = False


def auth_restore(target: Target, options: AuthRestoreOptions, output: Output, ui: UI) -> ExitStatus:
    """Put back the roles, grants and assignments an auth migration's journal recorded."""
    from mlflow_ws_admin.auth.restore import apply_auth_restore, check_unchanged, read_auth_journal
    from mlflow_ws_admin.db.connect import create_db_engine
    from mlflow_ws_admin.report.json_doc import write_document

    refuse_without_terminal(ui, dry_run=options.dry_run, yes=options.yes, verb="restore")
    journal = read_auth_journal(options.journal, target.identity)
    engine = create_db_engine(target, read_only=options.dry_run, busy_timeout_s=options.lock_timeout)
    rows = journal.count("before")

    def emit(status: str, code: ExitStatus, restored: int | None = None) -> None:
        if output.json:
            doc = {
                "schema_version": 1,
                "status": status,
                "exit_code": int(code),
                "dry_run": options.dry_run,
                "database": {"dialect": target.backend, "url": target.display},
                "rows_to_restore": rows,
                "rows_restored": restored,
            }
            write_document(doc, ui.stdout())
            output.emitted = True

    try:
        with engine.connect() as conn:
            check_unchanged(conn, journal)
        say = ui.console(stderr=output.json).print
        say(f"Ready: {rows} role, grant and assignment row(s) will be put back as the journal recorded them.")
        if options.dry_run:
            emit("ok", ExitStatus.OK)
            return ExitStatus.OK
        if not options.yes and not ui.confirm("Proceed?"):
            ui.say("Aborted: nothing changed.")
            emit("aborted", ExitStatus.ABORTED)
            return ExitStatus.ABORTED
        restored = apply_auth_restore(
            engine,
            journal,
            target.backend,
            lock_timeout_s=options.lock_timeout,
            ignore_other_sessions=options.ignore_other_sessions,
        )
        say(f"Restored: {restored} row(s); the roles are back in their workspaces.")
        emit("applied", ExitStatus.OK, restored)
        return ExitStatus.OK
    finally:
        engine.dispose()
