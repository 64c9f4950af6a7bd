"""The human report: Rich tables and lines rendered from a Plan.  No database access here.

User data is always wrapped in ``Text`` (never parsed as markup) and shown JSON-quoted, so a name like
``[red]x`` or one with a newline prints literally.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mlflow_ws_admin import knowledge
from mlflow_ws_admin.apply import ApplyResult
from mlflow_ws_admin.plan import ConflictGroup, ConflictRow, Plan, TableConflicts

GroupSource = Callable[[TableConflicts], Iterable[ConflictGroup]]


def quoted(value: Any) -> str:
    """A value as a reader should see it: strings JSON-quoted (escapes visible), NULL as null."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def workspace_label(ws: str | None) -> str:
    return "(null)" if ws is None else ws


def render_plan(plan: Plan, console: Console, *, dry_run: bool, groups_for: GroupSource | None = None) -> None:
    """The full plan: header, rows-to-move table, conflicts, summary line.

    groups_for streams every group of a key (``--verbose``); without it each key shows its sample."""
    mode = "dry run, read-only" if dry_run else "plan"
    console.print(Text(f"Migrate to the `default` workspace ({mode})", style="bold"))
    console.print(Text(f"Database: {plan.database} ({plan.dialect}, {len(plan.schema.tables)} workspace tables)"))
    if plan.creates_default_workspace:
        console.print(
            Text(
                "The `default` row is missing from the workspaces catalog; it will be created.",
                style="yellow",
            )
        )
    console.print()
    _render_moves(plan, console)
    if plan.conflicts:
        console.print()
        _render_conflicts(plan, console, groups_for)
    console.print()
    console.print(summary_line(plan, dry_run=dry_run), style="bold")


def _render_moves(plan: Plan, console: Console) -> None:
    moving = [m for m in plan.moves if m.rows_to_move]
    if not moving:
        console.print(Text("No rows to move: every workspace table is already in `default`."))
        return
    table = Table(title="Rows to move into `default`", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("from workspace")
    for m in moving:
        breakdown = ", ".join(f"{workspace_label(ws)}: {n:,}" for ws, n in m.by_workspace)
        table.add_row(Text(m.table), Text(f"{m.rows_to_move:,}"), Text(breakdown))
    table.add_section()
    table.add_row(Text("total", style="bold"), Text(f"{plan.total_rows_to_move:,}", style="bold"), Text(""))
    console.print(table)
    idle = len(plan.moves) - len(moving)
    if idle:
        console.print(Text(f"{idle} other workspace table(s) have nothing to move."))


def _render_conflicts(plan: Plan, console: Console, groups_for: GroupSource | None) -> None:
    tables = sorted({c.table for c in plan.conflicts})
    console.print(
        Text(
            f"Conflicts: {plan.conflict_count:,} group(s) in {len(tables)} table(s) would collide in `default`",
            style="bold red",
        )
    )
    for tc in plan.conflicts:
        console.print()
        console.print(
            Text(
                f"{tc.table} — key ({', '.join(tc.key.columns)}) from {tc.key.source}: {tc.group_count:,} group(s)",
                style="bold",
            )
        )
        shown = 0
        for group in groups_for(tc) if groups_for else tc.sample:
            console.print(group_line(group))
            shown += 1
        if shown < tc.group_count:
            console.print(Text(f"  ... {tc.group_count - shown:,} more (use --verbose to list all)"))
        console.print(Text(f"  fix: {tc.fix_hint}", style="cyan"))


def group_line(group: ConflictGroup) -> Text:
    key = ", ".join(f"{col}={quoted(val)}" for col, val in group.key)
    rows = "; ".join(_row_label(r) for r in group.rows)
    line = Text(f"  {key}: {rows}")
    if group.dependent_rows:
        deps = ", ".join(f"{t}: {n:,}" for t, n in group.dependents)
        line.append(f" (+{group.dependent_rows:,} dependent rows: {deps})")
    return line


def _row_label(row: ConflictRow) -> str:
    parts = [f"{col}={quoted(val)}" for col, val in row.identity]
    if row.deleted:
        parts.append(f"{knowledge.LIFECYCLE_COLUMN}=deleted: restore or purge it first")
    label = workspace_label(row.workspace)
    return f"{label} ({', '.join(parts)})" if parts else label


def summary_line(plan: Plan, *, dry_run: bool) -> Text:
    moving = sum(1 for m in plan.moves if m.rows_to_move)
    what = f"{plan.total_rows_to_move:,} row(s) in {moving} table(s)"
    if plan.has_blocking_conflicts:
        blocked = len({c.table for c in plan.conflicts})
        return Text(
            f"Blocked: {plan.conflict_count:,} conflict group(s) in {blocked} table(s) must be fixed before "
            f"{what} can move. Nothing was changed."
        )
    if plan.nothing_to_do:
        return Text("Nothing to move: every workspace row is already in `default`. Nothing was changed.")
    if dry_run:
        return Text(f"Dry run: {what} would move to `default`; no conflicts. Nothing was changed.")
    return Text(f"Ready: {what} will move to `default`; no conflicts.")


def render_apply_result(result: ApplyResult, console: Console) -> None:
    moved = [(t, n) for t, n in result.moved if n]
    for t, n in moved:
        console.print(Text(f"  moved {n:,} row(s) of {t}"))
    if result.created_default_workspace:
        console.print(Text("  created the `default` workspace row"))
    console.print(
        Text(
            f"Done: moved {result.total_moved:,} row(s) in {len(moved)} table(s) into `default`; committed.",
            style="bold green",
        )
    )
