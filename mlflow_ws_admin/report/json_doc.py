"""The machine-readable report (``--format json``): one JSON document per run, built from a Plan or a result.

No database access here: the conflict groups arrive as an iterable (streamed from a cursor by the caller) and
are written one by one, so a complete conflict list never sits in memory.  The contract is in docs/json-output.md
and pinned by tests/test_json.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from json.encoder import encode_basestring
from operator import itemgetter
from typing import IO, TYPE_CHECKING, Any

from mlflow_ws_admin.common.display import workspace_order
from mlflow_ws_admin.engine.plan import Plan
from mlflow_ws_admin.engine.relocate import Relocation
from mlflow_ws_admin.engine.selection import Reference, ResourceSelection, RowRef
from mlflow_ws_admin.findings import fix_hints, stored_content
from mlflow_ws_admin.findings.artifacts import display_location
from mlflow_ws_admin.findings.checks import PreflightResult
from mlflow_ws_admin.findings.conflicts import ConflictLayout, TableConflicts

if TYPE_CHECKING:  # a dry run never imports apply
    from mlflow_ws_admin.engine.apply import Relocated

SCHEMA_VERSION = 1
STATUSES = ("ok", "conflicts", "applied", "nothing_to_move", "aborted", "error")


def base_document(
    *, status: str, exit_code: int, dry_run: bool, dialect: str | None, url: str | None
) -> dict[str, Any]:
    """Every field of the contract, empty: the shape of an error document, filled in by the others."""
    assert status in STATUSES, status
    return {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "exit_code": int(exit_code),
        "dry_run": dry_run,
        "database": {"dialect": dialect, "url": url},
        "tables": [],
        "total_rows_to_move": 0,
        "conflicts": [],
        "conflict_count": 0,
        "artifact_findings": [],
        "stored_content": [],
        "workspaces_pruned": [],
        "renames": [],
    }


def error_document(message: str, *, exit_code: int, dry_run: bool, dialect: str | None, url: str | None) -> dict:
    doc = base_document(status="error", exit_code=exit_code, dry_run=dry_run, dialect=dialect, url=url)
    doc["message"] = message
    return doc


def plan_document(
    plan: Plan,
    *,
    status: str,
    exit_code: int,
    dry_run: bool,
    conflicts: Iterable[dict[str, Any]] = (),
    workspaces_pruned: Iterable[str] = (),
    rows_moved: int | None = None,
    artifact_locations_retargeted: int | None = None,
    rows_renamed: Mapping[str, int] | None = None,
    relocated: Relocated | None = None,
) -> dict[str, Any]:
    """The document for a migrate or move-resources run.  ``conflicts`` may be a generator: ``write_document``
    streams it.  ``rows_moved`` is what apply moved under its lock (null when nothing was applied)."""
    doc = base_document(status=status, exit_code=exit_code, dry_run=dry_run, dialect=plan.dialect, url=plan.database)
    doc["tables"] = [
        {"table": m.table, "rows_to_move": m.rows_to_move, "by_workspace": _by_workspace(m.by_workspace)}
        for m in plan.moves
    ]
    doc["total_rows_to_move"] = plan.total_rows_to_move
    doc["rows_moved"] = rows_moved
    doc["conflicts"] = conflicts
    doc["conflict_count"] = plan.conflict_count
    doc["artifact_findings"] = [artifact_finding(f) for f in getattr(plan, "artifact_findings", ())]
    doc["stored_content"] = stored_content_items(plan)
    doc["workspaces_pruned"] = list(workspaces_pruned)
    doc["other_sessions"] = None if plan.other_sessions is None else list(plan.other_sessions)
    if plan.renames is not None:
        doc["renames"] = [
            {"table": r.table, "key": dict(r.key), "workspace": r.workspace, "old": r.old, "new": r.new}
            for r in plan.renames.renames
        ]
        doc["renames_refused"] = [
            {"table": r.table, "key": dict(r.key), "workspace": r.workspace, "old": r.old, "reason": r.reason}
            for r in plan.renames.refused
        ]
        # null until applied: what apply renamed under its lock, per table (dependent rows included)
        doc["rows_renamed"] = None if rows_renamed is None else dict(rows_renamed)
    if plan.resources is not None:
        doc.update(selection_fields(plan.resources, artifact_locations_retargeted))
        if plan.resources.relocation is not None:
            doc.update(relocated_fields(relocated))
    return doc


def selection_fields(selection: ResourceSelection, retargeted: int | None) -> dict[str, Any]:
    """move-resources' own fields: the workspaces, the chosen root rows by key, what came along, what blocks."""
    return {
        "source_workspace": selection.source,
        "target_workspace": selection.target,
        "selected": {
            s.table: [dict(zip(s.key_columns, k, strict=True)) for k in s.keys] for s in selection.selected if s.keys
        },
        "names_not_found": list(selection.unmatched_names),
        "pulled_along": [_reference(r) for r in selection.pulled_along],
        "references_left_behind": [_reference(r) for r in selection.references_left_behind],
        "artifact_policy": _policy(selection),
        "artifact_root": selection.retarget_root,
        # null until applied: the count is taken under the lock
        "artifact_locations_retargeted": retargeted,
        **relocation_fields(selection.relocation),
    }


def _policy(selection: ResourceSelection) -> str:
    if selection.relocation is not None:
        return "relocate"
    return "retarget" if selection.retarget_root else "preserve"


def relocation_fields(relocation: Relocation | None) -> dict[str, Any]:
    """``--artifact-policy relocate``: per experiment the prefix that moves, and the stored URIs rewritten."""
    if relocation is None:
        return {"artifact_moves": []}
    return {
        "artifact_moves": [
            {
                "experiment_id": m.experiment_id,
                "from": display_location(m.from_uri),
                "to": display_location(m.to_uri),
                "objects": m.objects,
                "bytes": m.bytes,
            }
            for m in relocation.moves
        ],
        "artifact_uris_rewritten": [
            {"table": c.table, "column": c.column, "rows": c.rows, "known": c.known} for c in relocation.columns
        ],
        "artifact_locations_left_alone": [
            {"experiment_id": i, "location": display_location(loc)} for i, loc in relocation.left_alone
        ],
        "artifact_targets_occupied": [display_location(o) for o in relocation.occupied],
        "artifact_versions_left_behind": [{"name": n, "version": v} for n, v in relocation.split_versions],
    }


def relocated_fields(relocated: Relocated | None) -> dict[str, Any]:
    """What apply did with the objects (null fields until applied)."""
    if relocated is None:
        return {"artifact_objects_copied": None, "artifact_objects_deleted": None}
    return {"artifact_objects_copied": relocated.objects_copied, "artifact_objects_deleted": relocated.objects_deleted}


def _reference(ref: Reference) -> dict[str, Any]:
    def row(r: RowRef) -> dict[str, Any]:
        return {"table": r.table, "key": dict(r.key), "name": r.name}

    return {"row": row(ref.holder), "references": row(ref.target), "via": ref.via}


def _by_workspace(pairs: Iterable[tuple[str | None, int]]) -> dict[str, int]:
    # JSON keys are strings: a NULL workspace is reported under "" (the text report shows "(null)").
    return {("" if ws is None else ws): n for ws, n in pairs}


#: (table's conflicts, at most n groups or all when None) -> where its records hold what, and the records, streamed
RecordStream = Callable[[TableConflicts, int | None], tuple[ConflictLayout, Iterable[Sequence[Any]]]]


def conflict_items(plan: Plan, records_for: RecordStream, limit: int | None) -> Iterator[str]:
    """Every conflict group (the first ``limit`` when capped), encoded, one at a time, from the records
    ``records_for(tc, n)`` streams."""
    left = limit
    for tc in plan.conflicts:
        if left is not None and left <= 0:
            return
        layout, records = records_for(tc, left)
        encode = _GroupEncoder(plan, tc, layout)
        for key_values, rows in layout.spans(records):
            yield encode(key_values, rows)
            if left is not None:
                left -= 1
                if left <= 0:
                    return


class _GroupEncoder:
    """One key's conflict records to its groups' JSON items, each written straight from its records: building
    a group, its rows and a dict per group, then encoding them, took ~0.7 s of Python for 60k groups against
    ~0.36 s this way (of which the fix hints ~0.17 s).  The fields, in their order: table, key, rows (each row's workspace, its identity, and
    its own stored key where it spells the group's key otherwise, under a case-insensitive collation),
    dependent_rows, then resource ("prompt") and fix (absent when --rename-conflicts resolves the key)."""

    def __init__(self, plan: Plan, tc: TableConflicts, layout: ConflictLayout) -> None:
        self._layout, self._table = layout, tc.table
        self._target, self._prompts = plan.move.target, plan.prompts
        self._fixes = not plan.resolved(tc)
        self._head = (
            f'{{"table": {_dumps(tc.table).replace("%", "%%")}, "key": {{{_fields(layout.key_columns)}}}, "rows": ['
        )
        identity = _fields(c for c, _ in layout.identity_at)
        self._row = f'{{"workspace": %s{", " if identity else ""}{identity}}}'
        self._row_spelled = (
            f'{{"workspace": %s, {_fields((*(c for c, _ in layout.identity_at), *layout.key_columns))}}}'
        )
        self._shown = _picker((layout.workspace_at, *(i for _, i in layout.identity_at)))
        self._stored = _picker(tuple(i for _, i in layout.stored_at))

    def __call__(self, key_values: tuple, records: Sequence[Sequence[Any]]) -> str:
        layout, value, ws_at = self._layout, _value, self._layout.workspace_at
        shown_of, stored_of = self._shown, self._stored
        rows = []
        for r in records:
            shown, stored = shown_of(r), stored_of(r)
            if stored == key_values:
                rows.append(self._row % tuple(map(value, shown)))
            else:
                rows.append(self._row_spelled % tuple(map(value, shown + stored)))
        item = (
            self._head % tuple(map(value, key_values))
            + ", ".join(rows)
            + f'], "dependent_rows": {layout.dependent_rows(records[0])}'
        )
        prompt = bool(self._prompts) and fix_hints.is_prompt_group(
            self._table, [layout.row(r) for r in records], self._prompts
        )
        if prompt:
            item += ', "resource": "prompt"'
        if self._fixes:
            keep = fix_hints.keeper_index([r[ws_at] for r in records], self._target)
            others = [layout.row(r) for i, r in enumerate(records) if i != keep]
            item += f', "fix": {value(fix_hints.others_fix(self._table, others, prompt=prompt))}'
        return item + "}"


def _picker(positions: tuple[int, ...]) -> Callable[[Sequence[Any]], tuple]:
    """A record's values at ``positions``, as a tuple (``itemgetter`` gives a bare value for one position)."""
    if len(positions) == 1:
        (at,) = positions
        return lambda record: (record[at],)
    return itemgetter(*positions)


def _fields(columns: Iterable[str]) -> str:
    """'"a": %s, "b": %s': a format for those fields' encoded values (a % in a name is escaped)."""
    return ", ".join(f"{_dumps(c).replace('%', '%%')}: %s" for c in columns)


def _value(v: Any) -> str:
    """One value as the document's encoder writes it; str, int and None without an encoder call."""
    kind = type(v)
    if kind is str:
        return encode_basestring(v)
    if kind is int:
        return int.__repr__(v)
    if v is None:
        return "null"
    return _dumps(v)


def stored_content_items(plan: Plan) -> list[dict[str, Any]]:
    """The rows refused because MLflow stores their content under their workspace, each with MLflow's reason
    and the fix for this run's target."""
    if not plan.stored_content:
        return []
    reason = stored_content.refusal(plan.move.target)
    fix = stored_content.fix(plan.stored_content, plan.move.target)
    return [
        {
            "table": r.table,
            "key": dict(r.key),
            "workspace": r.workspace,
            "location": r.location,
            "reason": reason,
            "fix": fix,
        }
        for r in plan.stored_content
    ]


def artifact_finding(finding: Any) -> dict[str, Any]:
    return {
        "kind": finding.kind,
        "severity": finding.severity,
        "experiment_id": finding.experiment_id,
        "location": finding.location,
        "detail": finding.detail,
    }


def restore_document(result: Any, *, status: str, exit_code: int, dialect: str, url: str) -> dict[str, Any]:
    """The document for a restore run: the same contract; ``by_workspace`` counts destination workspaces, and
    two restore-only fields say what could not be found and which catalog rows come back."""
    doc = base_document(status=status, exit_code=exit_code, dry_run=result.dry_run, dialect=dialect, url=url)
    doc["tables"] = [
        {
            "table": t,
            "rows_to_move": sum(c.values()),
            "by_workspace": _by_workspace(sorted(c.items(), key=lambda item: workspace_order(item[0]))),
        }
        for t, c in result.moves.items()
    ]
    doc["total_rows_to_move"] = result.total
    doc["conflicts"] = [
        {
            "table": c.table,
            "key": dict(c.key),
            "rows": [{"workspace": c.workspace}],
            "dependent_rows": 0,
            "reason": c.kind,
            "detail": c.detail,
        }
        for c in result.conflicts
    ]
    doc["conflict_count"] = result.conflict_count
    doc["missing_rows"] = dict(result.missing)
    doc["workspaces_recreated"] = list(result.workspaces_recreated)
    doc["columns_restored"] = result.columns_restored
    doc["artifact_moves"] = [
        {"experiment_id": m.experiment_id, "from": display_location(m.from_uri), "to": display_location(m.to_uri)}
        for m in result.artifact_moves
    ]
    doc["artifact_objects_copied"] = result.artifact_objects_copied if result.applied else None
    doc["artifact_objects_deleted"] = result.artifact_objects_deleted if result.applied else None
    return doc


def preflight_document(result: PreflightResult, *, exit_code: int) -> dict[str, Any]:
    """`db preflight --format json`: every check with its status, reason and examples."""
    return {
        "schema_version": SCHEMA_VERSION,
        "status": "failed" if result.failed else "ok",
        "exit_code": int(exit_code),
        "direction": result.direction,
        "database": {"url": result.database},
        "default_artifact_root": result.default_artifact_root,
        "checks": [
            {"name": c.name, "status": c.status, "reason": c.reason, "details": list(c.details)} for c in result.checks
        ],
    }


def write_document(doc: Mapping[str, Any], out: IO[str]) -> None:
    """One JSON document on one line; an Iterator value (the conflict items) yields its items encoded
    already, and is streamed."""
    out.write("{")
    for i, (key, value) in enumerate(doc.items()):
        out.write(("," if i else "") + json.dumps(key) + ":")
        if isinstance(value, Iterator):
            out.write("[")
            _write_items(value, out)
            out.write("]")
        else:
            out.write(_dumps(value))
    out.write("}\n")
    out.flush()


def _write_items(items: Iterator[str], out: IO[str]) -> None:
    """Encoded items comma-separated, written in batches: one write per item cost more than encoding it (60k
    conflict groups).  What was read is written even when the stream fails, as one write per item did."""
    batch: list[str] = []
    written = False

    def flush() -> None:
        nonlocal written
        out.write((", " if written else "") + ", ".join(batch))
        written = True
        batch.clear()

    try:
        for item in items:
            batch.append(item)
            if len(batch) == _WRITE_BATCH:
                flush()
    finally:
        if batch:
            flush()


_WRITE_BATCH = 500

# default=str: driver values such as Decimal or datetime appear as text rather than failing the report.  One
# encoder for the whole document: json.dumps with options builds a new one per call (60k conflict groups).
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)
