"""The bad-input corpus: every case ends in one clear line (or the correct result), the documented exit code,
no traceback, and an unchanged database."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from mlflow_ws_admin.common.errors import ExitStatus

from .conftest import SERVER_URLS, require_backend
from .helpers import migrate, populate, run_cli

USAGE, DB, CONFLICTS, OK = ExitStatus.USAGE, ExitStatus.DATABASE_ERROR, ExitStatus.CONFLICTS, ExitStatus.OK


def _one_line_error(result, status: ExitStatus, expected: str) -> None:
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output
    error = result.stderr.strip()
    assert error.startswith("Error: ") and "\n" not in error, error
    assert expected in error, error


# --- URIs and options: (args, exit code, expected text in the one error line) ---------------------------
URI_CASES = {
    "not-a-uri": (["not a uri"], USAGE, "not a database URI"),
    "http-tracking-server": (["http://tracking.example.com:5000"], USAGE, "unsupported database scheme 'http'"),
    "file-store": (["file:///tmp/mlruns"], USAGE, "unsupported database scheme 'file'"),
    "unknown-scheme": (["oracle://u@h/db"], USAGE, "unsupported database scheme 'oracle'"),
    "sqlite-in-memory": (["sqlite://"], USAGE, "in-memory SQLite"),
    "sqlite-memory-path": (["sqlite:///:memory:"], USAGE, "in-memory SQLite"),
    "postgres-no-database": (["postgresql://u@127.0.0.1:5432"], USAGE, "the URI names no database"),
    "mysql-no-database": (["mysql://u@127.0.0.1/"], USAGE, "the URI names no database"),
    "bad-port": (["postgresql://u@127.0.0.1:notaport/db"], USAGE, "not a database URI"),
    "empty-uri-and-no-env": ([""], USAGE, "no database URI given"),
    "lock-timeout-zero": (["sqlite:///x.db", "--lock-timeout", "0"], USAGE, "--lock-timeout"),
    "lock-timeout-text": (["sqlite:///x.db", "--lock-timeout", "soon"], USAGE, "--lock-timeout"),
    "unknown-option": (["sqlite:///x.db", "--force"], USAGE, "No such option '--force'"),
    "unresolvable-host": (["postgresql://u@no-such-host.invalid/db", "--dry-run"], DB, "no-such-host.invalid"),
    "closed-port-postgresql": (["postgresql://u@127.0.0.1:1/db", "--dry-run"], DB, "Connection refused"),
    "closed-port-mysql": (["mysql://u@127.0.0.1:1/db", "--dry-run"], DB, "Can't connect to MySQL server"),
}


@pytest.mark.parametrize("case", URI_CASES, ids=list(URI_CASES))
def test_bad_uri_or_option(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args, status, expected = URI_CASES[case]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    result = migrate(*args)

    if status == USAGE and expected.startswith(("--lock", "No such")):  # Click's own usage errors
        assert result.exit_code == USAGE and expected in result.stderr and "Traceback" not in result.output
    else:
        _one_line_error(result, status, expected)
    assert list(tmp_path.iterdir()) == [], "nothing may be created"


SERVER_CASES = {
    "postgresql-unknown-role": ("postgresql", "nobody_here", None, 'role "nobody_here" does not exist'),
    "postgresql-unknown-database": ("postgresql", None, "mwa_no_such_db", 'database "mwa_no_such_db" does not exist'),
    "mysql-wrong-password": ("mysql", "root:wrong-pw-123", None, "Access denied for user 'root'"),
    "mysql-unknown-database": ("mysql", None, "mwa_no_such_db", "Unknown database 'mwa_no_such_db'"),
}


@pytest.mark.parametrize("case", SERVER_CASES, ids=list(SERVER_CASES))
def test_server_refuses_login(case: str) -> None:
    backend, userinfo, database, expected = SERVER_CASES[case]
    require_backend(backend)
    url = SERVER_URLS[backend]
    scheme, rest = url.split("://", 1)
    hostpart = rest.split("@", 1)[1].split("/", 1)[0]
    user = userinfo or rest.split("@", 1)[0]
    uri = f"{scheme}://{user}@{hostpart}/{database or 'mwa_no_such_db'}"

    result = migrate(uri, "--dry-run")

    _one_line_error(result, DB, expected)
    assert "wrong-pw-123" not in result.output


# --- files that are not MLflow databases (SQLite) -------------------------------------------------------
def _write(path: Path, kind: str) -> None:
    if kind == "directory":
        path.mkdir()
    elif kind == "empty-file":
        path.write_bytes(b"")
    elif kind == "corrupt":
        path.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    elif kind == "text-file":
        path.write_text("experiment_id,name\n1,churn\n")
    else:
        conn = sqlite3.connect(path)
        if kind == "non-mlflow":
            conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        elif kind == "pre-workspaces-mlflow":
            # MLflow before workspaces: the same tables without `workspace` columns and no catalog.
            conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
            conn.execute("INSERT INTO alembic_version VALUES ('1b5f0d9ad7c1')")
            conn.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name VARCHAR(256) UNIQUE)")
            conn.execute("CREATE TABLE registered_models (name VARCHAR(256) PRIMARY KEY)")
        conn.commit()
        conn.close()


FILE_CASES = {
    "missing-file": ("missing", "SQLite database file not found"),
    "directory": ("directory", "is a directory"),
    "empty-file": ("empty-file", "not an MLflow tracking database"),
    "corrupt-file": ("corrupt", "not a usable SQLite database"),
    "csv-not-sqlite": ("text-file", "not a usable SQLite database"),
    "non-mlflow-database": ("non-mlflow", "not an MLflow tracking database"),
    "mlflow-before-workspaces": ("pre-workspaces-mlflow", "an MLflow tracking database from before workspaces"),
}


@pytest.mark.parametrize("flag", ["--dry-run", "-y"])
@pytest.mark.parametrize("case", FILE_CASES, ids=list(FILE_CASES))
def test_unusable_sqlite_file(case: str, flag: str, tmp_path: Path) -> None:
    kind, expected = FILE_CASES[case]
    path = tmp_path / "mlflow.db"
    if kind != "missing":
        _write(path, kind)
    before = sorted((p.name, p.is_dir(), p.read_bytes() if p.is_file() else b"") for p in tmp_path.iterdir())

    result = migrate(f"sqlite:///{path}", flag)

    _one_line_error(result, DB, expected)
    after = sorted((p.name, p.is_dir(), p.read_bytes() if p.is_file() else b"") for p in tmp_path.iterdir())
    assert after == before, "the file (or its absence) must not change"


def test_empty_server_database_is_not_a_workspace_schema(scratch_db) -> None:
    if scratch_db.backend == "sqlite":
        _write(scratch_db.path, "empty-file")
    before = scratch_db.fingerprint()

    result = migrate(scratch_db.uri, "--dry-run")

    _one_line_error(result, DB, "not an MLflow tracking database")
    assert scratch_db.fingerprint() == before


# --- hostile but legal contents: correct behaviour, printed literally ------------------------------------
HOSTILE = {
    "quotes": 'it\'s "quoted"',
    "semicolon-sql": "x'; DROP TABLE experiments; --",
    "percent-underscore": "100%_done",
    "backslashes": "C:\\temp\\new\\",
    "rich-markup": "[bold]loud[/bold]",
    "newline": "line1\nline2",
    "four-byte-unicode": "model-🚀-𝔘",
    "255-chars": "n" * 255,
}


def test_hostile_names_are_reported_literally_and_moved(mlflow_db) -> None:
    """Every hostile name at once (one database per backend keeps the suite fast): each collides with a
    same-named experiment in team-a and sits in a workspace of its own (hostile too, cut to the column's 63)."""
    workspaces = {case: name.replace("\n", " ")[:63] for case, name in HOSTILE.items()}

    def fill(data) -> None:
        for case, name in HOSTILE.items():
            data.workspace(workspaces[case])
            data.experiment(workspaces[case], name)
            data.experiment("team-a", name)
            data.registered_model(workspaces[case], f"{name[:200]}-solo")

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    dry = migrate(mlflow_db.uri, "--dry-run", "--verbose")

    assert dry.exit_code == CONFLICTS, dry.output
    assert "Traceback" not in dry.output and "\x1b[" not in dry.output
    for case, name in HOSTILE.items():
        shown = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        line = next((ln for ln in dry.stdout.splitlines() if ln.startswith(f'  name="{shown}": ')), None)
        assert line is not None, case  # JSON-quoted: one line, no markup interpreted
        assert "team-a (experiment_id=" in line, case
    assert mlflow_db.fingerprint() == before

    mlflow_db.execute("DELETE FROM experiments WHERE workspace = 'team-a' AND experiment_id >= 1000000")
    applied = migrate(mlflow_db.uri, "-y")
    assert applied.exit_code == OK, applied.output
    for name in HOSTILE.values():
        assert mlflow_db.scalar("SELECT workspace FROM experiments WHERE name = :n", n=name) == "default"
    assert mlflow_db.outside_default("registered_models") == 0


def test_empty_names_and_nulls_where_allowed(mlflow_db) -> None:
    def fill(data) -> None:
        data.workspace("")  # an empty workspace name: legal in the schema
        data.experiment("", "", lifecycle_stage=None, artifact_location=None)
        data.experiment("team-a", "", lifecycle_stage=None)

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    dry = migrate(mlflow_db.uri, "--dry-run")

    assert dry.exit_code == CONFLICTS, dry.output
    assert 'name="": "" (experiment_id=' in dry.stdout  # the empty workspace is shown quoted, not blank
    assert mlflow_db.fingerprint() == before


def test_catalog_without_default_row_is_planned_and_created(mlflow_db) -> None:
    populate(mlflow_db)
    mlflow_db.execute("DELETE FROM workspaces WHERE name = 'default'")
    before = mlflow_db.fingerprint()

    dry = migrate(mlflow_db.uri, "--dry-run")

    assert dry.exit_code == OK and "it will be created" in dry.stdout
    assert mlflow_db.fingerprint() == before
    assert migrate(mlflow_db.uri, "-y").exit_code == OK
    assert mlflow_db.scalar("SELECT COUNT(*) FROM workspaces WHERE name = 'default'") == 1


def test_no_uri_at_all_reads_env(tmp_path: Path) -> None:
    result = run_cli("db", "migrate-to-default-workspace", "--dry-run", env={"MLFLOW_TRACKING_URI": "gopher://x"})
    _one_line_error(result, USAGE, "unsupported database scheme 'gopher'")
