"""``reflect_schema`` reads SQLite, MySQL/MariaDB and PostgreSQL from their catalogs in a few set-based queries
(``db/sqlite_catalog.py``, ``db/mysql_catalog.py``, ``db/postgresql_catalog.py``): it must derive exactly the
``WorkspaceSchema`` the Inspector gives (``reflect_oracle.py``), on every captured MLflow schema and on the
spellings MLflow does not use."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, make_url
from sqlalchemy.pool import NullPool

from mlflow_ws_admin.common.errors import NotAWorkspaceDatabase
from mlflow_ws_admin.db.schema import WorkspaceSchema, reflect_schema

from .conftest import VERSIONS
from .reflect_oracle import inspector_schema
from .test_privileges import select_only_uri  # noqa: F401 - a fixture


def _both(db) -> tuple[WorkspaceSchema, WorkspaceSchema]:
    with db.engine.connect() as conn:
        return reflect_schema(conn), inspector_schema(conn)


def _differences(read: WorkspaceSchema, oracle: WorkspaceSchema) -> list[str]:
    """Where they differ, table by table (a readable failure instead of two 70-table reprs)."""
    out = [
        f"{field}"
        for field in ("dialect", "catalog", "all_table_names")
        if getattr(read, field) != getattr(oracle, field)
    ]
    out += [
        f"order: {[t.name for t in read.tables]}"
        for _ in [0]
        if [t.name for t in read.tables] != [t.name for t in oracle.tables]
    ]
    oracle_tables = {t.name: t for t in oracle.tables}
    out += [f"{t}\n  oracle {oracle_tables.get(t.name)}" for t in read.tables if t != oracle_tables.get(t.name)]
    oracle_fks = set(oracle.all_foreign_keys)
    out += [f"fk {fk}" for fk in read.all_foreign_keys if fk not in oracle_fks]
    out += [f"oracle fk {fk}" for fk in oracle.all_foreign_keys if fk not in set(read.all_foreign_keys)]
    if read.all_foreign_keys != oracle.all_foreign_keys and not out:
        out.append("all_foreign_keys: same FKs, another order")
    out += [f"columns {t}: {c}" for t, c in set(read.all_columns) ^ set(oracle.all_columns)]
    return out


def _assert_same(db) -> WorkspaceSchema:
    read, oracle = _both(db)
    assert _differences(read, oracle) == []
    assert read == oracle
    assert read.signature == oracle.signature
    return read


@pytest.mark.parametrize("version", VERSIONS)
def test_every_captured_schema_reads_as_the_inspector_reads_it(scratch_db, version: str) -> None:
    schema = _assert_same(scratch_db.load(version))
    assert schema.tables and schema.all_foreign_keys  # a real schema, not two empty reads
    assert any(fk.cascades_on_update for fk in schema.all_foreign_keys)
    assert any(c.length for t in schema.tables for c in t.columns)


def test_statements_per_reflection_do_not_grow_with_the_tables(mlflow_db) -> None:
    """A few set-based queries, not a PRAGMA or SHOW CREATE TABLE per table (71 tables: 328 statements on SQLite,
    72 on MariaDB before), nor the Inspector's 9 compiled queries on PostgreSQL."""
    statements: list[str] = []
    event.listen(mlflow_db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with mlflow_db.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1").all()  # the driver's first-use queries, if any
        statements.clear()
        schema = reflect_schema(conn)
    assert len(schema.all_table_names) > 60
    assert len(statements) <= {"sqlite": 4, "mysql": 5, "postgresql": 3}[mlflow_db.backend], statements


def test_a_user_who_may_only_read_reads_the_same_schema(mlflow_db, request: pytest.FixtureRequest) -> None:
    """MariaDB hides REFERENTIAL_CONSTRAINTS (the FK rules) from a user with only SELECT: a dry run's user.  (On
    PostgreSQL every user reads pg_catalog; information_schema would hide what it holds no privilege on.)"""
    uri = request.getfixturevalue("select_only_uri")  # test_privileges' user (skips SQLite)
    url = make_url(uri).set(drivername=mlflow_db.url.drivername)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            read, oracle = reflect_schema(conn), inspector_schema(conn)
    finally:
        engine.dispose()
    assert _differences(read, oracle) == []
    assert read == oracle
    owner, _ = _both(mlflow_db)
    assert read == owner
    assert any(fk.cascades_on_update for fk in read.all_foreign_keys)


def test_the_refusals_are_the_inspectors(scratch_db) -> None:
    db = scratch_db
    _execute(db, ["CREATE TABLE unrelated (id INTEGER PRIMARY KEY)"])
    _assert_same_refusal(db, "not an MLflow tracking database")
    _execute(db, ["CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name VARCHAR(256))"])
    _assert_same_refusal(db, "an MLflow tracking database from before workspaces")
    _execute(db, ["CREATE TABLE workspaces (name VARCHAR(63) PRIMARY KEY)"])
    _assert_same_refusal(db, "the `workspaces` table exists but no table has a `workspace` column")
    _execute(
        db, ["DROP TABLE workspaces", "CREATE TABLE runs (run_uuid VARCHAR(32) PRIMARY KEY, workspace VARCHAR(63))"]
    )
    _assert_same_refusal(db, "no `workspaces` catalog table")


def test_the_auth_database_is_refused_as_the_inspector_refuses_it(auth_db) -> None:
    _assert_same_refusal(auth_db, "not an MLflow tracking database")


def _assert_same_refusal(db, message: str) -> None:
    with db.engine.connect() as conn:
        with pytest.raises(NotAWorkspaceDatabase) as read:
            reflect_schema(conn)
        with pytest.raises(NotAWorkspaceDatabase) as oracle:
            inspector_schema(conn)
    assert str(read.value) == str(oracle.value)
    assert str(read.value).startswith(message)


def _execute(db, statements: list[str]) -> None:
    with db.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


#: Spellings MLflow's schemas do not use, each backend's own: a composite FK with ON DELETE / ON UPDATE CASCADE,
#: the other rules, FKs named out of order and in mixed case, quoted and mixed-case names, an inline UNIQUE after
#: a typed length, unique indexes beside UNIQUE constraints (partial, on an expression, on a prefix), a key in
#: another order than the columns, a workspace table without a primary key, non-workspace tables referencing
#: workspace tables, a view, and the column types whose lengths SQLAlchemy reads.
_EDGE_CASES = {
    "sqlite": [
        'CREATE TABLE "Zoo Parent" ("workspace" VARCHAR(63) NOT NULL, "Name" VARCHAR(256) NOT NULL, id INTEGER, '
        'PRIMARY KEY ("workspace", "Name"), CONSTRAINT uq_zoo_id UNIQUE (id))',
        "CREATE TABLE zoo_target (id INTEGER PRIMARY KEY, note TEXT)",
        "CREATE TABLE zoo_child (workspace VARCHAR(63) NOT NULL, parent_name VARCHAR(256), label VARCHAR(32) UNIQUE, "
        "code CHARACTER VARYING(20), blob16 BLOB(16), blob_spaced BLOB (16), spaced VARCHAR (10), lower_t varchar(12), "
        "nchar_c NCHAR(5), num NUMERIC(10, 2), big BIGINT(20), clob_c CLOB(99), txt TEXT(3, 4), weird VARCHAR(1, 2), "
        "untyped, dbl DOUBLE PRECISION, nvc NATIONAL VARCHAR(9), "
        "gen INTEGER GENERATED ALWAYS AS (length(label)) VIRTUAL, "
        "gen_text VARCHAR(7) GENERATED ALWAYS AS (upper(label)) STORED, "
        'CONSTRAINT fk_zoo_parent FOREIGN KEY (workspace, parent_name) REFERENCES "Zoo Parent" (workspace, "Name") '
        "ON DELETE CASCADE ON UPDATE CASCADE, "
        "CONSTRAINT uq_child UNIQUE (workspace, code))",
        "CREATE UNIQUE INDEX ix_zoo_child_spaced ON zoo_child (workspace, spaced)",
        "CREATE UNIQUE INDEX ix_zoo_child_partial ON zoo_child (workspace, lower_t) WHERE lower_t IS NOT NULL",
        "CREATE UNIQUE INDEX ix_zoo_child_expr ON zoo_child (workspace, lower(label))",
        "CREATE INDEX ix_zoo_child_num ON zoo_child (workspace, num)",
        # no primary key; an inline FK with a rule (the Inspector reports neither its name nor its rule); a quoted
        # name; DEFERRABLE; ON and DELETE on two lines; an unnamed table FK; an FK without a column list (the
        # parent's primary key), last: its pattern would swallow the next clause, as in zoo_quirk
        "CREATE TABLE zoo_nopk (workspace VARCHAR(63) NOT NULL, "
        "run_id VARCHAR(32) REFERENCES runs (run_uuid) ON DELETE CASCADE, pw VARCHAR(63), pn VARCHAR(256), "
        "a INTEGER, b INTEGER, "
        'CONSTRAINT "fk def" FOREIGN KEY (a) REFERENCES zoo_target (id) ON\n DELETE SET NULL '
        "DEFERRABLE INITIALLY DEFERRED, "
        "FOREIGN KEY (b) REFERENCES zoo_target(id) ON UPDATE CASCADE ON DELETE NO ACTION, "
        'CONSTRAINT fk_nolist FOREIGN KEY (pw, pn) REFERENCES "Zoo Parent")',
        "CREATE TABLE zoo_quirk (workspace VARCHAR(63), name VARCHAR(256), a INTEGER, "
        'FOREIGN KEY (workspace, name) REFERENCES "Zoo Parent", '
        "CONSTRAINT fk_swallowed FOREIGN KEY (a) REFERENCES zoo_target (id) ON UPDATE CASCADE)",
        "CREATE TABLE zoo_pkorder (b TEXT, workspace VARCHAR(63), a TEXT, PRIMARY KEY (a, workspace, b)) WITHOUT ROWID",
        "CREATE TABLE zoo_global (id INTEGER PRIMARY KEY, label VARCHAR(32), "
        "FOREIGN KEY (label) REFERENCES zoo_child (label) ON DELETE RESTRICT)",
        "CREATE VIEW zoo_view AS SELECT id FROM zoo_target",
    ],
    "mysql": [
        "CREATE TABLE `Zoo Parent` (`workspace` VARCHAR(63) NOT NULL, `Name` VARCHAR(256) NOT NULL, id INTEGER, "
        "PRIMARY KEY (`workspace`, `Name`), CONSTRAINT uq_zoo_id UNIQUE (id))",
        "CREATE TABLE zoo_target (id INTEGER PRIMARY KEY, note TEXT)",
        "CREATE TABLE zoo_child (workspace VARCHAR(63) NOT NULL, parent_name VARCHAR(256), label VARCHAR(32) UNIQUE, "
        "code VARCHAR(20), bin BINARY(4), vbin VARBINARY(5), flags BIT(6), kind ENUM('a', 'it''s long'), "
        "tags SET('x', 'xyz12'), body TEXT, tiny TINYTEXT, blb BLOB, n INT(11), d DECIMAL(10,2), ts DATETIME(6), "
        "y YEAR, j JSON, u UUID, nc NCHAR(7), flag TINYINT(1), t2 TIMESTAMP(2) NULL, "
        "gen VARCHAR(40) AS (upper(label)) VIRTUAL, a INTEGER, b INTEGER, c INTEGER, "
        "CONSTRAINT zz_fk FOREIGN KEY (workspace, parent_name) REFERENCES `Zoo Parent` (workspace, `Name`) "
        "ON DELETE CASCADE ON UPDATE CASCADE, "
        "CONSTRAINT Bb_fk FOREIGN KEY (a) REFERENCES zoo_target (id) ON DELETE SET NULL, "
        "CONSTRAINT aa_fk FOREIGN KEY (b) REFERENCES zoo_target (id) ON DELETE RESTRICT ON UPDATE NO ACTION, "
        "CONSTRAINT mm_fk FOREIGN KEY (c) REFERENCES zoo_target (id), "
        "CONSTRAINT uq_child UNIQUE (workspace, code))",
        "CREATE UNIQUE INDEX ix_zoo_child_tiny ON zoo_child (workspace, tiny(10))",
        "CREATE UNIQUE INDEX Ab_unique ON zoo_child (workspace, n)",
        "CREATE INDEX ix_zoo_child_d ON zoo_child (workspace, d)",
        "CREATE TABLE zoo_nopk (workspace VARCHAR(63) NOT NULL, x INT)",
        "CREATE TABLE zoo_pkorder (b VARCHAR(10), workspace VARCHAR(63), a VARCHAR(10), PRIMARY KEY (a, workspace, b))",
        "CREATE TABLE zoo_global (id INT PRIMARY KEY, label VARCHAR(32), FOREIGN KEY (label) REFERENCES zoo_child (label))",
        "CREATE VIEW zoo_view AS SELECT id FROM zoo_target",
    ],
    # also: mixed-case and quoted names, a dropped column, a table without columns, the types whose lengths and
    # nullability SQLAlchemy reads (enums by name, also shadowed by a type it knows, unknown to it or in another
    # schema; domains NOT NULL or not; arrays; generated and identity columns), unique indexes partial, with
    # INCLUDE or NULLS NOT DISTINCT, on expressions, a primary key with INCLUDE, a deferrable UNIQUE, an exclusion
    # constraint, the FK rules and options (RESTRICT, SET DEFAULT, MATCH FULL, NOT VALID, a self reference, names
    # ordered bytewise), FK columns out of the table's order, a partitioned table with partitions and an FK onto
    # it (PostgreSQL adds one per partition), table inheritance, an unlogged table, a materialized view, and
    # another schema (off the search path) with tables of the same names, an FK into it and one out of it.
    "postgresql": [
        'CREATE TABLE "Zoo Parent" ("workspace" VARCHAR(63) NOT NULL, "Name" VARCHAR(256) NOT NULL, id INTEGER, '
        'PRIMARY KEY ("workspace", "Name"), CONSTRAINT uq_zoo_id UNIQUE (id))',
        "CREATE TABLE zoo_target (id INTEGER PRIMARY KEY, note TEXT)",
        "CREATE SCHEMA zoo_other",
        "CREATE TYPE zoo_mood AS ENUM ('ok', 'très long label')",
        "CREATE TYPE zoo_empty_enum AS ENUM ()",
        "CREATE TYPE citext AS ENUM ('read as CITEXT, a type SQLAlchemy knows')",
        'CREATE TYPE "Zoo ""Quoted"" Enum" AS ENUM (\'abc\')',
        "CREATE TYPE \"zoo(paren)\" AS ENUM ('abcdef')",
        "CREATE TYPE zoo_other.hidden_enum AS ENUM ('abcd')",
        "CREATE TYPE zoo_other.zoo_mood AS ENUM ('shadowed by public.zoo_mood, longer')",
        "CREATE DOMAIN zoo_code AS VARCHAR(10) NOT NULL",
        "CREATE DOMAIN zoo_loose AS VARCHAR(12)",
        "CREATE DOMAIN zoo_other.hidden_domain AS TEXT NOT NULL",
        "CREATE TABLE zoo_child (workspace VARCHAR(63) NOT NULL, parent_name VARCHAR(256), label VARCHAR(32) UNIQUE, "
        'code CHAR(20), bits BIT(6), a INTEGER, "MixedCase" VARCHAR(7), "has space" VARCHAR(8), vb BIT VARYING(5), '
        'vbu BIT VARYING, qbit "bit", ch CHAR, bp BPCHAR, vc VARCHAR, n NUMERIC(10, 2), '
        "ts TIMESTAMP(3) WITH TIME ZONE, iv INTERVAL DAY TO SECOND(2), arr VARCHAR(20)[], mood zoo_mood, "
        "moods zoo_mood[], other_mood zoo_other.zoo_mood, empty_enum zoo_empty_enum, shadowed citext, "
        'quoted_enum "Zoo ""Quoted"" Enum", paren_enum "zoo(paren)", hidden zoo_other.hidden_enum, dcode zoo_code, '
        'dloose zoo_loose, dhidden zoo_other.hidden_domain, js JSONB, u UUID, by BYTEA, tx TEXT, nm NAME, qc "char", '
        "gen VARCHAR(40) GENERATED ALWAYS AS (upper(label)) STORED, ident BIGINT GENERATED ALWAYS AS IDENTITY, "
        'CONSTRAINT fk_zoo_parent FOREIGN KEY (workspace, parent_name) REFERENCES "Zoo Parent" (workspace, "Name") '
        "ON DELETE CASCADE ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED, "
        "CONSTRAINT fk_a FOREIGN KEY (a) REFERENCES zoo_target (id) ON DELETE SET NULL, "
        "CONSTRAINT uq_child UNIQUE (workspace, code))",
        "ALTER TABLE zoo_child DROP COLUMN tx",
        "CREATE UNIQUE INDEX ix_zoo_child_a ON zoo_child (workspace, a)",
        "CREATE UNIQUE INDEX ix_zoo_child_expr ON zoo_child (workspace, lower(label))",
        "CREATE UNIQUE INDEX ix_zoo_child_expr_n ON zoo_child (workspace, lower(label), n)",
        'CREATE UNIQUE INDEX ix_zoo_child_partial ON zoo_child (workspace, "MixedCase") WHERE "MixedCase" IS NOT NULL',
        'CREATE UNIQUE INDEX ix_zoo_child_include ON zoo_child (workspace, "has space") INCLUDE (bits)',
        "CREATE INDEX ix_zoo_child_plain ON zoo_child (workspace, ts)",
        "CREATE TABLE zoo_nopk (workspace VARCHAR(63) NOT NULL, x INT)",
        "CREATE TABLE zoo_pkorder (b TEXT, workspace VARCHAR(63), a TEXT, note TEXT, "
        "PRIMARY KEY (a, workspace, b) INCLUDE (note))",
        "CREATE TABLE zoo_fkorder (b TEXT, a TEXT, workspace VARCHAR(63), "
        "FOREIGN KEY (a, workspace, b) REFERENCES zoo_pkorder (a, workspace, b))",
        "CREATE TABLE zoo_global (id INT PRIMARY KEY, label VARCHAR(32) REFERENCES zoo_child (label))",
        "CREATE VIEW zoo_view AS SELECT id FROM zoo_target",
        "CREATE MATERIALIZED VIEW zoo_mview AS SELECT workspace FROM zoo_child",
        "CREATE TABLE zoo_rules (workspace VARCHAR(63) NOT NULL DEFAULT 'default', \"Name\" VARCHAR(256) DEFAULT 'x', "
        "id INT, parent INT, b INT, c INT, "
        'CONSTRAINT "Zz rules parent" FOREIGN KEY (workspace, "Name") REFERENCES "Zoo Parent" (workspace, "Name") '
        "ON UPDATE CASCADE, "
        'CONSTRAINT aa_rules_default FOREIGN KEY (workspace, "Name") REFERENCES "Zoo Parent" (workspace, "Name") '
        "MATCH FULL ON DELETE SET DEFAULT, "
        "CONSTRAINT mm_restrict FOREIGN KEY (b) REFERENCES zoo_target (id) ON DELETE RESTRICT ON UPDATE RESTRICT "
        "DEFERRABLE, "
        'CONSTRAINT "MM upper" FOREIGN KEY (c) REFERENCES zoo_target (id) NOT VALID, '
        "CONSTRAINT uq_rules_id UNIQUE (workspace, id), "
        "CONSTRAINT uq_rules_deferred UNIQUE (workspace, b) DEFERRABLE INITIALLY DEFERRED, "
        "CONSTRAINT zoo_rules_self FOREIGN KEY (workspace, parent) REFERENCES zoo_rules (workspace, id), "
        "CONSTRAINT zoo_rules_excl EXCLUDE USING btree (workspace WITH =, c WITH =))",
        "CREATE TABLE zoo_part (workspace VARCHAR(63) NOT NULL, id INT NOT NULL, name VARCHAR(20), "
        "pname VARCHAR(256), PRIMARY KEY (workspace, id), CONSTRAINT uq_part_name UNIQUE (workspace, name), "
        'CONSTRAINT fk_part_parent FOREIGN KEY (workspace, pname) REFERENCES "Zoo Parent" (workspace, "Name") '
        "ON UPDATE CASCADE) PARTITION BY LIST (workspace)",
        "CREATE TABLE zoo_part_a PARTITION OF zoo_part FOR VALUES IN ('a')",
        "CREATE TABLE zoo_part_rest PARTITION OF zoo_part DEFAULT",
        "CREATE TABLE zoo_part_child (workspace VARCHAR(63) NOT NULL, part_id INT, CONSTRAINT fk_onto_part "
        "FOREIGN KEY (workspace, part_id) REFERENCES zoo_part (workspace, id) ON UPDATE CASCADE)",
        "CREATE TABLE zoo_inherits (extra INT) INHERITS (zoo_nopk)",
        "CREATE UNLOGGED TABLE zoo_unlogged (workspace VARCHAR(63), k VARCHAR(5), UNIQUE (workspace, k))",
        "CREATE TABLE zoo_empty ()",
        "CREATE TABLE zoo_other.zoo_target (id INT PRIMARY KEY)",
        'CREATE TABLE zoo_other."Zoo Parent" (workspace VARCHAR(63), other INT PRIMARY KEY)',
        "CREATE TABLE zoo_other.zoo_hidden (workspace VARCHAR(63) NOT NULL, name VARCHAR(9), UNIQUE (workspace, name), "
        'FOREIGN KEY (workspace, name) REFERENCES public."Zoo Parent" (workspace, "Name"))',
        "CREATE TABLE zoo_onto_other (workspace VARCHAR(63), t INT REFERENCES zoo_other.zoo_target (id) "
        'ON DELETE CASCADE, o INT REFERENCES zoo_other."Zoo Parent" (other))',
    ],
}

#: PostgreSQL 15's: ON DELETE SET NULL / SET DEFAULT on some columns (the Inspector keeps them in the rule, which
#: re-creating a suspended FK needs), a unique index NULLS NOT DISTINCT.
_POSTGRESQL_15_EDGE_CASES = [
    'ALTER TABLE zoo_rules ADD CONSTRAINT "Zz null some" FOREIGN KEY (workspace, "Name") '
    'REFERENCES "Zoo Parent" (workspace, "Name") ON DELETE SET NULL ("Name") ON UPDATE CASCADE',
    'ALTER TABLE zoo_rules ADD CONSTRAINT "aa default some" FOREIGN KEY (workspace, "Name") '
    'REFERENCES "Zoo Parent" (workspace, "Name") ON DELETE SET DEFAULT (workspace, "Name")',
    "CREATE UNIQUE INDEX ix_zoo_child_nnd ON zoo_child (workspace, vb) NULLS NOT DISTINCT",
]


# SQLAlchemy warns about the quirks these tables are made of (BIGINT(20), BLOB (16), a swallowed FK clause): expected.
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
def test_edge_cases_read_as_the_inspector_reads_them(mlflow_db) -> None:
    _execute(mlflow_db, _EDGE_CASES[mlflow_db.backend])
    if mlflow_db.backend == "postgresql" and _server_version(mlflow_db) >= (15,):
        _execute(mlflow_db, _POSTGRESQL_15_EDGE_CASES)
    schema = _assert_same(mlflow_db)
    # the edge cases are there to be compared, not skipped
    names = {t.name for t in schema.tables}
    assert {"Zoo Parent", "zoo_child", "zoo_nopk", "zoo_pkorder"} <= names
    assert {"zoo_target", "zoo_global"} <= schema.all_table_names - names
    assert "zoo_view" not in schema.all_table_names
    assert schema.table("zoo_pkorder").primary_key == ("a", "workspace", "b")
    assert schema.table("zoo_nopk").primary_key == ()
    (composite,) = schema.table("zoo_child").parent_keys
    assert composite.child_columns == ("workspace", "parent_name")
    assert composite.cascades_on_update and composite.cascades_on_delete
    assert any(fk.child == "zoo_global" and fk.parent == "zoo_child" for fk in schema.all_foreign_keys)
    assert schema.table("zoo_child").column_length("label") == 32
    if mlflow_db.backend == "sqlite":
        nopk = {
            fk.parent if fk.name is None else fk.name: fk for fk in schema.all_foreign_keys if fk.child == "zoo_nopk"
        }
        assert nopk["fk def"].on_delete == "SET NULL" and nopk["fk def"].deferrable
        assert nopk["runs"].on_delete is None  # inline: unnamed, and without its rule, as the Inspector has it
        assert nopk["Zoo Parent"].parent_columns == ("workspace", "Name")  # unnamed too: no column list
        assert schema.table("zoo_nopk").workspace_columns == ("workspace", "pw")  # through the parent's key
    assert ("code",) in {k.columns for k in schema.table("zoo_child").unique_keys}
    if mlflow_db.backend == "postgresql":
        _assert_postgresql_edge_cases(mlflow_db, schema)


def _assert_postgresql_edge_cases(db, schema: WorkspaceSchema) -> None:
    """What the Inspector reports for PostgreSQL's own spellings (the comparison above holds the reader to it)."""
    names = {t.name for t in schema.tables}
    assert {"zoo_part", "zoo_part_a", "zoo_part_rest", "zoo_inherits", "zoo_unlogged", "zoo_rules"} <= names
    assert "zoo_empty" in schema.all_table_names and schema.columns_of("zoo_empty") == ()
    assert not {"zoo_mview", "zoo_hidden"} & schema.all_table_names  # not a table; off the search path
    assert schema.columns_of("zoo_target") == ("id", "note")  # not zoo_other's
    child = schema.table("zoo_child")
    assert "tx" not in child.column_names  # dropped
    lengths = {c.name: c.length for c in child.columns}
    assert (lengths["code"], lengths["bits"], lengths["vb"], lengths["ch"], lengths["mood"]) == (20, 6, 5, 1, 15)
    assert lengths["empty_enum"] == 0 and lengths["other_mood"] == len("shadowed by public.zoo_mood, longer")
    assert lengths["arr"] is lengths["shadowed"] is lengths["paren_enum"] is lengths["qbit"] is None
    assert not child.is_nullable("dcode") and not child.is_nullable("dhidden") and child.is_nullable("dloose")
    keys = {k.columns: k.source for k in child.unique_keys}
    assert keys[("MixedCase",)] == "unique index ix_zoo_child_partial"  # partial, still a key to the Inspector
    assert keys[("has space",)] == "unique index ix_zoo_child_include"  # not its INCLUDE column
    assert ("label",) not in keys and not any(None in k for k in keys)  # global; expressions are no key
    assert schema.table("zoo_pkorder").primary_key == ("a", "workspace", "b")
    assert ("id",) in {k.columns for k in schema.table("zoo_rules").unique_keys}
    fks = {(fk.child, fk.name): fk for fk in schema.all_foreign_keys}
    assert fks["zoo_fkorder", "zoo_fkorder_a_workspace_b_fkey"].child_columns == ("a", "workspace", "b")
    assert fks["zoo_rules", "aa_rules_default"].on_delete == "SET DEFAULT"
    assert fks["zoo_rules", "mm_restrict"].deferrable and fks["zoo_rules", "mm_restrict"].on_update == "RESTRICT"
    assert fks["zoo_child", "fk_zoo_parent"].initially == "DEFERRED"
    rules = [fk.name for fk in schema.all_foreign_keys if fk.child == "zoo_rules"]
    assert rules == sorted(rules, key=str.encode) and rules[0] == "MM upper"  # bytewise: upper case first
    assert {fk.parent for fk in schema.all_foreign_keys if fk.child == "zoo_part_child"} == {
        "zoo_part",
        "zoo_part_a",
        "zoo_part_rest",
    }
    assert fks["zoo_onto_other", "zoo_onto_other_t_fkey"].parent == "zoo_target"  # zoo_other's, by its bare name
    if _server_version(db) >= (15,):
        assert fks["zoo_rules", "Zz null some"].on_delete == 'SET NULL ("Name")'
        assert fks["zoo_rules", "aa default some"].on_delete == 'SET DEFAULT (workspace, "Name")'
        assert ("vb",) in {k.columns for k in child.unique_keys}


def _server_version(db) -> tuple[int, ...]:
    with db.engine.connect() as conn:
        return conn.dialect.server_version_info


@pytest.mark.postgresql_only
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
def test_postgresql_reads_the_tables_its_search_path_shows(mlflow_db) -> None:
    """The tables of every schema on the search path, the first of a name only, and no temporary table: as the
    Inspector (``pg_table_is_visible``), on the connection's own search path."""
    _execute(mlflow_db, _EDGE_CASES["postgresql"])
    with mlflow_db.engine.connect() as conn:
        conn.exec_driver_sql("SET search_path TO public, zoo_other")
        conn.exec_driver_sql("CREATE TEMPORARY TABLE zoo_temp (workspace VARCHAR(63) PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TEMPORARY TABLE zoo_nopk (workspace VARCHAR(63), shadows INT)")
        read, oracle = reflect_schema(conn), inspector_schema(conn)
    assert _differences(read, oracle) == []
    assert read == oracle
    assert "zoo_hidden" in read.all_table_names  # zoo_other's, now on the search path
    assert read.columns_of("zoo_target") == ("id", "note")  # public's: first on the path
    assert not {"zoo_temp", "zoo_nopk"} & read.all_table_names  # temporary, and the one it hides
