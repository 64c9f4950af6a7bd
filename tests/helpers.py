"""Shared test helpers: running the CLI in-process and planting data."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from click.testing import CliRunner, Result
from sqlalchemy import MetaData
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
    with sample_data(conn) as data:
        for ws in TEAMS:
            data.workspace(ws)
        if spread:
            data.spread(("default", *TEAMS))
        if fill:
            fill(data)


def populate(db, fill: Callable[[SampleData], None] | None = None, spread: bool = True) -> None:
    with db.engine.begin() as conn:
        fill_db(conn, fill, spread)


#: The DDL a database's row tables are reflected from, as one server-side digest: equal digests, equal reflections.
#: PostgreSQL: every relation, column (type, default, nullability, identity, generation, collation, comment),
#: constraint, sequence, enum and domain of the user's schemas, as record text (which quotes what needs it).
#: Comments are joined, not read with obj_description/col_description: those run a query of their own per row.
_PG_SCHEMA_DIGEST = """
SELECT encode(sha256(convert_to(string_agg(x, E'\n' ORDER BY x COLLATE "C"), 'UTF8')), 'hex') FROM (
  SELECT ROW('rel', n.nspname, c.relname, c.relkind, c.relpersistence, dc.description)::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_description dc ON dc.objoid = c.oid AND dc.classoid = 'pg_class'::regclass AND dc.objsubid = 0
  WHERE n.nspname !~ '^(pg_|information_schema$)'
  UNION ALL
  SELECT ROW('col', n.nspname, c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
    pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attcollation::regcollation::text,
    da.description)::text
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  LEFT JOIN pg_description da ON da.objoid = c.oid AND da.classoid = 'pg_class'::regclass AND da.objsubid = a.attnum
  WHERE n.nspname !~ '^(pg_|information_schema$)'
    AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT ROW('con', n.nspname, c.conrelid::regclass::text, c.contypid::regtype::text, c.conname, c.contype,
    pg_get_constraintdef(c.oid))::text
  FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
  WHERE n.nspname !~ '^(pg_|information_schema$)'
  UNION ALL
  SELECT ROW('seq', s.seqrelid::regclass::text, s.seqtypid::regtype::text, s.seqstart, s.seqincrement, s.seqmax,
    s.seqmin, s.seqcache, s.seqcycle)::text
  FROM pg_sequence s
  UNION ALL
  SELECT ROW('type', n.nspname, t.typname, t.typtype, format_type(t.typbasetype, t.typtypmod), t.typnotnull,
    t.typdefault, (SELECT string_agg(quote_literal(e.enumlabel), ',' ORDER BY e.enumsortorder)
                   FROM pg_enum e WHERE e.enumtypid = t.oid))::text
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE n.nspname !~ '^(pg_|information_schema$)' AND t.typtype IN ('e', 'd')
) AS ddl(x)
"""
#: MariaDB/MySQL: every table and view, column, index and check constraint, each row's fields QUOTE()d (NULL stays
#: bare); the second value is false when GROUP_CONCAT was cut at group_concat_max_len (then: no digest).
_MYSQL_SCHEMA_DIGEST = """
SELECT SHA2(GROUP_CONCAT(x ORDER BY CAST(x AS BINARY) SEPARATOR '\\n'), 256),
  CHAR_LENGTH(GROUP_CONCAT(x ORDER BY CAST(x AS BINARY) SEPARATOR '\\n')) = SUM(CHAR_LENGTH(x) + 1) - 1
FROM (
  SELECT CONCAT_WS(',', 'table', QUOTE(table_name), QUOTE(table_type), QUOTE(engine), QUOTE(table_collation),
    QUOTE(create_options), QUOTE(table_comment)) AS x
  FROM information_schema.tables WHERE table_schema = DATABASE()
  UNION ALL
  SELECT CONCAT_WS(',', 'column', QUOTE(table_name), QUOTE(column_name), QUOTE(ordinal_position),
    QUOTE(column_default), QUOTE(is_nullable), QUOTE(column_type), QUOTE(character_set_name), QUOTE(collation_name),
    QUOTE(extra), QUOTE(generation_expression), QUOTE(column_comment))
  FROM information_schema.columns WHERE table_schema = DATABASE()
  UNION ALL
  SELECT CONCAT_WS(',', 'index', QUOTE(table_name), QUOTE(index_name), QUOTE(non_unique), QUOTE(seq_in_index),
    QUOTE(column_name), QUOTE(sub_part), QUOTE(index_type), QUOTE(index_comment))
  FROM information_schema.statistics WHERE table_schema = DATABASE()
  UNION ALL
  SELECT CONCAT_WS(',', 'check', QUOTE(table_name), QUOTE(constraint_name), QUOTE(check_clause))
  FROM information_schema.check_constraints WHERE constraint_schema = DATABASE()
) AS ddl
"""


def schema_digest(conn: Connection) -> str | None:
    """A digest of every definition a table's reflection reads (None: none could be made)."""
    if conn.dialect.name == "sqlite":
        ddl = sorted(conn.exec_driver_sql("SELECT type, name, tbl_name, sql FROM sqlite_master").all())
        return hashlib.sha256(repr(ddl).encode()).hexdigest()
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql(_PG_SCHEMA_DIGEST).scalar()
    digest, whole = conn.exec_driver_sql(_MYSQL_SCHEMA_DIGEST).one()
    return digest if whole else None


#: Reflected tables by (dialect, server version, schema digest): reflecting a table costs more than planting a
#: test's rows, and most tests plant them in a copy of the same template.
_SAMPLE_TABLES: dict[tuple, MetaData] = {}


def sample_data(conn: Connection) -> SampleData:
    """A SampleData that reuses the tables reflected from databases whose schema is exactly this one's."""
    digest = schema_digest(conn)
    if digest is None:
        return SampleData(conn)
    key = conn.dialect.name, conn.dialect.server_version_info, digest
    return SampleData(conn, _SAMPLE_TABLES.setdefault(key, MetaData()))


def table_digests(conn: Connection, names: list[str]) -> dict[str, tuple[int, str]]:
    """Per table its row count and a sha256 of every row's full content, sorted (so in no particular row order),
    made by the server (PostgreSQL, MariaDB) in one query: as strict as comparing the rows, without reading them."""
    quote = conn.dialect.identifier_preparer.quote
    if conn.dialect.name == "postgresql":
        # A row's record text holds every column, quoted where needed (NULL is an empty field, '' is "").
        agg = "string_agg(t::text, E'\\n' ORDER BY t::text COLLATE \"C\")"
        selects = [
            f"SELECT {i}, COUNT(*), encode(sha256(convert_to(COALESCE({agg}, ''), 'UTF8')), 'hex') FROM {quote(n)} t"
            for i, n in enumerate(names)
        ]
    else:
        # Each row's sha256 over its QUOTE()d columns (NULL stays bare), then one over the sorted row digests.
        columns: dict[str, list[str]] = {n: [] for n in names}
        for table, column in conn.exec_driver_sql(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
            "ORDER BY table_name, ordinal_position"
        ):
            if table in columns:
                columns[table].append(column)
        conn.exec_driver_sql("SET SESSION group_concat_max_len = 4294967295")
        agg = "GROUP_CONCAT(h ORDER BY h SEPARATOR '')"
        selects = [
            f"SELECT {i}, COUNT(*), SHA2({agg}, 256), CHAR_LENGTH({agg}) = 64 * COUNT(*) FROM (SELECT SHA2(CONCAT_WS("
            f"',', {', '.join(f'QUOTE({quote(c)})' for c in columns[n])}), 256) AS h FROM {quote(n)}) t"
            for i, n in enumerate(names)
        ]
    out = {}
    for i, count, digest, *whole in conn.exec_driver_sql(" UNION ALL ".join(selects)):
        assert whole != [0], f"GROUP_CONCAT cut {names[i]}'s row digests short"
        out[names[i]] = count, digest
    return out
