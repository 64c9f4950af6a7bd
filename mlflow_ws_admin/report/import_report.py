"""``db import-database``'s reports: the plan (text), what was copied, the undo, and their JSON documents
(docs/json-output.md, "db import-database").  No database access."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from mlflow_ws_admin.common.display import quoted, workspace_label
from mlflow_ws_admin.engine.import_apply import ImportResult
from mlflow_ws_admin.engine.import_artifacts import PROXIED
from mlflow_ws_admin.engine.import_plan import ID, ImportPlan
from mlflow_ws_admin.engine.import_undo import UndoResult
from mlflow_ws_admin.engine.relocate import Relocation
from mlflow_ws_admin.report.json_doc import SCHEMA_VERSION, relocation_fields
from mlflow_ws_admin.report.text import relocation_lines

_NOTES = {
    PROXIED: "mlflow-artifacts: location(s) of SOURCE's server: unreadable through TARGET's server until the "
    "objects are copied under its --artifacts-destination (kept as they are: --artifact-policy preserve)",
}
_RELATIVE_NOTE = "relative location(s): they resolve against the working directory of TARGET's server"


def render_import_plan(plan: ImportPlan, console: Console, *, dry_run: bool) -> None:
    mode = "dry run, read-only" if dry_run else "plan"
    console.print(Text(f"Import a database into workspace {workspace_label(plan.workspace)} ({mode})", style="bold"))
    console.print(Text(f"SOURCE: {plan.source}"))
    console.print(Text(f"TARGET: {plan.target}"))
    console.print(Text(f"Schema revision: {plan.revision or 'none'} (both)"))
    where = workspace_label(plan.source_workspace) if plan.source_workspace else "(no rows)"
    state = "exists" if plan.workspace_exists else "will be created"
    if plan.from_workspace is not None:
        what = f"SOURCE's workspace {where} (--from-workspace: its rows and the rows that depend on them)"
        console.print(Text(f"Copying {what}; TARGET's workspace {plan.workspace!r} {state}"))
    else:
        console.print(Text(f"SOURCE's rows are in workspace {where}; TARGET's workspace {plan.workspace!r} {state}"))
    console.print(Text(f"Rows to copy: {plan.total_rows:,}", style="bold"))
    for t in plan.tables:
        if t.rows:
            console.print(Text(f"  {t.table}: {t.rows:,}"))
    for r in plan.remaps:
        if r.delta:
            copied = {t.table for t in plan.tables if t.rows}
            followers = ", ".join(f"{t}.{c}" for t, c, _ in r.references[1:] if t in copied)
            console.print(
                Text(f"Ids remapped: {r.table}.{r.column} + {r.delta:,} (followed by {followers or 'no copied row'})")
            )
        else:
            console.print(Text(f"Ids kept: {r.table}.{r.column} (TARGET has none yet)"))
    for table, why in plan.skipped:
        console.print(Text(f"Not copied: {table} ({why})", style="dim"))
    for note in plan.artifact_notes:
        if plan.relocation is not None and note.kind == PROXIED:
            continue  # the relocation below says what happens to them
        what = _NOTES.get(note.kind, _RELATIVE_NOTE)
        examples = ", ".join(quoted(e) for e in note.examples)
        console.print(
            Text(f"Artifacts: {note.table}.{note.column}: {note.count:,} {what}; e.g. {examples}", style="yellow")
        )
    render_import_renames(plan, console)
    if plan.relocation is not None:
        _render_relocation(plan.relocation, console)
    if plan.clashes:
        console.print(
            Text(f"Blocking: {sum(c.count for c in plan.clashes):,} key(s) already in TARGET", style="bold red")
        )
        for c in plan.clashes:
            where = "in TARGET" if c.kind == ID else f"in workspace {workspace_label(plan.workspace)}"
            examples = "; ".join(", ".join(quoted(v) for v in e) for e in c.examples)
            more = f" and {c.count - len(c.examples):,} more" if c.count > len(c.examples) else ""
            console.print(Text(f"  {c.table} ({', '.join(c.columns)}) exists {where}: {examples}{more}"))


def _render_relocation(relocation: Relocation, console: Console) -> None:
    """The move's relocation lines (report.text), under the import's own heading: a copy, nothing deleted."""
    heading = (
        f"Artifacts: relocate: {len(relocation.moves):,} experiment prefix(es), {relocation.objects:,} object(s), "
        f"{relocation.bytes:,} byte(s) copied under TARGET's destination for TARGET's experiment ids (verified "
        "before the commit; SOURCE's objects stay)"
    )
    for line, style in [(heading, ""), *relocation_lines(relocation, None)[1:]]:
        console.print(Text(line, style=style))


def render_import_renames(plan: ImportPlan, console: Console) -> None:
    """Each incoming row renamed in the copy (W's own row keeps the name), and each the template cannot rename."""
    if plan.rename is None or not (plan.renames or plan.rename_refusals):
        return
    label = workspace_label(plan.workspace)
    console.print(
        Text(
            f"Renamed in the copy (--rename-conflicts {plan.rename.template.text}): {len(plan.renames):,} row(s) of "
            f"SOURCE whose name workspace {label} already has; {label}'s own rows keep their names"
        )
    )
    for r in plan.renames:
        console.print(Text(f"  {r.table}.{r.column}: {quoted(r.old)} -> {quoted(r.new)}"))
    for r in plan.rename_refusals:
        console.print(Text(f"  not renamed: {r.table} {quoted(r.old)}: {r.reason}", style="red"))


def render_import_result(result: ImportResult, console: Console, *, journal: str | None) -> None:
    console.print(
        Text(f"Imported {result.total:,} row(s) into workspace {workspace_label(result.plan.workspace)}", style="bold")
    )
    if result.workspace_created:
        console.print(Text(f"  workspace {quoted(result.plan.workspace)} created"))
    relocation = result.plan.relocation
    if relocation is not None and result.artifact_objects_copied is not None:
        already = relocation.objects - result.artifact_objects_copied
        console.print(
            Text(
                f"  artifacts: {result.artifact_objects_copied:,} object(s) copied ({already:,} already there), "
                f"{sum(c.rows for c in relocation.columns):,} stored URI(s) rewritten"
            )
        )
    if journal:
        console.print(Text(f"Journal: {journal} (undo: db restore-workspaces TARGET_URI --journal {journal})"))


def import_document(
    plan: ImportPlan | None,
    *,
    status: str,
    exit_code: int,
    dry_run: bool,
    target: dict[str, Any],
    result: ImportResult | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "exit_code": int(exit_code),
        "dry_run": dry_run,
        "database": target,
    }
    if plan is None:
        return doc
    doc.update(
        source=plan.source,
        workspace=plan.workspace,
        source_workspace=plan.source_workspace,
        from_workspace=plan.from_workspace,
        schema_revision=plan.revision,
        workspace_exists=plan.workspace_exists,
        tables=[{"table": t.table, "rows": t.rows} for t in plan.tables if t.rows],
        total_rows=plan.total_rows,
        id_remaps=[
            {
                "table": r.table,
                "column": r.column,
                "offset": r.delta,
                "followed_by": [f"{t}.{c}" for t, c, _ in r.references[1:]],
            }
            for r in plan.remaps
        ],
        clashes=[
            {
                "table": c.table,
                "columns": list(c.columns),
                "kind": c.kind,
                "count": c.count,
                "examples": [list(e) for e in c.examples],
            }
            for c in plan.clashes
        ],
        artifact_findings=[
            {"table": n.table, "column": n.column, "kind": n.kind, "count": n.count, "examples": list(n.examples)}
            for n in plan.artifact_notes
        ],
        not_copied=[{"table": t, "why": why} for t, why in plan.skipped],
        renames=[
            {"table": r.table, "column": r.column, "old": r.old, "new": r.new, "key": dict(r.key)} for r in plan.renames
        ],
        rename_refusals=[{"table": r.table, "old": r.old, "reason": r.reason} for r in plan.rename_refusals],
        rows_inserted=result.total if result else None,
        workspace_created=result.workspace_created if result else False,
        artifact_policy="relocate" if plan.relocation is not None else "preserve",
        **relocation_fields(plan.relocation),
        artifact_objects_copied=result.artifact_objects_copied if result else None,
    )
    return doc


def render_undo(result: UndoResult, console: Console, journal_header: dict[str, Any], *, awaiting: bool) -> None:
    mode = "plan" if awaiting else "dry run, read-only" if result.dry_run else "undo"
    console.print(Text(f"Undo an import from its journal ({mode})", style="bold"))
    console.print(Text(f"Journal: import run of {journal_header.get('created_at')}"))
    verb = "deleted" if result.applied else "to delete"
    for table, n in result.present.items():
        if n:
            console.print(Text(f"  {table}: {n:,} row(s) {verb}"))
    for table, n in result.missing.items():
        console.print(Text(f"  {table}: {n:,} journaled row(s) no longer exist; skipped"))
    if result.workspace is not None:
        if result.workspace_deleted:
            console.print(Text(f"  workspace {quoted(result.workspace)} (created by the import) deleted"))
        elif result.applied:
            console.print(Text(f"  workspace {quoted(result.workspace)} kept: rows were added to it since the import"))
    if result.artifact_objects:
        verb = "deleted" if result.applied else "to delete"
        console.print(
            Text(f"  artifacts: {result.artifact_objects:,} object(s) the import copied {verb} (SOURCE's stay)")
        )
    console.print(Text(f"Total: {result.total:,} row(s)", style="bold"))


def undo_document(result: UndoResult, *, status: str, exit_code: int, target: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "exit_code": int(exit_code),
        "dry_run": result.dry_run,
        "database": target,
        "operation": "undo-import",
        "tables": [{"table": t, "rows": n, "missing": result.missing.get(t, 0)} for t, n in result.present.items()],
        "total_rows": result.total,
        "workspace_deleted": result.workspace if result.workspace_deleted else None,
        "artifact_objects": result.artifact_objects,
    }
