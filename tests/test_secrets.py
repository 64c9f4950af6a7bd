"""Secrets: a password in the URI never reaches stdout or stderr on any failure path, in text or JSON output;
values of secrets.encrypted_value / wrapped_dek / masked_value are never printed by any report."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import create_engine, text

from mlflow_ws_admin.common.errors import ExitStatus

from .conftest import require_backend
from .helpers import migrate, populate

#: URL-special characters on purpose: the encoded form must not leak either.
PASSWORD = "Pw-8v@Q:s/%x"
ENCODED = quote(PASSWORD, safe="")
FORMATS = (["--format", "text"], ["--format", "json"])


def _assert_no_password(result) -> None:
    for form in {PASSWORD, ENCODED, quote_plus(PASSWORD), "8v@Q", "8v%40Q"}:
        assert form not in result.stdout, result.stdout
        assert form not in result.stderr, result.stderr
    assert "Traceback" not in result.output


CONNECT_FAILURES = {
    "postgresql-closed-port": ("postgresql", f"postgresql://postgres:{ENCODED}@127.0.0.1:1/mlflow"),
    "mysql-closed-port": ("mysql", f"mysql://root:{ENCODED}@127.0.0.1:1/mlflow"),
    "unresolvable-host": ("postgresql", f"postgresql://admin:{ENCODED}@db.invalid/mlflow"),
    "mysql-wrong-password": ("mysql", f"mysql://root:{ENCODED}@127.0.0.1:3306/mysql"),
    "postgresql-no-such-database": ("postgresql", f"postgresql://postgres:{ENCODED}@127.0.0.1:5432/mwa_nope"),
    "mysql-no-such-database": ("mysql", f"mysql://root:{ENCODED}@127.0.0.1:3306/mwa_nope"),
    "unparseable-uri": ("sqlite", f"postgresql://admin:{ENCODED}@host:port/db"),
    "unsupported-scheme": ("sqlite", f"oracle://admin:{ENCODED}@host/db"),
}


@pytest.mark.parametrize("fmt", FORMATS, ids=["text", "json"])
@pytest.mark.parametrize("case", CONNECT_FAILURES, ids=list(CONNECT_FAILURES))
@pytest.mark.parametrize("flags", [["--dry-run"], ["-y"], ["--dry-run", "--verbose"]], ids=["dry", "apply", "verbose"])
def test_connection_failures_never_print_the_password(case: str, fmt: list[str], flags: list[str]) -> None:
    backend, uri = CONNECT_FAILURES[case]
    if case.startswith(("mysql-wrong", "postgresql-no", "mysql-no")):
        require_backend(backend)

    result = migrate(uri, *flags, *fmt)

    assert result.exit_code in (ExitStatus.USAGE, ExitStatus.DATABASE_ERROR), result.output
    _assert_no_password(result)


def test_password_given_through_the_environment_is_scrubbed_too() -> None:
    from .helpers import run_cli

    uri = f"postgresql://postgres:{ENCODED}@127.0.0.1:1/mlflow"
    result = run_cli("db", "migrate-to-default-workspace", "--dry-run", env={"MLFLOW_TRACKING_URI": uri})

    assert result.exit_code == ExitStatus.DATABASE_ERROR
    _assert_no_password(result)


@pytest.fixture
def password_uri(mlflow_db, backend: str) -> Iterator[str]:
    """The scratch database reached with a password (PostgreSQL: trust auth accepts it; MySQL: a new user
    with every privilege on the database, dropped afterwards)."""
    if backend == "sqlite":
        pytest.skip("SQLite URIs carry no password")
    if backend == "postgresql":
        yield mlflow_db.url.set(drivername="postgresql", password=PASSWORD).render_as_string(hide_password=False)
        return
    user = f"mwa_pw_{uuid.uuid4().hex[:8]}"
    admin = create_engine(mlflow_db.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY :pw"), {"pw": PASSWORD})
        conn.execute(text(f"GRANT ALL ON `{mlflow_db.url.database}`.* TO '{user}'@'%'"))
    try:
        url = mlflow_db.url.set(drivername="mysql", username=user, password=PASSWORD)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP USER '{user}'@'%'"))
        admin.dispose()


def _failing_trigger(db) -> None:
    """A trigger that fails the first UPDATE of apply, with the password in its error text (the worst case:
    a database echoing a secret back)."""
    message = f"refused, password {PASSWORD} in message"
    if db.backend == "postgresql":
        db.execute(
            "CREATE FUNCTION mwa_refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION '%', "
            f"'{message}'; END $$ LANGUAGE plpgsql"
        )
        db.execute("CREATE TRIGGER mwa_refuse BEFORE UPDATE ON experiments FOR EACH ROW EXECUTE FUNCTION mwa_refuse()")
    else:
        db.execute(
            "CREATE TRIGGER mwa_refuse BEFORE UPDATE ON experiments FOR EACH ROW "
            f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{message}'"
        )


@pytest.mark.parametrize("fmt", FORMATS, ids=["text", "json"])
def test_database_error_mid_apply_never_prints_the_password(mlflow_db, password_uri: str, fmt: list[str]) -> None:
    populate(mlflow_db)
    _failing_trigger(mlflow_db)
    before = mlflow_db.fingerprint()

    result = migrate(password_uri, "-y", *fmt)

    assert result.exit_code == ExitStatus.DATABASE_ERROR, result.output
    assert "refused, password *** in message" in result.output
    _assert_no_password(result)
    assert mlflow_db.fingerprint() == before


def test_apply_success_output_never_prints_the_password(mlflow_db, password_uri: str) -> None:
    populate(mlflow_db)

    result = migrate(password_uri, "-y")

    assert result.exit_code == ExitStatus.OK, result.output
    _assert_no_password(result)


SECRET_VALUES = {
    "encrypted_value": b"ENC-4f1d9a-ciphertext",
    "wrapped_dek": b"DEK-77c2e0-wrapped",
    "masked_value": "sk-...MASK-b7e1",
}


def test_secret_values_are_never_printed(mlflow_db) -> None:
    def fill(data) -> None:
        for i, ws in enumerate(("team-a", "team-b", "default")):
            data.add(
                "secrets",
                secret_id=f"s-{i}",
                secret_name="openai-key",  # a conflict: the report lists these rows
                workspace=ws,
                encrypted_value=SECRET_VALUES["encrypted_value"] + bytes([i]),
                wrapped_dek=SECRET_VALUES["wrapped_dek"] + bytes([i]),
                masked_value=SECRET_VALUES["masked_value"] + str(i),
            )
        data.add("secrets", secret_id="s-solo", secret_name="solo", workspace="team-c", **SECRET_VALUES)

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()
    outputs = [migrate(mlflow_db.uri, "--dry-run", *flags) for flags in (["--verbose"], ["--format", "json"])]
    assert mlflow_db.fingerprint() == before
    mlflow_db.execute("DELETE FROM secrets WHERE secret_name = 'openai-key' AND workspace <> 'default'")
    outputs.append(migrate(mlflow_db.uri, "-y", "--format", "json"))

    assert [r.exit_code for r in outputs] == [ExitStatus.CONFLICTS, ExitStatus.CONFLICTS, ExitStatus.OK]
    assert "openai-key" in outputs[0].stdout and "openai-key" in outputs[1].stdout
    for result in outputs:
        for value in ("ENC-4f1d9a", "DEK-77c2e0", "MASK-b7e1", "RU5DLTRmMWQ5", "454e432d"):  # raw, base64, hex
            assert value not in result.output
    assert mlflow_db.scalar("SELECT workspace FROM secrets WHERE secret_id = 's-solo'") == "default"
