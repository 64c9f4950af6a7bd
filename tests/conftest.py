"""One suite, every backend.

Tests that take the ``backend`` fixture run on SQLite, PostgreSQL and MySQL/MariaDB.  Servers come from
MWA_TEST_POSTGRES_URL / MWA_TEST_MYSQL_URL (defaults: trust-auth postgres and password-less root on
127.0.0.1).  An unreachable server skips its backend, unless MWA_REQUIRE_BACKENDS names it (CI), in which
case it fails.  Each test gets its own scratch database, dropped afterwards.
"""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool

from mlflow_ws_admin.sample_data import load_snapshot, read_snapshot, sorted_rows

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "schemas"
BACKENDS = ("sqlite", "postgresql", "mysql")
SERVER_URLS = {
    "postgresql": os.environ.get("MWA_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"),
    "mysql": os.environ.get("MWA_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"),
}
REQUIRED = {b.strip() for b in os.environ.get("MWA_REQUIRE_BACKENDS", "").split(",") if b.strip()}
#: Every captured MLflow schema (fixtures/schemas/mlflow-<version>), oldest first.  Schema-driven tests run on
#: each; `mlflow_db` (most of the suite) uses NEWEST.
VERSIONS = ("3.10.0", "3.17.2", "3.18.0")
OLDEST, NEWEST = VERSIONS[0], VERSIONS[-1]


def snapshot(version: str, backend: str) -> dict:
    return read_snapshot(FIXTURES / f"mlflow-{version}" / f"{backend}.json")


@functools.cache
def _server_problem(backend: str) -> str | None:
    url = _admin_url(backend)
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the server means "not available"
        return f"{backend} server at {url.render_as_string(hide_password=True)} unreachable: {type(exc).__name__}"
    finally:
        engine.dispose()
    return None


def _admin_url(backend: str) -> URL:
    url = make_url(SERVER_URLS[backend])
    if backend == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    if backend == "mysql" and url.drivername == "mysql":
        url = url.set(drivername="mysql+pymysql")
    return url


def require_backend(backend: str) -> None:
    if backend == "sqlite":
        return
    problem = _server_problem(backend)
    if problem:
        if backend in REQUIRED:
            pytest.fail(f"required backend missing: {problem}")
        pytest.skip(problem)


@dataclass
class ScratchDB:
    backend: str
    url: URL  # driver-qualified URL of the scratch database
    path: Path | None = None  # SQLite file

    @property
    def uri(self) -> str:
        """The URI a user would type (password included, if any)."""
        if self.backend == "sqlite":
            return f"sqlite:///{self.path}"
        return self.url.render_as_string(hide_password=False)

    @functools.cached_property
    def engine(self) -> Engine:
        # NullPool: the test's own reads and writes leave no idle session behind, which apply would (rightly)
        # take for a tracking server still connected to the database.
        return create_engine(self.url, poolclass=NullPool)

    def load(self, version: str = NEWEST) -> ScratchDB:
        with self.engine.begin() as conn:
            load_snapshot(conn, snapshot(version, self.backend))
        return self

    def execute(self, sql: str, **params: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql), params)

    def scalar(self, sql: str, **params: object) -> object:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def dump(self) -> dict[str, list[tuple]]:
        """Every row of every table: the "nothing changed" witness."""
        with self.engine.connect() as conn:
            return sorted_rows(conn, sorted(inspect(conn).get_table_names()))

    def fingerprint(self) -> object:
        """A full dump, plus the file's bytes on SQLite (byte-for-byte unchanged)."""
        if self.backend == "sqlite":
            self.engine.dispose()
            return hashlib.sha256(self.path.read_bytes()).hexdigest(), self.dump()
        return self.dump()

    def outside_default(self, table: str, column: str = "workspace") -> int:
        return int(self.scalar(f"SELECT COUNT(*) FROM {table} WHERE {column} <> 'default'"))


def _create_scratch(backend: str, tmp_path: Path) -> Iterator[ScratchDB]:
    if backend == "sqlite":
        db = ScratchDB(backend, make_url(f"sqlite:///{tmp_path / 'mlflow.db'}"), tmp_path / "mlflow.db")
        yield db
        db.engine.dispose()
        return
    require_backend(backend)
    name = f"mwa_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_admin_url(backend), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if backend == "postgresql":
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    db = ScratchDB(backend, _admin_url(backend).set(database=name))
    try:
        yield db
    finally:
        db.engine.dispose()
        with admin.connect() as conn:
            if backend == "postgresql":
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


_ONLY_MARKS = {"sqlite_only": "sqlite", "postgresql_only": "postgresql", "mysql_only": "mysql"}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    for mark, only in _ONLY_MARKS.items():
        if request.node.get_closest_marker(mark) and request.param != only:
            pytest.skip(f"{mark}: not for {request.param}")
    return request.param


@pytest.fixture
def scratch_db(backend: str, tmp_path: Path) -> Iterator[ScratchDB]:
    """An empty scratch database on the current backend."""
    yield from _create_scratch(backend, tmp_path)


@pytest.fixture
def mlflow_db(scratch_db: ScratchDB) -> ScratchDB:
    """A scratch database with the newest captured MLflow schema."""
    return scratch_db.load(NEWEST)
