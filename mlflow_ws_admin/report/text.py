"""The human report: Rich tables and lines rendered from a Plan.  No database access here.

User data is always wrapped in ``Text`` (never parsed as markup) and shown JSON-quoted, so a name like
``[red]x`` or one with a newline prints literally.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.segment import Segments
from rich.table import Table
from rich.text import Text

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.display import quoted, workspace_label, workspace_order
from mlflow_ws_admin.engine.plan import Plan
from mlflow_ws_admin.engine.selection import SAMPLE_NAMES, ResourceSelection, describe_references, retargeted
from mlflow_ws_admin.findings import artifacts, stored_content
from mlflow_ws_admin.findings.artifacts import display_location
from mlflow_ws_admin.findings.conflicts import ConflictGroup, ConflictRow, TableConflicts

if TYPE_CHECKING:  # apply's and restore's machinery are not needed to print a result (nor a dry run)
    from mlflow_ws_admin.engine.apply import ApplyResult
    from mlflow_ws_admin.engine.relocate import Relocation
    from mlflow_ws_admin.engine.restore import RestoreResult

GroupSource = Callable[[TableConflicts], Iterable[ConflictGroup]]
GROUP_PRINT_BATCH = 500
#: Source workspaces named per table in the rows-to-move table (the largest), and rows of the source-workspace
#: table without --verbose: the report keeps its length however many workspaces there are.
WORKSPACES_PER_TABLE = 5
WORKSPACE_TABLE_ROWS = 10


def render_plan(
    plan: Plan,
    console: Console,
    *,
    dry_run: bool,
    groups_for: GroupSource | None = None,
    allow_artifact_overlap: bool = False,
    max_groups: int | None = None,
) -> None:
    """The full plan: header, rows-to-move table, conflicts, artifact findings, summary line.

    groups_for streams every group of a key (``--verbose``); without it each key shows its sample.
    max_groups (``--max-conflicts``) caps the groups listed over all tables; the counts stay exact."""
    mode = "dry run, read-only" if dry_run else "plan"
    console.print(Text(f"{plan_title(plan)} ({mode})", style="bold"))
    console.print(Text(f"Database: {plan.database} ({plan.dialect}, {len(plan.schema.tables)} workspace tables)"))
    if other := other_sessions_line(plan.other_sessions):
        console.print(Text(other, style="yellow"))
    if plan.creates_default_workspace:
        console.print(
            Text(
                "The `default` row is missing from the workspaces catalog; it will be created.",
                style="yellow",
            )
        )
    console.print()
    if plan.resources is not None:
        render_selection(plan.resources, console, verbose=plan.sample_limit is None)
        console.print()
    _render_moves(plan, console)
    if plan.total_rows_to_move and plan.resources is None:
        console.print()
        _render_source_workspaces(plan, console)
    if plan.conflicts:
        console.print()
        _render_conflicts(plan, console, groups_for, max_groups)
    if plan.renames is not None and (plan.renames.renames or plan.renames.refused):
        console.print()
        render_renames(plan, console)
    if plan.stored_content:
        console.print()
        render_stored_content(plan, console)
    console.print()
    if plan.checked_during_apply:
        console.print(Text("Artifact findings: checked under the lock while the rows move (listed after)."))
    else:
        render_artifact_findings(plan, console)
    console.print()
    console.print(summary_line(plan, dry_run=dry_run, allow_artifact_overlap=allow_artifact_overlap), style="bold")


def other_sessions_line(sessions: tuple[str, ...] | None) -> str | None:
    """A warning when other sessions use the database (a tracking server still running?), or when the
    database cannot tell (SQLite)."""
    if sessions is None:
        return "Other sessions: SQLite cannot tell whether a tracking server still uses this file; stop it first."
    if not sessions:
        return None
    shown = "; ".join(sessions[:5]) + (f"; and {len(sessions) - 5} more" if len(sessions) > 5 else "")
    return (
        f"Warning: {len(sessions)} other session(s) are connected to this database ({shown}); apply refuses "
        "until they are gone (a tracking server with workspaces on would go on writing), or --ignore-other-sessions."
    )


def _render_moves(plan: Plan, console: Console) -> None:
    moving = [m for m in plan.moves if m.rows_to_move]
    if not moving:
        console.print(Text(f"No rows to move: {nothing_there(plan)}."))
        return
    table = Table(title=f"Rows to move into {plan.target_label}", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("from workspace (largest first)")
    for m in moving:
        table.add_row(Text(m.table), Text(f"{m.rows_to_move:,}"), Text(largest_sources(m.by_workspace)))
    table.add_section()
    table.add_row(Text("total", style="bold"), Text(f"{plan.total_rows_to_move:,}", style="bold"), Text(""))
    print_table(console, table)
    idle = len(plan.moves) - len(moving)
    if idle:
        console.print(Text(f"{idle} other workspace table(s) have nothing to move."))


def print_table(console: Console, table: Table) -> None:
    """A terminal gets the table fitted to its width.  Off one (logs, pipes: 80 columns by default) it is
    printed at its natural width, one line per row, as long lines of text stay whole there (soft wrap): a
    log's length then does not depend on how many workspaces a cell names."""
    if console.is_terminal:
        console.print(table)
        return
    # Unpadded at an unbounded width, a table not set to expand renders at its natural width: one pass, where
    # measuring that width first and then rendering at it measured every cell twice.
    lines = console.render_lines(table, console.options.update_width(_UNBOUNDED), pad=False, new_lines=True)
    console.print(Segments(segment for line in lines for segment in line), crop=False)


_UNBOUNDED = 1_000_000


def largest_sources(by_workspace: Iterable[tuple[str | None, int]], shown: int = WORKSPACES_PER_TABLE) -> str:
    """The ``shown`` workspaces with the most rows, then how many more there are."""
    ordered = _most_rows_first(by_workspace)
    text = ", ".join(f"{workspace_label(ws)}: {n:,}" for ws, n in ordered[:shown])
    if (more := len(ordered) - shown) > 0:
        text += f", … {more:,} more workspace{'s' if more > 1 else ''}"
    return text


def _most_rows_first(counts: Iterable[tuple[str | None, int]]) -> list[tuple[str | None, int]]:
    return sorted(counts, key=lambda p: (-p[1], *workspace_order(p[0])))


def _render_source_workspaces(plan: Plan, console: Console) -> None:
    """One line per source workspace: its rows over every table and its conflict groups.  The first
    WORKSPACE_TABLE_ROWS by rows, all of them when the plan lists everything (--verbose)."""
    ordered = _most_rows_first(plan.rows_by_workspace().items())
    shown = ordered if plan.sample_limit is None else ordered[:WORKSPACE_TABLE_ROWS]
    # With -y the conflicts are left to apply's lock, so there is nothing to count here.
    groups = None if plan.checked_during_apply else plan.conflict_groups_by_workspace()
    table = Table(title=f"Source workspaces: {len(ordered):,}, most rows first", title_justify="left")
    table.add_column("workspace")
    table.add_column("rows", justify="right")
    if groups is not None:
        table.add_column("conflict groups", justify="right")
    for ws, n in shown:
        cells = [Text(workspace_label(ws)), Text(f"{n:,}")]
        if groups is not None:
            cells.append(Text(f"{groups.get(ws, 0):,}"))
        table.add_row(*cells)
    print_table(console, table)
    if (more := len(ordered) - len(shown)) > 0:
        console.print(Text(f"… {more:,} more workspace{'s' if more > 1 else ''} (use --verbose to list all)"))


def _render_conflicts(plan: Plan, console: Console, groups_for: GroupSource | None, max_groups: int | None) -> None:
    tables = sorted({c.table for c in plan.conflicts})
    console.print(
        Text(
            f"Conflicts: {plan.conflict_count:,} group(s) in {len(tables)} table(s) would collide in {plan.target_label}",
            style="bold red",
        )
    )
    listed = 0
    for tc in plan.conflicts:
        console.print()
        console.print(
            Text(
                f"{tc.table} — key ({', '.join(tc.key.columns)}) from {tc.key.source}: {tc.group_count:,} group(s)",
                style="bold",
            )
        )
        shown = 0
        batch: list[Text] = []
        groups = groups_for(tc) if groups_for else tc.sample
        if max_groups is not None:
            groups = itertools.islice(groups, max(0, max_groups - listed))
        resolved = plan.resolved(tc)
        for group in groups:
            batch.append(group_line(group, prompt=plan.is_prompt_group(tc, group)))
            if not resolved:
                batch.append(Text(f"    fix: {plan.group_fix(tc, group)}", style="cyan"))
            shown += 1
            # Rich's cost is per print call, so a 60k-group report prints in batches; the first group goes
            # out alone, so a long report starts at once.
            if shown == 1 or len(batch) >= GROUP_PRINT_BATCH:
                console.print(Text("\n").join(batch))
                batch = []
        if batch:
            console.print(Text("\n").join(batch))
        listed += shown
        if shown < tc.group_count:
            console.print(Text(f"  ... {tc.group_count - shown:,} more (use --verbose to list all)"))
        if plan.resolved(tc):
            console.print(Text("  resolved by --rename-conflicts: see the renames below", style="green"))
        else:
            console.print(Text(f"  fix: {tc.fix_hint}", style="cyan"))


def render_renames(plan: Plan, console: Console) -> None:
    """Every rename as old → new, per table (the first few without --verbose), then the rows that cannot be
    renamed (all of them: they block), then what a rename breaks outside the database."""
    renames = plan.renames
    assert renames is not None
    counts = renames.by_table()
    template = renames.policy.template.text
    console.print(
        Text(
            f"Renames (--rename-conflicts {quoted(template)}, --keep {renames.policy.keep}): "
            f"{len(renames.renames):,} row(s) in {len(counts)} table(s)",
            style="bold",
        )
    )
    limit = plan.sample_limit
    for table, n in counts.items():
        console.print(Text(f"{table}: {n:,} row(s)", style="bold"))
        of_table = [r for r in renames.renames if r.table == table]
        shown = of_table if limit is None else of_table[:limit]
        console.print(
            Text("\n").join(Text(f"  {_rename_subject(r)}: {quoted(r.old)} → {quoted(r.new)}") for r in shown)
        )
        if len(shown) < n:
            console.print(Text(f"  ... {n - len(shown):,} more (use --verbose or --format json to list all)"))
    if renames.refused:
        console.print(Text(f"Cannot rename: {len(renames.refused):,} row(s) (they stay conflicts)", style="bold red"))
        for r in renames.refused:
            console.print(Text(f"  {r.table} {_rename_subject(r)} {quoted(r.old)}: {r.reason}"))
    if renames.renames:
        console.print(
            Text(
                "  Names change in the database only: code, URIs and bookmarks that name them (models:/<old>/1, "
                "prompts:/<old>@prod, an experiment's name) must use the new names; db restore-workspaces with "
                "the --journal puts the old names back.",
                style="yellow",
            )
        )


def _rename_subject(r: Any) -> str:
    ident = ", ".join(f"{c}={quoted(v)}" for c, v in r.key)
    return f"{workspace_label(r.workspace)} ({ident})"


def group_line(group: ConflictGroup, *, prompt: bool = False) -> Text:
    key = ", ".join(f"{col}={quoted(val)}" for col, val in group.key)
    if prompt:  # a prompt is stored as a registered model, but MLflow's model calls do not find it
        key += " (prompt)"
    rows = "; ".join(_row_label(r, group.key) for r in group.rows)
    line = Text(f"  {key}: {rows}")
    if group.dependent_rows:
        deps = ", ".join(f"{t}: {n:,}" for t, n in group.dependents)
        line.append(f" (+{group.dependent_rows:,} dependent rows: {deps})")
    return line


def _row_label(row: ConflictRow, group_key: tuple[tuple[str, Any], ...] = ()) -> str:
    parts = [f"{col}={quoted(val)}" for col, val in row.identity]
    # A case-insensitive collation groups several spellings under one key: show each row's own.
    if row.stored_key and row.stored_key != group_key:
        parts += [f"{col}={quoted(val)}" for col, val in row.stored_key]
    if row.deleted:
        parts.append(f"{mlflow_facts.LIFECYCLE_COLUMN}=deleted: restore or purge it first")
    label = workspace_label(row.workspace)
    return f"{label} ({', '.join(parts)})" if parts else label


def summary_line(plan: Plan, *, dry_run: bool, allow_artifact_overlap: bool = False) -> Text:
    moving = sum(1 for m in plan.moves if m.rows_to_move)
    what = f"{plan.total_rows_to_move:,} row(s) in {moving} table(s)"
    blocking_artifacts = len(plan.blocking_artifact_findings)
    reasons = []
    if plan.renames is not None:
        if unresolved := [c for c in plan.conflicts if not plan.resolved(c)]:
            n = sum(c.group_count for c in unresolved)
            reasons.append(f"{n:,} conflict group(s) in {len({c.table for c in unresolved})} table(s)")
        if refused := len(plan.renames.refused):
            reasons.append(f"{refused:,} row(s) that --rename-conflicts cannot rename")
    elif plan.conflict_count:
        blocked = len({c.table for c in plan.conflicts})
        reasons.append(f"{plan.conflict_count:,} conflict group(s) in {blocked} table(s)")
    if plan.resources and (left := len(plan.resources.references_left_behind)):
        reasons.append(f"{left:,} reference(s) from rows left behind")
    if plan.stored_content:
        reasons.append(f"{len(plan.stored_content):,} row(s) whose content MLflow stores in their workspace")
    if blocking_artifacts and not allow_artifact_overlap:
        reasons.append(f"{blocking_artifacts:,} blocking artifact finding(s) (or --allow-artifact-overlap)")
    if reasons:
        return Text(f"Blocked: {' and '.join(reasons)} must be fixed before {what} can move. Nothing was changed.")
    target = plan.target_label
    if plan.nothing_to_do:
        line = f"Nothing to move: {nothing_there(plan)}. Nothing was changed."
    elif dry_run and plan.renames is not None and plan.renames.renames:
        line = (
            f"Dry run: {what} would move to {target}, {len(plan.renames.renames):,} colliding row(s) renamed "
            "first. Nothing was changed."
        )
    elif dry_run:
        line = f"Dry run: {what} would move to {target}; no conflicts. Nothing was changed."
    elif plan.checked_during_apply:
        line = (
            f"Ready: {what} will move to {target}; name conflicts and artifact findings are checked under the "
            "lock as the rows move (a blocking one rolls everything back and is listed)."
        )
    elif plan.renames is not None and plan.renames.renames:
        line = f"Ready: {what} will move to {target}, {len(plan.renames.renames):,} colliding row(s) renamed first."
    else:
        line = f"Ready: {what} will move to {target}; no conflicts."
    notes = []
    if blocking_artifacts:
        notes.append(f"{blocking_artifacts:,} blocking artifact finding(s) allowed by --allow-artifact-overlap")
    if warnings := len(plan.artifact_findings) - blocking_artifacts:
        notes.append(f"{warnings:,} artifact warning(s)")
    return Text(f"{line} ({'; '.join(notes)})" if notes else line)


#: kind -> (what it means, how to fix it)
ARTIFACT_KIND_TEXT = {
    artifacts.OVERLAP: (
        "experiments whose artifact locations are equal or nested (blocking across workspaces)",
        "give each experiment its own artifact location: copy the artifacts and update artifact_location",
    ),
    artifacts.RESERVED_COLLISION: (
        "locations equal to <root>/<id> of a different experiment",
        "move these artifacts elsewhere and update artifact_location before migrating",
    ),
    artifacts.RESERVED_SQUATTING: (
        "locations under <root>/workspaces/<ws>/ that belong to another workspace's layout",
        "move or rename these artifact roots before enabling workspaces",
    ),
    artifacts.PROXIED_PATH: (
        "mlflow-artifacts: paths under workspaces/<ws>/ that the proxy rejects for `default`",
        "disable workspaces after the migration (restart the server without --enable-workspaces)",
    ),
    artifacts.WORKSPACE_ROOT_OVERLAP: (
        "workspace default_artifact_root values that overlap each other or <root>/workspaces/",
        "give each workspace a root of its own outside <root>/workspaces/",
    ),
}


def render_stored_content(plan: Plan, console: Console) -> None:
    """Rows whose content MLflow stores under their workspace: refused, whatever the options."""
    rows = plan.stored_content
    console.print(
        Text(f"Refused: {len(rows):,} row(s) whose content MLflow stores in their workspace", style="bold red")
    )
    shown = rows if plan.sample_limit is None else rows[: plan.sample_limit]
    for row in shown:
        console.print(Text(f"  {workspace_label(row.workspace)}: {row.describe()} {quoted(row.location)}"))
    if len(shown) < len(rows):
        console.print(Text(f"  ... {len(rows) - len(shown):,} more (use --verbose to list all)"))
    console.print(Text(f"  {stored_content.refusal(plan.move.target)}", style="red"))
    console.print(Text(f"  fix: {stored_content.fix(rows, plan.move.target)}", style="cyan"))


#: move-resources' own words where they differ from migrate's (the proxy judges a path by the move's target)
MOVE_ARTIFACT_KIND_TEXT = {
    artifacts.PROXIED_PATH: (
        "mlflow-artifacts: paths the proxy serves only to their own workspace (workspaces/<ws>/, or `default` for "
        "a legacy <id> path): unreadable through the server once moved",
        "move with --artifact-policy relocate: the objects move under the target workspace's path and every "
        "stored URI follows (retarget and preserve leave what was logged before unreadable)",
    ),
}


def artifact_kind_text(plan: Plan, kind: str) -> tuple[str, str]:
    """(what the kind means, how to fix it) for this plan's command."""
    if plan.resources is not None and kind in MOVE_ARTIFACT_KIND_TEXT:
        return MOVE_ARTIFACT_KIND_TEXT[kind]
    return ARTIFACT_KIND_TEXT[kind]


def render_artifact_findings(plan: Plan, console: Console) -> None:
    """Findings grouped by kind; each kind shows plan.sample_limit findings unless it is None (--verbose)."""
    findings = plan.artifact_findings
    blocking = len(plan.blocking_artifact_findings)
    if plan.default_artifact_root is None:
        console.print(
            Text(
                "No --default-artifact-root given: the reserved-path checks (<root>/...) were skipped.", style="yellow"
            )
        )
    else:
        console.print(Text(f"Artifact root: {plan.default_artifact_root}"))
    if not findings:
        console.print(Text("No artifact findings."))
        return
    console.print(
        Text(
            f"Artifact findings: {blocking:,} blocking, {len(findings) - blocking:,} warning(s)",
            style="bold red" if blocking else "bold yellow",
        )
    )
    for kind, count in artifacts.count_by_kind(findings).items():
        meaning, fix = artifact_kind_text(plan, kind)
        console.print()
        console.print(Text(f"{kind} — {meaning}: {count:,} finding(s)", style="bold"))
        of_kind = (f for f in findings if f.kind == kind)
        shown = 0
        for finding in of_kind:
            if plan.sample_limit is not None and shown >= plan.sample_limit:
                break
            console.print(finding_line(finding))
            shown += 1
        if shown < count:
            console.print(Text(f"  ... {count - shown:,} more (use --verbose to list all)"))
        console.print(Text(f"  fix: {fix}", style="cyan"))


def finding_line(finding: artifacts.ArtifactFinding) -> Text:
    subject = (
        f"workspace {quoted(finding.workspace)}"
        if finding.experiment_id is None
        else f"experiment {finding.experiment_id} ({workspace_label(finding.workspace)})"
    )
    return Text(f"  {finding.severity}: {subject} {quoted(finding.location)}: {finding.detail}")


def plan_title(plan: Plan) -> str:
    if plan.resources is None:
        return "Migrate to the `default` workspace"
    return f"Move resources from {quoted(plan.resources.source)} to {quoted(plan.resources.target)}"


def nothing_there(plan: Plan) -> str:
    if plan.resources is None:
        return "every workspace row is already in `default`"
    return f"nothing selected in {quoted(plan.resources.source)}"


def render_selection(selection: ResourceSelection, console: Console, *, verbose: bool) -> None:
    """What move-resources chose, what comes along, what blocks it, and what happens to artifacts."""
    chosen = ", ".join(f"{s.table}: {len(s.keys):,}" for s in selection.selected if s.keys) or "nothing"
    console.print(Text(f"Selected root rows: {chosen}"))
    if selection.unmatched_names:
        names = ", ".join(quoted(n) for n in selection.unmatched_names)
        console.print(Text(f"Not found in {quoted(selection.source)} (skipped): {names}", style="yellow"))
    limit = None if verbose else SAMPLE_NAMES
    if selection.pulled_along:
        console.print(Text(f"Pulled along, because a moving row references them: {len(selection.pulled_along):,}"))
        for line in describe_references(selection.pulled_along, limit):
            console.print(Text(f"  {line}"))
        _more(console, len(selection.pulled_along), limit)
    if left := selection.references_left_behind:
        console.print(
            Text(
                f"References left behind: {len(left):,} row(s) staying in {quoted(selection.source)} reference a "
                "moving row (they would point into another workspace)",
                style="bold red",
            )
        )
        for line in describe_references(left, limit):
            console.print(Text(f"  {line}"))
        _more(console, len(left), limit)
        console.print(
            Text(
                "  fix: add those rows to the move (--resource-type/--name), or drop the references first", style="cyan"
            )
        )
    if selection.relocation is not None:
        render_relocation(selection.relocation, console, limit)
    elif selection.retarget_root:
        console.print(
            Text(
                f"Artifacts: retarget: moved experiments get artifact_location "
                f"{retargeted(selection.retarget_root, '<experiment_id>')}; "
                "no artifact is copied: new runs land in DST's layout, but the artifacts logged before the move "
                "stay where they are (through a server with workspaces on, unreadable in DST)."
            )
        )
    else:
        console.print(
            Text(
                "Artifacts: preserve: moved experiments keep their artifact_location; no artifact is copied, and "
                "runs keep their stored artifact URIs."
            )
        )


def relocation_lines(relocation: Relocation, limit: int | None) -> list[tuple[str, str]]:
    """(text, style) lines: the prefixes that move, what is left alone, the stored URIs rewritten, what blocks.
    Shared by the text and Markdown reports."""
    lines = [
        (
            f"Artifacts: relocate: {len(relocation.moves):,} experiment prefix(es), {relocation.objects:,} object(s), "
            f"{relocation.bytes:,} byte(s) move with the experiments (copied and verified before the commit, the old "
            "objects deleted after it)",
            "",
        )
    ]
    moves = relocation.moves if limit is None else relocation.moves[:limit]
    lines += [
        (
            f"  experiment {m.experiment_id}: {quoted(display_location(m.from_uri))} -> "
            f"{quoted(display_location(m.to_uri))} ({m.objects:,} object(s), {m.bytes:,} byte(s))",
            "",
        )
        for m in moves
    ]
    if len(moves) < len(relocation.moves):
        lines.append((f"  ... {len(relocation.moves) - len(moves):,} more (use --verbose to list all)", ""))
    for c in relocation.columns:
        note = "" if c.known else " (not a column MLflow is known to store URIs in: check it)"
        lines.append(
            (f"  stored URIs rewritten: {c.table}.{c.column}: {c.rows:,} row(s){note}", "" if c.known else "yellow")
        )
    for ident, location in relocation.left_alone:
        lines.append(
            (
                f"  left alone: experiment {ident} {quoted(display_location(location))} follows no server-derived "
                "layout (its objects are not moved)",
                "yellow",
            )
        )
    for model, version in relocation.split_versions:
        lines.append(
            (
                f"  split: registered model {quoted(model)} version {version} stays behind while the files it points "
                "at move: it reads again only once the model moves too (add --resource-type registered_models "
                f"--name {model}), or accept the split",
                "yellow",
            )
        )
    for where in relocation.occupied:
        lines.append(
            (
                f"  blocking: {quoted(display_location(where))} already holds other objects (never overwritten)",
                "bold red",
            )
        )
    return lines


def render_relocation(relocation: Relocation, console: Console, limit: int | None) -> None:
    for line, style in relocation_lines(relocation, limit):
        console.print(Text(line, style=style))


def _more(console: Console, total: int, limit: int | None) -> None:
    if limit is not None and total > limit:
        console.print(Text(f"  ... {total - limit:,} more (use --verbose to list all)"))


def render_apply_result(
    result: ApplyResult, console: Console, target: str = mlflow_facts.DEFAULT_WORKSPACE, *, journal: str | None = None
) -> None:
    if not result.total_moved and not result.created_default_workspace:
        console.print(
            Text("Nothing left to move under the lock (another run moved the rows since the plan); nothing changed."),
            style="bold",
        )
        return
    moved = [(t, n) for t, n in result.moved if n]
    for t, n in moved:
        console.print(Text(f"  moved {n:,} row(s) of {t}"))
    if result.created_default_workspace:
        console.print(Text("  created the `default` workspace row"))
    if result.workspaces_pruned:
        names = ", ".join(quoted(n) for n in result.workspaces_pruned)
        console.print(Text(f"  pruned {len(result.workspaces_pruned)} emptied workspace(s) from the catalog: {names}"))
    if result.artifact_locations_retargeted:
        console.print(
            Text(f"  repointed the artifact_location of {result.artifact_locations_retargeted:,} experiment(s)")
        )
    if (rel := result.relocated) is not None:
        console.print(
            Text(
                f"  relocated the artifacts of {len(rel.moves):,} experiment(s): {rel.objects_copied:,} object(s) "
                "copied by this run and verified"
            )
        )
        for c in rel.uris_rewritten:
            console.print(Text(f"  rewrote {c.rows:,} stored URI(s) in {c.table}.{c.column}"))
        gone = "kept (--keep-source-artifacts)" if rel.objects_deleted is None else f"{rel.objects_deleted:,} deleted"
        console.print(Text(f"  old objects, after the commit: {gone}"))
    for t, n in result.renamed:
        console.print(Text(f"  renamed {n:,} row(s) of {t}"))
    if result.renamed:
        where = (
            f"the journal {journal} (column_set records; db restore-workspaces puts the old names back)"
            if journal
            else "--format json `renames` lists them all (no --journal was written, so there is no restore)"
        )
        console.print(Text(f"  the list of renames (old → new): {where}"))
    console.print(
        Text(
            f"Done: moved {result.total_moved:,} row(s) in {len(moved)} table(s) into `{target}`; committed.",
            style="bold green",
        )
    )


def render_restore(
    result: RestoreResult, console: Console, journal_header: dict[str, Any], *, awaiting_confirmation: bool = False
) -> None:
    """What a restore moved back (or would, or will once confirmed), what it could not find, its conflicts."""
    mode = "plan" if awaiting_confirmation else "dry run, read-only" if result.dry_run else "restore"
    console.print(Text(f"Restore workspaces from a journal ({mode})", style="bold"))
    console.print(Text(f"Journal: {journal_header.get('operation')} run of {journal_header.get('created_at')}"))
    for table, counts in result.moves.items():
        if counts:
            breakdown = ", ".join(f"{workspace_label(ws)}: {n:,}" for ws, n in sorted(counts.items(), key=str))
            console.print(Text(f"  {table}: {sum(counts.values()):,} row(s) back to {breakdown}"))
    for name in result.workspaces_recreated:
        console.print(Text(f"  catalog row {quoted(name)} re-created"))
    for name in result.catalog_deleted:
        console.print(Text(f"  catalog row {quoted(name)} (created by the journaled run) removed"))
    if result.columns_restored:
        if other := result.columns_restored - result.names_restored:
            console.print(Text(f"  {other:,} changed column value(s) (artifact locations) put back"))
        if result.names_restored:
            console.print(
                Text(f"  {result.names_restored:,} value(s) changed by --rename-conflicts put back (names, digests)")
            )
    for m in result.artifact_moves:
        console.print(
            Text(
                f"  artifacts of experiment {m.experiment_id}: {quoted(display_location(m.from_uri))} -> "
                f"{quoted(display_location(m.to_uri))}"
            )
        )
    for c in result.artifact_uris_rewritten:
        console.print(Text(f"  rewrote {c.rows:,} stored URI(s) in {c.table}.{c.column} back"))
    if result.applied and result.artifact_moves:
        console.print(
            Text(
                f"  {result.artifact_objects_copied:,} object(s) copied back, {result.artifact_objects_deleted:,} "
                "deleted from the moved prefixes after the commit"
            )
        )
    for table, n in result.missing.items():
        console.print(Text(f"  {table}: {n:,} journaled row(s) no longer exist where the run left them; skipped"))
    if result.conflict_count:
        console.print(Text(f"Restore conflicts: {result.conflict_count:,}", style="bold red"))
        for c in result.conflicts:
            key = ", ".join(f"{col}={quoted(val)}" for col, val in c.key)
            console.print(Text(f"  {c.table} {c.kind}: {key} -> {workspace_label(c.workspace)}: {c.detail}"))
        if len(result.conflicts) < result.conflict_count:
            console.print(Text(f"  ... {result.conflict_count - len(result.conflicts):,} more"))
        console.print(
            Text("Blocked: fix the conflicts (rename or delete the new rows). Nothing was changed."), style="bold"
        )
    elif result.nothing_to_do:
        console.print(Text("Nothing to restore: no journaled row is where the run left it. Nothing was changed."))
    elif result.applied:
        console.print(Text(f"Done: moved {result.total:,} row(s) back; committed.", style="bold green"))
    elif awaiting_confirmation:
        console.print(Text(f"Ready: {result.total:,} row(s) will move back, in one transaction."), style="bold")
    else:
        console.print(Text(f"Dry run: {result.total:,} row(s) would move back. Nothing was changed."), style="bold")
