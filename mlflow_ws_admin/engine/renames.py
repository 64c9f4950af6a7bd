"""`--rename-conflicts TEMPLATE`: which colliding rows get which new names, and renaming them.

``plan_renames`` only reads (the dry run, and apply again under its lock); ``apply_renames`` writes, inside
apply's transaction, before the rows are journaled and moved.  A row is renamed where it is (in its own
workspace), so a new name must be free there and in the target: for a migration that is every row of the table,
for a selective move the source's and the target's rows.  Every row that stores the renamed name through a
workspace foreign key (a model's versions, tags and aliases, an MCP server's versions, ...) gets the new name in
the same pass, and each changed value is journaled as a ``column_set`` record that restore puts back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import operator
import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import and_, bindparam, column, false, select
from sqlalchemy import table as sql_table
from sqlalchemy.engine import Connection

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.gc_pause import no_cycle_collection
from mlflow_ws_admin.db.schema import UniqueKey, WorkspaceSchema, WorkspaceTable
from mlflow_ws_admin.engine import queries
from mlflow_ws_admin.engine.journal import creation_column, key_columns
from mlflow_ws_admin.engine.move import Move, RenamePolicy
from mlflow_ws_admin.engine.rename_template import RenameTemplate

if TYPE_CHECKING:
    from mlflow_ws_admin.db.dialects import Dialect
    from mlflow_ws_admin.engine.journal import JournalWriter


class Rename(NamedTuple):  # a tuple: planning makes 60k of them, and a frozen dataclass costs 3x as much
    table: str
    #: the row's primary key (without workspace columns) before the rename
    key: tuple[tuple[str, Any], ...]
    workspace: str | None
    column: str
    old: str
    new: str


@dataclass(frozen=True)
class RenameRefusal:
    """A colliding row the template cannot rename: it stays a conflict (exit 1)."""

    table: str
    key: tuple[tuple[str, Any], ...]
    workspace: str | None
    old: str
    reason: str


@dataclass(frozen=True)
class RenamePlan:
    policy: RenamePolicy
    renames: tuple[Rename, ...]
    refused: tuple[RenameRefusal, ...]
    #: (table, key columns) whose every conflict group is resolved by the renames above (or refused there)
    resolved_keys: frozenset[tuple[str, tuple[str, ...]]]

    def resolves(self, table: str, key: UniqueKey) -> bool:
        return (table, key.columns) in self.resolved_keys

    def by_table(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.renames:
            counts[r.table] = counts.get(r.table, 0) + 1
        return counts


def name_column(key: UniqueKey) -> str | None:
    """The key's name column: ``name``, or its one ``*_name`` column (``secrets.secret_name``)."""
    if "name" in key.columns:
        return "name"
    named = [c for c in key.columns if c.endswith("_name")]
    return named[0] if len(named) == 1 else None


def refusal_reason(table: str, key: UniqueKey) -> str | None:
    """Why this key is never renamed, or None: the key is bound into stored data, or has no name column."""
    bound = mlflow_facts.UNRENAMEABLE_KEY_COLUMNS.get(table, frozenset()) & set(key.columns)
    if bound:
        return mlflow_facts.UNRENAMEABLE_REASONS.get(table, "MLflow binds it into stored data")
    if name_column(key) is None:
        return "the key has no name column"
    return None


def fold_for(dialect: str) -> Callable[[str], str]:
    """How the database's unique index compares names.  MySQL/MariaDB's default collations ignore case, accents
    and trailing spaces; this fold equates at least what they equate, so a new name is never taken there (it may
    only skip a free one).  PostgreSQL and SQLite compare bytes."""
    if dialect != "mysql":
        return lambda s: s
    return _loose_fold


def _loose_fold(s: str) -> str:
    if s.isascii():  # the common case, 20x cheaper than decomposing
        return s.lower().rstrip(" ")
    decomposed = unicodedata.normalize("NFKD", s)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().rstrip(" ")


# --- MLflow's name rules -----------------------------------------------------------------------------------

_PROMPT_NAME = re.compile(r"^[a-zA-Z0-9_.-]+$")  # mlflow/prompt/constants.py PROMPT_NAME_RULE
_MCP_NAMESPACE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9.-]*[a-zA-Z0-9]$")  # mlflow/entities/mcp_server.py
_MCP_SLUG = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]$")
_MCP_RESERVED_SLUGS = frozenset({"aliases", "endpoints", "tags", "versions"})


def _model_name_problem(name: str) -> str | None:
    """mlflow/utils/validation.py _validate_model_name: no '/' or ':', and a normalized relative path."""
    if any(c in name for c in "/:"):
        return "a registered model's name cannot contain '/' or ':'"
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith(".."):
        return "a registered model's name must be a plain relative path (no '.', '..' or doubled separators)"
    return None


def _prompt_name_problem(name: str) -> str | None:
    if not _PROMPT_NAME.match(name):
        return "a prompt's name may only hold letters, digits, '-', '_' and '.'; try '{name}-{workspace}'"
    return None


def _mcp_name_problem(name: str) -> str | None:
    namespace, sep, slug = name.partition("/")
    if (
        not sep
        or "/" in slug
        or not _MCP_NAMESPACE.fullmatch(namespace)
        or not _MCP_SLUG.fullmatch(slug)
        or slug in _MCP_RESERVED_SLUGS
    ):
        return "an MCP server's name must be '<namespace>/<slug>' of letters, digits, '.', '-' (and '_' in the slug)"
    return None


_SKILL_NAME = re.compile(mlflow_facts.SKILL_NAME_PATTERN)


def _skill_name_problem(name: str) -> str | None:
    """mlflow/utils/validation.py _validate_skill_name."""
    if not _SKILL_NAME.fullmatch(name) or len(name) > mlflow_facts.MAX_SKILL_NAME_LENGTH:
        return (
            f"a skill's name is 1-{mlflow_facts.MAX_SKILL_NAME_LENGTH} lowercase letters, digits and single hyphens "
            "inside; try '{name}-{workspace}'"
        )
    return None


def name_problem(table: str, name: str, *, prompt: bool = False) -> str | None:
    """MLflow's own rule for a new name of this resource, where it has one."""
    if not name.strip():
        return "the template gives an empty name"
    if table == "registered_models":
        return _prompt_name_problem(name) if prompt else _model_name_problem(name)
    if table == "mcp_servers":
        return _mcp_name_problem(name)
    if table == "skills":
        return _skill_name_problem(name)
    if table == mlflow_facts.EXPERIMENTS_TABLE and len(name) > mlflow_facts.MAX_EXPERIMENT_NAME_LENGTH:
        return f"MLflow allows {mlflow_facts.MAX_EXPERIMENT_NAME_LENGTH} characters for an experiment's name"
    return None


# --- planning ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Where ``rows_by_key``'s records hold what planning reads: the workspace first, then the row columns."""

    pk: tuple[tuple[str, int], ...]
    name: int
    others: tuple[int, ...]  # the key's other columns (skills' organization)
    created: int | None

    def key(self, r: Any) -> tuple[tuple[str, Any], ...]:
        if len(self.pk) == 1:  # the usual case, twice as fast
            ((c, i),) = self.pk
            return ((c, r[i]),)
        return tuple((c, r[i]) for c, i in self.pk)

    def others_of(self, r: Any) -> tuple[Any, ...]:
        return tuple(r[i] for i in self.others) if self.others else ()

    def order(self, keep: str) -> Callable[[Any], tuple]:
        """Sort key of a group's rows for ``--keep oldest|newest``: creation time (rows without one last), then
        workspace and id, so ties always break the same way."""
        sign = 1 if keep == "oldest" else -1
        created = self.created
        pk_values = operator.itemgetter(*(i for _, i in self.pk)) if self.pk else lambda r: ()

        def order(r: Any) -> tuple:
            at = r[created] if created is not None else None
            if isinstance(at, int | float):
                return (False, sign * at, r[0] or "", pk_values(r))
            return (True, 0, r[0] or "", pk_values(r))

        return order


def plan_renames(
    conn: Connection,
    schema: WorkspaceSchema,
    move: Move,
    policy: RenamePolicy,
    keys: Iterable[tuple[str, UniqueKey]],
) -> RenamePlan:
    """Read-only: the renames that resolve the conflict groups of the given root keys, and the rows it cannot
    rename.  Keys that are never renamed are skipped: their groups stay conflicts."""
    # 140k rows read and 60k renames made, none in a cycle and all alive till the end: the cycle collector's
    # walks over them took a quarter of the planning.
    with no_cycle_collection():
        return _plan_renames(conn, schema, move, policy, keys)


def _plan_renames(
    conn: Connection,
    schema: WorkspaceSchema,
    move: Move,
    policy: RenamePolicy,
    keys: Iterable[tuple[str, UniqueKey]],
) -> RenamePlan:
    from mlflow_ws_admin.db.dialects import for_backend

    dialect = for_backend(conn.dialect.name)
    fold = fold_for(conn.dialect.name)
    renames: list[Rename] = []
    refused: list[RenameRefusal] = []
    resolved: set[tuple[str, tuple[str, ...]]] = set()
    for table, key in keys:
        wt = schema.table(table)
        if not renameable(schema, wt, key):
            continue  # stays a conflict; the report's fix hint says why (a child's collides with its parent)
        resolved.add((table, key.columns))
        column = name_column(key)
        assert column is not None
        scan = _scan(conn, dialect, wt, key, move, fold)
        if not scan.groups:
            continue
        naming = _Naming(
            table,
            column,
            policy.template,
            scan.layout,
            scan.taken,
            fold,
            wt.column_length(column),
            _prompt_names(conn, schema) if table == "registered_models" else set(),
        )
        order = scan.layout.order("oldest" if policy.keep == "default" else policy.keep)
        to_rename = []
        for group in scan.groups:
            keeper = _keeper(group, policy.keep, move.target, order)
            to_rename += [row for row in group if row is not keeper]
        named, not_named = naming.name(to_rename)
        if scan.weights is not None:
            named, not_named_late = _settle_under_collation(conn, dialect, wt, key, scan, naming, named)
            not_named += not_named_late
        renames += [rename for _, rename in named]
        refused += not_named
    renames, unsafe = refuse_unsafe(conn, schema, renames, fold)
    return RenamePlan(policy, tuple(renames), (*refused, *unsafe), frozenset(resolved))


def refuse_unsafe(
    conn: Connection, schema: WorkspaceSchema, renames: list[Rename], fold: Callable[[str], str]
) -> tuple[list[Rename], list[RenameRefusal]]:
    """The renames MLflow would not follow, refused: a model or prompt it refers to by name as text, a skill whose
    versions' content it stores under the name (read in ``conn``, where the renamed rows are)."""
    renames, referenced = _without_referenced(conn, schema, renames, fold)
    renames, stored = _without_stored_content(conn, schema, renames)
    return renames, [*referenced, *stored]


def prompt_names(conn: Connection, schema: WorkspaceSchema) -> set[tuple[str | None, str]]:
    """(workspace, name) of the registered models that are prompts (their names follow the prompt rule)."""
    return _prompt_names(conn, schema)


def derived_values(table: str, columns: Iterable[str]) -> list[tuple[str, str, Callable[[str, Any, Any], Any]]]:
    """(column, the column it is built with, compute(new name, old value, other value)) of each column MLflow
    derives from ``table``'s name, where ``columns`` has both."""
    have = set(columns)
    found = []
    for facts, compute in (
        (mlflow_facts.NAME_DERIVED_COLUMNS, _dataset_digest),
        (mlflow_facts.NAME_SEARCH_TEXT_COLUMNS, _search_text),
    ):
        pair = facts.get(table)
        if pair and set(pair) <= have:
            found.append((pair[0], pair[1], compute))
    return found


def renameable(schema: WorkspaceSchema, wt: WorkspaceTable, key: UniqueKey) -> bool:
    """Whether ``--rename-conflicts`` resolves this key's conflict groups: a root key (not one whose collisions
    roll up under a colliding parent's) that MLflow lets us rename."""
    return refusal_reason(wt.name, key) is None and not queries.rollup_parents(schema, wt, key)


# --- names stored as text ----------------------------------------------------------------------------------

#: The tables ``_name_references`` reads besides the workspace tables: apply read-locks them (MySQL).
NAME_REFERENCE_TABLES = ("tags", "runs", "trace_tags", "trace_info", "logged_model_tags", "entity_associations")


def _without_referenced(
    conn: Connection, schema: WorkspaceSchema, renames: list[Rename], fold: Callable[[str], str]
) -> tuple[list[Rename], list[RenameRefusal]]:
    """Refuse the renames of registered models and prompts that MLflow refers to by name, as text, from their
    own workspace (``mlflow_facts.LINKED_PROMPTS_TAG`` and friends): after the merge those references would
    resolve to the row that kept the name."""
    models = [r for r in renames if r.table == "registered_models"]
    if not models:
        return renames, []
    wanted = {(r.workspace, fold(r.old)) for r in models}
    found: dict[tuple[Any, str], str] = {}
    for workspace, name, where in _name_references(conn, schema, sorted({r.workspace for r in models})):
        if (workspace, fold(name)) in wanted:
            found.setdefault((workspace, fold(name)), where)
    kept, refused = [], []
    for r in renames:
        where = found.get((r.workspace, fold(r.old))) if r.table == "registered_models" else None
        if where is None:
            kept.append(r)
        else:
            reason = f"MLflow refers to it by name in {where}; that reference would reach the row that keeps the name"
            refused.append(RenameRefusal(r.table, r.key, r.workspace, r.old, reason))
    return kept, refused


def _without_stored_content(
    conn: Connection, schema: WorkspaceSchema, renames: list[Rename]
) -> tuple[list[Rename], list[RenameRefusal]]:
    """Refuse the renames of rows with a child whose content MLflow stores itself (``WORKSPACE_STORED_CONTENT``:
    an MLflow-stored skill version): MLflow addresses that content by the skill's name
    (``skills/[@<organization>/]<name>/<token>``), so a renamed skill would no longer own it."""
    found: set[tuple[str, Any, tuple[tuple[str, Any], ...]]] = set()  # (table, workspace, sorted key)
    tables = {r.table for r in renames}
    for child, (marker, value, _) in mlflow_facts.WORKSPACE_STORED_CONTENT.items():
        for fk in schema.all_foreign_keys:
            if fk.child != child or fk.parent not in tables or not schema.is_workspace_table(child):
                continue
            wt = schema.table(child)
            if not wt.has_column(marker):
                continue
            ct = queries.table_clause(wt)
            parent_ws = schema.table(fk.parent).workspace_columns
            pairs = list(zip(fk.child_columns, fk.parent_columns, strict=True))
            ws_col = next(c for c, p in pairs if p in parent_ws)
            keys = [(c, p) for c, p in pairs if p not in parent_ws]
            stmt = select(ct.c[ws_col], *(ct.c[c] for c, _ in keys)).where(ct.c[marker] == value).distinct()
            for ws, *values in conn.execute(stmt):
                found.add((fk.parent, ws, tuple(sorted(zip((p for _, p in keys), values, strict=True)))))
    if not found:
        return renames, []
    reason = (
        "MLflow stores content of this skill's versions under its name (skills/[@org/]name/...): a renamed skill "
        "would lose it"
    )
    kept, refused = [], []
    for r in renames:
        if (r.table, r.workspace, tuple(sorted(r.key))) in found:
            refused.append(RenameRefusal(r.table, r.key, r.workspace, r.old, reason))
        else:
            kept.append(r)
    return kept, refused


def _name_references(
    conn: Connection, schema: WorkspaceSchema, workspaces: list[Any]
) -> Iterable[tuple[Any, str, str]]:
    """(workspace, referenced model or prompt name, where) of every by-name reference from these workspaces."""
    have = schema.all_table_names
    if "model_versions" in have:
        mv = schema.table("model_versions")
        t = queries.table_clause(mv)
        stmt = select(t.c[mv.workspace_column], t.c.source, t.c.name, t.c.version).where(
            t.c[mv.workspace_column].in_(workspaces), t.c.source.like(f"{mlflow_facts.MODEL_URI_PREFIX}%")
        )
        for ws, source, name, version in conn.execute(stmt):
            target = source[len(mlflow_facts.MODEL_URI_PREFIX) :].split("/")[0].split("@")[0]
            yield ws, target, f"model_versions.source of {name!r} version {version} ({source!r})"
    experiments = sql_table(
        mlflow_facts.EXPERIMENTS_TABLE, column(mlflow_facts.EXPERIMENT_ID_COLUMN), column("workspace")
    )
    e_id, e_ws = experiments.c[mlflow_facts.EXPERIMENT_ID_COLUMN], experiments.c.workspace
    linked = []
    if {"tags", "runs"} <= have:
        tags = sql_table("tags", column("key"), column("value"), column("run_uuid"))
        runs = sql_table("runs", column("run_uuid"), column("experiment_id"))
        linked.append(
            (
                "a run's mlflow.linkedPrompts tag",
                select(e_ws, tags.c.value)
                .select_from(
                    tags.join(runs, runs.c.run_uuid == tags.c.run_uuid).join(experiments, e_id == runs.c.experiment_id)
                )
                .where(tags.c.key == mlflow_facts.LINKED_PROMPTS_TAG, e_ws.in_(workspaces)),
            )
        )
    if {"trace_tags", "trace_info"} <= have:
        trace_tags = sql_table("trace_tags", column("key"), column("value"), column("request_id"))
        traces = sql_table("trace_info", column("request_id"), column("experiment_id"))
        linked.append(
            (
                "a trace's mlflow.linkedPrompts tag",
                select(e_ws, trace_tags.c.value)
                .select_from(
                    trace_tags.join(traces, traces.c.request_id == trace_tags.c.request_id).join(
                        experiments, e_id == traces.c.experiment_id
                    )
                )
                .where(trace_tags.c.key == mlflow_facts.LINKED_PROMPTS_TAG, e_ws.in_(workspaces)),
            )
        )
    if "logged_model_tags" in have:
        lm_tags = sql_table("logged_model_tags", column("tag_key"), column("tag_value"), column("experiment_id"))
        linked.append(
            (
                "a logged model's mlflow.linkedPrompts tag",
                select(e_ws, lm_tags.c.tag_value)
                .select_from(lm_tags.join(experiments, e_id == lm_tags.c.experiment_id))
                .where(lm_tags.c.tag_key == mlflow_facts.LINKED_PROMPTS_TAG, e_ws.in_(workspaces)),
            )
        )
    for where, stmt in linked:
        for ws, value in conn.execute(stmt):
            for name in _linked_prompt_names(value):
                yield ws, name, where
    if {"entity_associations", "trace_info"} <= have:
        assoc = sql_table(
            "entity_associations",
            column("source_type"),
            column("source_id"),
            column("destination_type"),
            column("destination_id"),
        )
        traces = sql_table("trace_info", column("request_id"), column("experiment_id"))
        stmt = (
            select(e_ws, assoc.c.destination_id)
            .select_from(
                assoc.join(traces, traces.c.request_id == assoc.c.source_id).join(
                    experiments, e_id == traces.c.experiment_id
                )
            )
            .where(
                assoc.c.source_type == "trace",
                assoc.c.destination_type == mlflow_facts.PROMPT_VERSION_ASSOCIATION,
                e_ws.in_(workspaces),
            )
        )
        for ws, destination in conn.execute(stmt):
            yield ws, str(destination).rsplit("/", 1)[0], "a trace's prompt-version association (entity_associations)"


def _linked_prompt_names(value: Any) -> list[str]:
    """The prompt names in a mlflow.linkedPrompts tag (JSON: [{"name": ..., "version": ...}]); none if unreadable."""
    try:
        items = json.loads(value)
    except (TypeError, ValueError):
        return []
    if not isinstance(items, list):
        return []
    return [str(i["name"]) for i in items if isinstance(i, dict) and "name" in i]


class _Scan(NamedTuple):
    layout: _Layout
    #: each conflict group's records that will share the target
    groups: list[list[Any]]
    #: the names a new name must not take, folded, by the key's other columns
    taken: dict[tuple[Any, ...], set[str]]
    #: where the database compares by collation (MySQL): a record's collation key, and every one read
    collation_key: Callable[[Any], Any] | None
    weights: set[Any] | None
    #: every name read is printable ASCII
    plain: bool


@dataclass(frozen=True)
class _Naming:
    """Chooses new names for one table's colliding rows, keeping ``taken`` up to date."""

    table: str
    column: str
    template: RenameTemplate
    layout: _Layout
    taken: dict[tuple[Any, ...], set[str]]
    fold: Callable[[str], str]
    limit: int | None
    prompts: set[tuple[str | None, str]]

    def name(self, rows: list[Any]) -> tuple[list[tuple[Any, Rename]], list[RenameRefusal]]:
        """(row, its rename) for each row that gets a valid free name; a refusal, with the reason, for the rest."""
        layout, fold, named, refused = self.layout, self.fold, [], []
        for row in rows:
            workspace, old = row[0], row[layout.name]
            names = self.names_beside(row)
            new, why = self.template.unique_name(old, workspace or "", names, fold=fold, max_length=self.limit)
            if new is not None:
                why = name_problem(self.table, new, prompt=(workspace, old) in self.prompts)
            if new is None or why is not None:
                refused.append(RenameRefusal(self.table, layout.key(row), workspace, old, why or "no valid name"))
                continue
            names.add(fold(new))
            named.append((row, Rename(self.table, layout.key(row), workspace, self.column, old, new)))
        return named, refused

    def names_beside(self, row: Any) -> set[str]:
        """The taken names (folded) among the rows that share this row's other key columns."""
        layout = self.layout
        return self.taken.setdefault(layout.others_of(row), set()) if layout.others else self.taken[()]


#: How often a row is named again when the database's collation finds its new name taken (MySQL).
_COLLATION_ROUNDS = 5


def _settle_under_collation(
    conn: Connection,
    dialect: Dialect,
    wt: WorkspaceTable,
    key: UniqueKey,
    scan: _Scan,
    naming: _Naming,
    named: list[tuple[Any, Rename]],
) -> tuple[list[tuple[Any, Rename]], list[RenameRefusal]]:
    """MySQL: the name fold covers case, accents and trailing spaces, but a collation may equate more
    (utf8mb4_general_ci: 'ß' = 's').  The database weighs the chosen names under the column's collation; a name
    whose weight an existing row (or another chosen name) has already is taken: its row is named again with
    that candidate counted as taken (the next ``{n}``, or a refusal without one)."""
    assert scan.collation_key is not None and scan.weights is not None
    t = queries.table_clause(wt)
    if scan.plain and all(_plain(r.new) for _, r in named) and dialect.ascii_names_fold(conn, t, naming.column):
        return named, []  # the usual case: the fold judged these names exactly as the collation would
    at = key.columns.index(naming.column)
    single = len(key.columns) == 1
    order = {id(row): i for i, (row, _) in enumerate(named)}
    settled: list[tuple[Any, Rename]] = []
    refused: list[RenameRefusal] = []
    chosen: set[Any] = set()
    for _ in range(_COLLATION_ROUNDS):
        if not named:
            break
        weighed = dialect.name_weights(conn, t, naming.column, [r.new for _, r in named])
        again = []
        for (row, rename), weight in zip(named, weighed, strict=True):
            if single:
                full = weight
            else:
                full = list(scan.collation_key(row))
                full[at] = weight
                full = tuple(full)
            if full in scan.weights or full in chosen:
                again.append(row)  # named again: this candidate is in ``taken`` already, so the next one comes
            else:
                chosen.add(full)
                settled.append((row, rename))
        named, late = naming.name(again)
        refused += late
    for _, rename in named:  # still taken after every round
        reason = f"{rename.new!r} and every later candidate are taken under the column's collation"
        refused.append(RenameRefusal(naming.table, rename.key, rename.workspace, rename.old, reason))
    settled.sort(key=lambda pair: order.get(id(pair[0]), len(order)))
    return settled, refused


def _plain(name: str) -> bool:
    return name.isascii() and name.isprintable()


def _scan(
    conn: Connection,
    dialect: Dialect,
    wt: WorkspaceTable,
    key: UniqueKey,
    move: Move,
    fold: Callable[[str], str],
) -> _Scan:
    """One sorted read of the key's rows: its conflict groups (each group's records that will share the target,
    from more than one workspace), and the names a new name must not take, folded, by the key's other columns.
    Consecutive records with equal key values (or equal collation keys, where the dialect has them) are one
    group."""
    pk = key_columns(wt)
    created = creation_column(wt)
    column = name_column(key)
    assert column is not None
    row_columns = list(dict.fromkeys([*pk, *key.columns, *([created] if created else [])]))
    at = {c: 1 + i for i, c in enumerate(row_columns)}
    layout = _Layout(
        tuple((c, at[c]) for c in pk),
        at[column],
        tuple(at[c] for c in key.columns if c != column),
        at[created] if created else None,
    )
    domain_at = len(row_columns) + 1 if move.selection is not None else None
    collation_keys = dialect.collation_keys(conn, queries.table_clause(wt), key.columns)
    if collation_keys is None:
        group_key = operator.itemgetter(*(at[c] for c in key.columns))
    else:
        first = len(row_columns) + 1 + (domain_at is not None)
        group_key = operator.itemgetter(*range(first, first + len(collation_keys)))
    rows = conn.execute(queries.rows_by_key(wt, key, move, row_columns, collation_keys)).all()

    # C-level getters and no per-row objects: 140k rows are read here, and most are not in any group.
    taken: dict[tuple[Any, ...], set[str]] = {}
    if layout.others:
        for r in rows:
            taken.setdefault(layout.others_of(r), set()).add(fold(r[layout.name]))
    else:
        taken[()] = set(map(fold, map(operator.itemgetter(layout.name), rows)))
    keys = list(map(group_key, rows))
    groups: list[list[Any]] = []
    for group in _runs(rows, keys):
        if domain_at is not None:
            group = [r for r in group if r[domain_at]]
        if len(group) > 1 and any(r[0] != group[0][0] for r in group):
            groups.append(group)
    if collation_keys is None:
        return _Scan(layout, groups, taken, None, None, plain=False)
    plain = all(map(_plain, map(operator.itemgetter(layout.name), rows)))
    return _Scan(layout, groups, taken, group_key, set(keys), plain)


def _runs(rows: list[Any], keys: list[Any]) -> Iterable[list[Any]]:
    """The runs of two or more consecutive rows with equal group keys (``keys``, one per row).  The comparisons
    run in C (``map(operator.eq, ...)``), so the Python loop visits only rows that repeat the key before them:
    most rows are alone, and 140k of them cost ~20 ms instead of ~150 ms for ``itertools.groupby``."""
    repeats = itertools.compress(range(1, len(rows)), map(operator.eq, keys[1:], keys[:-1]))
    start = end = -1
    for i in repeats:
        if i != end + 1:  # a new run starts at the row before i
            if end > start:
                yield rows[start : end + 1]
            start = i - 1
        end = i
    if end > start:
        yield rows[start : end + 1]


def _keeper(group: list[Any], keep: str, target: str, order: Callable[[Any], tuple]) -> Any:
    """The row that keeps its name: ``default`` the target's row (else the oldest), ``oldest``/``newest`` by
    ``order`` (``_Layout.order`` of ``keep``, where ``default`` sorts as ``oldest``)."""
    if keep == "default":
        in_target = [r for r in group if r[0] == target]
        if len(in_target) == 1:
            return in_target[0]
        group = in_target or group
    return min(group, key=order)


def _prompt_names(conn: Connection, schema: WorkspaceSchema) -> set[tuple[str | None, str]]:
    stmt = queries.prompt_models(schema)
    return set() if stmt is None else {(ws, name) for ws, name in conn.execute(stmt)}


# --- applying ----------------------------------------------------------------------------------------------


def renamed_selection(schema: WorkspaceSchema, move: Move, plan: RenamePlan) -> Move:
    """The move's selection after the renames: a selective move names its rows by key, and a renamed source row
    (and every dependent carrying its name) is found under its new name from now on."""
    if move.selection is None or not plan.renames:
        return move
    # table -> {(key column, this table's column) pairs: {the key's values as stored: (new name, name column)}}
    by_table: dict[str, dict[tuple[tuple[str, str], ...], dict[tuple[Any, ...], tuple[str, str]]]] = {}
    for r in plan.renames:
        if r.workspace != move.source:
            continue  # only source rows are selected by key; the target's keep moving nothing
        wt = schema.table(r.table)
        key = _renamed_key(wt, r.column)
        stored = dict(r.key) | {r.column: r.old}
        for table, mapping in [(r.table, {c: c for c in key.columns})] + [
            (d.table, d.columns) for d in queries.dependents(schema, wt, key)
        ]:
            pairs = tuple(sorted(mapping.items()))
            found = by_table.setdefault(table, {}).setdefault(pairs, {})
            found[tuple(stored.get(c) for c, _ in pairs)] = (r.new, r.column)
    selection = dict(move.selection)
    for table, lookups in by_table.items():
        chosen = selection.get(table)
        if chosen is None or chosen.values is None:
            continue
        values = tuple(_rename_values(chosen.columns, v, lookups) for v in chosen.values)
        selection[table] = dataclasses.replace(chosen, values=values)
    return dataclasses.replace(move, selection=selection)


def _rename_values(
    columns: tuple[str, ...],
    values: tuple[Any, ...],
    lookups: dict[tuple[tuple[str, str], ...], dict[tuple[Any, ...], tuple[str, str]]],
) -> tuple[Any, ...]:
    """One selected row's key values, its name replaced where a rename names it (one dict lookup per key shape)."""
    row = dict(zip(columns, values, strict=True))
    for pairs, new_names in lookups.items():
        if not all(col in row for _, col in pairs):
            continue
        found = new_names.get(tuple(row[col] for _, col in pairs))
        if found is not None:
            new, name_col = found
            row[dict(pairs)[name_col]] = new
            break
    return tuple(row[c] for c in columns)


def _renamed_key(wt: WorkspaceTable, column: str) -> UniqueKey:
    return next(k for k in wt.unique_keys if name_column(k) == column)


def apply_renames(
    conn: Connection, schema: WorkspaceSchema, plan: RenamePlan, journal: JournalWriter | None, *, cascades: bool
) -> dict[str, int]:
    """Rename every planned row, and every row that stores its name through a workspace FK, where it is (its own
    workspace).  Each old value is journaled first.  Returns rows renamed per table (dependents included).

    Set-based, as the move is: the renames are loaded into a temporary table, and one UPDATE joined to it renames
    each table (one statement per row took 8.5 s for 60k renames on MariaDB).  Dependent rows are read before the
    parent changes (``cascades``: an ON UPDATE CASCADE may rename them with it, as on PostgreSQL) and updated
    after it, which is a no-op where the cascade did it already and the rename itself where foreign keys do not
    cascade (SQLite, or MySQL with its checks suspended).  Where nothing cascades and nothing is journaled, the
    UPDATE's own row count says how many there were, and they are not read first."""
    from mlflow_ws_admin.db.dialects import for_backend

    dialect = for_backend(conn.dialect.name)
    counts: dict[str, int] = {}
    by_table: dict[str, list[Rename]] = {}
    for r in plan.renames:
        by_table.setdefault(r.table, []).append(r)
    with dialect.index_joins(conn):
        for table, renames in by_table.items():
            wt = schema.table(table)
            key = _renamed_key(wt, renames[0].column)
            loaded = _load(conn, dialect, wt, renames)
            deps = [(d, schema.table(d.table)) for d in queries.dependents(schema, wt, key)]
            read_first = cascades or journal is not None
            children = {d.table: _child_rows(conn, dwt, d, key, wt, loaded) for d, dwt in deps if read_first}
            counts[table] = _rename_rows(conn, dialect, wt, renames, loaded, journal)
            for dep, dwt in deps:
                rows = children.get(dep.table)
                if rows == []:
                    continue  # read first, and none there
                renamed = _rename_children(conn, dialect, dwt, dep, key, wt, loaded, rows, journal, len(renames))
                if n := len(rows) if rows is not None else renamed:
                    counts[dep.table] = counts.get(dep.table, 0) + n
            derived = mlflow_facts.NAME_DERIVED_COLUMNS.get(table)
            if derived and all(wt.has_column(c) for c in derived):
                _rewrite_derived(conn, wt, renames[0].column, loaded, journal, derived, _dataset_digest)
            search = mlflow_facts.NAME_SEARCH_TEXT_COLUMNS.get(table)
            if search and all(wt.has_column(c) for c in search):
                _rewrite_derived(conn, wt, renames[0].column, loaded, journal, search, _search_text)
            dialect.drop_temporary_table(conn, _LOADED)
    return counts


#: The session-private table the renames of one table are loaded into.
_LOADED = "mwa_renames"
_LOAD_BATCH = 5000


def _load(conn: Connection, dialect: Any, wt: WorkspaceTable, renames: list[Rename]) -> Any:
    """A temporary table (ws, k_0.., old_name, new_name) with the source columns' own types, so values compare
    as the database compares them, holding these renames."""
    t = queries.table_clause(wt)
    pk = key_columns(wt)
    name_col = renames[0].column
    shape = [
        t.c[wt.workspace_column].label("ws"),
        *(t.c[c].label(f"k_{i}") for i, c in enumerate(pk)),
        t.c[name_col].label("old_name"),
        t.c[name_col].label("new_name"),
    ]
    empty = select(*shape).where(false()).compile(conn, compile_kwargs={"literal_binds": True})
    dialect.create_temporary_table(conn, _LOADED, str(empty), ["ws", "old_name"])
    rows = [(r.workspace, *(v for _, v in r.key), r.old, r.new) for r in renames]
    for i in range(0, len(rows), _LOAD_BATCH):
        dialect.insert_rows(conn, _LOADED, len(shape), rows[i : i + _LOAD_BATCH])
    return sql_table(_LOADED, *(column(c.name) for c in shape))


def _key_match(t: Any, ws_column: str, columns: dict[str, str], loaded: Any, pk: list[str]) -> Any:
    """Rows of ``t`` in a loaded rename's workspace whose ``columns`` (root key column -> t's column) hold the
    loaded row's values: the old name, and the root's other key columns from its primary key."""
    conditions = [t.c[ws_column] == loaded.c.ws]
    for root_col, col in columns.items():
        if root_col in pk:
            conditions.append(t.c[col] == loaded.c[f"k_{pk.index(root_col)}"])
    return and_(*conditions)


def _rename_rows(
    conn: Connection,
    dialect: Any,
    wt: WorkspaceTable,
    renames: list[Rename],
    loaded: Any,
    journal: JournalWriter | None,
) -> int:
    t = queries.table_clause(wt)
    pk = key_columns(wt)
    column = renames[0].column
    if journal:
        for r in renames:
            after = [r.new if c == column else v for c, v in r.key]
            journal.column_set(wt.name, after, column, r.old, r.new, workspace=r.workspace)
    # The old name too, even where it is part of the key: the loaded table's index is (ws, old_name).
    match = and_(_key_match(t, wt.workspace_column, {c: c for c in pk}, loaded, pk), t.c[column] == loaded.c.old_name)
    return dialect.update_from(conn, t, match, {column: loaded.c.new_name}, expected_rows=len(renames))


def _child_rows(
    conn: Connection, dwt: WorkspaceTable, dep: queries.Dependent, key: UniqueKey, root: WorkspaceTable, loaded: Any
) -> list[tuple[Any, ...]]:
    """(workspace, stored name, new name, *primary key) of the dependent rows that store a renamed row's name,
    read before the rename."""
    t = queries.table_clause(dwt)
    column = name_column(key)
    assert column is not None
    others = {c: dep.columns[c] for c in key.columns if c != column}
    match = and_(
        _key_match(t, dwt.workspace_column, others, loaded, key_columns(root)),
        t.c[dep.columns[column]] == loaded.c.old_name,
    )
    stmt = select(
        t.c[dwt.workspace_column], t.c[dep.columns[column]], loaded.c.new_name, *(t.c[c] for c in key_columns(dwt))
    ).select_from(t.join(loaded, match))
    return [tuple(r) for r in conn.execute(stmt)]


def _rename_children(
    conn: Connection,
    dialect: Any,
    dwt: WorkspaceTable,
    dep: queries.Dependent,
    key: UniqueKey,
    root: WorkspaceTable,
    loaded: Any,
    rows: list[tuple[Any, ...]] | None,
    journal: JournalWriter | None,
    parents: int,
) -> int:
    """Rename the dependent rows (``rows``, read first, or unread: None) of ``parents`` renamed rows; returns the
    rows the UPDATE changed."""
    t = queries.table_clause(dwt)
    pk = key_columns(dwt)
    column = name_column(key)
    assert column is not None
    child_column = dep.columns[column]
    if journal and rows:
        for ws, old, new, *key_values in rows:
            # The row's key as restore finds it: after the rename.
            after = [new if c == child_column else v for c, v in zip(pk, key_values, strict=True)]
            journal.column_set(dwt.name, after, child_column, old, new, workspace=ws)
    others = {c: dep.columns[c] for c in key.columns if c != column}
    match = and_(
        _key_match(t, dwt.workspace_column, others, loaded, key_columns(root)),
        t.c[child_column] == loaded.c.old_name,
    )
    expected = len(rows) if rows is not None else parents  # unread: at least one a parent, as a model's version
    return dialect.update_from(conn, t, match, {child_column: loaded.c.new_name}, expected_rows=expected)


def _dataset_digest(name: str, old: Any, last_update_time: Any) -> Any:
    """An evaluation dataset's digest: sha256("<name>:<last_update_time>")[:8] (MLflow's
    ``_compute_dataset_digest``), as MLflow would have computed it for the new name."""
    if last_update_time is None:
        return old
    return hashlib.sha256(f"{name}:{last_update_time}".encode()).hexdigest()[:8]


_WHITESPACE_RUN = re.compile(r"\s+")


def _search_text(name: str, old: Any, description: Any) -> Any:
    """A skill's search_text: "<name> <description>", whitespace runs collapsed, empty parts left out (MLflow's
    ``build_skill_search_text``).  A row without one keeps none."""
    if old is None:
        return None
    parts = (_WHITESPACE_RUN.sub(" ", str(p)).strip() for p in (name, description) if p is not None)
    return " ".join(p for p in parts if p)


def _rewrite_derived(
    conn: Connection,
    wt: WorkspaceTable,
    column: str,
    loaded: Any,
    journal: JournalWriter | None,
    columns: tuple[str, str],
    compute: Callable[[str, Any, Any], Any],
) -> None:
    """Recompute a column MLflow derives from the name (``columns``: it, and the other column it is built from)
    for the renamed rows: ``compute(new name, old value, other column)``.  The renamed rows are read in one join
    to the loaded renames (already under their new names) and updated in one batch."""
    derived_col, other_col = columns
    t = queries.table_clause(wt)
    pk = key_columns(wt)
    # The loaded key holds the old name where the name is part of the key (skills): match the new one instead.
    same_key = {c: c for c in pk if c != column}
    renamed = and_(_key_match(t, wt.workspace_column, same_key, loaded, pk), t.c[column] == loaded.c.new_name)
    stmt = select(loaded.c.ws, t.c[column], t.c[derived_col], t.c[other_col], *(t.c[c] for c in pk)).select_from(
        t.join(loaded, renamed)
    )
    changes = []
    for workspace, name, old, other, *key_values in conn.execute(stmt):
        new = compute(name, old, other)
        if new == old:
            continue
        if journal:
            journal.column_set(wt.name, key_values, derived_col, old, new, workspace=workspace)
        changes.append({"mwa_derived": new, **{f"mwa_k_{i}": v for i, v in enumerate(key_values)}})
    if changes:
        where = and_(*(t.c[c] == bindparam(f"mwa_k_{i}") for i, c in enumerate(pk)))
        conn.execute(t.update().where(where).values({derived_col: bindparam("mwa_derived")}), changes)
