"""``db import-database``'s copy: SOURCE's rows into TARGET's workspace W, in one transaction on TARGET.

It runs on the locked-transaction core (``db.transaction``): every copied table and the catalog locked, the plan
refreshed under the lock (W, the id offsets, the clashes: what another session changed since the review counts),
then table by table in FK order, SOURCE's rows are streamed in batches, remapped (``import_plan.row_transformer``)
and bulk-loaded (``Dialect.bulk_insert``: COPY on PostgreSQL, multi-row inserts elsewhere), their keys journaled.
Memory holds one batch.  SOURCE is read on a read-only connection, as one snapshot where the database offers it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Connection, Engine

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.errors import ConflictsAppeared
from mlflow_ws_admin.db.dialects import Dialect
from mlflow_ws_admin.db.transaction import LockScope, locked_transaction
from mlflow_ws_admin.engine.import_artifacts import (
    ArtifactDestinations,
    copy_artifacts,
    plan_import_relocation,
    uri_rewriter,
)
from mlflow_ws_admin.engine.import_plan import (
    ImportPlan,
    Reflected,
    TableCopy,
    refresh_plan,
    row_transformer,
    source_select,
)
from mlflow_ws_admin.engine.journal import JournalWriter
from mlflow_ws_admin.stores.base import DEFAULT_WORKERS, Progress

#: Rows read from SOURCE and loaded into TARGET at a time: what memory holds.
BATCH = 5000


class ImportBlocked(ConflictsAppeared):
    """Keys (or objects at an artifact target) appeared in TARGET since the plan was reviewed (exit 1); rolled
    back, nothing imported."""

    def __init__(self, plan: ImportPlan) -> None:
        n = sum(c.count for c in plan.clashes)
        what = f"{n} key(s) of SOURCE exist in TARGET" if n else "an artifact target prefix holds other objects"
        super().__init__(f"{what} since the plan was made; rolled back, nothing imported")
        self.plan = plan


@dataclass
class ImportResult:
    #: the plan the copy ran by (refreshed under the lock)
    plan: ImportPlan
    #: table -> rows inserted
    inserted: dict[str, int] = field(default_factory=dict)
    workspace_created: bool = False
    #: ``--artifact-policy relocate``: objects this run copied (the others were already there); None otherwise
    artifact_objects_copied: int | None = None

    @property
    def total(self) -> int:
        return sum(self.inserted.values())


def apply_import(
    source_engine: Engine,
    target_engine: Engine,
    plan: ImportPlan,
    meta: Reflected,
    *,
    create_workspace: bool,
    journal: JournalWriter | None,
    lock_timeout_s: float,
    ignore_other_sessions: bool,
    on_rows: Callable[[str, int], None] | None = None,
    destinations: ArtifactDestinations | None = None,
    artifact_workers: int = DEFAULT_WORKERS,
    on_copy: Progress | None = None,
) -> ImportResult:
    """Copy under TARGET's lock; raise ImportBlocked (rolled back) when a key appeared in TARGET since.  With
    ``destinations`` (relocate) the artifact prefixes are planned again for the ids found under the lock, then
    copied and verified before the rows."""
    catalog = plan.schema.catalog.table
    scope = LockScope(
        dialect=plan.schema.dialect,
        tables=(*(t.table for t in plan.tables), catalog),
        updated={catalog: plan.schema.catalog.name_column},
    )
    with source_engine.connect() as source:
        _snapshot(source)
        with locked_transaction(
            target_engine,
            scope,
            suspendable=(),
            lock_timeout_s=lock_timeout_s,
            journal=journal,
            doing="importing (rolled back: nothing was imported)",
            ignore_other_sessions=ignore_other_sessions,
        ) as tx:
            plan = refresh_plan(plan, source, tx.conn, meta, create_workspace=create_workspace)
            if destinations is not None:
                plan = with_relocation(plan, source, tx.conn, meta, destinations)
            if plan.blocked:
                raise ImportBlocked(plan)
            result = ImportResult(plan)
            if plan.relocation is not None:
                result.artifact_objects_copied = copy_artifacts(
                    plan.relocation, journal, workers=artifact_workers, on_progress=on_copy
                )
            if not plan.workspace_exists:
                _create_workspace(tx.conn, meta, plan, journal)
                result.workspace_created = True
            for copy in plan.tables:
                if copy.rows:
                    result.inserted[copy.table] = _copy_table(
                        source, tx.conn, tx.dialect, meta, plan, copy, journal, on_rows
                    )
            for remap in plan.remaps:
                tx.dialect.advance_id_allocator(tx.conn, remap.table, remap.column)
    return result


def with_relocation(
    plan: ImportPlan, source: Connection, target: Connection, meta: Reflected, destinations: ArtifactDestinations
) -> ImportPlan:
    """The plan with its artifact prefixes for its current experiment offset (read-only)."""
    relocation = plan_import_relocation(
        source,
        target,
        meta.source,
        meta.target,
        workspace=plan.workspace,
        source_workspace=plan.source_workspace,
        experiment_delta=plan.experiment_delta(),
        copied=[t.table for t in plan.tables],
        schema=plan.schema,
        destinations=destinations,
        previous=plan.relocation,
        experiments_where=next((t.where for t in plan.tables if t.table == mlflow_facts.EXPERIMENTS_TABLE), None),
    )
    return replace(plan, relocation=relocation)


def _snapshot(source: Connection) -> None:
    """Read SOURCE as one snapshot where the database offers one: rows written to it meanwhile (a server still
    running) cannot leave a child without its parent."""
    if source.dialect.name in ("postgresql", "mysql"):
        source.execution_options(isolation_level="REPEATABLE READ")
    source.begin()


def _create_workspace(conn: Connection, meta: Reflected, plan: ImportPlan, journal: JournalWriter | None) -> None:
    row = {plan.schema.catalog.name_column: plan.workspace}
    conn.execute(insert(meta.target.tables[plan.schema.catalog.table]), [row])
    if journal:
        journal.catalog_inserted(row)


def _copy_table(
    source: Connection,
    target: Connection,
    dialect: Dialect,
    meta: Reflected,
    plan: ImportPlan,
    copy: TableCopy,
    journal: JournalWriter | None,
    on_rows: Callable[[str, int], None] | None,
) -> int:
    transform = row_transformer(plan, copy)
    rewrite = uri_rewriter(plan.relocation, copy.table, copy.columns)
    if rewrite is not None:
        remap = transform

        def transform(row: Any) -> tuple[Any, ...]:
            return rewrite(remap(row))

    adapt = value_adapter(meta.target.tables[copy.table])
    key_positions = [copy.columns.index(c) for c in copy.key]
    if journal:
        if not copy.key:
            from mlflow_ws_admin.engine.journal import JournalError

            raise JournalError(f"cannot journal {copy.table}: it has no primary key to find its rows by")
        journal.table_keys(copy.table, list(copy.key))
    stmt = source_select(meta.source, copy).execution_options(stream_results=True, yield_per=BATCH)
    done = 0

    def batches() -> Iterator[list[tuple[Any, ...]]]:
        # Pulled by the dialect's load (on PostgreSQL from its reading thread): read, remap, journal, count.
        nonlocal done
        for batch in source.execute(stmt).partitions():
            rows = [adapt(transform(r)) for r in batch]
            if journal:
                journal.inserted(copy.table, [[r[p] for p in key_positions] for r in rows])
            done += len(rows)
            if on_rows:
                on_rows(copy.table, done)
            yield rows

    dialect.bulk_load(target, copy.table, copy.columns, batches())
    return done


def value_adapter(table: Table) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """What the target driver needs beyond SQLAlchemy's result types: a boolean where SOURCE (MySQL's
    TINYINT(1)) gave an integer, bytes where a driver gave a memoryview."""
    fixes: list[tuple[int, Callable[[Any], Any]]] = []
    for i, column in enumerate(table.columns):
        if isinstance(column.type, sqltypes.Boolean):
            fixes.append((i, bool))
        elif isinstance(column.type, sqltypes.LargeBinary | sqltypes._Binary):
            fixes.append((i, bytes))
    if not fixes:
        return lambda row: row

    def adapt(row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(row)
        for i, fix in fixes:
            if values[i] is not None:
                values[i] = fix(values[i])
        return tuple(values)

    return adapt
