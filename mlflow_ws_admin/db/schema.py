"""Schema discovery: which tables are workspace-scoped, their per-workspace keys, and the FK graph.

Nothing here is a list of MLflow tables.  A table is workspace-scoped when it has a ``workspace`` column, or
a column that is a foreign key onto another workspace-scoped table's workspace column (MLflow's
``agent_plugin_version_members.plugin_workspace``).  Keys come from the real PRIMARY KEY / UNIQUE
constraints and unique indexes, plus the documented extras in ``mlflow_facts``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    Computed,
    DefaultClause,
    FetchedValue,
    Identity,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    inspect,
    text,
)
from sqlalchemy.engine import Connection

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.errors import NotAWorkspaceDatabase
from mlflow_ws_admin.db import mysql_catalog, postgresql_catalog, sqlite_catalog


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key (``WorkspaceTable.parent_keys``: one between workspace-scoped tables that carries the
    workspace)."""

    name: str | None
    child: str
    child_columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    on_update: str | None
    on_delete: str | None
    deferrable: bool | None = None
    initially: str | None = None

    @property
    def cascades_on_update(self) -> bool:
        return (self.on_update or "").upper() == "CASCADE"

    @property
    def cascades_on_delete(self) -> bool:
        return (self.on_delete or "").upper() == "CASCADE"

    def column_map(self) -> dict[str, str]:
        """parent column -> child column."""
        return dict(zip(self.parent_columns, self.child_columns, strict=True))


@dataclass(frozen=True)
class UniqueKey:
    """A per-workspace uniqueness key: the constraint's columns minus the workspace column."""

    columns: tuple[str, ...]
    source: str  # e.g. "primary key", "unique constraint uq_x", "MLflow code"
    #: False for keys only MLflow's code keeps unique: no index refuses a duplicate
    enforced_by_database: bool = True


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    nullable: bool
    #: the declared character length (VARCHAR(n)), None when unbounded or not text
    length: int | None = None


@dataclass(frozen=True)
class WorkspaceTable:
    name: str
    #: The workspace-valued columns; the first one is the table's own workspace (for reports and grouping).
    workspace_columns: tuple[str, ...]
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...]
    unique_keys: tuple[UniqueKey, ...]
    #: FKs from this table onto workspace-scoped parents that include a workspace column.
    parent_keys: tuple[ForeignKey, ...]

    @property
    def workspace_column(self) -> str:
        return self.workspace_columns[0]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def is_nullable(self, column: str) -> bool:
        return next(c.nullable for c in self.columns if c.name == column)

    def has_column(self, column: str) -> bool:
        return column in self.column_names

    def column_length(self, column: str) -> int | None:
        return next((c.length for c in self.columns if c.name == column), None)


@dataclass(frozen=True)
class Catalog:
    """The ``workspaces`` catalog table, when present."""

    table: str
    name_column: str
    columns: tuple[ColumnInfo, ...]


@dataclass(frozen=True)
class WorkspaceSchema:
    dialect: str
    #: Workspace-scoped tables in update order: every parent before its children.
    tables: tuple[WorkspaceTable, ...]
    catalog: Catalog
    all_table_names: frozenset[str] = field(default_factory=frozenset)
    #: every foreign key of the database, workspace-scoped or not: how rows reference each other by id
    #: (a gateway endpoint's experiment, a tag's resource), which a selective move must follow
    all_foreign_keys: tuple[ForeignKey, ...] = ()
    #: every table's column names, for the same reason
    all_columns: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def table(self, name: str) -> WorkspaceTable:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def is_workspace_table(self, name: str) -> bool:
        return any(t.name == name for t in self.tables)

    def columns_of(self, name: str) -> tuple[str, ...]:
        return next((cols for t, cols in self.all_columns if t == name), ())

    def children_of(self, parent: str) -> tuple[ForeignKey, ...]:
        return tuple(fk for t in self.tables for fk in t.parent_keys if fk.parent == parent)

    @property
    def signature(self) -> str:
        """A digest of what plan files and journals rely on: each workspace table's columns, key and workspace
        columns.  A file written for another signature (MLflow upgraded since) is refused."""
        shape = [
            [wt.name, sorted(wt.column_names), list(wt.primary_key), list(wt.workspace_columns)] for wt in self.tables
        ]
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:32]


def reflect_schema(conn: Connection) -> WorkspaceSchema:
    """Read the live schema and derive the workspace tables, keys and FK graph.  Read-only."""
    return derive_schema(conn.dialect.name, _read_tables(conn))


def derive_schema(dialect: str, read: _Read) -> WorkspaceSchema:
    """The workspace tables, keys and FK graph of what was read (any reader: the tests hold the catalog readers to
    SQLAlchemy's Inspector through it); refuses a database that is not an MLflow workspace schema."""
    names, columns, foreign_keys = read.names, read.columns, read.foreign_keys

    if not set(mlflow_facts.TRACKING_TABLES) & set(names):
        # Never suggest MLflow's migrations for somebody else's database.
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
    pks, uniques, indexes = read.keys(ws_names)

    tables = []
    for name in ws_names:
        wcols = ws_columns[name]
        pk = tuple(pks.get(name) or ())
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
        dialect=dialect,
        tables=_parents_first(tables),
        catalog=catalog,
        all_table_names=frozenset(names),
        all_foreign_keys=tuple(fk for t in names for fk in _foreign_keys(t, foreign_keys.get(t, []))),
        all_columns=tuple((t, tuple(c["name"] for c in columns.get(t, []))) for t in names),
    )


#: A table's primary key columns, its UNIQUE constraints and its indexes ({name, column_names[, unique]}).
_Keys = tuple[dict[str, list[str]], dict[str, list[dict]], dict[str, list[dict]]]


@dataclass(frozen=True)
class _Read:
    """What ``reflect_schema`` reads, in the Inspector's shapes: every table's name, columns ({name, nullable,
    length}) and foreign keys; ``keys`` reads the named tables' keys, once the workspace tables are known."""

    names: list[str]
    columns: dict[str, list[dict]]
    foreign_keys: dict[str, list[dict]]
    keys: Callable[[list[str]], _Keys]


def _read_tables(conn: Connection) -> _Read:
    """From each backend's catalog in a few set-based textual queries: the Inspector runs PRAGMAs or SHOW CREATE
    TABLE per table on SQLite and MySQL/MariaDB, and on PostgreSQL compiles a query per kind on every new engine."""
    if conn.dialect.name == "sqlite":
        lite = sqlite_catalog.read_tables(conn)
        return _Read(lite.names, lite.columns, lite.foreign_keys, lambda ws: sqlite_catalog.read_keys(conn, lite, ws))
    if conn.dialect.name in ("mysql", "mariadb"):
        my = mysql_catalog.read_tables(conn)
        return _Read(my.names, my.columns, my.foreign_keys, lambda ws: mysql_catalog.read_keys(conn, ws))
    if conn.dialect.name == "postgresql":
        pg = postgresql_catalog.read_tables(conn)
        return _Read(pg.names, pg.columns, pg.foreign_keys, lambda ws: postgresql_catalog.read_keys(conn, ws))
    return _inspector_tables(conn)


def _inspector_tables(conn: Connection) -> _Read:
    """Through SQLAlchemy's Inspector (another backend; the tests' oracle on every one), its column types reduced
    to the length ``_column_info`` keeps."""
    insp = inspect(conn)
    names = sorted(insp.get_table_names())
    columns = {
        table: [{"name": c["name"], "nullable": c.get("nullable", True), "length": _type_length(c)} for c in cols]
        for table, cols in _by_table(insp.get_multi_columns(), names).items()
    }

    def keys(ws_names: list[str]) -> _Keys:
        pks = _by_table(insp.get_multi_pk_constraint(filter_names=ws_names), ws_names)
        return (
            {table: pk.get("constrained_columns") or [] for table, pk in pks.items()},
            _by_table(insp.get_multi_unique_constraints(filter_names=ws_names), ws_names),
            _by_table(insp.get_multi_indexes(filter_names=ws_names), ws_names),
        )

    return _Read(names, columns, _by_table(insp.get_multi_foreign_keys(), names), keys)


def _type_length(col: Mapping[str, Any]) -> int | None:
    length = getattr(col.get("type"), "length", None)
    return length if isinstance(length, int) else None


def _by_table(multi: Mapping[tuple[str | None, str], Any], names: Iterable[str]) -> dict[str, Any]:
    """get_multi_* results are keyed by (schema, table); we only look at the default schema."""
    wanted = set(names)
    return {table: value for (_schema, table), value in multi.items() if table in wanted}


def _discover_workspace_columns(
    names: list[str], columns: dict[str, list[dict]], foreign_keys: dict[str, list[dict]]
) -> dict[str, tuple[str, ...]]:
    """Tables with a `workspace` column, then (to a fixed point) columns that are FKs onto one."""
    found: dict[str, list[str]] = {
        t: [mlflow_facts.WORKSPACE_COLUMN]
        for t in names
        if any(c["name"] == mlflow_facts.WORKSPACE_COLUMN for c in columns.get(t, []))
    }
    changed = True
    while changed:
        changed = False
        for child in names:
            for fk in foreign_keys.get(child, []):
                parent_ws = found.get(fk["referred_table"], [])
                for child_col, parent_col in zip(fk["constrained_columns"], fk["referred_columns"], strict=True):
                    if parent_col in parent_ws and child_col not in found.get(child, []):
                        found.setdefault(child, []).append(child_col)
                        changed = True
    return {t: tuple(cols) for t, cols in found.items()}


def _column_info(col: Mapping[str, Any]) -> ColumnInfo:
    return ColumnInfo(col["name"], bool(col.get("nullable", True)), col.get("length"))


def _catalog(columns: dict[str, list[dict]]) -> Catalog | None:
    cols = columns.get(mlflow_facts.CATALOG_TABLE)
    if not cols or not any(c["name"] == mlflow_facts.CATALOG_NAME_COLUMN for c in cols):
        return None
    return Catalog(
        table=mlflow_facts.CATALOG_TABLE,
        name_column=mlflow_facts.CATALOG_NAME_COLUMN,
        columns=tuple(ColumnInfo(c["name"], bool(c.get("nullable", True))) for c in cols),
    )


def _unique_keys(
    table: str,
    ws_cols: tuple[str, ...],
    pk: tuple[str, ...],
    uniques: list[dict],
    indexes: list[dict],
    column_names: set[str],
) -> tuple[UniqueKey, ...]:
    candidates: list[tuple[tuple[str, ...], str]] = [(pk, "primary key")]
    candidates += [(tuple(u["column_names"]), f"unique constraint {u.get('name') or ''}".strip()) for u in uniques]
    candidates += [
        (tuple(i["column_names"]), f"unique index {i.get('name') or ''}".strip())
        for i in indexes
        if i.get("unique") and all(c is not None for c in i["column_names"])
    ]
    keys: dict[tuple[str, ...], UniqueKey] = {}
    for cols, source in candidates:
        if not any(c in ws_cols for c in cols):
            continue  # a global key is unaffected by moving rows between workspaces
        key = tuple(c for c in cols if c not in ws_cols)
        if key and key not in keys:
            keys[key] = UniqueKey(key, source)
    for extra in mlflow_facts.CODE_ENFORCED_UNIQUE_KEYS.get(table, ()):
        if set(extra) <= column_names and extra not in keys:
            keys[extra] = UniqueKey(extra, "MLflow code (not enforced by the schema)", enforced_by_database=False)
    return tuple(keys.values())


def _workspace_fks(child: str, fks: list[dict], ws_columns: dict[str, tuple[str, ...]]) -> tuple[ForeignKey, ...]:
    """The FKs onto a workspace-scoped parent that carry its workspace column."""
    return tuple(
        fk
        for fk in _foreign_keys(child, fks)
        if fk.parent in ws_columns and set(fk.parent_columns) & set(ws_columns[fk.parent])
    )


def _foreign_keys(child: str, fks: list[dict]) -> list[ForeignKey]:
    result = []
    for fk in fks:
        options = fk.get("options") or {}
        result.append(
            ForeignKey(
                name=fk.get("name"),
                child=child,
                child_columns=tuple(fk["constrained_columns"]),
                parent=fk["referred_table"],
                parent_columns=tuple(fk["referred_columns"]),
                on_update=options.get("onupdate"),
                on_delete=options.get("ondelete"),
                deferrable=options.get("deferrable"),
                initially=options.get("initially"),
            )
        )
    return result


def _parents_first(tables: list[WorkspaceTable]) -> tuple[WorkspaceTable, ...]:
    """Topological order over workspace FKs, alphabetical among peers (deterministic reports)."""
    by_name = {t.name: t for t in tables}
    remaining = {t.name: {fk.parent for fk in t.parent_keys if fk.parent != t.name} for t in tables}
    ordered: list[WorkspaceTable] = []
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if not deps & remaining.keys())
        if not ready:  # an FK cycle: fall back to name order for the rest; apply does not rely on order there
            ready = sorted(remaining)
        for n in ready:
            ordered.append(by_name[n])
            del remaining[n]
    return tuple(ordered)


def row_tables(conn: Connection, names: Sequence[str], meta: MetaData) -> MetaData:
    """Add the named tables to ``meta`` as ``MetaData.reflect`` builds them, with what reading and writing their
    rows needs: each column (type, nullability, default, generated or identity) and the primary key, in two
    queries where the database allows.  Not the indexes, other constraints, comments and the tables each foreign
    key names, which cost several queries per table: on PostgreSQL most of an import's reflection.  A name that
    is not a table is left out."""
    _add_row_tables(meta, *_row_table_info(conn, names))
    return meta


def shared_row_tables(conn: Connection, names: Sequence[str]) -> MetaData:
    """``row_tables`` of ``names`` in a MetaData of their own, which its callers only read: the one built for
    the same columns and keys, read the same way, by an earlier call of this process when there was one.
    Building ~50 Tables costs ~45 ms of CPU, five times reading what they are built from, and an import builds
    SOURCE's and TARGET's, which are alike when both databases are on one backend."""
    info = _row_table_info(conn, names)
    key = (conn.dialect.name, repr(info))
    meta = _SHARED_ROW_TABLES.pop(key, None)
    if meta is None:
        meta = _add_row_tables(MetaData(), *info)
    _SHARED_ROW_TABLES[key] = meta  # the most recent last
    while len(_SHARED_ROW_TABLES) > _SHARED_ROW_TABLES_KEPT:
        del _SHARED_ROW_TABLES[next(iter(_SHARED_ROW_TABLES))]
    return meta


_SHARED_ROW_TABLES: dict[tuple[str, str], MetaData] = {}
_SHARED_ROW_TABLES_KEPT = 4


def _row_table_info(conn: Connection, names: Sequence[str]) -> tuple[list[tuple[str, list[dict]]], dict]:
    """(table, its columns) in the Inspector's order, and each table's primary key, as the Inspector reads them."""
    insp = inspect(conn)
    wanted = list(names)
    keys = insp.get_multi_pk_constraint(filter_names=wanted)
    return [(name, columns) for (_, name), columns in insp.get_multi_columns(filter_names=wanted).items()], {
        name: key for (_, name), key in keys.items()
    }


def _add_row_tables(meta: MetaData, tables: list[tuple[str, list[dict]]], keys: dict) -> MetaData:
    for name, columns in tables:
        key = keys.get(name) or {}
        primary_key = PrimaryKeyConstraint(*(key.get("constrained_columns") or ()), name=key.get("name"))
        Table(name, meta, *(_reflected_column(c) for c in columns), primary_key)
    return meta


def _reflected_column(info: Mapping[str, Any]) -> Column:
    """One column as reflection describes it (``Inspector.get_columns``), built as ``autoload`` builds it."""
    args: list[Any] = []
    default = info.get("default")
    if isinstance(default, FetchedValue):
        args.append(default)
    elif default is not None:
        args.append(DefaultClause(text(default) if isinstance(default, str) else default))
    if "computed" in info:
        args.append(Computed(**info["computed"]))
    if "identity" in info:
        args.append(Identity(**info["identity"]))
    options = {k: info[k] for k in ("nullable", "autoincrement", "comment") if k in info}
    return Column(info["name"], info["type"], *args, **options, **info.get("dialect_options", {}))
