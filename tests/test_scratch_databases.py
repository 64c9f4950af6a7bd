"""The suite's own server databases: a test's database is handed to the next test only when the wipe shows that
it is again exactly a new build (tests/conftest.py, `_ServerDatabases`), on PostgreSQL and MariaDB alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Connection

from .conftest import _DROPPER, NEWEST, ScratchDB, _admin_url, _ServerDatabases, require_backend
from .helpers import fill_db

SERVERS = ("postgresql", "mysql")


@pytest.fixture(params=SERVERS)
def databases(request: pytest.FixtureRequest) -> Iterator[_ServerDatabases]:
    require_backend(request.param)
    pool = _ServerDatabases(request.param)
    yield pool
    pool.finish()


def _db(pool: _ServerDatabases, name: str) -> ScratchDB:
    return ScratchDB(pool.backend, _admin_url(pool.backend).set(database=name))


def _handed_back(pool: _ServerDatabases, change: Callable[[Connection], None]) -> tuple[str, str | None]:
    """A new database, changed by ``change``, handed back: its name, and what the next test gets instead of a
    build (the same name, wiped), or None when it was dropped."""
    name = pool.take(NEWEST)
    db = _db(pool, name)
    with db.engine.begin() as conn:
        change(conn)
    db.engine.dispose()
    pool.give_back(NEWEST, name)
    return name, pool._wiped[NEWEST][-1].result()


def _fresh_dump(pool: _ServerDatabases) -> dict:
    return pool._fresh[NEWEST][1]


def _exists(pool: _ServerDatabases, name: str) -> bool:
    _DROPPER.finish()  # waits for the drops the wipes queued
    if pool.backend == "postgresql":
        return bool(_db(pool, "postgres").scalar("SELECT COUNT(*) FROM pg_database WHERE datname = :n", n=name))
    exists = "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = :n"
    return bool(_db(pool, "information_schema").scalar(exists, n=name))


def _plain_rows(conn: Connection) -> None:
    fill_db(conn)
    # The id counter moves past its first value; a new build's gives 1 next.
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT nextval(pg_get_serial_sequence('experiments', 'experiment_id'))")
    else:
        conn.exec_driver_sql(
            "INSERT INTO experiments (name, workspace, lifecycle_stage) VALUES ('auto', 'default', 'active')"
        )


def test_rows_are_wiped_and_the_database_is_handed_on(databases: _ServerDatabases) -> None:
    name, wiped = _handed_back(databases, _plain_rows)
    assert wiped == name
    db = _db(databases, name)
    assert db.dump() == _fresh_dump(databases)
    # The next row gets the id a new build would give it.
    db.execute("INSERT INTO experiments (name, workspace, lifecycle_stage) VALUES ('next', 'default', 'active')")
    assert db.scalar("SELECT experiment_id FROM experiments WHERE name = 'next'") == 1
    db.engine.dispose()


_CHANGES = {
    "trigger": {
        "mysql": "CREATE TRIGGER keep BEFORE UPDATE ON experiments FOR EACH ROW SET NEW.workspace = OLD.workspace",
        "postgresql": "CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN OLD; END$$; "
        "CREATE TRIGGER keep BEFORE UPDATE ON experiments FOR EACH ROW EXECUTE FUNCTION keep()",
    },
    "foreign-key": {
        "mysql": "ALTER TABLE registered_model_tags DROP FOREIGN KEY {fk}",
        "postgresql": "ALTER TABLE registered_model_tags DROP CONSTRAINT {fk}",
    },
    "index": {
        "mysql": "CREATE INDEX extra ON experiments (lifecycle_stage)",
        "postgresql": "CREATE INDEX extra ON experiments (lifecycle_stage)",
    },
    "column": {
        "mysql": "ALTER TABLE experiments MODIFY COLUMN lifecycle_stage VARCHAR(40) NULL",
        "postgresql": "ALTER TABLE experiments ALTER COLUMN lifecycle_stage TYPE VARCHAR(40)",
    },
    "table": {
        "mysql": "CREATE TABLE leftover (id INT PRIMARY KEY)",
        "postgresql": "CREATE TABLE leftover (id INT PRIMARY KEY)",
    },
    "grant": {
        "mysql": "GRANT SELECT ON {database}.experiments TO 'mwa_nobody'@'localhost' IDENTIFIED BY 'x'",
        "postgresql": "GRANT SELECT ON experiments TO PUBLIC",
    },
}


@pytest.mark.parametrize("change", list(_CHANGES))
def test_a_changed_schema_is_dropped_not_handed_on(databases: _ServerDatabases, change: str) -> None:
    def alter(conn: Connection) -> None:
        fk = conn.exec_driver_sql(
            "SELECT constraint_name FROM information_schema.referential_constraints "
            "WHERE constraint_schema = DATABASE() AND table_name = 'registered_model_tags'"
            if conn.dialect.name == "mysql"
            else "SELECT constraint_name FROM information_schema.table_constraints "
            "WHERE table_name = 'registered_model_tags' AND constraint_type = 'FOREIGN KEY'"
        ).scalar()
        database = conn.dialect.identifier_preparer.quote(str(conn.engine.url.database))
        conn.exec_driver_sql(_CHANGES[change][databases.backend].format(fk=fk, database=database))

    name, wiped = _handed_back(databases, alter)
    assert wiped is None
    assert not _exists(databases, name)


def test_row_estimates_are_put_back_or_the_database_is_dropped(databases: _ServerDatabases) -> None:
    """The engine reads the tables' row estimates.  MariaDB's come back with an ANALYZE of the emptied table;
    PostgreSQL's never do (a new build's say "never counted"), so that database is dropped."""

    def analyzed(conn: Connection) -> None:
        fill_db(conn)
        conn.exec_driver_sql("ANALYZE TABLE experiments" if conn.dialect.name == "mysql" else "ANALYZE experiments")

    name, wiped = _handed_back(databases, analyzed)
    if databases.backend == "mysql":
        assert wiped == name
        db = _db(databases, name)
        with db.engine.connect() as conn:
            assert databases._shape(conn) == databases._fresh[NEWEST][0]
        db.engine.dispose()
    else:
        assert wiped is None
        assert not _exists(databases, name)


def test_a_big_database_is_dropped_not_wiped(databases: _ServerDatabases) -> None:
    def many_rows(conn: Connection) -> None:
        conn.exec_driver_sql(
            "INSERT INTO experiments (experiment_id, name, workspace, lifecycle_stage) VALUES (5, 'e', 'default', 'active')"
        )
        key = conn.dialect.identifier_preparer.quote("key")
        conn.exec_driver_sql(
            f"INSERT INTO experiment_tags ({key}, value, experiment_id) "
            "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60) "
            "SELECT CONCAT('k', a.i, '-', b.i), 'v', 5 FROM n AS a CROSS JOIN n AS b"
        )

    name, wiped = _handed_back(databases, many_rows)
    assert wiped is None
    assert not _exists(databases, name)


def test_a_session_left_connected_drops_it(databases: _ServerDatabases) -> None:
    name = databases.take(NEWEST)
    db = _db(databases, name)
    with db.engine.connect() as held:
        held.exec_driver_sql("SELECT 1").all()
        databases.give_back(NEWEST, name)
        wiped = databases._wiped[NEWEST][-1].result()
    db.engine.dispose()
    assert wiped is None
    assert not _exists(databases, name)


def test_the_build_a_failed_wipe_starts_is_dropped_at_the_end(databases: _ServerDatabases) -> None:
    """A test that changes the schema, last of its worker: its wipe fails and starts a build for the next test,
    which never comes.  The end of the session still drops that build (it is queued while the end waits)."""
    built: list[str] = []
    build = databases._build

    def recorded(version: str) -> str:
        built.append(build(version))
        return built[-1]

    databases._build = recorded  # type: ignore[method-assign]
    name = databases.take(NEWEST)
    db = _db(databases, name)
    db.execute("CREATE TABLE leftover (id INT PRIMARY KEY)")
    db.engine.dispose()
    databases.give_back(NEWEST, name)
    databases.finish()  # at once: the wipe is still running
    assert len(built) == 2  # the test's database, then the one its failed wipe started
    assert not any(_exists(databases, n) for n in built)
