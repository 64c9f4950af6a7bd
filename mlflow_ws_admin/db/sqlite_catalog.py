"""SQLite's schema as ``db.schema.reflect_schema`` reads it: every table's columns, foreign keys and keys in four
set-based queries over the PRAGMA table-valued functions joined to ``sqlite_master``, where SQLAlchemy's
Inspector runs several PRAGMAs per table and a query for each table's SQL.  The results have the shapes the
Inspector gives (``reflect_schema`` derives the same ``WorkspaceSchema`` from either), and read what it reads,
its quirks included (see ``_foreign_keys``).  Its own module, as ``sqlite_uniques``: the dialects import
``db.schema``."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from mlflow_ws_admin.db import sqlite_uniques

#: The tables, and their SQL (the FK names and options, and the UNIQUE constraints' names, are read from it).
#: Not SQLite's own tables (sqlite_sequence, sqlite_stat1): the Inspector leaves them out.
_TABLES = "SELECT name, sql FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite~_%' ESCAPE '~'"
#: table_xinfo, not table_info: generated columns are columns too (hidden 2 and 3); 1 is a virtual table's hidden.
_COLUMNS = (
    'SELECT m.name, p.name, p.type, p."notnull", p.pk, p.hidden FROM main.sqlite_master AS m '
    "JOIN pragma_table_xinfo(m.name, 'main') AS p WHERE m.type = 'table' AND p.hidden <> 1 ORDER BY m.name, p.cid"
)
_FOREIGN_KEYS = (
    'SELECT m.name, f.id, f."table", f."from", f."to" FROM main.sqlite_master AS m '
    "JOIN pragma_foreign_key_list(m.name, 'main') AS f WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq"
)
#: Every index's columns: the automatic ones of UNIQUE constraints (origin 'u', for ``sqlite_uniques``) and the
#: unique indexes.  A NULL column is an expression (or the rowid).
_INDEX_COLUMNS = (
    'SELECT m.name, il.name, il."unique", il.origin, ii.name FROM main.sqlite_master AS m '
    "JOIN pragma_index_list(m.name, 'main') AS il JOIN pragma_index_info(il.name, 'main') AS ii "
    "WHERE m.type = 'table' AND il.\"unique\" = 1 ORDER BY m.name, il.name, ii.seqno"
)

#: A declared type as SQLAlchemy's type affinity reads it: a name, then its first parenthesised arguments.
_DECLARED_TYPE = re.compile(r"([\w ]+)(\(.*?\))?")
#: The declared type names SQLAlchemy's SQLite dialect knows (``ischema_names``), by whether the type it makes
#: has a length: the string types take up to 3 arguments (length first), BLOB exactly one.
_STRING_TYPES = frozenset({"CHAR", "NCHAR", "NVARCHAR", "TEXT", "VARCHAR"})
_OTHER_TYPES = frozenset(
    {
        "BIGINT", "BLOB", "BOOL", "BOOLEAN", "DATE", "DATE_CHAR", "DATETIME", "DATETIME_CHAR", "DECIMAL", "DOUBLE",
        "FLOAT", "INT", "INTEGER", "JSON", "JSONB", "NUMERIC", "REAL", "SMALLINT", "TIME", "TIME_CHAR", "TIMESTAMP",
    }
)  # fmt: skip

#: A table-level FOREIGN KEY clause, as SQLAlchemy's SQLite reflection matches it: an optional (quoted or bare)
#: name, the columns, a (quoted or bare) parent with a column list, ON DELETE / ON UPDATE, DEFERRABLE, INITIALLY.
_NAME = r'(?:"[^"]+"|[a-z0-9_]+)'
_FK_CLAUSE = re.compile(
    r'(?:CONSTRAINT\s+(?:"(.+?)"|(\w+))\s+)?'
    r"FOREIGN\s+KEY\s*\(\s*(.+?)\s*\)\s+"
    rf'REFERENCES\s+(?:"(.+?)"|([a-z0-9_]+))\s*\(\s*({_NAME}(?:(?:\s*,\s*|\s+){_NAME})*\s*)\)\s*'
    r"((?:ON\s+(?:DELETE|UPDATE)\s+(?:SET\s+NULL|SET\s+DEFAULT|CASCADE|RESTRICT|NO\s+ACTION)\s*)*)"
    r"((?:NOT\s+)?DEFERRABLE)?"
    r"(?:\s+INITIALLY\s+(DEFERRED|IMMEDIATE))?",
    re.IGNORECASE,
)
_SIG_NAME = re.compile(r'"(.+?)"|([a-z0-9_]+)', re.IGNORECASE)


@dataclass(frozen=True)
class Tables:
    """Every table's name, SQL, columns ({name, nullable, length, primary_key}) and foreign keys."""

    names: list[str]
    sql: dict[str, str | None]
    columns: dict[str, list[dict]]
    foreign_keys: dict[str, list[dict]]


def read_tables(conn: Connection) -> Tables:
    """The tables, their columns and foreign keys: three queries."""
    sql = dict(conn.exec_driver_sql(_TABLES).all())
    columns: dict[str, list[dict]] = {}
    for table, name, declared, notnull, pk, hidden in conn.exec_driver_sql(_COLUMNS).all():
        if table in sql:
            columns.setdefault(table, []).append(
                {"name": name, "nullable": not notnull, "length": _length(declared, hidden), "primary_key": pk}
            )
    pragma_fks: dict[str, dict[int, dict]] = {}
    for table, fk_id, parent, child_column, parent_column in conn.exec_driver_sql(_FOREIGN_KEYS).all():
        if table in sql:
            table_fks = pragma_fks.setdefault(table, {})
            if fk_id not in table_fks:
                table_fks[fk_id] = _pragma_fk(parent, parent_column, columns)
            fk = table_fks[fk_id]
            fk["constrained_columns"].append(child_column)
            if parent_column:
                fk["referred_columns"].append(parent_column)
    foreign_keys = {table: _foreign_keys(list(fks.values()), sql.get(table)) for table, fks in pragma_fks.items()}
    return Tables(sorted(sql), sql, columns, foreign_keys)


def read_keys(
    conn: Connection, tables: Tables, names: Sequence[str]
) -> tuple[dict[str, list[str]], dict[str, list[dict]], dict[str, list[dict]]]:
    """The named tables' primary keys (from the columns already read), UNIQUE constraints (``sqlite_uniques``)
    and unique indexes: one query.  Only unique indexes: the others are no key."""
    rows = conn.exec_driver_sql(_INDEX_COLUMNS).all()
    wanted = set(names)
    primary_keys = {name: _primary_key(tables.columns.get(name, [])) for name in names}
    uniques = sqlite_uniques.from_catalog(
        ((table, index, column) for table, index, _unique, origin, column in rows if origin == "u"), tables.sql, names
    )
    indexes: dict[str, dict[str, dict]] = {}
    for table, index, _unique, _origin, column in rows:
        # sqlite_autoindex_*: a PRIMARY KEY's or UNIQUE constraint's own index, which the Inspector leaves out
        if table in wanted and not index.startswith("sqlite_autoindex"):
            entry = indexes.setdefault(table, {}).setdefault(index, {"name": index, "column_names": [], "unique": 1})
            entry["column_names"].append(column)
    return primary_keys, uniques, {table: _named_indexes(found) for table, found in indexes.items()}


def _named_indexes(found: Mapping[str, dict]) -> list[dict]:
    """By name, as the Inspector lists them, without those on an expression (which it skips)."""
    return [found[name] for name in sorted(found) if None not in found[name]["column_names"]]


def _primary_key(columns: list[dict]) -> list[str]:
    """The PRIMARY KEY's columns in its own order (table_xinfo's pk: 1, 2, ...), not the table's."""
    return [c["name"] for c in sorted((c for c in columns if c["primary_key"]), key=lambda c: c["primary_key"])]


@functools.lru_cache(maxsize=256)  # a schema declares a few dozen types, on hundreds of columns
def _length(declared: str, hidden: int) -> int | None:
    """The length SQLAlchemy's type for this declared type has: `VARCHAR(256)` 256, `BLOB(16)` 16; names it does
    not know go by SQLite's affinity (`CHARACTER VARYING(20)` is TEXT, so 20; `BIGINT(20)` is an integer)."""
    declared = declared.upper()
    if hidden:  # a generated column's type reads "INTEGER GENERATED ALWAYS"
        declared = declared.replace("GENERATED", "").replace("ALWAYS", "").strip()
    match = _DECLARED_TYPE.match(declared)
    if not match or match.group(2) is None:
        return None
    name, numbers = match.group(1), re.findall(r"\d+", match.group(2))
    if name == "BLOB":
        return int(numbers[0]) if len(numbers) == 1 else None
    is_text = name in _STRING_TYPES or (
        name not in _OTHER_TYPES and "INT" not in name and any(a in name for a in ("CHAR", "CLOB", "TEXT"))
    )
    return int(numbers[0]) if is_text and 1 <= len(numbers) <= 3 else None


def _pragma_fk(parent: str, parent_column: str | None, columns: Mapping[str, list[dict]]) -> dict:
    """A new FK from its first pragma row.  No parent column (`REFERENCES parent` without a list) means the
    parent's primary key; found by the name exactly as spelled, as the Inspector finds it."""
    return {
        "name": None,
        "constrained_columns": [],
        "referred_schema": None,
        "referred_table": parent,
        "referred_columns": [] if parent_column else _primary_key(columns.get(parent, [])),
        "options": {},
    }


def _foreign_keys(pragma_fks: list[dict], table_sql: str | None) -> list[dict]:
    """The pragma's FKs, named and with their options where the table's SQL spells them as SQLAlchemy's pattern
    matches (a table-level clause with a parent column list), in that order; then the others, unnamed and
    without options even where they have them (an inline `REFERENCES p(id) ON DELETE CASCADE`): what the
    Inspector reports, so the schema stays the one plan files and journals were written against."""
    by_signature = {
        _signature(fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]): fk for fk in pragma_fks
    }
    found = []
    for name, columns, parent, parent_columns, options in _fk_clauses(table_sql or ""):
        fk = by_signature.pop(_signature(columns, parent, parent_columns), None)
        if fk is not None:
            found.append({**fk, "name": name, "options": options})
    return found + list(by_signature.values())


def _signature(columns: Sequence[str], parent: str, parent_columns: Sequence[str]) -> tuple[str, ...]:
    return (*columns, parent, *parent_columns)


def _fk_clauses(table_sql: str) -> Iterator[tuple[str | None, list[str], str, list[str], dict]]:
    for m in _FK_CLAUSE.finditer(table_sql):
        options: dict = {}
        actions = re.sub(r"\s+", " ", m.group(7).upper()).strip()
        for action in re.split(r" *\bON\b *", actions):
            verb, _, rule = action.partition(" ")
            if verb in ("DELETE", "UPDATE") and rule.strip() and rule.strip() != "NO ACTION":
                options["ondelete" if verb == "DELETE" else "onupdate"] = rule.strip()
        if m.group(8):
            options["deferrable"] = "NOT" not in m.group(8).upper()
        if m.group(9):
            options["initially"] = m.group(9).upper()
        yield m.group(1) or m.group(2), _names(m.group(3)), m.group(4) or m.group(5), _names(m.group(6)), options


def _names(spelled: str) -> list[str]:
    """The column names of a clause's list, quoted or bare."""
    return [m.group(1) or m.group(2) for m in _SIG_NAME.finditer(spelled)]
