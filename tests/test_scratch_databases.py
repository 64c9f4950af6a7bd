"""The suite's own MariaDB databases: a test's database is handed to the next test only when the wipe shows that
it is again exactly a new build (tests/conftest.py, `_ServerDatabases`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Connection

from .conftest import _DROPPER, NEWEST, ScratchDB, _admin_url, _ServerDatabases, require_backend
from .helpers import fill_db


@pytest.fixture
def databases() -> Iterator[_ServerDatabases]:
    require_backend("mysql")
    pool = _ServerDatabases("mysql")
    yield pool
    pool.finish()


def _db(name: str) -> ScratchDB:
    return ScratchDB("mysql", _admin_url("mysql").set(database=name))


def _handed_back(pool: _ServerDatabases, change: Callable[[Connection], None]) -> tuple[str, str | None]:
    """A new database, changed by ``change``, handed back: its name, and what the next test gets instead of a
    build (the same name, wiped), or None when it was dropped."""
    name = pool.take(NEWEST)
    db = _db(name)
    with db.engine.begin() as conn:
        change(conn)
    db.engine.dispose()
    pool.give_back(NEWEST, name)
    return name, pool._wiped[NEWEST][-1].result()


def _fresh_dump(pool: _ServerDatabases) -> dict:
    return pool._fresh[NEWEST][1]


def _plain_rows(conn: Connection) -> None:
    fill_db(conn)
    # The AUTO_INCREMENT counter moves past these rows; a new build's starts at 1.
    conn.exec_driver_sql(
        "INSERT INTO experiments (name, workspace, lifecycle_stage) VALUES ('auto', 'default', 'active')"
    )


@pytest.mark.mysql_only
def test_rows_are_wiped_and_the_database_is_handed_on(databases: _ServerDatabases) -> None:
    name, wiped = _handed_back(databases, _plain_rows)
    assert wiped == name
    db = _db(name)
    assert db.dump() == _fresh_dump(databases)
    # The next row gets the id a new build would give it.
    db.execute("INSERT INTO experiments (name, workspace, lifecycle_stage) VALUES ('next', 'default', 'active')")
    assert db.scalar("SELECT experiment_id FROM experiments WHERE name = 'next'") == 1
    db.engine.dispose()


@pytest.mark.mysql_only
@pytest.mark.parametrize(
    "change",
    [
        "CREATE TRIGGER keep BEFORE UPDATE ON experiments FOR EACH ROW SET NEW.workspace = OLD.workspace",
        "ALTER TABLE registered_model_tags DROP FOREIGN KEY {fk}",
        "CREATE INDEX extra ON experiments (lifecycle_stage)",
        "ALTER TABLE experiments MODIFY COLUMN lifecycle_stage VARCHAR(40) NULL",
        "CREATE TABLE leftover (id INT PRIMARY KEY)",
    ],
    ids=["trigger", "foreign-key", "index", "column", "table"],
)
def test_a_changed_schema_is_dropped_not_handed_on(databases: _ServerDatabases, change: str) -> None:
    def alter(conn: Connection) -> None:
        fk = conn.exec_driver_sql(
            "SELECT constraint_name FROM information_schema.referential_constraints "
            "WHERE constraint_schema = DATABASE() AND table_name = 'registered_model_tags'"
        ).scalar()
        conn.exec_driver_sql(change.format(fk=fk))

    name, wiped = _handed_back(databases, alter)
    assert wiped is None
    _DROPPER.finish()  # waits for the drop the wipe queued
    exists = "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = :n"
    assert _db("information_schema").scalar(exists, n=name) == 0


@pytest.mark.mysql_only
def test_a_big_database_is_dropped_not_wiped(databases: _ServerDatabases) -> None:
    def many_rows(conn: Connection) -> None:
        conn.exec_driver_sql(
            "INSERT INTO experiments (experiment_id, name, workspace, lifecycle_stage) VALUES (5, 'e', 'default', 'active')"
        )
        conn.exec_driver_sql(
            "INSERT INTO experiment_tags (`key`, value, experiment_id) "
            "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60) "
            "SELECT CONCAT('k', a.i, '-', b.i), 'v', 5 FROM n AS a CROSS JOIN n AS b"
        )

    _, wiped = _handed_back(databases, many_rows)
    assert wiped is None
