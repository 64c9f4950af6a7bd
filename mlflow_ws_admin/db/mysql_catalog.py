"""MySQL/MariaDB's schema as ``db.schema.reflect_schema`` reads it, from ``information_schema`` in five
set-based queries, where SQLAlchemy's Inspector runs ``SHOW CREATE TABLE`` for each table and parses it with
patterns (most of a MariaDB command's reflection, and a round trip per table).  The results have the shapes the
Inspector gives (``reflect_schema`` derives the same ``WorkspaceSchema`` from either).  Its own module, as
``sqlite_uniques``: the dialects import ``db.schema``.  No ``%`` in the SQL: PyMySQL formats statements."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from mlflow_ws_admin.db.catalog_tables import Tables

#: The database's base tables (not views, not system-versioned tables: SHOW FULL TABLES' BASE TABLE).  Each
#: catalog view is read on its own: MariaDB joins them by filling one for each row of the other (a join of
#: COLUMNS and TABLES took 30 ms, the two queries 4 ms).
_TABLES = (
    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
)
_COLUMNS = (
    "SELECT TABLE_NAME, COLUMN_NAME, IS_NULLABLE, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION"
)
#: Every FK column with the parent column it references, in the FK's order ...
_FOREIGN_KEY_COLUMNS = (
    "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME "
    "FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL "
    "ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION"
)
#: ... and each FK's rules.
_FOREIGN_KEY_RULES = (
    "SELECT TABLE_NAME, CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS "
    "WHERE CONSTRAINT_SCHEMA = DATABASE()"
)
#: Every column of every PRIMARY and UNIQUE key (a unique index and a UNIQUE constraint are the same thing here).
_UNIQUE_KEY_COLUMNS = (
    "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
    "WHERE TABLE_SCHEMA = DATABASE() AND NON_UNIQUE = 0 ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
)

#: The types whose SQLAlchemy type has its first argument as length: `varchar(256)` 256, `bit(1)` 1.
_SIZED_TYPES = frozenset({"binary", "bit", "char", "varbinary", "varchar"})
#: An ENUM's or SET's values, quoted, a doubled quote inside being one.
_QUOTED_VALUE = re.compile(r"'((?:''|[^'])*)'")


def read_tables(conn: Connection) -> Tables:
    """The base tables, their columns and foreign keys: four queries (more for a user who may only read, below)."""
    names = set(conn.exec_driver_sql(_TABLES).scalars())
    columns: dict[str, list[dict]] = {}
    for table, name, is_nullable, data_type, column_type in conn.exec_driver_sql(_COLUMNS).all():
        if table in names:
            length = _length(data_type.lower(), column_type)
            columns.setdefault(table, []).append({"name": name, "nullable": is_nullable == "YES", "length": length})
    rules = {
        (table, name): (update, delete) for table, name, update, delete in conn.exec_driver_sql(_FOREIGN_KEY_RULES)
    }
    fk_columns = conn.exec_driver_sql(_FOREIGN_KEY_COLUMNS).all()
    foreign_keys = _foreign_keys(fk_columns, rules, columns, _omitted_rules(conn))
    _add_hidden_rules(conn, foreign_keys, rules)
    return Tables(sorted(columns), columns, foreign_keys)


def _add_hidden_rules(conn: Connection, foreign_keys: dict[str, list[dict]], rules: Mapping) -> None:
    """MariaDB shows REFERENTIAL_CONSTRAINTS only to a user with more than SELECT on the table (a dry run's
    read-only user sees none): those FKs' rules come from SHOW CREATE TABLE, through the Inspector, for their
    tables only."""
    hidden = sorted({table for table, fks in foreign_keys.items() for fk in fks if (table, fk["name"]) not in rules})
    if not hidden:
        return
    shown = inspect(conn).get_multi_foreign_keys(filter_names=hidden)
    options = {(table, fk["name"]): fk["options"] for (_schema, table), fks in shown.items() for fk in fks}
    for table in hidden:
        for fk in foreign_keys[table]:
            fk["options"] = options.get((table, fk["name"]), {})


def read_keys(
    conn: Connection, names: Sequence[str]
) -> tuple[dict[str, list[str]], dict[str, list[dict]], dict[str, list[dict]]]:
    """The named tables' primary keys, UNIQUE constraints and unique indexes: one query.  SQLAlchemy reports each
    UNIQUE key both as a constraint and as an index, by name; so does this."""
    wanted = set(names)
    keys: dict[str, dict[str, list[str]]] = {}
    for table, index, column in conn.exec_driver_sql(_UNIQUE_KEY_COLUMNS).all():
        if table in wanted:
            keys.setdefault(table, {}).setdefault(index, []).append(column)
    primary_keys = {table: found.pop("PRIMARY", []) for table, found in keys.items()}
    uniques = {t: [{"name": n, "column_names": found[n]} for n in sorted(found)] for t, found in keys.items()}
    indexes = {t: [{**u, "unique": True} for u in found] for t, found in uniques.items()}
    return primary_keys, uniques, indexes


@functools.lru_cache(maxsize=256)  # a schema declares a few dozen types, on hundreds of columns
def _length(data_type: str, column_type: str) -> int | None:
    """The length SQLAlchemy's type for this column has: a sized type's first argument, an ENUM's or SET's longest
    value; None for the others (TEXT, INT(11), DECIMAL(10,2), DATETIME(6) ...)."""
    if data_type in _SIZED_TYPES:
        digits = re.search(r"\((\d+)", column_type)
        return int(digits.group(1)) if digits else None
    if data_type in ("enum", "set"):
        return max((len(v.replace("''", "'")) for v in _QUOTED_VALUE.findall(column_type)), default=0)
    return None


def _omitted_rules(conn: Connection) -> frozenset[str]:
    """The FK rules SQLAlchemy reports as none: NO ACTION, and on MariaDB RESTRICT too (InnoDB's default, which
    its SHOW CREATE TABLE leaves out; MySQL 8 prints an explicit RESTRICT)."""
    return frozenset({"NO ACTION", "RESTRICT"} if getattr(conn.dialect, "is_mariadb", False) else {"NO ACTION"})


def _foreign_keys(
    rows: Iterable[Sequence[str]],
    rules: Mapping[tuple[str, str], tuple[str, str]],
    columns: Mapping[str, list[dict]],
    omitted_rules: frozenset[str],
) -> dict[str, list[dict]]:
    """Each table's FKs in the order SHOW CREATE TABLE lists them (InnoDB keeps them sorted by name, byte-wise)."""
    by_fold = {name.lower(): name for name in columns}
    found: dict[str, dict[str, dict]] = {}
    for table, name, column, parent, parent_column in rows:
        if table not in columns:
            continue
        fk = found.setdefault(table, {}).get(name)
        if fk is None:
            update_rule, delete_rule = rules.get((table, name), ("NO ACTION", "NO ACTION"))  # hidden: _add_hidden_rules
            options = {
                option: rule
                for option, rule in (("onupdate", update_rule), ("ondelete", delete_rule))
                if rule not in omitted_rules
            }
            fk = found[table][name] = {
                "name": name,
                "constrained_columns": [],
                # lower_case_table_names 1 or 2: InnoDB may keep the parent's name lowercased; the table's own name
                "referred_table": parent if parent in columns else by_fold.get(parent.lower(), parent),
                "referred_columns": [],
                "options": options,
            }
        fk["constrained_columns"].append(column)
        fk["referred_columns"].append(parent_column)
    return {table: [fks[n] for n in sorted(fks, key=lambda n: n.encode())] for table, fks in found.items()}
