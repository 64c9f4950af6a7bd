"""SQLite's UNIQUE constraints, read from its own catalog instead of SQLAlchemy's reflection (see
``unique_constraints``).  Its own module: ``db.schema`` calls it, and the dialects import ``db.schema``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy.engine import Connection

#: A table-level UNIQUE constraint in CREATE TABLE: an optional (quoted or bare) name, then its columns.
_TABLE_UNIQUE = re.compile(r'(?:CONSTRAINT\s+(?:"([^"]+)"|(\w+))\s+)?UNIQUE\s*\(([^)]*)\)', re.IGNORECASE)


def _autoindex_number(index: str) -> int:
    suffix = index.rsplit("_", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0


def _unique_constraints(table_sql: str, sigs: list[tuple[str, ...]]) -> list[dict]:
    """The UNIQUE constraints of one table: those its SQL spells at table level (in order, named when it names
    them), then the automatic indexes left over, which come from UNIQUE written inline on a column."""
    left = list(sigs)
    found = []
    for match in _TABLE_UNIQUE.finditer(table_sql):
        columns = tuple(c.strip().strip('"`[]') for c in match.group(3).split(","))
        if columns in left:
            left.remove(columns)
            found.append({"name": match.group(1) or match.group(2), "column_names": list(columns)})
    return found + [{"name": None, "column_names": list(columns)} for columns in left]


#: Each column of each automatic index SQLite keeps for a UNIQUE constraint (origin 'u'), in index order.
UNIQUE_INDEX_COLUMNS = (
    "SELECT m.name, il.name, ii.name FROM sqlite_master AS m "
    "JOIN pragma_index_list(m.name) AS il JOIN pragma_index_info(il.name) AS ii "
    "WHERE m.type = 'table' AND il.origin = 'u' ORDER BY m.name, il.name, ii.seqno"
)


def unique_constraints(conn: Connection, names: Sequence[str]) -> dict[str, list[dict]]:
    """What SQLAlchemy's reflection reports (a constraint named only where its SQL names it; table-level ones
    first, then the inline ones), from one query over the automatic indexes SQLite keeps for UNIQUE
    constraints and one for the tables' SQL.  SQLAlchemy's own scans each table's SQL with a pattern that took
    about half of a SQLite run's reflection (~25 ms of CPU per command), and misses an inline UNIQUE after a
    type with a length (`name VARCHAR(256) UNIQUE`); the automatic index has it.  On its own (the tests' oracle
    reads it so); ``reflect_schema`` reads the same rows with the rest of the schema (``from_catalog``)."""
    sql = dict(
        conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL").all()
    )
    return from_catalog(conn.exec_driver_sql(UNIQUE_INDEX_COLUMNS).all(), sql, names)


def from_catalog(
    index_columns: Iterable[tuple[str, str, str]], table_sql: Mapping[str, str | None], names: Sequence[str]
) -> dict[str, list[dict]]:
    """``unique_constraints`` from rows already read: (table, automatic index, column) as ``UNIQUE_INDEX_COLUMNS``
    orders them, and each table's CREATE TABLE text (``sqlite_catalog`` reads both with the rest of the schema)."""
    wanted = set(names)
    columns: dict[tuple[str, str], list[str]] = {}
    for table, index, column in index_columns:
        if table in wanted:
            columns.setdefault((table, index), []).append(column)
    # sqlite_autoindex_<table>_<n>: n counts the table's constraints in the order its SQL declares them.
    indexed: dict[str, list[tuple[str, ...]]] = {}
    for (table, _index), cols in sorted(columns.items(), key=lambda item: (item[0][0], _autoindex_number(item[0][1]))):
        indexed.setdefault(table, []).append(tuple(cols))
    return {table: _unique_constraints(table_sql.get(table) or "", sigs) for table, sigs in indexed.items()}
