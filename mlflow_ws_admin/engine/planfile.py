"""Plan files (``--plan-out`` / ``--plan``): the reviewed plan plus a fingerprint of the rows it moves.

A table's fingerprint is an order-free digest of the set of rows to move: for each row, 60 bits of the md5 of
its primary key, per-workspace key columns (names) and workspace columns, summed, together with the row count.
PostgreSQL and MySQL compute it in SQL (``dialects.*.row_hash_sum``); SQLite has no md5, so its rows are
streamed from a cursor and hashed here in constant memory.  Adding, moving or renaming a row changes it.

A plan file is only ever compared with the database it was written for (its identity is checked first), so
the digests need not agree across dialects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from mlflow_ws_admin import __version__
from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.errors import UsageError, VerificationFailed
from mlflow_ws_admin.db import dialects
from mlflow_ws_admin.db.schema import WorkspaceSchema, WorkspaceTable
from mlflow_ws_admin.db.target import Target
from mlflow_ws_admin.engine import queries

PLAN_KIND = "mlflow-ws-admin/plan"
PLAN_VERSION = 1
FINGERPRINT_ALGORITHM = "row-md5-sum-v1"
_STREAM_BATCH = 5000


class PlanDrifted(VerificationFailed):
    """The database no longer matches the plan file; apply rolled back (exit 4)."""


def fingerprint_columns(wt: WorkspaceTable) -> list[str]:
    """Primary key, per-workspace key columns and workspace columns: what identifies a row and what collides."""
    cols: list[str] = []
    for c in (*wt.primary_key, *(c for k in wt.unique_keys for c in k.columns), *wt.workspace_columns):
        if c not in cols and c not in mlflow_facts.SENSITIVE_COLUMNS:
            cols.append(c)
    return cols


def table_fingerprint(conn: Connection, wt: WorkspaceTable) -> str:
    """The fingerprint of the rows of ``wt`` that the move would touch."""
    t = queries.table_clause(wt)
    cols = [t.c[c] for c in fingerprint_columns(wt)]
    where = queries.rows_moving(wt)
    in_sql = dialects.for_backend(conn.dialect.name).row_hash_sum(cols)
    if in_sql is not None:
        count, total = conn.execute(select(func.count(), in_sql).select_from(t).where(where)).one()
        return _digest(int(count), int(total))
    count = total = 0
    stmt = select(*cols).where(where).execution_options(stream_results=True, yield_per=_STREAM_BATCH)
    result = conn.execute(stmt)  # per statement, so the connection itself does not stay in streaming mode
    for row in result:
        text = json.dumps(list(row), default=str, ensure_ascii=False, separators=(",", ":"))
        total += int(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:15], 16)
        count += 1
    return _digest(count, total)


def _digest(count: int, total: int) -> str:
    return hashlib.sha256(f"{FINGERPRINT_ALGORITHM}:{count}:{total}".encode()).hexdigest()[:32]


def fingerprints(conn: Connection, schema: WorkspaceSchema) -> dict[str, str]:
    return {wt.name: table_fingerprint(conn, wt) for wt in schema.tables}


def plan_document(
    plan: Any, target: Target, prints: Mapping[str, str], *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The plan file's content: the reviewed counts plus, per table, the fingerprint of its rows to move."""
    return {
        "kind": PLAN_KIND,
        "schema_version": PLAN_VERSION,
        "tool_version": __version__,
        "created_at": (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
        "database": {"dialect": plan.dialect, "url": plan.database, "identity": target.identity},
        "schema_signature": plan.schema.signature,
        "fingerprint_algorithm": FINGERPRINT_ALGORITHM,
        "tables": [
            {
                "table": m.table,
                "rows_to_move": m.rows_to_move,
                "by_workspace": {("" if ws is None else ws): n for ws, n in m.by_workspace},
                "fingerprint": prints[m.table],
            }
            for m in plan.moves
        ],
        "total_rows_to_move": plan.total_rows_to_move,
        "conflict_count": plan.conflict_count,
    }


def write_plan_file(path: str | Path, document: Mapping[str, Any]) -> None:
    Path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_plan_file(path: str | Path, target: Target) -> dict[str, str]:
    """The expected fingerprints from a plan file written for this database; UsageError (exit 2) otherwise."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read plan file {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != PLAN_KIND or doc.get("schema_version") != PLAN_VERSION:
        raise UsageError(f"{path} is not an mlflow-ws-admin plan file (version {PLAN_VERSION})")
    if doc.get("fingerprint_algorithm") != FINGERPRINT_ALGORITHM:
        raise UsageError(f"plan file {path} uses an unknown fingerprint algorithm")
    database = doc.get("database")
    if not isinstance(database, dict):
        raise UsageError(f"plan file {path} is malformed: no database object")
    if database.get("identity") != target.identity:
        raise UsageError(f"plan file {path} was written for another database ({database.get('url')})")
    try:
        return {str(t["table"]): str(t["fingerprint"]) for t in doc["tables"]}
    except (KeyError, TypeError):
        raise UsageError(f"plan file {path} is malformed: no per-table fingerprints") from None


def verify_fingerprints(conn: Connection, schema: WorkspaceSchema, expected: Mapping[str, str]) -> None:
    """Inside apply's transaction, under its locks: every table must still hold exactly the planned rows."""
    current = fingerprints(conn, schema)
    drifted = sorted(t for t in current.keys() | expected.keys() if current.get(t) != expected.get(t))
    if drifted:
        raise PlanDrifted(
            f"the database changed since the plan was written; drifted table(s): {', '.join(drifted)}. "
            "Rolled back, nothing changed: write a new plan with --dry-run --plan-out"
        )
