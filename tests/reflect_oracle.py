"""The oracle for ``reflect_schema``: its derivation as it was before the light catalog readers, from SQLAlchemy's
Inspector on every backend (``get_multi_columns``, ``get_multi_foreign_keys``, ``get_multi_pk_constraint``,
unique constraints and indexes), kept here, not in the package, so that the tests can hold the readers to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.errors import NotAWorkspaceDatabase
from mlflow_ws_admin.db import sqlite_uniques
from mlflow_ws_admin.db.schema import (
    ColumnInfo,
    WorkspaceSchema,
    WorkspaceTable,
    _by_table,
    _catalog,
    _discover_workspace_columns,
    _foreign_keys,
    _parents_first,
    _unique_keys,
    _workspace_fks,
)


def _column_info(col: Mapping[str, Any]) -> ColumnInfo:
    length = getattr(col.get("type"), "length", None)
    return ColumnInfo(col["name"], bool(col.get("nullable", True)), length if isinstance(length, int) else None)


def inspector_schema(conn: Connection) -> WorkspaceSchema:
    """``reflect_schema`` as it read the database through the Inspector (same refusals, same result)."""
    insp = inspect(conn)
    names = sorted(insp.get_table_names())
    columns = _by_table(insp.get_multi_columns(), names)
    foreign_keys = _by_table(insp.get_multi_foreign_keys(), names)

    if not set(mlflow_facts.TRACKING_TABLES) & set(names):
        raise NotAWorkspaceDatabase(
            f"not an MLflow tracking database: it has none of the tables {', '.join(mlflow_facts.TRACKING_TABLES)}"
            " (check the URI)"
        )
    ws_columns = _discover_workspace_columns(names, columns, foreign_keys)
    catalog = _catalog(columns)
    if not ws_columns:
        if catalog is None:
            raise NotAWorkspaceDatabase(
                "an MLflow tracking database from before workspaces: no `workspaces` table and no table has a "
                "`workspace` column (MLflow 3.10+ with `mlflow db upgrade` is required)"
            )
        raise NotAWorkspaceDatabase("the `workspaces` table exists but no table has a `workspace` column")
    if catalog is None:
        raise NotAWorkspaceDatabase("no `workspaces` catalog table: this schema predates MLflow workspaces")

    ws_names = sorted(ws_columns)
    pks = _by_table(insp.get_multi_pk_constraint(filter_names=ws_names), ws_names)
    if conn.dialect.name == "sqlite":
        uniques = sqlite_uniques.unique_constraints(conn, ws_names)
    else:
        uniques = _by_table(insp.get_multi_unique_constraints(filter_names=ws_names), ws_names)
    indexes = _by_table(insp.get_multi_indexes(filter_names=ws_names), ws_names)

    tables = []
    for name in ws_names:
        wcols = ws_columns[name]
        pk = tuple(pks.get(name, {}).get("constrained_columns") or ())
        tables.append(
            WorkspaceTable(
                name=name,
                workspace_columns=wcols,
                columns=tuple(_column_info(c) for c in columns[name]),
                primary_key=pk,
                unique_keys=_unique_keys(
                    name,
                    wcols,
                    pk,
                    uniques.get(name, []),
                    indexes.get(name, []),
                    {c["name"] for c in columns[name]},
                ),
                parent_keys=_workspace_fks(name, foreign_keys.get(name, []), ws_columns),
            )
        )
    return WorkspaceSchema(
        dialect=conn.dialect.name,
        tables=_parents_first(tables),
        catalog=catalog,
        all_table_names=frozenset(names),
        all_foreign_keys=tuple(fk for t in names for fk in _foreign_keys(t, foreign_keys.get(t, []))),
        all_columns=tuple((t, tuple(c["name"] for c in columns.get(t, []))) for t in names),
    )
