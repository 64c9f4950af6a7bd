"""Shared test helpers: running the CLI in-process and planting data."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import CliRunner, Result
from sqlalchemy.engine import Connection

from mlflow_ws_admin.cli.main import main
from mlflow_ws_admin.db.sample_data import SampleData

TEAMS = ("team-a", "team-b", "team-c")


def run_cli(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """Invoke the real command tree in-process; stdout and stderr stay separate."""
    result = CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=True)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"unexpected exception: {result.exception!r}\n{result.output}") from result.exception
    return result


def migrate(db_uri: str, *flags: str, **kwargs: object) -> Result:
    return run_cli("db", "migrate-to-default-workspace", db_uri, *flags, **kwargs)


def fill_db(conn: Connection, fill: Callable[[SampleData], None] | None = None, spread: bool = True) -> None:
    with SampleData(conn) as data:
        for ws in TEAMS:
            data.workspace(ws)
        if spread:
            data.spread(("default", *TEAMS))
        if fill:
            fill(data)


def populate(db, fill: Callable[[SampleData], None] | None = None, spread: bool = True) -> None:
    with db.engine.begin() as conn:
        fill_db(conn, fill, spread)
