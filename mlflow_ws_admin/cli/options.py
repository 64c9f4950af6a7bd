"""The options several commands share, defined once (Click only)."""

from __future__ import annotations

from collections.abc import Callable

import click

URI_HELP = (
    "URI is the tracking database: sqlite:///relative.db, sqlite:////absolute.db, postgresql://user@host/db "
    "(also postgres://, postgresql+psycopg2://) or mysql://user@host/db (also mariadb://, mysql+pymysql://). "
    "Without URI, $MLFLOW_TRACKING_URI is used; an http(s) tracking-server URL is not a database."
)
#: IntRange's bound: every value gives one complete report (SQLite's LIMIT overflows past 2**63 - 1).
MAX_CONFLICTS_LIMIT = 2**31 - 1


def format_option(command: Callable) -> Callable:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json", "markdown"]),
        default="text",
        show_default=True,
        help="json: one JSON document on stdout (contract: docs/json-output.md); progress and prompts go to stderr. "
        "markdown: a GitHub-flavoured report for CI summaries (dry runs and preflight only).",
    )(command)


def report_options(command: Callable) -> Callable:
    """--format and --max-conflicts, shared by migrate and restore."""
    command = click.option(
        "--max-conflicts",
        type=click.IntRange(min=0, max=MAX_CONFLICTS_LIMIT, clamp=True),
        default=None,
        metavar="N",
        help="List at most N conflict groups, in text and JSON alike (the counts stay exact).",
    )(command)
    return format_option(command)


def lock_timeout_option(command: Callable) -> Callable:
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0.1),
        default=30.0,
        show_default=True,
        help="Seconds to wait for the table locks the change needs (exit 3 after that).",
    )(command)


def dry_run_option(help_text: str) -> Callable[[Callable], Callable]:
    # --no-dry-run as MLflow's own commands accept it.
    return click.option("--dry-run/--no-dry-run", default=False, help=help_text)


def artifact_root_option(help_text: str) -> Callable[[Callable], Callable]:
    return click.option("--default-artifact-root", metavar="ROOT", default=None, help=help_text)


def ignore_other_sessions_option(command: Callable) -> Callable:
    return click.option(
        "--ignore-other-sessions",
        is_flag=True,
        help="Change the database even while other sessions (a running tracking server) are connected to it.",
    )(command)


_SERVER_OPTIONS = [
    click.option(
        "--server", metavar="URL", default=None, help="Also ask this tracking server whether workspaces are on."
    ),
    click.option(
        "--server-timeout",
        type=click.FloatRange(min=0.1),
        default=10.0,
        show_default=True,
        help="Seconds to wait for the tracking server's answer.",
    ),
    click.option(
        "--for",
        "direction",
        type=click.Choice(["disable", "enable"]),
        default="disable",
        show_default=True,
        help="disable: what would block migrate-to-default-workspace; enable: the reserved-path checks.",
    ),
]


def server_options(command: Callable) -> Callable:
    """db preflight's --server, --server-timeout and --for."""
    for option in reversed(_SERVER_OPTIONS):
        command = option(command)
    return command


def _tag(value: str) -> tuple[str, str]:
    key, sep, tag_value = value.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{value!r} is not KEY=VALUE")
    return key, tag_value


def resource_filter_options(command: Callable) -> Callable:
    """db move-resources' --name and --tag (KEY=VALUE, parsed here)."""
    command = click.option(
        "--tag",
        "tags",
        multiple=True,
        metavar="KEY=VALUE",
        callback=lambda _ctx, _param, values: tuple(_tag(v) for v in values),
        help="Move only the resources with this tag (repeatable: all must match).  Not with --name.",
    )(command)
    return click.option(
        "--name", "names", multiple=True, metavar="NAME", help="Move only the resources with this name (repeatable)."
    )(command)


def rename_options(command: Callable) -> Callable:
    """--rename-conflicts TEMPLATE and --keep, shared by migrate and move-resources."""
    command = click.option(
        "--keep",
        type=click.Choice(["default", "oldest", "newest"]),
        default=None,
        help="With --rename-conflicts: the row of each conflict group that keeps its name.  default: the one "
        "already in the target workspace, else the oldest (by creation time, ties by id).",
    )(command)
    return click.option(
        "--rename-conflicts",
        metavar="TEMPLATE",
        default=None,
        help="Rename all but one row of each conflict group, in the same transaction, e.g. '{name} ({workspace})'. "
        "Placeholders: {name}, {workspace} (the row's source workspace), {n} (a counter that makes it unique).",
    )(command)


def move_apply_options(verbose_help: str, journal_help: str) -> Callable[[Callable], Callable]:
    """What every Move command takes to apply: -v, -y, --allow-artifact-overlap, --journal, the lock timeout and
    --ignore-other-sessions (migrate and move-resources)."""

    def decorate(command: Callable) -> Callable:
        command = ignore_other_sessions_option(lock_timeout_option(command))
        command = click.option("--journal", type=click.Path(dir_okay=False), default=None, help=journal_help)(command)
        command = click.option(
            "--allow-artifact-overlap",
            is_flag=True,
            help="Proceed despite blocking artifact findings (overlapping locations across workspaces).",
        )(command)
        command = click.option("-y", "--yes", is_flag=True, help="Apply without asking for confirmation.")(command)
        return click.option("-v", "--verbose", is_flag=True, help=verbose_help)(command)

    return decorate


def workspace_store_option(command: Callable) -> Callable:
    return click.option(
        "--workspace-store-uri",
        metavar="URI",
        default=None,
        envvar="MLFLOW_WORKSPACE_STORE_URI",
        help="The database that holds the workspace catalog, when it is not the tracking database "
        "(default: $MLFLOW_WORKSPACE_STORE_URI, else URI).  Read only.",
    )(command)
