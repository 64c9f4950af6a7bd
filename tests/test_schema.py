"""Schema discovery on real captured schemas, and on tables MLflow has not shipped yet."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKeyConstraint, Integer, MetaData, String, Table, UniqueConstraint, inspect

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db import sqlite_uniques
from mlflow_ws_admin.db.schema import reflect_schema

from .conftest import AUTH_SCHEMA, FIXTURES, VERSIONS, snapshot
from .helpers import migrate, populate


def _reflect(db):
    with db.engine.connect() as conn:
        return reflect_schema(conn)


def test_every_captured_schema_is_tested() -> None:
    names = [p.name.removeprefix("mlflow-") for p in FIXTURES.glob("mlflow-*")]
    tracking = sorted((n for n in names if not n.startswith("auth-")), key=_version_key)
    assert tuple(tracking) == VERSIONS
    # the basic-auth database's schema (not a tracking schema): built by the `auth_db` fixture
    assert [n for n in names if n.startswith("auth-")] == [AUTH_SCHEMA]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@pytest.mark.parametrize("version", VERSIONS)
def test_discovers_exactly_the_workspace_tables_of_real_mlflow(scratch_db, version: str) -> None:
    db = scratch_db.load(version)
    schema = _reflect(db)
    expected = set(snapshot(version, db.backend)["summary"]["workspace_tables"])
    assert {t.name for t in schema.tables} == expected
    assert schema.catalog.table == "workspaces"


def test_keys_and_fk_graph_come_from_constraints(mlflow_db) -> None:
    schema = _reflect(mlflow_db)
    keys = {t.name: {k.columns for k in t.unique_keys} for t in schema.tables}
    assert keys["experiments"] == {("name",)}
    assert keys["registered_models"] == {("name",)}
    assert keys["model_versions"] == {("name", "version")}
    assert keys["secrets"] == {("secret_name",)}
    assert keys["evaluation_datasets"] == {("name",)}  # from mlflow_facts.py, not the schema
    assert keys["webhooks"] == set()
    mv_fk = schema.table("model_versions").parent_keys
    assert [(fk.parent, fk.child_columns, fk.cascades_on_update) for fk in mv_fk] == [
        ("registered_models", ("workspace", "name"), True)
    ]
    order = [t.name for t in schema.tables]
    assert order.index("registered_models") < order.index("model_versions") < order.index("model_version_tags")
    assert order.index("mcp_servers") < order.index("mcp_server_versions") < order.index("mcp_server_version_tags")


def _future_tables(meta: MetaData) -> None:
    """Tables a future MLflow might add: one with a plain workspace column, and the development branch's
    agent plugins, whose member table carries its workspace as `plugin_workspace` behind NO ACTION FKs.
    `skills`/`skill_versions` are shaped as MLflow 3.18.0 ships them (keyed by organization and name);
    `create_all` leaves the real ones alone where the schema already has them."""
    ws = lambda: Column("workspace", String(63), primary_key=True, server_default="default")  # noqa: E731
    Table(
        "future_things",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("label", String(100), nullable=False),
        Column("workspace", String(63), nullable=False, server_default="default"),
        UniqueConstraint("workspace", "label", name="uq_future_things_workspace_label"),
    )
    Table("agent_plugins", meta, ws(), Column("name", String(100), primary_key=True))
    Table(
        "agent_plugin_versions",
        meta,
        ws(),
        Column("name", String(100), primary_key=True),
        Column("version", Integer, primary_key=True, autoincrement=False),
        ForeignKeyConstraint(
            ["workspace", "name"], ["agent_plugins.workspace", "agent_plugins.name"], onupdate="CASCADE"
        ),
    )
    org = lambda: Column("organization", String(64), primary_key=True, server_default="")  # noqa: E731
    Table("skills", meta, ws(), org(), Column("name", String(128), primary_key=True))
    Table(
        "skill_versions",
        meta,
        ws(),
        org(),
        Column("name", String(128), primary_key=True),
        Column("version", Integer, primary_key=True, autoincrement=False),
        ForeignKeyConstraint(
            ["workspace", "organization", "name"],
            ["skills.workspace", "skills.organization", "skills.name"],
            onupdate="CASCADE",
        ),
    )
    Table(
        "agent_plugin_version_members",
        meta,
        Column("plugin_workspace", String(63), primary_key=True),
        Column("plugin_name", String(100), primary_key=True),
        Column("plugin_version", Integer, primary_key=True, autoincrement=False),
        Column("skill_organization", String(64), primary_key=True),
        Column("skill_name", String(128), primary_key=True),
        Column("skill_version", Integer, primary_key=True, autoincrement=False),
        ForeignKeyConstraint(
            ["plugin_workspace", "plugin_name", "plugin_version"],
            ["agent_plugin_versions.workspace", "agent_plugin_versions.name", "agent_plugin_versions.version"],
            name="fk_members_plugin_versions",
        ),
        ForeignKeyConstraint(
            ["plugin_workspace", "skill_organization", "skill_name", "skill_version"],
            [f"skill_versions.{c}" for c in ("workspace", "organization", "name", "version")],
            name="fk_members_skill_versions",
        ),
    )


def _add_future_tables(db) -> None:
    meta = MetaData()
    _future_tables(meta)
    meta.create_all(db.engine)


def _fill_future(db, *, colliding: bool) -> None:
    def fill(data) -> None:
        for i, ws in enumerate(("team-a", "team-b")):
            data.add("future_things", id=i, label="shared" if colliding else f"thing-{ws}", workspace=ws)
            data.add("agent_plugins", workspace=ws, name=f"plugin-{ws}")
            data.add("skills", workspace=ws, organization="acme", name=f"skill-{ws}")
            data.add("agent_plugin_versions", workspace=ws, name=f"plugin-{ws}", version=1)
            data.add("skill_versions", workspace=ws, organization="acme", name=f"skill-{ws}", version=1)
            data.add(
                "agent_plugin_version_members",
                plugin_workspace=ws,
                plugin_name=f"plugin-{ws}",
                plugin_version=1,
                skill_organization="acme",
                skill_name=f"skill-{ws}",
                skill_version=1,
            )

    populate(db, fill)


def test_fk_derived_workspace_column_is_discovered(mlflow_db) -> None:
    _add_future_tables(mlflow_db)
    schema = _reflect(mlflow_db)
    members = schema.table("agent_plugin_version_members")
    assert members.workspace_columns == ("plugin_workspace",)
    assert {fk.parent for fk in members.parent_keys} == {"agent_plugin_versions", "skill_versions"}
    assert not any(fk.cascades_on_update for fk in members.parent_keys)
    assert schema.table("future_things").unique_keys[0].columns == ("label",)


def test_future_tables_are_moved_without_code_changes(mlflow_db) -> None:
    _add_future_tables(mlflow_db)
    _fill_future(mlflow_db, colliding=False)
    fks_before = {t: inspect(mlflow_db.engine).get_foreign_keys(t) for t in ("agent_plugin_version_members",)}
    before = mlflow_db.fingerprint()

    dry = migrate(mlflow_db.uri, "--dry-run")
    assert dry.exit_code == ExitStatus.OK, dry.output
    assert "agent_plugin_version_members" in dry.stdout and "future_things" in dry.stdout
    assert mlflow_db.fingerprint() == before

    applied = migrate(mlflow_db.uri, "-y")
    assert applied.exit_code == ExitStatus.OK, applied.output
    assert "moved 2 row(s) of agent_plugin_version_members" in applied.stdout
    assert mlflow_db.outside_default("agent_plugin_version_members", "plugin_workspace") == 0
    for table in ("future_things", "agent_plugins", "agent_plugin_versions", "skills", "skill_versions"):
        assert mlflow_db.outside_default(table) == 0, table
    # the suspended foreign keys are back, unchanged
    fks_after = {t: inspect(mlflow_db.engine).get_foreign_keys(t) for t in ("agent_plugin_version_members",)}
    assert fks_after == fks_before


def test_future_table_conflicts_are_reported(mlflow_db) -> None:
    _add_future_tables(mlflow_db)
    _fill_future(mlflow_db, colliding=True)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run")

    assert result.exit_code == ExitStatus.CONFLICTS
    assert (
        "future_things — key (label) from unique constraint uq_future_things_workspace_label: 1 group(s)"
        in result.stdout
    )
    assert mlflow_db.fingerprint() == before


def test_database_without_workspaces_is_refused(scratch_db) -> None:
    meta = MetaData()
    Table("unrelated", meta, Column("id", Integer, primary_key=True))
    meta.create_all(scratch_db.engine)
    before = scratch_db.fingerprint()

    result = migrate(scratch_db.uri, "--dry-run")

    assert result.exit_code == ExitStatus.DATABASE_ERROR
    # No MLflow table at all: never an invitation to run MLflow's migrations on somebody else's database.
    assert result.stderr.startswith("Error: not an MLflow tracking database")
    assert "mlflow db upgrade" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert scratch_db.fingerprint() == before


@pytest.mark.sqlite_only
def test_missing_sqlite_file_is_not_created(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "nope.db"
    for flags in (("--dry-run",), ("-y",)):
        result = migrate(f"sqlite:///{path}", *flags)
        assert result.exit_code == ExitStatus.DATABASE_ERROR
        assert "SQLite database file not found" in result.stderr
        assert not path.exists()


def test_skills_of_mlflow_3_18_collide_on_organization_and_name(scratch_db) -> None:
    """3.18.0's skills are keyed per workspace by (organization, name): the same name under another organization
    is no conflict, and the four child tables follow their skill."""
    db = scratch_db.load("3.18.0")

    def fill(data) -> None:
        for ws in ("team-a", "team-b"):
            data.add("skills", workspace=ws, organization="acme", name="summarize")
            data.add("skills", workspace=ws, organization=ws, name="summarize")
            key = {"workspace": ws, "organization": ws, "name": "summarize"}
            data.add("skill_versions", **key, version=1, source_type="git")
            data.add("skill_version_tags", **key, version=1, key="k")
            data.add("skill_tags", **key, key="k")
            data.add("skill_aliases", **key, alias="latest", version=1)

    populate(db, fill, spread=False)
    before = db.fingerprint()

    dry = migrate(db.uri, "--dry-run")
    assert dry.exit_code == ExitStatus.CONFLICTS, dry.output
    assert "skills — key (organization, name) from primary key: 1 group(s)" in dry.stdout
    assert 'organization="acme", name="summarize": team-a; team-b' in dry.stdout
    assert "Blocked: 1 conflict group(s) in 1 table(s)" in dry.stdout
    assert db.fingerprint() == before

    db.execute("DELETE FROM skills WHERE organization = 'acme' AND workspace = 'team-b'")
    applied = migrate(db.uri, "-y")
    assert applied.exit_code == ExitStatus.OK, applied.output
    for table in ("skills", "skill_versions", "skill_version_tags", "skill_tags", "skill_aliases"):
        assert db.outside_default(table) == 0, table
    assert db.scalar("SELECT COUNT(*) FROM skills WHERE workspace = 'default'") == 3
    assert db.scalar("SELECT COUNT(*) FROM skill_aliases WHERE workspace = 'default'") == 2


#: CREATE TABLEs spelling UNIQUE every way SQLite accepts, with the constraints read from each: table-level ones
#: first, in the order written (named where the SQL names them), then the inline ones.  SQLAlchemy's reflection
#: reads the same, except that it misses an inline UNIQUE after a type with a length (`a VARCHAR(10) UNIQUE`).
_UNIQUE_SPELLINGS = {
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a VARCHAR(10) UNIQUE, b TEXT NOT NULL UNIQUE, c INT, d INT, "
    'CONSTRAINT "uq t cd" UNIQUE (c, d), UNIQUE (d), CONSTRAINT uq_t_b_c UNIQUE ("b", c))': [
        ("uq t cd", ["c", "d"]),
        (None, ["d"]),
        ("uq_t_b_c", ["b", "c"]),
        (None, ["a"]),
        (None, ["b"]),
    ],
    "CREATE TABLE t (a INT, b INT, PRIMARY KEY (a, b), CONSTRAINT uq_ab UNIQUE (b, a))": [("uq_ab", ["b", "a"])],
    "CREATE TABLE t (workspace VARCHAR(63) NOT NULL, name VARCHAR(256) NOT NULL UNIQUE, x INT, UNIQUE(workspace, x))": [
        (None, ["workspace", "x"]),
        (None, ["name"]),
    ],
    "CREATE TABLE t (a INT)": [],
}


@pytest.mark.parametrize("create", _UNIQUE_SPELLINGS)
def test_sqlite_unique_constraints_every_spelling(tmp_path: Path, create: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'u.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(create)
        conn.exec_driver_sql("CREATE TABLE other (id INTEGER PRIMARY KEY, z INT UNIQUE)")
        read = sqlite_uniques.unique_constraints(conn, ["t", "other"])
    engine.dispose()
    expected = [{"name": name, "column_names": columns} for name, columns in _UNIQUE_SPELLINGS[create]]
    assert read.get("t", []) == expected
    assert read["other"] == [{"name": None, "column_names": ["z"]}]


@pytest.mark.parametrize("version", [*VERSIONS, AUTH_SCHEMA])
def test_sqlite_unique_constraints_of_every_captured_schema_as_sqlalchemy_reads_them(
    tmp_path: Path, version: str
) -> None:
    from sqlalchemy import create_engine

    from mlflow_ws_admin.db.sample_data import load_snapshot

    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as conn:
        load_snapshot(conn, snapshot(version, "sqlite"))
        insp = inspect(conn)
        names = insp.get_table_names()
        expected = {t: u for (_s, t), u in insp.get_multi_unique_constraints().items() if u}
        assert expected  # the schemas have some
        assert sqlite_uniques.unique_constraints(conn, names) == expected
        first = sorted(expected)[0]
        assert sqlite_uniques.unique_constraints(conn, [first]) == {first: expected[first]}
    engine.dispose()


def _described(table) -> tuple:
    def default(c):
        d = c.server_default
        text = getattr(d, "arg", None) if hasattr(d, "arg") else getattr(d, "sqltext", None)
        return None if d is None else (type(d).__name__, str(text))

    columns = [
        (c.name, repr(c.type), c.nullable, c.autoincrement, default(c), c.computed is not None, repr(c.identity))
        for c in table.columns
    ]
    return columns, [c.name for c in table.primary_key.columns], table.primary_key.name


def test_row_tables_build_what_reflection_builds(mlflow_db) -> None:
    """The import and the sample data read only columns and primary keys: exactly as a full reflection has them."""
    from sqlalchemy import MetaData

    from mlflow_ws_admin.db.schema import row_tables

    with mlflow_db.engine.connect() as conn:
        names = sorted(inspect(conn).get_table_names())
        full = MetaData()
        full.reflect(conn, only=names)
        light = row_tables(conn, [*names, "no_such_table"], MetaData())
    assert sorted(light.tables) == names
    assert {n: _described(t) for n, t in light.tables.items()} == {n: _described(t) for n, t in full.tables.items()}
    assert any(
        t.c.get("duration_ns") is not None and t.c.duration_ns.computed is not None for t in light.tables.values()
    )


def test_shared_row_tables_are_built_once_for_alike_databases_only(mlflow_db, tmp_path: Path) -> None:
    """An import's SOURCE and TARGET alike: one set of tables, as ``row_tables`` builds them.  A database with one
    column more gets tables of its own, which have it."""
    from mlflow_ws_admin.db.schema import row_tables, shared_row_tables

    from .conftest import NEWEST, _create_scratch

    def described(meta: MetaData) -> dict:
        return {n: _described(t) for n, t in meta.tables.items()}

    made = _create_scratch(mlflow_db.backend, tmp_path, NEWEST, filename="other.db")
    other = next(made)
    try:
        with mlflow_db.engine.connect() as conn:
            names = sorted(inspect(conn).get_table_names())
            first = shared_row_tables(conn, names)
        with other.engine.connect() as conn:
            assert shared_row_tables(conn, names) is first
            assert described(first) == described(row_tables(conn, names, MetaData()))
        other.execute("ALTER TABLE experiments ADD COLUMN mwa_extra VARCHAR(20)")
        with other.engine.connect() as conn:
            changed = shared_row_tables(conn, names)
            assert changed is not first and "mwa_extra" in changed.tables["experiments"].c
            assert described(changed) == described(row_tables(conn, names, MetaData()))
    finally:
        for _ in made:
            pass
