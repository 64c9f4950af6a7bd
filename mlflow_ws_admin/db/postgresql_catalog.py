"""PostgreSQL's schema as ``db.schema.reflect_schema`` reads it, from ``pg_catalog`` in three set-based textual
queries, where SQLAlchemy's Inspector builds and compiles a query per kind (most of a command's reflection CPU
went to compiling them, on every new engine).  The results have the shapes the Inspector gives
(``reflect_schema`` derives the same ``WorkspaceSchema`` from either), and name the same tables: those
``get_table_names`` lists (plain and partitioned, not temporary, visible on the search path, not in
``pg_catalog``).  ``pg_catalog``, not ``information_schema``: its views hide what the user holds no privilege
on, and are slower.  Its own module, as ``sqlite_catalog``: the dialects import ``db.schema``.  No ``%`` in the
SQL: the drivers format statements."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection

from sqlalchemy.engine import Connection
from sqlalchemy.util import quoted_token_parser

from mlflow_ws_admin.db.catalog_tables import Tables

#: The tables ``Inspector.get_table_names`` lists, as a condition on ``c`` (pg_class) and ``n`` (its namespace).
_VISIBLE_TABLE = (
    "c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND pg_catalog.pg_table_is_visible(c.oid) "
    "AND n.nspname <> 'pg_catalog'"
)
_FROM_TABLES = "FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
#: Every table's columns, in order; a table without columns still has a row (its name, NULL attname).  The
#: column's type as the Inspector reads it: its printed form; for an enum or a domain, the name the Inspector
#: knows it by (schema-qualified when not visible), and an enum's labels, whether a domain is NOT NULL (which the
#: Inspector's nullability folds in).
_COLUMNS = (
    "SELECT c.relname, a.attname, a.attnotnull, pg_catalog.format_type(a.atttypid, a.atttypmod), t.typtype, "
    "CASE WHEN t.typtype IN ('e', 'd') THEN CASE WHEN pg_catalog.pg_type_is_visible(t.oid) THEN ARRAY[t.typname::text] "
    "ELSE ARRAY[tn.nspname::text, t.typname::text] END END, "
    "t.typnotnull, CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum AS e "
    "WHERE e.enumtypid = t.oid) END "
    f"{_FROM_TABLES}"
    "LEFT JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "LEFT JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid "
    "LEFT JOIN pg_catalog.pg_namespace AS tn ON tn.oid = t.typnamespace "
    f"WHERE {_VISIBLE_TABLE} ORDER BY c.relname, a.attnum"
)


def _attnames(numbers: str, table: str, where: str = "") -> str:
    """The names of the columns numbered by an array (or int2vector) of ``table``'s, in its order; NULL for a 0
    (an index's expression)."""
    return (
        f"ARRAY(SELECT a.attname::text FROM unnest({numbers}) WITH ORDINALITY AS k(attnum, ord) "
        f"LEFT JOIN pg_catalog.pg_attribute AS a ON a.attrelid = {table} AND a.attnum = k.attnum {where}"
        "ORDER BY k.ord)"
    )


#: A rule's words, as pg_get_constraintdef prints them (NO ACTION, 'a', is the default: the Inspector omits it).
_RULE = (
    "CASE {} WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END"
)
#: PostgreSQL 15's ``ON DELETE SET NULL (a, b)``: the columns follow the rule, quoted and separated as
#: pg_get_constraintdef prints them, and the Inspector keeps them in the rule (re-creating the FK needs them).
_DELETE_COLUMNS = (
    " || COALESCE(' (' || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) "
    "FROM unnest(con.confdelsetcols) WITH ORDINALITY AS k(attnum, ord) JOIN pg_catalog.pg_attribute AS a "
    "ON a.attrelid = con.conrelid AND a.attnum = k.attnum) || ')', '')"
)


def _foreign_keys_query(server_version: tuple[int, ...]) -> str:
    """Every FK of the tables, by table and name (as the Inspector orders them: bytewise, ``name``'s collation)."""
    on_delete = _RULE.format("con.confdeltype") + (_DELETE_COLUMNS if server_version >= (15,) else "")
    return (
        f"SELECT c.relname, con.conname, {_attnames('con.conkey', 'con.conrelid')}, p.relname, "
        f"{_attnames('con.confkey', 'con.confrelid')}, {_RULE.format('con.confupdtype')}, {on_delete}, "
        "con.condeferrable, con.condeferred "
        f"{_FROM_TABLES}"
        "JOIN pg_catalog.pg_constraint AS con ON con.conrelid = c.oid AND con.contype = 'f' "
        "JOIN pg_catalog.pg_class AS p ON p.oid = con.confrelid "
        f"WHERE {_VISIBLE_TABLE} ORDER BY c.relname, con.conname"
    )


def _unique_indexes_query(server_version: tuple[int, ...]) -> str:
    """Every unique index's key columns (not its INCLUDE columns), and the PRIMARY KEY or UNIQUE constraint it
    backs, if any."""
    key_columns = "indnkeyatts" if server_version >= (11,) else "indnatts"
    return (
        f"SELECT c.relname, i.relname, x.indisprimary, con.contype, con.conname, "
        f"{_attnames('x.indkey', 'x.indrelid', f'WHERE k.ord <= x.{key_columns} ')} "
        f"{_FROM_TABLES}"
        "JOIN pg_catalog.pg_index AS x ON x.indrelid = c.oid AND x.indisunique "
        "JOIN pg_catalog.pg_class AS i ON i.oid = x.indexrelid "
        "LEFT JOIN pg_catalog.pg_constraint AS con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid "
        "AND con.contype IN ('p', 'u') "
        f"WHERE {_VISIBLE_TABLE} ORDER BY c.relname, i.relname"
    )


def read_tables(conn: Connection) -> Tables:
    """The tables, their columns and foreign keys: two queries."""
    known_types = frozenset(conn.dialect.ischema_names)
    columns: dict[str, list[dict]] = {}
    for table, name, not_null, printed, typtype, key, type_not_null, labels in conn.exec_driver_sql(_COLUMNS).all():
        found = columns.setdefault(table, [])
        if name is None:  # a table without columns
            continue
        named = key is not None and _finds_named_type(printed, tuple(key), known_types)
        length = max(map(len, labels), default=0) if named and typtype == "e" else _length(printed)
        nullable = not not_null and not (named and typtype == "d" and type_not_null)
        found.append({"name": name, "nullable": nullable, "length": length})
    server_version = conn.dialect.server_version_info or ()
    foreign_keys: dict[str, list[dict]] = {}
    for row in conn.exec_driver_sql(_foreign_keys_query(server_version)).all():
        table, name, child_columns, parent, parent_columns, on_update, on_delete, deferrable, deferred = row
        options = {
            option: value
            for option, value in (
                ("onupdate", on_update),
                ("ondelete", on_delete),
                ("initially", "DEFERRED" if deferred else None),
                ("deferrable", True if deferrable else None),
            )
            if value is not None
        }
        foreign_keys.setdefault(table, []).append(
            {
                "name": name,
                "constrained_columns": child_columns,
                "referred_table": parent,
                "referred_columns": parent_columns,
                "options": options,
            }
        )
    return Tables(sorted(columns), columns, foreign_keys)


def read_keys(
    conn: Connection, names: Collection[str]
) -> tuple[dict[str, list[str]], dict[str, list[dict]], dict[str, list[dict]]]:
    """The named tables' primary keys, UNIQUE constraints and unique indexes (the others are no key): one query.
    As the Inspector, the indexes include those of the UNIQUE constraints (not the primary key's), by name, and a
    column on an expression is None.  The constraints come in the same order: a constraint and its index always
    share their name (renaming either renames both)."""
    server_version = conn.dialect.server_version_info or ()
    primary_keys: dict[str, list[str]] = {name: [] for name in names}
    uniques: dict[str, list[dict]] = {}
    indexes: dict[str, list[dict]] = {}
    for table, index, primary, contype, constraint, columns in conn.exec_driver_sql(
        _unique_indexes_query(server_version)
    ).all():
        if table not in primary_keys:
            continue
        if contype == "p":
            primary_keys[table] = columns
        elif contype == "u":
            uniques.setdefault(table, []).append({"name": constraint, "column_names": columns})
        if not primary:
            indexes.setdefault(table, []).append({"name": index, "column_names": columns, "unique": True})
    return primary_keys, uniques, indexes


#: A printed type's arguments, as the Inspector finds them: from the first "(" to the last ")".
_ARGUMENTS = re.compile(r"\((.*)\)")
#: The printed types whose SQLAlchemy type has its first argument as length.
_SIZED_TYPES = frozenset({"bit", "bit varying", "character", "character varying"})


@functools.lru_cache(maxsize=256)
def _finds_named_type(printed: str, key: tuple[str, ...], known_types: frozenset[str]) -> bool:
    """Whether the Inspector reads this enum's or domain's column as that type: it looks its printed name (less
    what it takes for arguments) up among the types it knows (``ischema_names``) first, then parses it into the
    key it keeps the enums and domains by, which odd names (a `"` inside) miss."""
    name = _ARGUMENTS.sub("", printed)
    return name.lower() not in known_types and tuple(quoted_token_parser(name)) == key


@functools.lru_cache(maxsize=256)  # a schema prints a few dozen types, on hundreds of columns
def _length(printed: str) -> int | None:
    """The length SQLAlchemy's type for this printed type has: `character varying(256)` 256, `character(1)` 1,
    `bit(6)` 6, `bit varying(5)` 5; None for the others, unbounded ones and arrays (`character varying(20)[]`:
    ARRAY has no length).  (BIT's default length, 1, is never read: a bit column without one prints as `"bit"`, a
    type the Inspector does not know.)"""
    arguments = _ARGUMENTS.search(printed)
    if arguments is None or _ARGUMENTS.sub("", printed) not in _SIZED_TYPES:
        return None
    first = arguments.group(1).split(",")[0].strip()
    return int(first) if first.isdigit() else None
