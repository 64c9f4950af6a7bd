"""The migration plan: an immutable value computed by reading the database.  Building it never writes.

``build_plan`` is the dry run's whole job; ``apply.apply_plan`` executes the same value.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, text
from sqlalchemy.engine import Connection

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.display import workspace_order
from mlflow_ws_admin.db.dialects import for_backend
from mlflow_ws_admin.db.schema import UniqueKey, WorkspaceSchema, WorkspaceTable
from mlflow_ws_admin.engine import queries
from mlflow_ws_admin.engine.artifact_scan import read_stored_content, start_artifact_check
from mlflow_ws_admin.engine.move import MIGRATE, Move
from mlflow_ws_admin.findings import artifacts, fix_hints
from mlflow_ws_admin.findings.artifacts import ArtifactFinding, display_location
from mlflow_ws_admin.findings.conflicts import ConflictGroup, ConflictLayout, TableConflicts, is_renameable
from mlflow_ws_admin.findings.stored_content import StoredContent

if TYPE_CHECKING:
    from mlflow_ws_admin.engine.renames import RenamePlan
    from mlflow_ws_admin.engine.selection import ResourceSelection

DEFAULT_SAMPLE_GROUPS = 5
#: Records a fetch, where a key's conflict records are streamed.
STREAM_BATCH = 1000
#: From this many rows to move on, the keys' conflict queries run on two connections at once (``_read_conflicts``).
PARALLEL_AFTER_ROWS = 10_000


class _NoRelocation:
    occupied = ()


_NONE = _NoRelocation()


@dataclass(frozen=True)
class TableMove:
    table: str
    #: (source workspace, rows) sorted by workspace; None stands for a NULL workspace.
    by_workspace: tuple[tuple[str | None, int], ...]

    @property
    def rows_to_move(self) -> int:
        return sum(n for _, n in self.by_workspace)


@dataclass(frozen=True)
class Plan:
    database: str  # display URL, password masked
    schema: WorkspaceSchema
    moves: tuple[TableMove, ...]  # update order: parents before children
    conflicts: tuple[TableConflicts, ...]  # only keys with at least one group
    creates_default_workspace: bool
    catalog_workspaces: tuple[str, ...]
    sample_limit: int | None
    #: experiments (and workspace roots) whose artifacts would collide; see ``findings.artifacts``
    artifact_findings: tuple[ArtifactFinding, ...] = ()
    default_artifact_root: str | None = None  # the server's root the findings were computed with (masked)
    #: the conflicts and artifact findings were left to apply's lock (``-y``; see ``build_plan``)
    checked_during_apply: bool = False
    #: other sessions connected to the database while planning (None: the database cannot tell)
    other_sessions: tuple[str, ...] | None = ()
    #: which rows move where (``MIGRATE``: everything into `default`)
    move: Move = MIGRATE
    #: a selective move's choices and findings (``selection``); None for the migration
    resources: ResourceSelection | None = None
    #: ``--rename-conflicts``: the renames that resolve conflicts, and the rows that cannot be renamed
    renames: RenamePlan | None = None
    #: (workspace, name) of the registered models that are prompts, read when registered models collide
    prompts: frozenset[tuple[Any, Any]] = frozenset()
    #: rows to move whose content MLflow stores under their workspace: refused, with no override
    stored_content: tuple[StoredContent, ...] = ()

    @property
    def dialect(self) -> str:
        return self.schema.dialect

    @property
    def update_order(self) -> tuple[str, ...]:
        return tuple(m.table for m in self.moves)

    @property
    def total_rows_to_move(self) -> int:
        return sum(m.rows_to_move for m in self.moves)

    @property
    def conflict_count(self) -> int:
        return sum(c.group_count for c in self.conflicts)

    def conflict_groups_by_workspace(self) -> dict[str | None, int]:
        """workspace -> conflict groups (of every table and key) holding at least one of its rows."""
        counts: dict[str | None, int] = {}
        for tc in self.conflicts:
            for ws, n in tc.by_workspace:
                counts[ws] = counts.get(ws, 0) + n
        return counts

    def rows_by_workspace(self) -> dict[str | None, int]:
        """source workspace -> rows to move, over every table."""
        counts: dict[str | None, int] = {}
        for m in self.moves:
            for ws, n in m.by_workspace:
                counts[ws] = counts.get(ws, 0) + n
        return counts

    def resolved(self, tc: TableConflicts) -> bool:
        """Whether --rename-conflicts resolves this key's groups (refused rows are counted apart)."""
        return self.renames is not None and self.renames.resolves(tc.table, tc.key)

    def group_fix(self, tc: TableConflicts, group: ConflictGroup) -> str:
        """The one action that works in MLflow for this group's rows (``fix_hints``)."""

        return fix_hints.group_fix(tc.table, group.rows, target=self.move.target, prompts=self.prompts)

    def is_prompt_group(self, tc: TableConflicts, group: ConflictGroup) -> bool:

        return fix_hints.is_prompt_group(tc.table, group.rows, self.prompts)

    @property
    def blocking_conflict_count(self) -> int:
        """Conflict groups that block: all of them, less those renames resolve, plus rows that cannot be renamed."""
        if self.renames is None:
            return self.conflict_count
        unresolved = sum(tc.group_count for tc in self.conflicts if not self.resolved(tc))
        return unresolved + len(self.renames.refused)

    @property
    def has_blocking_conflicts(self) -> bool:
        if self.blocking_conflict_count > 0:
            return True
        resources = self.resources
        # A relocation target that holds other objects would be overwritten: never done.
        return bool(resources and (resources.references_left_behind or (resources.relocation or _NONE).occupied))

    @property
    def blocking_artifact_findings(self) -> tuple[ArtifactFinding, ...]:
        return tuple(f for f in self.artifact_findings if f.blocking)

    @property
    def has_blocking_artifact_findings(self) -> bool:
        return any(f.blocking for f in self.artifact_findings)

    def is_blocked(self, *, allow_artifact_overlap: bool) -> bool:
        """Whether the run stops here (exit 1): conflicts, stored content (never overridable), or blocking
        artifact findings unless allowed."""
        artifacts_block = self.has_blocking_artifact_findings and not allow_artifact_overlap
        return self.has_blocking_conflicts or bool(self.stored_content) or artifacts_block

    @property
    def nothing_to_do(self) -> bool:
        return self.total_rows_to_move == 0 and not self.creates_default_workspace

    @property
    def target_label(self) -> str:
        """The target workspace as reports name it, e.g. `default`."""
        return f"`{self.move.target}`"


def build_plan(
    conn: Connection,
    schema: WorkspaceSchema,
    *,
    database: str,
    sample_limit: int | None = DEFAULT_SAMPLE_GROUPS,
    default_artifact_root: str | None = None,
    stream_conflicts: bool = False,
    on_table: Callable[[str], None] | None = None,
    defer_to_apply: bool = False,
    move: Move = MIGRATE,
    resources: ResourceSelection | None = None,
    parallel_after_rows: int = PARALLEL_AFTER_ROWS,
) -> Plan:
    """Read everything the report and apply need.  Counts come from SQL; only sampled groups are fetched.

    stream_conflicts: fetch no conflict groups at all; the caller streams them with ``iter_conflict_groups``
    while it renders (``--verbose`` keeps memory flat however many groups there are).
    on_table is called with each table's name before it is read (a progress spinner).
    defer_to_apply (apply without a prompt): leave the conflicts and artifact findings to apply, which checks
    them under its lock anyway (see ``apply``); reading them here too would read every key twice.
    parallel_after_rows: once this many rows to move are counted, a second connection starts on the conflicts."""
    moves: list[TableMove] = []
    conflict_limit = 0 if stream_conflicts else sample_limit
    # Before the artifact check opens a session of its own, so that only others are counted.
    others = for_backend(conn.dialect.name).other_sessions(conn)
    finding: Future[tuple[ArtifactFinding, ...]] | None = None

    def check_artifacts(beside: bool) -> None:
        nonlocal finding
        if finding is None and not defer_to_apply:
            finding = start_artifact_check(conn, schema, default_artifact_root, read_beside=beside, move=move)

    moving = [wt for wt in schema.tables if move.moves_table(wt.name)]
    occupied = _occupied(conn, moving)
    keys = [] if defer_to_apply else [(wt, key) for wt in moving if wt.name in occupied for key in wt.unique_keys]
    with _ConflictReads(conn, schema, keys, conflict_limit, move) as reads:
        counted = 0
        for wt in moving:
            if on_table:
                on_table(wt.name)
            moves.append(_table_move(conn, wt, move) if wt.name in occupied else TableMove(wt.name, ()))
            counted += moves[-1].rows_to_move
            if counted >= parallel_after_rows:
                # A large database: the artifact check reads on a session of its own, beside this one (nothing
                # is locked while planning), while the counts and conflict queries keep the database busy.
                check_artifacts(beside=True)
                reads.start_beside()
        # A small one: its rows are read here first (a session of its own costs more than it would overlap).
        check_artifacts(beside=False)
        conflicts = [tc for tc in reads.read() if tc.group_count]
    renames = None
    if move.rename is not None and not defer_to_apply:
        from mlflow_ws_admin.engine.renames import plan_renames

        renames = plan_renames(conn, schema, move, move.rename, ((tc.table, tc.key) for tc in conflicts))
    prompts: frozenset[tuple[Any, Any]] = frozenset()
    if any(tc.table == "registered_models" for tc in conflicts) and (stmt := queries.prompt_models(schema)) is not None:
        prompts = frozenset((ws, name) for ws, name in conn.execute(stmt))
    catalog_names = tuple(conn.execute(queries.catalog_names(schema.catalog)).scalars())
    # A few rows, read even with -y: MLflow refuses them before anything else, and so does the report.
    stored = read_stored_content(conn, schema, move)
    return Plan(
        database=database,
        schema=schema,
        moves=tuple(moves),
        conflicts=tuple(conflicts),
        creates_default_workspace=move.is_migration and mlflow_facts.DEFAULT_WORKSPACE not in catalog_names,
        catalog_workspaces=catalog_names,
        sample_limit=sample_limit,
        artifact_findings=unresolved_findings(finding.result(), resources) if finding else (),
        default_artifact_root=display_location(default_artifact_root) if default_artifact_root else None,
        checked_during_apply=defer_to_apply,
        other_sessions=None if others is None else tuple(others),
        move=move,
        resources=resources,
        renames=renames,
        prompts=prompts,
        stored_content=stored,
    )


def unresolved_findings(
    findings: tuple[ArtifactFinding, ...], resources: ResourceSelection | None
) -> tuple[ArtifactFinding, ...]:
    """The findings the move leaves standing: a proxied path whose objects relocate moves is resolved by it."""
    relocation = resources.relocation if resources else None
    if relocation is None:
        return findings
    moved = {m.experiment_id for m in relocation.moves}
    return tuple(f for f in findings if not (f.kind == artifacts.PROXIED_PATH and str(f.experiment_id) in moved))


class _ConflictReads:
    """Every key's conflicts, in ``keys`` order, read on the caller's connection by ``read()`` and, once
    ``start_beside()`` is called, on a second connection taking keys from the same list: one key's aggregation
    runs while another's rows are read, and the second one starts while the caller is still counting the
    rows to move (the database and its driver release the GIL while they work; nothing is locked while
    planning, and the artifact check reads beside too).  A context manager: leaving it stops the second reader
    after its current key and waits for it."""

    def __init__(
        self,
        conn: Connection,
        schema: WorkspaceSchema,
        keys: Sequence[tuple[WorkspaceTable, UniqueKey]],
        limit: int | None,
        move: Move,
    ) -> None:
        self._conn, self._schema, self._keys, self._limit, self._move = conn, schema, keys, limit, move
        self._found: list[TableConflicts | None] = [None] * len(keys)
        self._taken = iter(range(len(keys)))
        self._lock = threading.Lock()
        self._beside: Future[None] | None = None

    def __enter__(self) -> _ConflictReads:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._beside is not None:
            with self._lock:
                self._taken = iter(())  # no key left for anyone
            self._beside.exception()  # waits; a failure was raised by read(), or the caller is failing already

    def start_beside(self) -> None:
        if self._beside is None and len(self._keys) > 1:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mwa-conflicts")
            self._beside = executor.submit(self._read_beside)
            executor.shutdown(wait=False)  # the worker ends with its one task

    def read(self) -> list[TableConflicts]:
        """Read the keys left, then wait for the second reader; every key's conflicts, in ``keys`` order."""
        self._work(self._conn)
        if self._beside is not None:
            self._beside.result()
        return [tc for tc in self._found if tc is not None]

    def _read_beside(self) -> None:
        with self._conn.engine.connect() as other:
            self._work(other)

    def _work(self, conn: Connection) -> None:
        while True:
            with self._lock:
                i = next(self._taken, None)
            if i is None:
                return
            wt, key = self._keys[i]
            self._found[i] = _table_conflicts(conn, self._schema, wt, key, self._limit, self._move)


def _occupied(conn: Connection, tables: Sequence[WorkspaceTable]) -> set[str]:
    """The tables holding a row at all: an empty one has nothing to move and no conflicts, so their queries are
    not run on it.  One statement of SQL text asks every table: a Core statement costs ~0.35 ms to compile, and
    a plan compiled ~60 of them for MLflow's schema, most on tables a database leaves empty."""
    if not tables:
        return set()
    quote = conn.dialect.identifier_preparer.quote
    stmt = " UNION ALL ".join(
        f"SELECT {i} FROM (SELECT 1 FROM {quote(wt.name)} LIMIT 1) AS mwa_{i}" for i, wt in enumerate(tables)
    )
    return {tables[i].name for (i,) in conn.execute(text(stmt))}


def _table_move(conn: Connection, wt: WorkspaceTable, move: Move) -> TableMove:
    rows = conn.execute(queries.moves_by_workspace(wt, move)).all()
    return TableMove(
        wt.name, tuple(sorted(((ws, int(n)) for ws, n in rows), key=lambda pair: workspace_order(pair[0])))
    )


def _table_conflicts(
    conn: Connection, schema: WorkspaceSchema, wt: WorkspaceTable, key: UniqueKey, limit: int | None, move: Move
) -> TableConflicts:
    group_count, by_workspace, first_keys = 0, (), None
    # Counting root groups costs an aggregation per roll-up parent too; on a clean database the cheap
    # superset test answers "0" alone.  After a hit the count itself is the exact test (no groups: none):
    # a separate exact existence test would sort every row once more.
    if may_have_conflicts(conn, wt, key, move) and not _all_rolled_up(conn, schema, wt, key, move):
        group_count, by_workspace, first_keys = _groups_by_workspace(conn, schema, wt, key, move, limit)
    sample: tuple[ConflictGroup, ...] = ()
    if group_count and limit != 0:
        sample = tuple(iter_conflict_groups(conn, schema, wt, key, limit, move, first_keys=first_keys))
    return TableConflicts(wt.name, key, group_count, sample, is_renameable(wt.name, key), by_workspace)


def _all_rolled_up(conn: Connection, schema: WorkspaceSchema, wt: WorkspaceTable, key: UniqueKey, move: Move) -> bool:
    """Whether every group of this key is provably under a colliding parent (``queries.has_orphans``): then
    it has no root groups, and the roll-up's aggregations (a sort of the table, another of the parent's) are
    never run.  Migrations only: a selective move's domain may take a child without its parent's rows."""
    if move.selection is not None:
        return False
    for fk, _ in queries.rollup_parents(schema, wt, key):
        stmt = queries.has_orphans(schema, wt, key, fk)
        if stmt is not None and not conn.execute(stmt).scalar_one():
            return True
    return False


def _groups_by_workspace(
    conn: Connection, schema: WorkspaceSchema, wt: WorkspaceTable, key: UniqueKey, move: Move, limit: int | None
) -> tuple[int, tuple[tuple[str | None, int], ...], list[tuple] | None]:
    """The key's root group count, (workspace, groups holding a row of it), and the keys of the first
    ``limit`` groups in the database's key order (None when ``limit`` is None: every group is sampled), all
    from the one pass that finds the groups; only groups of more than two rows are read again to learn their
    middle workspaces."""
    counts: dict[str | None, int] = {}
    group_count, wide = 0, False
    first_keys: list[tuple] | None = None if limit is None else []
    n_key = len(key.columns)
    ordered = bool(limit) or for_backend(conn.dialect.name).order_streamed_aggregates
    stmt = queries.root_group_spans(schema, wt, key, move, ordered=ordered)
    for record in conn.execute(stmt.execution_options(stream_results=True, yield_per=5000)):
        group_count += 1
        if first_keys is not None and len(first_keys) < (limit or 0):
            first_keys.append(tuple(record[:n_key]))
        rows, first, last = record[n_key:]
        if rows > 2:
            wide = True
            continue
        counts[first] = counts.get(first, 0) + 1
        counts[last] = counts.get(last, 0) + 1
    if wide:
        for ws, n in conn.execute(queries.groups_by_workspace(schema, wt, key, move)):
            counts[ws] = counts.get(ws, 0) + int(n)
    return group_count, tuple(sorted(counts.items(), key=lambda pair: workspace_order(pair[0]))), first_keys


def key_has_conflicts(conn: Connection, wt: WorkspaceTable, key: UniqueKey, move: Move = MIGRATE) -> bool:
    """Whether two workspaces hold the same value of this key (before roll-up): the cheap superset test
    first, then the exact one."""
    if not may_have_conflicts(conn, wt, key, move):
        return False
    return bool(conn.execute(queries.has_raw_conflicts(wt, key, move)).scalar_one())


def may_have_conflicts(conn: Connection, wt: WorkspaceTable, key: UniqueKey, move: Move = MIGRATE) -> bool:
    """False only when no two rows hold the same value of this key, so no two workspaces can (hashed on
    MySQL; keys only MLflow's code keeps unique are never cleared there, since the hash test assumes the
    schema's per-workspace uniqueness)."""
    code_only = key.columns in mlflow_facts.CODE_ENFORCED_UNIQUE_KEYS.get(wt.name, ())
    hashed = for_backend(conn.dialect.name).hashed_conflict_prefilter
    if hashed and code_only:
        return True
    return bool(conn.execute(queries.may_have_raw_conflicts(wt, key, move, hashed=hashed)).scalar_one())


def iter_conflict_groups(
    conn: Connection,
    schema: WorkspaceSchema,
    wt: WorkspaceTable,
    key: UniqueKey,
    limit: int | None,
    move: Move = MIGRATE,
    *,
    first_keys: list[tuple] | None = None,
) -> Iterator[ConflictGroup]:
    """Stream the groups of one key from a server-side cursor, one group at a time.  ``first_keys``: the
    keys of the first ``limit`` root groups when the caller knows them (``queries.conflict_rows``)."""
    layout, records = read_conflict_records(conn, schema, wt, key, limit, move, first_keys=first_keys)
    return layout.groups(records)


def read_conflict_records(
    conn: Connection,
    schema: WorkspaceSchema,
    wt: WorkspaceTable,
    key: UniqueKey,
    limit: int | None,
    move: Move = MIGRATE,
    *,
    first_keys: list[tuple] | None = None,
) -> tuple[ConflictLayout, Iterator[Any]]:
    """``iter_conflict_groups``' records, streamed, and where each holds what."""
    stmt, layout = conflict_group_query(schema, wt, key, limit, move, first_keys=first_keys)
    return layout, iter(conn.execute(stmt.execution_options(stream_results=True, yield_per=STREAM_BATCH)))


def conflict_group_query(
    schema: WorkspaceSchema,
    wt: WorkspaceTable,
    key: UniqueKey,
    limit: int | None,
    move: Move = MIGRATE,
    *,
    first_keys: list[tuple] | None = None,
) -> tuple[Select, ConflictLayout]:
    """The query of ``iter_conflict_groups`` and where its records hold what, apart: so that another
    connection can run the query (``engine.read_ahead``), and a report can read the records without groups."""
    stmt, ident, deps = queries.conflict_rows(schema, wt, key, limit, move, first_keys=first_keys)
    return stmt, ConflictLayout.of(key.columns, wt.workspace_column, ident, [d.table for d in deps])
