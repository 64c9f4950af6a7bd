"""The startup checks for turning workspaces on or off, as data: each check is pass, warn or fail with a one-line
reason.  Nothing here prints or writes; ``run_preflight`` only reads.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import Connection

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.display import quoted, workspace_label
from mlflow_ws_admin.common.errors import NotAWorkspaceDatabase
from mlflow_ws_admin.db.schema import WorkspaceSchema, reflect_schema
from mlflow_ws_admin.engine import artifact_scan, queries
from mlflow_ws_admin.engine.plan import Plan, build_plan
from mlflow_ws_admin.findings import artifacts, server_probe, stored_content
from mlflow_ws_admin.findings.artifacts import ArtifactFinding, normalize_location
from mlflow_ws_admin.findings.checks import DISABLE, ENABLE, FAIL, MAX_DETAILS, PASS, WARN, Check, PreflightResult
from mlflow_ws_admin.findings.server_probe import ServerFeatures

_NAME = re.compile(mlflow_facts.WORKSPACE_NAME_PATTERN)


def run_preflight(
    conn: Connection,
    *,
    database: str,
    default_artifact_root: str | None,
    server: ServerFeatures | None = None,
    direction: str = DISABLE,
) -> PreflightResult:
    """Every check of the direction, in a fixed order.  A database without the workspace schema fails the
    first check and skips the checks that need it."""
    checks: list[Check] = []
    try:
        schema = reflect_schema(conn)
    except NotAWorkspaceDatabase as exc:
        schema = None
        checks.append(Check("workspace schema", FAIL, exc.message))
    rows_outside = None
    if schema is not None:
        checks.append(schema_check(schema))
        names = tuple(conn.execute(queries.catalog_names(schema.catalog)).scalars())
        checks.append(default_row_check(names, direction))
        if direction == ENABLE:
            checks.append(workspace_names_check(names))
    checks.append(artifact_root_check(default_artifact_root, direction))
    if schema is not None and direction == DISABLE:
        plan = build_plan(
            conn, schema, database=database, sample_limit=MAX_DETAILS, default_artifact_root=default_artifact_root
        )
        rows_outside = plan.total_rows_to_move
        checks.append(conflicts_check(plan))
        checks.append(rows_outside_check(plan))
        # The dry run's own findings, every kind: the check and the dry run list the same (docs/preflight.md).
        checks.append(artifact_findings_check(plan.artifact_findings))
        checks.append(stored_content_check(plan))
        checks.append(other_sessions_check(plan.other_sessions))
    elif schema is not None:
        findings = artifact_scan.read_artifact_findings(conn, schema, default_artifact_root)
        checks.append(reserved_path_check(findings, default_artifact_root))
        checks.append(artifact_findings_check(tuple(f for f in findings if f.kind != artifacts.RESERVED_SQUATTING)))
    if server is not None:
        checks.append(server_check(server, direction, rows_outside))
    shown_root = artifacts.display_location(default_artifact_root) if default_artifact_root else None
    return PreflightResult(database, shown_root, tuple(checks), direction)


def conflicts_check(plan: Plan) -> Check:
    """What makes migrate-to-default-workspace exit 1: every name collision, counted as it counts them."""
    if not plan.conflicts:
        return Check("name conflicts", PASS, "no two workspaces hold the same name of any per-workspace key")
    tables = ", ".join(f"{tc.table} ({', '.join(tc.key.columns)}): {tc.group_count:,}" for tc in plan.conflicts)
    examples = tuple(
        f"{tc.table}: "
        + "; ".join(f"{c}={quoted(v)}" for c, v in group.key)
        + " in "
        + ", ".join(workspace_label(r.workspace) for r in group.rows)
        for tc in plan.conflicts
        for group in tc.sample
    )[:MAX_DETAILS]
    return Check(
        "name conflicts",
        FAIL,
        f"{plan.conflict_count:,} group(s) would collide in `default` ({tables}): migrate-to-default-workspace "
        "--dry-run --verbose lists them all",
        examples,
    )


def rows_outside_check(plan: Plan) -> Check:
    """Informational: how much the migration moves (0 once it ran)."""
    if not plan.total_rows_to_move:
        return Check("rows outside default", PASS, "none: every row already sits in `default`")
    sources = len({ws for m in plan.moves for ws, _ in m.by_workspace})
    return Check(
        "rows outside default",
        PASS,
        f"{plan.total_rows_to_move:,} row(s) in {sources} workspace(s) will move (migrate-to-default-workspace)",
    )


def other_sessions_check(sessions: tuple[str, ...] | None) -> Check:
    if sessions is None:
        return Check("other sessions", WARN, "SQLite cannot tell whether a tracking server uses the file: stop it")
    if not sessions:
        return Check("other sessions", PASS, "no other session is connected to this database")
    return Check(
        "other sessions",
        WARN,
        f"{len(sessions)} other session(s) connected (a tracking server?): apply refuses while they are",
        tuple(sessions[:MAX_DETAILS]),
    )


def schema_check(schema: WorkspaceSchema) -> Check:
    """The tracking and registry tables MLflow scopes by workspace all carry the column."""
    scoped = {t.name for t in schema.tables}
    missing = [t for t in mlflow_facts.WORKSPACE_STORE_TABLES if t not in schema.all_table_names]
    unscoped = [t for t in mlflow_facts.WORKSPACE_STORE_TABLES if t in schema.all_table_names and t not in scoped]
    if missing or unscoped:
        parts = [f"no `{mlflow_facts.WORKSPACE_COLUMN}` column in {', '.join(unscoped)}"] if unscoped else []
        parts += [f"missing table(s) {', '.join(missing)}"] if missing else []
        return Check("workspace schema", FAIL, "; ".join(parts) + " (run `mlflow db upgrade` with MLflow 3.10+)")
    return Check(
        "workspace schema",
        PASS,
        f"`{schema.catalog.table}` catalog present; {len(schema.tables)} tables carry a workspace column",
    )


def default_row_check(catalog_names: tuple[str, ...], direction: str = ENABLE) -> Check:
    if mlflow_facts.DEFAULT_WORKSPACE in catalog_names:
        return Check("default workspace", PASS, "the reserved `default` row exists in the workspaces catalog")
    if direction == DISABLE:
        return Check("default workspace", PASS, "the `default` catalog row is missing; the migration creates it")
    return Check(
        "default workspace",
        FAIL,
        "the reserved `default` row is missing from the workspaces catalog "
        "(`mlflow db upgrade` or `db migrate-to-default-workspace` creates it)",
    )


def invalid_name_reason(name: str) -> str | None:
    """Why MLflow would refuse this workspace name, or None when it is valid."""
    low, high = mlflow_facts.WORKSPACE_NAME_LENGTH
    if name in mlflow_facts.RESERVED_WORKSPACE_NAMES:
        return "reserved name"
    if not low <= len(name) <= high:
        return f"length {len(name)} (must be {low}-{high})"
    if not _NAME.match(name):
        return "only lowercase letters, digits and inner hyphens are allowed"
    return None


def workspace_names_check(catalog_names: tuple[str, ...]) -> Check:
    bad = [(n, r) for n in catalog_names if (r := invalid_name_reason(n))]
    if not bad:
        return Check("workspace names", PASS, f"all {len(catalog_names)} catalog name(s) are valid")
    return Check(
        "workspace names",
        FAIL,
        f"{len(bad)} of {len(catalog_names)} catalog name(s) are invalid",
        tuple(f"{quoted(n)}: {r}" for n, r in bad[:MAX_DETAILS]),
    )


def artifact_root_check(root: str | None, direction: str = ENABLE) -> Check:
    """Enabling: the server refuses a root ending in `workspaces` or sitting under `workspaces/<name>`.
    Disabling: where new experiments go once workspaces are off."""
    if root is None:
        return Check("artifact root", WARN, "not checked: pass --default-artifact-root ROOT (the server's root)")
    location = normalize_location(root)
    if location is None:
        return Check("artifact root", FAIL, "the artifact root is empty")
    if direction == DISABLE:
        where = str(location).rstrip("/") + "/<experiment_id>"
        return Check("artifact root", PASS, f"with workspaces off, new experiments go to {where}")
    segs = location.segments
    if segs and segs[-1] == mlflow_facts.RESERVED_ARTIFACT_SEGMENT:
        return Check("artifact root", FAIL, f"ends in a reserved `{mlflow_facts.RESERVED_ARTIFACT_SEGMENT}` segment")
    if mlflow_facts.RESERVED_ARTIFACT_SEGMENT in segs[:-1]:
        return Check(
            "artifact root", FAIL, f"sits under a reserved `{mlflow_facts.RESERVED_ARTIFACT_SEGMENT}/<name>` path"
        )
    return Check(
        "artifact root",
        PASS,
        f"not a reserved path; new experiments go to {location.child(mlflow_facts.RESERVED_ARTIFACT_SEGMENT)}/<ws>/<id>",
    )


def stored_content_check(plan: Plan) -> Check:
    """Rows MLflow stores content for under their workspace: the migration refuses them, with no override."""
    rows = plan.stored_content
    if not rows:
        return Check("stored content", PASS, "no row to move keeps content MLflow stores under its workspace")
    examples = tuple(f"{workspace_label(r.workspace)}: {r.describe()}" for r in rows[:MAX_DETAILS])
    reason = f"{len(rows):,} row(s): {stored_content.refusal(plan.move.target)}"
    return Check("stored content", FAIL, reason, examples)


def reserved_path_check(findings: tuple[ArtifactFinding, ...], root: str | None) -> Check:
    """The docs' admin preflight: no experiment already lives under ROOT/workspaces/<ws>/... of another layout."""
    if root is None:
        return Check("reserved artifact paths", WARN, "not checked: pass --default-artifact-root ROOT")
    squatters = [f for f in findings if f.kind == artifacts.RESERVED_SQUATTING]
    if not squatters:
        return Check("reserved artifact paths", PASS, "no experiment lives under <root>/workspaces/ of another layout")
    return Check(
        "reserved artifact paths",
        WARN,
        f"{len(squatters)} experiment(s) live under <root>/workspaces/<ws>/ of another workspace: move them first",
        tuple(finding_detail(f) for f in squatters[:MAX_DETAILS]),
    )


def artifact_findings_check(findings: tuple[ArtifactFinding, ...]) -> Check:
    """The given artifact findings: fail on a blocking one, warn on warnings."""
    rest = list(findings)
    if not rest:
        return Check("artifact locations", PASS, "no overlapping or workspace-bound artifact locations")
    counts = ", ".join(f"{kind}: {n}" for kind, n in artifacts.count_by_kind(rest).items())
    blocking = [f for f in rest if f.blocking]
    examples = tuple(finding_detail(f) for f in (blocking or rest)[:MAX_DETAILS])
    if blocking:
        return Check(
            "artifact locations", FAIL, f"{len(blocking)} blocking of {len(rest)} finding(s) ({counts})", examples
        )
    return Check("artifact locations", WARN, f"{len(rest)} warning(s) ({counts})", examples)


def finding_detail(f: ArtifactFinding) -> str:
    subject = f"workspace {quoted(f.workspace)}" if f.experiment_id is None else f"experiment {f.experiment_id}"
    return f"{f.kind}: {subject} {quoted(f.location)}: {f.detail}"


def server_check(features: ServerFeatures, direction: str = ENABLE, rows_outside: int | None = None) -> Check:
    """Enabling: the server's state is reported (true or false pass).  Disabling: workspaces on is expected
    while rows are outside `default`, and must be off once none are (restart without --enable-workspaces).
    A server that cannot say (404 on server-info and server-features) warns: "unknown" is not "off"."""
    shown = f"{features.message} ({features.url})"
    if features.state == server_probe.UNKNOWN:
        return Check("tracking server", WARN, shown)
    if features.state not in (server_probe.ENABLED, server_probe.DISABLED):
        return Check("tracking server", FAIL, shown)
    if direction == DISABLE and rows_outside == 0 and features.state == server_probe.ENABLED:
        return Check(
            "tracking server", FAIL, f"{shown}: every row is in `default`; restart it without --enable-workspaces"
        )
    if direction == DISABLE and rows_outside and features.state == server_probe.DISABLED:
        return Check("tracking server", WARN, f"{shown}, yet rows are outside `default`: is it this database's server?")
    return Check("tracking server", PASS, shown)
