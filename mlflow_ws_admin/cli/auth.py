"""Click only, for the basic-auth database's commands (``mlflow-ws-admin auth ...``): parse, call one use case
(``usecases``), map its outcome to an exit code at the boundary.  ``main`` registers the group."""

from __future__ import annotations

import os

import click

from mlflow_ws_admin.cli.boundary import Invocation, boundary
from mlflow_ws_admin.cli.boundary import run as run_command
from mlflow_ws_admin.cli.options import dry_run_option, format_option, ignore_other_sessions_option, lock_timeout_option
from mlflow_ws_admin.common.errors import UsageError


@click.group()
def auth() -> None:
    """Commands that operate on MLflow's basic-auth database (`mlflow server --app-name basic-auth`)."""


AUTH_URI_HELP = (
    "AUTH_URI is the basic-auth database (database_uri in basic_auth.ini), in the same forms as a tracking "
    "database URI. --tracking-uri (default $MLFLOW_TRACKING_URI) is the tracking database: it says which "
    "workspace owns each experiment, model, prompt, scorer, gateway resource and MCP server."
)


@auth.command("migrate-to-default-workspace", epilog=AUTH_URI_HELP)
@click.argument("auth_uri")
@click.option(
    "--tracking-uri", default=None, metavar="URI", help="The tracking database (default $MLFLOW_TRACKING_URI)."
)
@click.option(
    "--tracking-journal",
    type=click.Path(dir_okay=False),
    default=None,
    help="The journal of the tracking migration (db migrate-to-default-workspace --journal), when it already "
    "ran: which workspace each resource came from, and its renames.",
)
@dry_run_option("Read-only: print the translated roles, findings and permission changes; change nothing.")
@click.option("-v", "--verbose", is_flag=True, help="List every permission change and dropped grant.")
@click.option("-y", "--yes", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--widen", is_flag=True, help="Keep workspace-scope and wildcard-only grants, now server-wide.")
@click.option("--drop", is_flag=True, help="Remove workspace-scope and wildcard-only grants of non-sole workspaces.")
@click.option(
    "--per-resource",
    is_flag=True,
    help="A workspace admin (workspace, *, MANAGE) becomes MANAGE on each resource its workspace owned; other "
    "workspace grants (USE: creation only, open with workspaces off) are removed. Combines with --widen/--drop "
    "for the tiers.",
)
@click.option(
    "--rename-conflicts",
    metavar="TEMPLATE",
    default=None,
    help="Rename same-named roles whose translated grants differ, e.g. '{name} ({workspace})' ({name}, "
    "{workspace}, {n}).",
)
@click.option(
    "--default-permission",
    type=click.Choice(["READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS"]),
    default="READ",
    show_default=True,
    help="default_permission in basic_auth.ini (MLflow's shipped value is READ).",
)
@click.option(
    "--grant-default-workspace-access",
    is_flag=True,
    help="grant_default_workspace_access = true in basic_auth.ini.",
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False),
    default=None,
    help="Record the RBAC rows before and after (JSON Lines; gzip when FILE ends in .gz) for auth restore.",
)
@lock_timeout_option
@ignore_other_sessions_option
@format_option
def auth_migrate_to_default_workspace(auth_uri: str, output_format: str, **options: object) -> None:
    """Move every role of the basic-auth database into `default`, so that every user resolves the same
    permission on every resource once workspaces are off.

    Exit codes: 0 ok, 1 blocking findings (workspace-scope or wildcard-only grants, role name conflicts, a
    user would gain access that only --widen accepts; nothing changed), 2 usage, 3 database error, 4 verification failed (a permission would change; rolled
    back), 5 aborted, 70 internal error, 141 stdout closed.
    """
    from mlflow_ws_admin.usecases import auth_commands, commands

    output = commands.Output("text" if output_format == "markdown" else output_format, None, bool(options["dry_run"]))
    tracking_uri = options.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
    run = Invocation(auth_uri, tracking_uri, output=output)  # type: ignore[arg-type]
    with boundary(run):
        if output_format == "markdown":
            raise UsageError("--format markdown is not available for the auth migration; use text or json")
        opts = auth_commands.AuthMigrateOptions(**options)  # type: ignore[arg-type]
    run_command(run, lambda target: auth_commands.auth_migrate(target, opts, output, run.ui))


@auth.command("restore", epilog=AUTH_URI_HELP)
@click.argument("auth_uri")
@click.option(
    "--journal",
    required=True,
    type=click.Path(dir_okay=False),
    help="The journal of auth migrate-to-default-workspace.",
)
@dry_run_option("Read-only: check the journal and the database, change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Restore without asking for confirmation.")
@lock_timeout_option
@ignore_other_sessions_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def auth_restore(auth_uri: str, output_format: str, **options: object) -> None:
    """Put back the roles, grants and assignments an auth migration replaced, from its journal.

    Refuses a journal that is incomplete or for another database (exit 2), and rows changed since the
    migration (exit 1). Exit codes otherwise as for the migration.
    """
    from mlflow_ws_admin.usecases import auth_commands, commands

    output = commands.Output(output_format, None, bool(options["dry_run"]))
    run = Invocation(auth_uri, output=output)
    with boundary(run):
        opts = auth_commands.AuthRestoreOptions(**options)  # type: ignore[arg-type]
    run_command(run, lambda target: auth_commands.auth_restore(target, opts, output, run.ui))
