"""``db import-database --rename-conflicts TEMPLATE``: SOURCE's rows whose name W already holds get a new name in
the copy, instead of blocking it.

W's row always keeps its name (the import adds to W; what W's users already see does not change), and only the
incoming row is renamed, with the same template, name rules and refusals as migrate's renames
(``engine.renames``): a new name must be free among W's names and SOURCE's copied ones; without ``{n}`` a taken
candidate is refused; MLflow's rule for the resource's names applies; a model or prompt MLflow refers to by name
as text, or a skill whose stored content lives under its name, is not renamed.  A refused row stays a blocking
name clash.  Every column that stores the renamed name (the FK graph's dependents: a model's versions, tags and
aliases) and every column MLflow derives from it (an evaluation dataset's digest) is rewritten with it, row by
row as the copy streams (``row_renamer``).  Nothing is written here: SOURCE is only read, and TARGET receives
the new names with the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import MetaData, select
from sqlalchemy.engine import Connection

from mlflow_ws_admin.db.schema import UniqueKey, WorkspaceSchema
from mlflow_ws_admin.engine import queries
from mlflow_ws_admin.engine.journal import key_columns
from mlflow_ws_admin.engine.move import RenamePolicy
from mlflow_ws_admin.engine.renames import (
    Rename,
    RenameRefusal,
    derived_values,
    fold_for,
    name_column,
    name_problem,
    prompt_names,
    refuse_unsafe,
    renameable,
)


def plan_import_renames(
    source: Connection,
    target: Connection,
    meta_source: MetaData,
    meta_target: MetaData,
    schema: WorkspaceSchema,
    policy: RenamePolicy,
    *,
    workspace: str,
    source_workspace: str | None,
    wheres: Mapping[str, Any],
    clashing: Iterable[tuple[str, tuple[str, ...]]],
) -> tuple[list[Rename], list[RenameRefusal], set[tuple[str, tuple[str, ...]]]]:
    """Read-only: (the renames, the rows the template cannot rename, the (table, key columns) handled here; the
    name clashes of any other key stay as they are).  ``clashing``: the name keys W already holds some of."""
    fold = fold_for(target.dialect.name)  # TARGET's unique index judges the new names
    renames: list[Rename] = []
    refused: list[RenameRefusal] = []
    handled: set[tuple[str, tuple[str, ...]]] = set()
    prompts: set[tuple[str | None, str]] | None = None
    for table, columns in clashing:
        wt = schema.table(table)
        key = next((k for k in wt.unique_keys if k.columns == columns), None)
        if key is None or not renameable(schema, wt, key):
            continue  # stays a clash: a child's key (its parent's rename resolves it) or one MLflow binds
        handled.add((table, columns))
        column = name_column(key)
        assert column is not None
        others = [c for c in key.columns if c != column]
        pk = key_columns(wt)
        # The names a new one must not take, folded, by the key's other columns: W's, and every copied one.
        s, t = meta_source.tables[table], meta_target.tables[table]
        taken: dict[tuple[Any, ...], set[str]] = {}
        in_w: set[tuple[Any, ...]] = set()
        stmt = select(*(t.c[c] for c in others), t.c[column]).where(t.c[wt.workspace_column] == workspace)
        for *rest, name in target.execute(stmt):
            taken.setdefault(tuple(rest), set()).add(fold(name))
            in_w.add((*rest, fold(name)))
        stmt = select(*(s.c[c] for c in others), s.c[column], *(s.c[c] for c in pk))
        if wheres.get(table) is not None:
            stmt = stmt.where(wheres[table])
        incoming = []
        for row in source.execute(stmt.order_by(s.c[column], *(s.c[c] for c in pk))):
            rest, name, key_values = tuple(row[: len(others)]), row[len(others)], tuple(row[len(others) + 1 :])
            taken.setdefault(rest, set()).add(fold(name))
            if name is not None and (*rest, fold(name)) in in_w:
                # the other key columns ride along in the key, so the copy finds the row's dependents by them
                extra = tuple((c, v) for c, v in zip(others, rest, strict=True) if c not in pk)
                incoming.append((rest, name, (*zip(pk, key_values, strict=True), *extra)))
        if incoming and prompts is None and table == "registered_models":
            prompts = prompt_names(source, schema)
        for rest, old, row_key in incoming:
            new, why = policy.template.unique_name(
                old, source_workspace or "", taken[rest], fold=fold, max_length=wt.column_length(column)
            )
            if new is not None:
                why = name_problem(table, new, prompt=(source_workspace, old) in (prompts or set()))
            if new is None or why is not None:
                refused.append(RenameRefusal(table, row_key, source_workspace, old, why or "no valid name"))
                continue
            taken[rest].add(fold(new))
            renames.append(Rename(table, row_key, source_workspace, column, old, new))
    renames, unsafe = refuse_unsafe(source, schema, renames, fold)
    return renames, [*refused, *unsafe], handled


RowRenamer = Callable[[list[Any]], None]


def row_renamer(schema: WorkspaceSchema, renames: Sequence[Rename], table: str, columns: Sequence[str]) -> RowRenamer:
    """Rewrites, in place, a SOURCE row of ``table`` (values in ``columns`` order): the renamed name wherever this
    table stores it (the renamed table itself, or a dependent through the FK graph), and the columns MLflow
    derives from it.  A no-op for a table no rename touches."""
    position = {c: i for i, c in enumerate(columns)}
    steps: list[RowRenamer] = []
    by_root: dict[tuple[str, str], list[Rename]] = {}
    for r in renames:
        by_root.setdefault((r.table, r.column), []).append(r)
    for (root, column), group in by_root.items():
        wt = schema.table(root)
        key = _key_of(wt.unique_keys, column)
        if root == table:
            mapping = {c: c for c in key.columns}
            derived = derived_values(table, columns)
        else:
            found = next((d for d in queries.dependents(schema, wt, key) if d.table == table), None)
            if found is None:
                continue
            mapping, derived = found.columns, []
        # (other key values, old name) -> new name: within one source workspace that names one row
        new_names = {(*_others(r, key, column), r.old): r.new for r in group}
        steps.append(_step(position, mapping, key, column, new_names, derived))
    if not steps:
        return lambda values: None

    def rename(values: list[Any]) -> None:
        for step in steps:
            step(values)

    return rename


def _step(
    position: Mapping[str, int],
    mapping: Mapping[str, str],
    key: UniqueKey,
    column: str,
    new_names: Mapping[tuple[Any, ...], str],
    derived: list[tuple[str, str, Callable[[str, Any, Any], Any]]],
) -> RowRenamer:
    name_at = position[mapping[column]]
    others_at = [position[mapping[c]] for c in key.columns if c != column]
    derived_at = [(position[d], position[o], compute) for d, o, compute in derived]

    def step(values: list[Any]) -> None:
        new = new_names.get((*(values[i] for i in others_at), values[name_at]))
        if new is None:
            return
        values[name_at] = new
        for d, o, compute in derived_at:
            values[d] = compute(new, values[d], values[o])

    return step


def _key_of(keys: Iterable[UniqueKey], column: str) -> UniqueKey:
    return next(k for k in keys if name_column(k) == column)


def _others(r: Rename, key: UniqueKey, column: str) -> tuple[Any, ...]:
    """A rename's other key values (skills' organization), which ``plan_import_renames`` keeps in its key."""
    stored = dict(r.key)
    return tuple(stored.get(c) for c in key.columns if c != column)
