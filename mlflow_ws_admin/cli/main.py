"""Click only: parse the options, resolve the URI, call one use case (``usecases``), map its outcome or its
exception to an exit code, once, at the boundary.

Heavy imports (SQLAlchemy, Rich, drivers) happen inside the commands so ``--help`` starts fast.
"""

from __future__ import annotations

from typing import NoReturn

import click

from mlflow_ws_admin import __version__
from mlflow_ws_admin.cli.boundary import Invocation, artifact_root, boundary, run_process
from mlflow_ws_admin.cli.boundary import run as run_command
from mlflow_ws_admin.cli.options import (
    URI_HELP,
    artifact_root_option,
    dry_run_option,
    format_option,
    ignore_other_sessions_option,
    lock_timeout_option,
    move_apply_options,
    rename_options,
    report_options,
    resource_filter_options,
    server_options,
    workspace_store_option,
)
from mlflow_ws_admin.common.errors import UsageError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlflow-ws-admin")
def main() -> None:
    """Administer MLflow workspaces: move workspace-scoped rows into `default`, or between workspaces."""


def entry_point() -> NoReturn:
    """The installed command and ``python -m mlflow_ws_admin``."""
    run_process(main)


@main.group()
def db() -> None:
    """Commands that operate on an MLflow tracking database."""


@db.command("migrate-to-default-workspace", epilog=URI_HELP)
@click.argument("uri", required=False)
@dry_run_option("Read-only preflight: print the plan and conflicts, change nothing.")
@move_apply_options(
    verbose_help="List every conflict group instead of the first 5 per table.",
    journal_help="Record every moved row (JSON Lines; gzip when FILE ends in .gz) for db restore-workspaces.",
)
@artifact_root_option("The tracking server's --default-artifact-root: enables the reserved-path artifact checks.")
@report_options
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
    "--prune-workspaces",
    is_flag=True,
    help="In the same transaction, delete the catalog rows of the workspaces the move emptied (never `default`).",
)
@rename_options
def migrate_to_default_workspace(
    uri: str | None, output_format: str, max_conflicts: int | None, default_artifact_root: str | None, **options: object
) -> None:
    """Move every workspace-scoped row into the reserved `default` workspace.

    Computes a plan (rows to move per table and every name collision), prints it, and, unless --dry-run
    or blocking conflicts, applies it in one transaction after confirmation.

    Exit codes: 0 ok, 1 blocking conflicts or artifact findings, 2 usage, 3 database error, 4 verification
    failed or the --plan file drifted (rolled back), 5 aborted (nothing changed), 70 internal error,
    141 stdout closed.
    """
    from mlflow_ws_admin.usecases import commands

    output = commands.Output(output_format, max_conflicts, bool(options["dry_run"]))
    run = Invocation(uri, default_artifact_root, output=output)
    with boundary(run):
        opts = commands.MigrateOptions(default_artifact_root=artifact_root(default_artifact_root), **options)  # type: ignore[arg-type]
    run_command(run, lambda target: commands.migrate(target, opts, output, run.ui))


@db.command("move-resources", epilog=URI_HELP)
@click.argument("uri", required=False)
@click.option("--from", "source", required=True, metavar="SRC", help="The workspace the resources leave.")
@click.option("--to", "target", required=True, metavar="DST", help="The workspace they move into.")
@click.option(
    "--resource-type",
    "resource_types",
    multiple=True,
    metavar="TYPE",
    help="A root table to move from (repeatable): experiments, registered_models, the gateway and MCP tables, ... "
    "Default: every type, which merges SRC into DST.",
)
@resource_filter_options
@dry_run_option("Read-only preflight: print what would move and every conflict, change nothing.")
@move_apply_options(
    verbose_help="List every conflict group and reference, not the first few.",
    journal_help="Record every changed row (JSON Lines) so that db restore-workspaces can undo the move.",
)
@click.option(
    "--artifact-policy",
    type=click.Choice(["preserve", "retarget", "relocate"]),
    default="preserve",
    show_default=True,
    help="retarget: repoint each moved experiment's artifact_location under DST's artifact root (no copy; "
    "artifacts logged before stay unreadable in DST). relocate: move the objects too and rewrite every stored URI.",
)
@click.option(
    "--artifacts-destination",
    metavar="URI",
    default=None,
    help="relocate: the tracking server's --artifacts-destination, where mlflow-artifacts: objects are stored.",
)
@click.option(
    "--keep-source-artifacts",
    is_flag=True,
    default=False,
    help="relocate: keep the old objects after the commit (they are deleted by default).",
)
@artifact_root_option(
    "The tracking server's --default-artifact-root: DST's root for retarget and relocate (unless the catalog sets one)."
)
@workspace_store_option
@report_options
@rename_options
def move_resources(
    uri: str | None,
    output_format: str,
    max_conflicts: int | None,
    default_artifact_root: str | None,
    workspace_store_uri: str | None,
    **options: object,
) -> None:
    """Move resources from workspace SRC to DST, with everything that belongs to them, in one transaction.

    Selects root rows by type, --name or --tag; their dependents (a model's versions, tags, aliases) follow,
    and rows they reference (a gateway endpoint's model definitions and secrets) come along.  Conflicts are
    checked against DST only.

    Exit codes: 0 ok, 1 conflicts or references left behind, 2 usage, 3 database error, 4 verification
    failed (rolled back), 5 aborted (nothing changed), 70 internal error, 141 stdout closed.
    """
    from mlflow_ws_admin.usecases import commands

    output = commands.Output(output_format, max_conflicts, bool(options["dry_run"]))
    destination = options.get("artifacts_destination")
    run = Invocation(uri, default_artifact_root, workspace_store_uri, destination, output=output)  # type: ignore[arg-type]
    with boundary(run):
        opts = commands.MoveOptions(
            default_artifact_root=artifact_root(default_artifact_root),
            workspace_store_uri=workspace_store_uri,
            **options,  # type: ignore[arg-type]
        )
    run_command(run, lambda target: commands.move_resources(target, opts, output, run.ui))


@db.command("preflight", epilog=URI_HELP)
@click.argument("uri", required=False)
@artifact_root_option("The tracking server's --default-artifact-root: enables the artifact-root checks.")
@server_options
@click.option(
    "--auth-uri",
    metavar="AUTH_URI",
    default=None,
    help="Also check MLflow's basic-auth database: what auth migrate-to-default-workspace would block on.",
)
@click.option(
    "--default-permission",
    type=click.Choice(["READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS"]),
    default="READ",
    show_default=True,
    help="With --auth-uri: default_permission in basic_auth.ini.",
)
@click.option(
    "--tracking-journal",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --auth-uri, once the tracking migration ran: its journal (which workspace owned each resource).",
)
@format_option
def preflight(
    uri: str | None,
    default_artifact_root: str | None,
    server: str | None,
    server_timeout: float,
    direction: str,
    auth_uri: str | None,
    default_permission: str,
    tracking_journal: str | None,
    output_format: str,
) -> None:
    """Read-only checks for turning workspaces off (--for disable: what would block the migration, other
    sessions, the server) or on (--for enable: names, artifact root, reserved paths): each pass, warn or fail.
    Exit codes: 0 nothing failed, 1 a check failed, 2 usage, 3 database error."""
    from mlflow_ws_admin.usecases import commands

    output = commands.Output(output_format, dry_run=True)
    run = Invocation(uri, server, default_artifact_root, auth_uri, output=output)
    with boundary(run):
        if tracking_journal and not auth_uri:
            raise UsageError("--tracking-journal goes with --auth-uri")
        opts = commands.PreflightOptions(
            artifact_root(default_artifact_root),
            server,
            server_timeout,
            direction,
            auth_uri,
            default_permission,
            tracking_journal,
        )
    run_command(run, lambda target: commands.preflight(target, opts, output, run.ui))


@main.command()
@click.option(
    "--path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the demo SQLite database (default: a new temporary directory).",
)
def demo(path: str | None) -> None:
    """Build a small multi-workspace SQLite database with planted conflicts and dry-run the migration on it."""
    from mlflow_ws_admin.usecases import commands

    run = Invocation(None)
    with boundary(run):
        commands.demo(path, run.ui)


@db.command("restore-workspaces", epilog=URI_HELP)
@click.argument("uri", required=False)
@click.option(
    "--journal",
    "journals",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="The journal of the run to undo.  (A second --journal is the old spelling of --record-journal.)",
)
@click.option(
    "--record-journal",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Record this restore's own moves in a new journal, so the restore can be undone too.",
)
@dry_run_option("Read-only: check the journal and report what would move back.")
@click.option("-y", "--yes", is_flag=True, help="Restore without asking for confirmation.")
@lock_timeout_option
@ignore_other_sessions_option
@report_options
def restore_workspaces(
    uri: str | None,
    journals: tuple[str, ...],
    record_journal: str | None,
    output_format: str,
    max_conflicts: int | None,
    **options: object,
) -> None:
    """Move the rows a journaled run moved back to their original workspaces, in one transaction.

    Re-creates pruned catalog rows, and refuses a journal that is incomplete or belongs to another database.
    Exit codes: 0 ok, 1 restore conflicts (nothing changed), 2 usage or journal refused, 3 database error,
    4 verification failed (rolled back), 5 aborted, 70 internal error, 141 stdout closed.
    """
    from mlflow_ws_admin.usecases import commands

    output = commands.Output(output_format, max_conflicts, bool(options["dry_run"]))
    run = Invocation(uri, output=output)
    with boundary(run):
        if len(journals) > 2 or (len(journals) == 2 and record_journal):
            raise UsageError("give one --journal to restore, and at most one --record-journal")
        record = record_journal or (journals[1] if len(journals) == 2 else None)
        opts = commands.RestoreOptions(journals[0], record, **options)  # type: ignore[arg-type]
    run_command(run, lambda target: commands.restore(target, opts, output, run.ui))


@db.command("finish-relocation", epilog=URI_HELP)
@click.argument("uri", required=False)
@click.option(
    "--journal",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="The journal of a move-resources or import-database --artifact-policy relocate run.",
)
@dry_run_option("Read-only: list the old objects that would be deleted.")
@click.option("-y", "--yes", is_flag=True, help="Delete without asking for confirmation.")
def finish_relocation(uri: str | None, journal: str, dry_run: bool, yes: bool) -> None:
    """Delete the old artifact objects a relocating run left behind when it was killed after its commit.

    Only for moves the database shows committed, and only objects whose copy is verified at the new prefix.
    Given an import's journal: deletes the copies of a killed import that never committed (the objects at the
    new prefix identical to SOURCE's).  Exit codes: 0 ok, 2 usage or journal refused, 3 database or store error, 5 aborted.
    """
    from mlflow_ws_admin.usecases import commands

    output = commands.Output("text", None, dry_run)
    run = Invocation(uri, output=output)
    opts = commands.FinishOptions(journal, dry_run, yes)
    run_command(run, lambda target: commands.finish_relocation(target, opts, output, run.ui))


@db.command("import-database")
@click.argument("source_uri", metavar="SOURCE_URI")
@click.argument("target_uri", metavar="TARGET_URI")
@click.option("--workspace", required=True, metavar="W", help="TARGET's workspace that receives every row of SOURCE.")
@click.option("--create-workspace", is_flag=True, help="Create W in TARGET's catalog (same transaction) if missing.")
@click.option(
    "--from-workspace",
    default=None,
    metavar="S",
    help="Copy only workspace S of a workspace-enabled SOURCE: its rows and the rows that depend on them.",
)
@click.option(
    "--rename-conflicts",
    default=None,
    metavar="TEMPLATE",
    help="Rename SOURCE's rows whose name W already has, in the copy (e.g. '{name}-{workspace}', '{name}-{n}'); "
    "W's rows keep their names.",
)
@click.option(
    "--artifact-policy",
    type=click.Choice(["preserve", "relocate"]),
    default="preserve",
    show_default=True,
    help="preserve: keep every artifact location (mlflow-artifacts: ones are reported). relocate: copy SOURCE's "
    "proxied experiment prefixes under TARGET's destination (SOURCE's objects stay) and rewrite the stored URIs.",
)
@click.option(
    "--source-artifacts-destination",
    metavar="URI",
    default=None,
    help="relocate: SOURCE's server's --artifacts-destination, where its mlflow-artifacts: objects are stored.",
)
@click.option(
    "--artifacts-destination",
    metavar="URI",
    default=None,
    help="relocate: TARGET's server's --artifacts-destination, where the copies go.",
)
@dry_run_option("Read-only on both databases: print what would be copied and every blocking key, change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Import without asking for confirmation.")
@click.option(
    "--journal",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Record every inserted row's key (JSON Lines; gzip when FILE ends in .gz): db restore-workspaces undoes it.",
)
@lock_timeout_option
@ignore_other_sessions_option
@format_option
def import_database(source_uri: str, target_uri: str, output_format: str, **options: object) -> None:
    """Copy every row of the MLflow database SOURCE_URI (or of its workspace S) into workspace W of TARGET_URI.

    One transaction; SOURCE is only read.  Both must be at the same MLflow schema revision.  Integer ids TARGET
    allocates (experiment ids) are remapped with every column that references them; string ids (run ids, trace
    ids) are kept, and one that TARGET already has blocks the import, as does a name W already has (unless
    --rename-conflicts renames the incoming row).

    Exit codes: 0 ok, 1 keys or names already in TARGET, or an artifact target prefix in use (nothing changed),
    2 usage, 3 database or store error (schema revisions differ, unreachable, not MLflow, a bucket refused),
    5 aborted, 70 internal error, 141 stdout closed.
    """
    from mlflow_ws_admin.db.connect import resolve_target
    from mlflow_ws_admin.usecases import commands

    output = commands.Output(output_format, dry_run=bool(options["dry_run"]))
    destinations = (options.get("source_artifacts_destination"), options.get("artifacts_destination"))
    run = Invocation(target_uri, source_uri, *destinations, output=output)  # type: ignore[arg-type]
    with boundary(run):
        source = resolve_target(source_uri)
        opts = commands.ImportOptions(**options)  # type: ignore[arg-type]
    run_command(run, lambda target: commands.import_database(source, target, opts, output, run.ui))


# The auth database's commands live beside this file; registered last, as a group of ``main``.
from mlflow_ws_admin.cli.auth import auth  # noqa: E402

main.add_command(auth)
