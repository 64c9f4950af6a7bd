"""The oracle for ``reflect_schema``'s catalog readers: the database read through SQLAlchemy's Inspector on every
backend (``get_multi_columns``, ``get_multi_foreign_keys``, ``get_multi_pk_constraint``, unique constraints and
indexes), as ``reflect_schema`` read it before them, then derived as ``reflect_schema`` derives (``derive_schema``):
the tests hold the readers to it.  Here, not in the package: the package reads SQLite, MariaDB and PostgreSQL
otherwise."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from mlflow_ws_admin.db import sqlite_uniques
from mlflow_ws_admin.db.schema import WorkspaceSchema, _inspector_tables, _Keys, _Read, derive_schema


def inspector_schema(conn: Connection) -> WorkspaceSchema:
    """``reflect_schema`` as it read the database through the Inspector (same refusals, same result)."""
    read = _inspector_tables(conn)
    if conn.dialect.name != "sqlite":
        return derive_schema(conn.dialect.name, read)

    def keys(ws_names: list[str]) -> _Keys:
        # SQLite's UNIQUE constraints came from its automatic indexes (db/sqlite_uniques.py) before the readers too.
        pks, _uniques, indexes = read.keys(ws_names)
        return pks, sqlite_uniques.unique_constraints(conn, ws_names), indexes

    return derive_schema(conn.dialect.name, _Read(read.names, read.columns, read.foreign_keys, keys))
