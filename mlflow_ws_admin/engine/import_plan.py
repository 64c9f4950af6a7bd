"""``db import-database``'s plan: what copying every row of SOURCE into TARGET's workspace W would insert.

Everything here only reads, on both databases; ``import_apply`` builds the same plan again under TARGET's lock
and copies by it.  Nothing is a list of MLflow tables: every table of the schema is copied in FK order (parents
first), except the few ``mlflow_facts.NOT_IMPORTED_TABLES``.

- **Integer ids TARGET allocates** (a single-column integer primary key: ``experiments.experiment_id``, the
  trace-analytics rollups' ``id``) are shifted by one offset per key, past TARGET's highest id, and every column
  that holds one follows: the FK graph's children, plus ``mlflow_facts.UNCONSTRAINED_ID_REFERENCES``.  An offset
  keeps the mapping a pure function (no table of old -> new ids in memory) and the ids' order.
- **Every other key is kept**, so a key that already exists in TARGET blocks the import: a string id (a run's
  uuid, a trace id) anywhere in TARGET, a per-workspace key (a name) inside W.  Keys that contain a remapped
  column, or a column referencing another copied table, are fresh whenever their parent is, and not checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import MetaData, Table, Text, cast, func, select, text, tuple_, type_coerce
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Connection
from sqlalchemy.sql import column as column_clause
from sqlalchemy.sql import table as table_clause

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.errors import DatabaseError, NotAWorkspaceDatabase, UsageError
from mlflow_ws_admin.db.schema import WorkspaceSchema, reflect_schema, shared_row_tables
from mlflow_ws_admin.engine.import_artifacts import ArtifactNote, artifact_notes
from mlflow_ws_admin.engine.import_renames import plan_import_renames, row_renamer
from mlflow_ws_admin.engine.import_scope import workspace_filters
from mlflow_ws_admin.engine.move import RenamePolicy
from mlflow_ws_admin.engine.relocate import Relocation
from mlflow_ws_admin.engine.renames import Rename, RenameRefusal

#: Source keys looked up in TARGET per query.
CHECK_BATCH = 1000
#: Examples kept per blocking key group.
EXAMPLES = 5
ID, NAME = "id", "name"


class SchemaRevisionMismatch(DatabaseError):
    """SOURCE and TARGET are at different MLflow schema revisions (exit 3)."""


@dataclass(frozen=True)
class IdRemap:
    """One integer key TARGET allocates: its new value is the old one plus ``delta``."""

    table: str
    column: str
    delta: int
    #: every column holding the id: (table, column, (type column, type value) or None for always)
    references: tuple[tuple[str, str, tuple[str, str] | None], ...]


@dataclass(frozen=True)
class TableCopy:
    table: str
    #: the columns copied, in TARGET's order
    columns: tuple[str, ...]
    #: the columns that hold a workspace (they take W)
    workspace_columns: tuple[str, ...]
    #: the primary key (the journal records it)
    key: tuple[str, ...]
    rows: int
    #: the WHERE clause of SOURCE's copied rows (``--from-workspace``); None: every row
    where: Any = field(default=None, compare=False)

    def source_rows(self, stmt: Any) -> Any:
        """``stmt`` restricted to the rows this copy takes."""
        return stmt if self.where is None else stmt.where(self.where)


@dataclass(frozen=True)
class KeyClash:
    """Source rows whose kept key already exists in TARGET (``id``) or in W (``name``): blocking."""

    table: str
    columns: tuple[str, ...]
    kind: str
    count: int
    examples: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class ImportPlan:
    source: str
    target: str
    workspace: str
    #: the workspace SOURCE's copied rows are in: --from-workspace, or the only one it has (None when it has none)
    source_workspace: str | None
    revision: str | None
    workspace_exists: bool
    tables: tuple[TableCopy, ...]
    remaps: tuple[IdRemap, ...]
    clashes: tuple[KeyClash, ...]
    artifact_notes: tuple[ArtifactNote, ...]
    #: tables not copied, with why
    skipped: tuple[tuple[str, str], ...]
    #: TARGET's schema, for the journal's signature
    schema: WorkspaceSchema
    #: ``--artifact-policy relocate``: the prefixes copied for the ids of ``remaps`` (``import_artifacts``)
    relocation: Relocation | None = None
    #: --from-workspace: only that workspace's rows and their dependents are copied
    from_workspace: str | None = None
    #: --rename-conflicts: SOURCE's rows whose name W holds are renamed in the copy (W's keep theirs)
    rename: RenamePolicy | None = None
    renames: tuple[Rename, ...] = ()
    #: the clashing rows the template cannot rename: they stay blocking clashes
    rename_refusals: tuple[RenameRefusal, ...] = ()

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def blocked(self) -> bool:
        # A relocation target holding other objects would be overwritten: never done.
        return bool(self.clashes or (self.relocation and self.relocation.occupied))

    def experiment_delta(self) -> int:
        """The offset of ``experiments.experiment_id`` (0 when kept)."""
        table, column = mlflow_facts.EXPERIMENTS_TABLE, mlflow_facts.EXPERIMENT_ID_COLUMN
        return next((r.delta for r in self.remaps if (r.table, r.column) == (table, column)), 0)

    def remaps_of(self, table: str) -> list[tuple[str, int, tuple[str, str] | None]]:
        """(column, delta, type condition) for every remapped column of ``table``."""
        return [(column, r.delta, cond) for r in self.remaps for t, column, cond in r.references if t == table]


# --- the plan ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reflected:
    """Both databases' tables, reflected once (before TARGET is locked: MySQL's LOCK TABLES admits nothing else)."""

    source: MetaData
    target: MetaData


def build_import_plan(
    source: Connection,
    target: Connection,
    *,
    source_display: str,
    target_display: str,
    workspace: str,
    create_workspace: bool,
    from_workspace: str | None = None,
    rename: RenamePolicy | None = None,
) -> tuple[ImportPlan, Reflected]:
    """Read both databases and plan the copy; raises for input the import refuses (exit 2 or 3)."""
    target_schema = _reflect_schema("TARGET", target)
    source_schema = _reflect_schema("SOURCE", source)  # not an MLflow workspace schema: refused as TARGET would be
    revision = check_revisions(source, source_schema, target, target_schema)
    meta = Reflected(_reflect(source, target_schema), _reflect(target, target_schema))
    source_workspace = single_source_workspace(source, target_schema, from_workspace, meta.source)
    order = copy_order(target_schema, meta.target)
    filters: dict[str, Any] = {}
    unscoped: tuple[str, ...] = ()
    if from_workspace is not None:
        filters, unscoped = workspace_filters(target_schema, meta.source, from_workspace, order)
    copies = [_table_copy(meta.source, meta.target, name, target_schema, filters.get(name)) for name in order]
    # An unscoped table's copy takes none of its rows (its WHERE), and what it leaves is counted whole.
    counts = _row_counts(source, meta.source, [(c.table, c.where) for c in copies] + [(t, None) for t in unscoped])
    tables = tuple(replace(c, rows=n) for c, n in zip(copies, counts, strict=False))
    left = list(zip(unscoped, counts[len(copies) :], strict=True))
    plan = ImportPlan(
        source=source_display,
        target=target_display,
        workspace=workspace,
        source_workspace=source_workspace,
        revision=revision,
        workspace_exists=False,
        tables=tables,
        remaps=(),
        clashes=(),
        artifact_notes=artifact_notes(source, meta.source, set(order), filters),
        skipped=tuple(
            sorted(
                [(t, why) for t, why in mlflow_facts.NOT_IMPORTED_TABLES.items() if t in meta.target.tables]
                + [(t, f"{n:,} row(s) in no workspace: no reference ties the table to one") for t, n in left if n]
            )
        ),
        schema=target_schema,
        from_workspace=from_workspace,
        rename=rename,
    )
    return refresh_plan(plan, source, target, meta, create_workspace=create_workspace), meta


def refresh_plan(
    plan: ImportPlan, source: Connection, target: Connection, meta: Reflected, *, create_workspace: bool
) -> ImportPlan:
    """What depends on TARGET's rows: whether W exists, the id offsets, the clashes.  Apply calls it again
    under TARGET's lock, and copies by that."""
    exists = plan.workspace in _catalog_names(target, meta.target, plan.schema)
    if not exists and not create_workspace:
        raise UsageError(f"workspace {plan.workspace!r} does not exist in TARGET; pass --create-workspace to create it")
    if not exists:
        check_workspace_name(plan.workspace)
    plan = replace(plan, workspace_exists=exists, remaps=tuple(_remaps(source, target, meta, plan)))
    clashes = find_clashes(plan, source, target, meta.source, meta.target)
    if plan.rename is None:
        return replace(plan, clashes=tuple(clashes))
    renames, refused, handled = plan_import_renames(
        source,
        target,
        meta.source,
        meta.target,
        plan.schema,
        plan.rename,
        workspace=plan.workspace,
        source_workspace=plan.source_workspace,
        wheres={t.table: t.where for t in plan.tables},
        clashing=[(c.table, c.columns) for c in clashes if c.kind == NAME],
    )
    kept = [c for c in clashes if c.kind != NAME or (c.table, c.columns) not in handled]
    return replace(
        plan,
        clashes=tuple(kept + _refused_clashes(refused, handled)),
        renames=tuple(renames),
        rename_refusals=tuple(refused),
    )


def _refused_clashes(refused: Sequence[RenameRefusal], handled: set[tuple[str, tuple[str, ...]]]) -> list[KeyClash]:
    """The clashing rows the template could not rename, as the blocking name clashes they remain."""
    columns_of = dict(sorted(handled, reverse=True))  # a table with two renamed keys reports under its first
    by_table: dict[str, list[RenameRefusal]] = {}
    for r in refused:
        by_table.setdefault(r.table, []).append(r)
    clashes = []
    for table, rows in sorted(by_table.items()):
        columns = columns_of[table]
        examples = tuple(tuple(dict(r.key).get(c, r.old) for c in columns) for r in rows[:EXAMPLES])
        clashes.append(KeyClash(table, columns, NAME, len(rows), examples))
    return clashes


def _reflect_schema(which: str, conn: Connection) -> WorkspaceSchema:
    try:
        return reflect_schema(conn)
    except NotAWorkspaceDatabase as exc:
        raise NotAWorkspaceDatabase(f"{which}: {exc.message}") from None


def check_revisions(
    source: Connection, source_schema: WorkspaceSchema, target: Connection, target_schema: WorkspaceSchema
) -> str | None:
    """Both databases' alembic revision; different ones refuse the import (exit 3)."""
    theirs, ours = _revision("SOURCE", source, source_schema), _revision("TARGET", target, target_schema)
    if theirs != ours:
        raise SchemaRevisionMismatch(
            f"SOURCE is at MLflow schema revision {theirs or 'none'} and TARGET at {ours or 'none'}: run "
            "`mlflow db upgrade <URI>` on the older database (with the newer one's MLflow) so that both are at "
            "the same revision; nothing was changed"
        )
    return ours


def _revision(which: str, conn: Connection, schema: WorkspaceSchema) -> str | None:
    # The table's name and column are MLflow's (alembic's): read without reflecting it again.
    if mlflow_facts.ALEMBIC_VERSION_TABLE not in schema.all_table_names:
        raise SchemaRevisionMismatch(
            f"{which} has no {mlflow_facts.ALEMBIC_VERSION_TABLE} table, so its MLflow schema revision is unknown: "
            "`mlflow db upgrade <URI>` writes it; nothing was changed"
        )
    version = table_clause(mlflow_facts.ALEMBIC_VERSION_TABLE, column_clause("version_num"))
    return conn.execute(select(version.c.version_num)).scalar()


def _catalog_names(conn: Connection, meta: MetaData, schema: WorkspaceSchema) -> set[str]:
    catalog = meta.tables[schema.catalog.table]
    return set(conn.execute(select(catalog.c[schema.catalog.name_column])).scalars())


_WORKSPACE_NAME = re.compile(mlflow_facts.WORKSPACE_NAME_PATTERN)


def check_workspace_name(name: str) -> None:
    """The name MLflow would accept for a new workspace (mlflow_facts: pattern, length, reserved names)."""
    low, high = mlflow_facts.WORKSPACE_NAME_LENGTH
    if not _WORKSPACE_NAME.match(name) or not low <= len(name) <= high:
        raise UsageError(
            f"{name!r} is not a valid workspace name: {low}-{high} characters of a-z, 0-9 and '-', starting and "
            "ending with a letter or digit"
        )
    if name in mlflow_facts.RESERVED_WORKSPACE_NAMES:
        raise UsageError(f"{name!r} is reserved by MLflow and cannot name a workspace")


def single_source_workspace(
    source: Connection, schema: WorkspaceSchema, from_workspace: str | None, meta: MetaData
) -> str | None:
    """The workspace whose rows are copied: ``from_workspace``, which SOURCE must have (rows in it, or a catalog
    row), or else the only one SOURCE's rows are in (a database that ran without workspaces has them all in
    `default`).  ``meta``: SOURCE's tables (a table it lacks is refused later, by the copy's plan)."""
    found: set[str] = set()
    for wt in schema.tables:
        t = meta.tables.get(wt.name)
        if t is not None and wt.workspace_column in t.c:
            found.update(v for v in source.execute(select(t.c[wt.workspace_column]).distinct()).scalars() if v)
    if from_workspace is not None:
        catalog = meta.tables[schema.catalog.table]
        known = found | set(source.execute(select(catalog.c[schema.catalog.name_column])).scalars())
        if from_workspace not in known:
            have = ", ".join(sorted(known)) or "none"
            raise UsageError(f"workspace {from_workspace!r} does not exist in SOURCE (its workspaces: {have})")
        return from_workspace
    if len(found) > 1:
        raise UsageError(
            f"SOURCE holds rows in {len(found)} workspaces ({', '.join(sorted(found))}); pass --from-workspace "
            "to copy one of them"
        )
    return next(iter(found), None)


def _reflect(conn: Connection, schema: WorkspaceSchema) -> MetaData:
    return shared_row_tables(conn, sorted(schema.all_table_names))


def copy_order(schema: WorkspaceSchema, meta: MetaData) -> list[str]:
    """Every copied table, parents before children (the whole FK graph, not only workspace tables);
    alphabetical among peers, and name order for what is left of a cycle."""
    names = {t for t in meta.tables if t not in mlflow_facts.NOT_IMPORTED_TABLES}
    parents = {
        n: {fk.parent for fk in schema.all_foreign_keys if fk.child == n and fk.parent in names} - {n} for n in names
    }
    ordered: list[str] = []
    while parents:
        ready = sorted(n for n, deps in parents.items() if not deps & parents.keys()) or sorted(parents)
        for n in ready:
            ordered.append(n)
            del parents[n]
    return ordered


def _table_copy(
    meta_source: MetaData, meta_target: MetaData, name: str, schema: WorkspaceSchema, where: Any
) -> TableCopy:
    """The copy of one table, its rows not counted yet (``_row_counts``)."""
    target_table = meta_target.tables[name]
    # A generated column (spans.duration_ns) is computed by TARGET and refuses a value.
    columns = tuple(c.name for c in target_table.columns if c.computed is None)
    theirs = meta_source.tables.get(name)
    missing = [c for c in columns if theirs is None or c not in theirs.c]
    if missing:
        # Same revision, yet another shape: someone changed a schema by hand.
        raise SchemaRevisionMismatch(
            f"SOURCE's table {name} lacks the column(s) {', '.join(missing)} that TARGET has; nothing was changed"
        )
    ws = schema.table(name).workspace_columns if schema.is_workspace_table(name) else ()
    key = tuple(c.name for c in target_table.primary_key.columns)
    return TableCopy(name, columns, ws, key, 0, where)


def _row_counts(source: Connection, meta: MetaData, wheres: Sequence[tuple[str, Any]]) -> list[int]:
    """SOURCE's rows of each (table, WHERE clause or None for all of them), in order.  The tables counted whole
    are counted in one statement of SQL text: a Core statement per table cost ~0.35 ms to compile, 16 ms for
    MLflow's ~50 tables, against 1.4 ms for the text (SQLite)."""
    counts: list[Any] = [None if where is None else _count(source, meta.tables[name], where) for name, where in wheres]
    whole = [i for i, (_, where) in enumerate(wheres) if where is None]
    if whole:
        quote = source.dialect.identifier_preparer.quote
        stmt = " UNION ALL ".join(f"SELECT {i}, COUNT(*) FROM {quote(wheres[i][0])}" for i in whole)
        for i, n in source.execute(text(stmt)):
            counts[i] = int(n)
    return counts


def _count(source: Connection, table: Table, where: Any) -> int:
    return source.execute(select(func.count()).select_from(table).where(where)).scalar_one()


# --- integer ids -------------------------------------------------------------------------------------------


def allocated_keys(meta: MetaData, tables: Sequence[str]) -> list[tuple[str, str]]:
    """(table, column) of every single-column integer primary key: the database allocates those."""
    found = []
    for name in tables:
        pk = list(meta.tables[name].primary_key.columns)
        if len(pk) == 1 and isinstance(pk[0].type, sqltypes.Integer):
            found.append((name, pk[0].name))
    return found


def _remaps(source: Connection, target: Connection, meta: Reflected, plan: ImportPlan) -> Iterator[IdRemap]:
    schema = plan.schema
    copies = {t.table: t for t in plan.tables}
    copied = set(copies)
    for table, column in allocated_keys(meta.target, list(copies)):
        t = meta.target.tables[table]
        # the smallest id copied (--from-workspace: of that workspace's rows), read in SOURCE
        theirs = copies[table].source_rows(select(func.min(meta.source.tables[table].c[column])))
        low = source.execute(theirs).scalar()
        if low is None:
            continue  # nothing to copy
        high = target.execute(select(func.max(t.c[column]))).scalar()
        # An empty TARGET table keeps SOURCE's ids; otherwise they start right after TARGET's highest.
        delta = 0 if high is None else high + 1 - low
        refs: list[tuple[str, str, tuple[str, str] | None]] = [(table, column, None)]
        for fk in schema.all_foreign_keys:
            if fk.parent == table and column in fk.parent_columns and fk.child in copied:
                refs.append((fk.child, fk.column_map()[column], None))
        for child, child_column, condition in mlflow_facts.UNCONSTRAINED_ID_REFERENCES.get((table, column), ()):
            cols = schema.columns_of(child)
            if child in copied and child_column in cols and (condition is None or condition[0] in cols):
                refs.append((child, child_column, condition))
        yield IdRemap(table, column, delta, tuple(dict.fromkeys(refs)))


def row_transformer(plan: ImportPlan, copy: TableCopy) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """SOURCE row (in ``copy.columns`` order) -> the row TARGET gets: W in every workspace column, remapped
    ids shifted.  A typed reference (a string id, when its type column says so) shifts only then."""
    position = {c: i for i, c in enumerate(copy.columns)}
    workspace_positions = [position[c] for c in copy.workspace_columns]
    shifts = [(position[c], delta, cond) for c, delta, cond in plan.remaps_of(copy.table) if delta]
    typed = [(p, d, position[cond[0]], cond[1]) for p, d, cond in shifts if cond is not None]
    plain = [(p, d) for p, d, cond in shifts if cond is None]
    workspace = plan.workspace
    rename = row_renamer(plan.schema, plan.renames, copy.table, copy.columns)

    def transform(row: Sequence[Any]) -> tuple[Any, ...]:
        values = list(row)
        rename(values)  # first: it finds rows by their SOURCE values
        for p in workspace_positions:
            if values[p] is not None:  # NULL in an FK-derived workspace column means "no reference"
                values[p] = workspace
        for p, delta in plain:
            if values[p] is not None:
                values[p] += delta
        for p, delta, type_position, type_value in typed:
            value = values[p]
            if values[type_position] == type_value and isinstance(value, str) and value.isdigit():
                values[p] = str(int(value) + delta)
        return tuple(values)

    return transform


def source_select(meta_source: MetaData, copy: TableCopy) -> Any:
    """SOURCE's rows in TARGET's column order, each value as the driver reads it: JSON columns as their text
    (the drivers would parse them, and a JSON `null` and SQL NULL must stay apart), floats as floats."""
    t = meta_source.tables[copy.table]
    return copy.source_rows(select(*(_as_read(t.c[c]) for c in copy.columns)))


def _as_read(column: Any) -> Any:
    if isinstance(column.type, sqltypes.JSON):
        return cast(column, Text)
    if isinstance(column.type, sqltypes.Float):
        # MySQL's reflected DOUBLE returns Decimals rounded to 10 places: read the driver's own float.
        return type_coerce(column, sqltypes.Float())
    return column


# --- keys that must not exist in TARGET ----------------------------------------------------------------------


def checked_keys(plan: ImportPlan, meta_target: MetaData) -> Iterator[tuple[TableCopy, tuple[str, ...], str]]:
    """(table, key columns, kind) of every key to look up in TARGET: the primary key without a workspace
    column (``id``), and each per-workspace key (``name``); minus keys fresh by construction."""
    copied = {t.table for t in plan.tables}
    schema = plan.schema
    remapped = {(t, c) for r in plan.remaps for t, c, _ in r.references}
    for copy in plan.tables:
        if not copy.rows:
            continue
        covered = {
            c
            for fk in schema.all_foreign_keys
            if fk.child == copy.table and fk.parent in copied and fk.parent != copy.table
            for c in fk.child_columns
        } - set(copy.workspace_columns)
        candidates: list[tuple[tuple[str, ...], str]] = []
        if copy.key and not set(copy.key) & set(copy.workspace_columns):
            candidates.append((copy.key, ID))
        if schema.is_workspace_table(copy.table):
            candidates += [(k.columns, NAME) for k in schema.table(copy.table).unique_keys]
        seen: set[tuple[str, ...]] = set()
        for columns, kind in candidates:
            if columns in seen or set(columns) & covered or any((copy.table, c) in remapped for c in columns):
                continue
            seen.add(columns)
            yield copy, columns, kind


def find_clashes(
    plan: ImportPlan, source: Connection, target: Connection, meta_source: MetaData, meta_target: MetaData
) -> list[KeyClash]:
    """Every checked key of SOURCE's rows that TARGET (for a name: W) already holds, batch by batch."""
    clashes = []
    for copy, columns, kind in checked_keys(plan, meta_target):
        s, t = meta_source.tables[copy.table], meta_target.tables[copy.table]
        count, examples = 0, []
        keys_read = copy.source_rows(select(*(s.c[c] for c in columns)))
        stream = source.execute(keys_read.execution_options(stream_results=True, yield_per=CHECK_BATCH))
        for batch in stream.partitions():
            keys = [tuple(r) for r in batch]
            if len(columns) == 1:
                condition = t.c[columns[0]].in_([k[0] for k in keys])
            else:
                condition = tuple_(*(t.c[c] for c in columns)).in_(keys)
            stmt = select(*(t.c[c] for c in columns)).where(condition)
            if kind == NAME:
                stmt = stmt.where(t.c[copy.workspace_columns[0]] == plan.workspace)
            found = target.execute(stmt).all()
            count += len(found)
            examples.extend(tuple(r) for r in found[: max(0, EXAMPLES - len(examples))])
        if count:
            clashes.append(KeyClash(copy.table, columns, kind, count, tuple(examples)))
    return clashes
