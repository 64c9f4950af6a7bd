"""Rows whose content MLflow stores itself, under the path of the workspace they live in (MLflow 3.18.0's
skill versions with ``source_type='mlflow'``, ``mlflow_facts.WORKSPACE_STORED_CONTENT``).

Moved into another workspace, their content can no longer be reached, and MLflow's own migrate and
move-resources refuse them with no override.  So do we: this is a refusal of its own, not an artifact finding,
and ``--allow-artifact-overlap`` does not lift it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.display import quoted


@dataclass(frozen=True)
class StoredContent:
    """One row to move whose content MLflow keeps under its workspace's artifact path."""

    table: str
    #: the row's primary key without the workspace, e.g. (("organization", "acme"), ("name", "x"), ("version", 1))
    key: tuple[tuple[str, Any], ...]
    workspace: str | None
    #: where MLflow recorded the content (a password masked)
    location: str

    def describe(self) -> str:
        return f"{self.table} ({', '.join(f'{c}={quoted(v)}' for c, v in self.key)})"


def target_label(target: str) -> str:
    """How MLflow names the target in its refusal."""
    return "the default workspace" if target == mlflow_facts.DEFAULT_WORKSPACE else f"workspace {target!r}"


def refusal(target: str) -> str:
    """MLflow 3.18.0's own words (store/db/workspace_move.py and workspace_migration.py), for this target."""
    return (
        f"MLflow-backed skill versions would lose access to their artifact content in {target_label(target)}; "
        "MLflow refuses this move too, and no option overrides it"
    )


def fix(rows: tuple[StoredContent, ...], target: str) -> str:
    """What to do for this command's target: the content cannot follow the row, so it is registered again there."""
    sources = ", ".join(quoted(ws) for ws in sorted({r.workspace or "" for r in rows})) or "the source workspace"
    return (
        f"download their content, delete these versions in {sources} (or re-register them from a git source), then "
        f"register the content again in {target_label(target)} after the move"
    )
