"""Name conflicts as values: groups of rows from different workspaces that would share a per-workspace key once
they sit in one workspace, and the per-table fix.  The engine finds them (``engine.plan``); reports render them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.db.schema import UniqueKey


@dataclass(frozen=True)
class ConflictRow:
    workspace: str | None
    #: identifying columns other than the key and the workspace, e.g. (("experiment_id", 7),)
    identity: tuple[tuple[str, Any], ...]
    deleted: bool
    #: the row's own key values as stored (a case-insensitive group holds several spellings)
    stored_key: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class ConflictGroup:
    key: tuple[tuple[str, Any], ...]
    rows: tuple[ConflictRow, ...]
    #: rows of descendant tables dragged into this collision, e.g. (("model_versions", 12),)
    dependents: tuple[tuple[str, int], ...]

    @property
    def dependent_rows(self) -> int:
        return sum(n for _, n in self.dependents)

    @property
    def has_deleted(self) -> bool:
        return any(r.deleted for r in self.rows)


@dataclass(frozen=True)
class TableConflicts:
    """All root conflict groups of one per-workspace key of one table."""

    table: str
    key: UniqueKey
    group_count: int
    #: the first groups in key order (all of them when the plan was built without a limit)
    sample: tuple[ConflictGroup, ...]
    renameable: bool
    #: (workspace, groups holding a row of it), sorted by workspace: exact, whether groups are sampled or not
    by_workspace: tuple[tuple[str | None, int], ...] = ()

    @property
    def fix_hint(self) -> str:
        return fix_hint(self.table, self.key, self.renameable)


def fix_hint(table: str, key: UniqueKey, renameable: bool) -> str:
    what = ", ".join(key.columns)
    if not renameable:
        return (
            f"permanently delete all but one row of each group ({what} cannot be renamed: MLflow binds it "
            "into the secret's encryption)"
        )
    if table in mlflow_facts.NO_CLIENT_RENAME:
        return (
            f"MLflow has no rename for {table}: permanently delete all but one row of each group, or re-create "
            "it under a new name and delete the old one"
        )
    return f"rename all but one row of each group (change {what}), or permanently delete the extras"


def is_renameable(table: str, key: UniqueKey) -> bool:
    return not (mlflow_facts.UNRENAMEABLE_KEY_COLUMNS.get(table, frozenset()) & set(key.columns))
