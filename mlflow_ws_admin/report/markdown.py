"""The CI report (``--format markdown``): one GitHub-flavoured Markdown document, e.g. for $GITHUB_STEP_SUMMARY.

No database access here: it renders a Plan, a RestoreResult or a PreflightResult; conflict groups may arrive
streamed, as for the text report.  Only dry runs and preflight have a Markdown form (the CLI refuses it for a
real run), so every document describes a read-only run.

User data never becomes markup.  Values are shown as the text report shows them (strings JSON-quoted, so a
newline reads ``\\n``); then every character Markdown or HTML could act on (``| \\ ` * _ ~ [ ] $ < > &``) is
written as a numeric HTML entity, and anything unprintable as a visible ``\\uXXXX``.  CommonMark treats an
entity as literal text, never as a delimiter, so a cell can neither end early nor start a link, code span,
emphasis or HTML tag.  Long values stay whole: a reviewer needs the exact name to fix it, and GitHub scrolls
a wide table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

from mlflow_ws_admin.common.display import workspace_order
from mlflow_ws_admin.engine.plan import Plan
from mlflow_ws_admin.engine.selection import ResourceSelection, describe_references
from mlflow_ws_admin.findings import artifacts, stored_content
from mlflow_ws_admin.findings.checks import FAIL, PASS, WARN, PreflightResult
from mlflow_ws_admin.findings.conflicts import ConflictGroup, TableConflicts
from mlflow_ws_admin.report.text import (
    artifact_kind_text,
    nothing_there,
    other_sessions_line,
    plan_title,
    quoted,
    relocation_lines,
    summary_line,
    workspace_label,
)

if TYPE_CHECKING:  # restore's machinery is not needed to print its result
    from mlflow_ws_admin.engine.restore import RestoreConflict, RestoreResult

GroupSource = Callable[[TableConflicts], Iterable[ConflictGroup]]
#: Source workspaces listed per table; the rest are counted in one "… N more workspaces".
TOP_WORKSPACES = 5
_ENTITIES = str.maketrans({ch: f"&#{ord(ch)};" for ch in "|\\`*_~[]$<>&"})
_BR = "<br>"


def escape(text: str) -> str:
    """Text that renders literally inside a table cell or a paragraph: see the module docstring."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else _visible_escape(ch) for ch in text)
    return text.translate(_ENTITIES)


def _visible_escape(ch: str) -> str:
    # HTML drops or remaps control characters given as entities, so they are shown as a visible escape
    # (whose backslash the entity table then escapes).
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def value(val: Any) -> str:
    """A database value as the text report shows it (strings JSON-quoted), escaped."""
    return escape(quoted(val))


def verdict_line(verdict: str, exit_code: int, summary: str) -> str:
    """The status line a CI reader looks for first: a word, the exit code, one sentence."""
    return f"**Verdict: {verdict} — exit code {int(exit_code)}.** {summary}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> list[str]:
    """A GFM table from already escaped cells.  align: one letter per column, ``r`` right-aligns it."""
    marks = ["---:" if align[i : i + 1] == "r" else "---" for i in range(len(header))]
    lines = [_row(header), _row(marks)]
    lines.extend(_row(cells) for cells in rows)
    return lines


def _row(cells: Sequence[str]) -> str:
    # An empty cell still needs a character between the pipes for some renderers' column counts.
    return "| " + " | ".join(c or " " for c in cells) + " |"


def _write(out: IO[str], lines: Iterable[str]) -> None:
    for line in lines:
        out.write(line + "\n")


# --- migrate --dry-run ---------------------------------------------------------------------------------------


def render_plan_markdown(
    plan: Plan,
    out: IO[str],
    *,
    exit_code: int,
    groups_for: GroupSource | None = None,
    allow_artifact_overlap: bool = False,
) -> None:
    """The dry run's report.  groups_for streams every group of a key (``--verbose``); without it each key
    shows the plan's sample (the first 5)."""
    summary = summary_line(plan, dry_run=True, allow_artifact_overlap=allow_artifact_overlap).plain
    _write(out, [f"## {escape(plan_title(plan))} (dry run, read-only)", ""])
    _write(out, [verdict_line(plan_verdict(plan, exit_code), exit_code, escape(summary)), ""])
    database = f"Database: {escape(plan.database)} ({escape(plan.dialect)}, {len(plan.schema.tables)} workspace tables)"
    _write(out, [database, ""])
    if other := other_sessions_line(plan.other_sessions):
        _write(out, [escape(other), ""])
    if plan.creates_default_workspace:
        _write(out, ["The `default` row is missing from the workspaces catalog; applying would create it.", ""])
    if plan.resources is not None:
        _write(out, selection_section(plan.resources))
    _write(out, moves_section(plan))
    if plan.conflicts:
        _write_conflicts(plan, out, groups_for)
    if plan.renames is not None and (plan.renames.renames or plan.renames.refused):
        _write(out, renames_section(plan))
    if plan.stored_content:
        _write(out, stored_content_section(plan))
    _write(out, artifact_section(plan))
    out.flush()


def renames_section(plan: Plan) -> list[str]:
    """--rename-conflicts: each rename old → new (the first few per table without --verbose), then every row
    that cannot be renamed (they block)."""
    renames = plan.renames
    assert renames is not None
    counts = renames.by_table()
    template = value(renames.policy.template.text)
    lines = [
        f"### Renames (--rename-conflicts {template}, --keep {escape(renames.policy.keep)}): "
        f"{len(renames.renames):,} row(s) in {len(counts)} table(s)",
        "",
    ]
    rows = []
    for name, n in counts.items():
        of_table = [r for r in renames.renames if r.table == name]
        shown = of_table if plan.sample_limit is None else of_table[: plan.sample_limit]
        rows += [(escape(r.table), _rename_row(r), value(r.old), value(r.new)) for r in shown]
        if len(shown) < n:
            rows.append((escape(name), f"… {n - len(shown):,} more (use --verbose or JSON)", "", ""))
    if rows:
        lines += [*table(("table", "row", "old", "new"), rows), ""]
    if renames.refused:
        lines += [f"**Cannot rename: {len(renames.refused):,} row(s) (they stay conflicts)**", ""]
        refused = [(escape(r.table), _rename_row(r), value(r.old), escape(r.reason)) for r in renames.refused]
        lines += [*table(("table", "row", "name", "why"), refused), ""]
    return lines


def _rename_row(r: Any) -> str:
    ident = ", ".join(f"{escape(c)}={value(v)}" for c, v in r.key)
    return f"{escape(workspace_label(r.workspace))} ({ident})"


def stored_content_section(plan: Plan) -> list[str]:
    """Rows refused because MLflow stores their content under their workspace (no option overrides it)."""
    rows = plan.stored_content
    lines = [f"### Refused: {len(rows):,} row(s) whose content MLflow stores in their workspace", ""]
    cells = [(escape(r.table), _rename_row(r), value(r.location)) for r in rows]
    lines += [*table(("table", "row", "content"), cells), ""]
    target = plan.move.target
    return [*lines, escape(stored_content.refusal(target)), "", f"Fix: {escape(stored_content.fix(rows, target))}", ""]


def selection_section(selection: ResourceSelection) -> list[str]:
    """move-resources' choices: the selected root rows, names not found, and every reference found."""
    chosen = ", ".join(f"{s.table}: {len(s.keys):,}" for s in selection.selected if s.keys) or "nothing"
    lines = [f"Selected root rows: {escape(chosen)}", ""]
    if selection.unmatched_names:
        lines += [f"Not found (skipped): {escape(', '.join(quoted(n) for n in selection.unmatched_names))}", ""]
    for title, refs in (
        ("Pulled along (referenced by moving rows)", selection.pulled_along),
        ("**References left behind (blocking)**", selection.references_left_behind),
    ):
        if refs:
            lines += [f"{title}: {len(refs):,}", "", *(f"- {escape(line)}" for line in describe_references(refs)), ""]
    if selection.relocation is not None:
        head, *rest = relocation_lines(selection.relocation, None)
        lines += [escape(head[0]), "", *(f"- {escape(text.strip())}" for text, _ in rest), ""]
    return lines


def plan_verdict(plan: Plan, exit_code: int) -> str:
    if exit_code:
        return "BLOCKED"
    return "NOTHING TO MOVE" if plan.nothing_to_do else "PASS"


def moves_section(plan: Plan) -> list[str]:
    moving = [m for m in plan.moves if m.rows_to_move]
    lines = [f"### Rows to move into {plan.target_label}", ""]
    if not moving:
        return [*lines, f"No rows to move: {escape(nothing_there(plan))}.", ""]
    rows = [(escape(m.table), f"{m.rows_to_move:,}", top_workspaces(m.by_workspace)) for m in moving]
    rows.append(("**total**", f"**{plan.total_rows_to_move:,}**", ""))
    lines += table(("table", "rows", "largest source workspaces"), rows, align="-r")
    if idle := len(plan.moves) - len(moving):
        lines += ["", f"{idle} other workspace table(s) have nothing to move."]
    return [*lines, ""]


def top_workspaces(by_workspace: Iterable[tuple[str | None, int]]) -> str:
    """The largest sources first (ties by name), at most TOP_WORKSPACES, then how many more."""
    ranked = sorted(by_workspace, key=lambda p: (-p[1], *workspace_order(p[0])))
    shown = ", ".join(f"{escape(workspace_label(ws))}: {n:,}" for ws, n in ranked[:TOP_WORKSPACES])
    more = len(ranked) - TOP_WORKSPACES
    return f"{shown}, … {more:,} more workspaces" if more > 0 else shown


def _write_conflicts(plan: Plan, out: IO[str], groups_for: GroupSource | None) -> None:
    tables = len({c.table for c in plan.conflicts})
    _write(
        out,
        [f"### Conflicts: {plan.conflict_count:,} group(s) in {tables} table(s) would collide in {plan.target_label}"],
    )
    for tc in plan.conflicts:
        columns = ", ".join(escape(c) for c in tc.key.columns)
        heading = f"#### {escape(tc.table)} — key ({columns}) from {escape(tc.key.source)}: {tc.group_count:,} group(s)"
        _write(out, ["", heading, ""])
        _write(out, table(("key", "rows (workspace and identity)", "dependent rows"), [], align="--r"))
        shown = 0
        # One line per group as it arrives: --verbose streams from the cursor, so memory stays flat.
        for group in groups_for(tc) if groups_for else tc.sample:
            out.write(_row(group_cells(group)) + "\n")
            shown += 1
        if shown < tc.group_count:
            _write(out, ["", f"… {tc.group_count - shown:,} more group(s) (use --verbose to list all)"])
        fix = "resolved by --rename-conflicts (see Renames)" if plan.resolved(tc) else escape(tc.fix_hint)
        _write(out, ["", f"Fix: {fix}"])
    out.write("\n")


def group_cells(group: ConflictGroup) -> tuple[str, str, str]:
    key = ", ".join(f"{escape(col)}={value(val)}" for col, val in group.key)
    # A case-insensitive group: each row's own spelling of the key where it differs from the group's.
    rows = _BR.join(
        _row_label(r.workspace, r.identity + (r.stored_key if r.stored_key != group.key else ()), r.deleted)
        for r in group.rows
    )
    deps = f"{group.dependent_rows:,}"
    if group.dependents:
        deps += " (" + ", ".join(f"{escape(t)}: {n:,}" for t, n in group.dependents) + ")"
    return key, rows, deps


def _row_label(workspace: str | None, identity: Iterable[tuple[str, Any]], deleted: bool) -> str:
    parts = [f"{escape(col)}={value(val)}" for col, val in identity]
    if deleted:
        parts.append("deleted: restore or purge it first")
    label = escape(workspace_label(workspace))
    return f"{label} ({', '.join(parts)})" if parts else label


def artifact_section(plan: Plan) -> list[str]:
    """Findings grouped by kind, plan.sample_limit per kind (all when None, i.e. --verbose), each with its fix."""
    findings = plan.artifact_findings
    blocking = len(plan.blocking_artifact_findings)
    lines = [f"### Artifact findings: {blocking:,} blocking, {len(findings) - blocking:,} warning(s)", ""]
    if plan.default_artifact_root is None:
        lines += ["No --default-artifact-root given: the reserved-path checks (&lt;root&gt;/...) were skipped.", ""]
    else:
        lines += [f"Artifact root: {escape(plan.default_artifact_root)}", ""]
    if not findings:
        return [*lines, "No artifact findings.", ""]
    for kind, count in artifacts.count_by_kind(findings).items():
        meaning, fix = artifact_kind_text(plan, kind)
        of_kind = [f for f in findings if f.kind == kind]
        shown = of_kind if plan.sample_limit is None else of_kind[: plan.sample_limit]
        lines += [f"#### {escape(kind)} — {escape(meaning)}: {count:,} finding(s)", ""]
        lines += table(("severity", "subject", "location", "detail"), (finding_cells(f) for f in shown))
        if len(shown) < count:
            lines += ["", f"… {count - len(shown):,} more (use --verbose to list all)"]
        lines += ["", f"Fix: {escape(fix)}", ""]
    return lines


def finding_cells(finding: artifacts.ArtifactFinding) -> tuple[str, str, str, str]:
    if finding.experiment_id is None:
        subject = f"workspace {value(finding.workspace)}"
    else:
        subject = f"experiment {escape(str(finding.experiment_id))} ({escape(workspace_label(finding.workspace))})"
    return escape(finding.severity), subject, value(finding.location), escape(finding.detail)


# --- restore-workspaces --dry-run ----------------------------------------------------------------------------


def render_restore_markdown(
    result: RestoreResult, out: IO[str], *, exit_code: int, database: str, journal_header: dict[str, Any]
) -> None:
    """What a restore would move back, what it could not find, and its conflicts (the first --max-conflicts)."""
    _write(out, ["## Restore workspaces from a journal (dry run, read-only)", ""])
    _write(out, [verdict_line(restore_verdict(result, exit_code), exit_code, restore_summary(result)), ""])
    journal = f"{journal_header.get('operation')} run of {journal_header.get('created_at')}"
    _write(out, [f"Database: {escape(database)} · Journal: {escape(journal)}", ""])
    _write(out, ["### Rows to move back", ""])
    moving = [(t, c) for t, c in result.moves.items() if c]
    if moving:
        rows = [(escape(t), f"{sum(c.values()):,}", top_workspaces(c.items())) for t, c in moving]
        rows.append(("**total**", f"**{result.total:,}**", ""))
        _write(out, table(("table", "rows", "largest destination workspaces"), rows, align="-r"))
    else:
        _write(out, ["No journaled row is where the run left it."])
    out.write("\n")
    _write(out, _restore_catalog_lines(result))
    if result.conflict_count:
        _write(out, [f"### Restore conflicts: {result.conflict_count:,}", ""])
        _write(
            out,
            table(
                ("table", "reason", "key", "back to workspace", "detail"), map(restore_conflict_cells, result.conflicts)
            ),
        )
        if len(result.conflicts) < result.conflict_count:
            _write(out, ["", f"… {result.conflict_count - len(result.conflicts):,} more"])
        _write(out, ["", "Fix: rename or delete the new rows that hold the journaled keys.", ""])
    out.flush()


def restore_verdict(result: RestoreResult, exit_code: int) -> str:
    if exit_code:
        return "BLOCKED"
    return "NOTHING TO RESTORE" if result.nothing_to_do else "PASS"


def restore_summary(result: RestoreResult) -> str:
    if result.conflict_count:
        return f"{result.conflict_count:,} restore conflict(s) must be fixed first. Nothing was changed."
    if result.nothing_to_do:
        return "Nothing to restore: no journaled row is where the run left it. Nothing was changed."
    return f"Dry run: {result.total:,} row(s) would move back. Nothing was changed."


def _restore_catalog_lines(result: RestoreResult) -> list[str]:
    lines = [f"- catalog row {value(n)} re-created" for n in result.workspaces_recreated]
    lines += [f"- catalog row {value(n)} (created by the journaled run) removed" for n in result.catalog_deleted]
    lines += [
        f"- {escape(t)}: {n:,} journaled row(s) no longer exist where the run left them; skipped"
        for t, n in result.missing.items()
    ]
    return [*lines, ""] if lines else []


def restore_conflict_cells(conflict: RestoreConflict) -> tuple[str, str, str, str, str]:
    key = ", ".join(f"{escape(col)}={value(val)}" for col, val in conflict.key)
    return (
        escape(conflict.table),
        escape(conflict.kind),
        key,
        escape(workspace_label(conflict.workspace)),
        escape(conflict.detail),
    )


# --- db preflight --------------------------------------------------------------------------------------------


def render_preflight_markdown(result: PreflightResult, out: IO[str], *, exit_code: int) -> None:
    """Every check as a table row: status, name, reason, and its examples (up to 5) in one cell."""
    counts = f"{result.count(PASS)} passed, {result.count(WARN)} warning(s), {result.count(FAIL)} failed: "
    summary = counts + ("fix the failed checks first." if result.failed else "nothing blocks.")
    _write(out, ["## Workspace preflight (read-only)", ""])
    _write(out, [verdict_line("FAIL" if exit_code else "PASS", exit_code, summary), ""])
    root = escape(result.default_artifact_root) if result.default_artifact_root else "(not given)"
    _write(out, [f"Database: {escape(result.database)} · Artifact root: {root}", ""])
    rows = (
        (c.status.upper(), escape(c.name), escape(c.reason), _BR.join(escape(d) for d in c.details))
        for c in result.checks
    )
    _write(out, [*table(("status", "check", "reason", "examples"), rows), ""])
    out.flush()
