"""Extra knowledge about MLflow that the database schema does not state.

Everything else is discovered by reflection (see ``schema``).  Each entry names a table and column(s) and
applies only when they exist, so older and newer MLflow schemas work unchanged.
"""

from __future__ import annotations

DEFAULT_WORKSPACE = "default"

#: The catalog table that lists workspaces, and its key column.
CATALOG_TABLE = "workspaces"
CATALOG_NAME_COLUMN = "name"

#: The column every workspace-scoped MLflow table carries.
WORKSPACE_COLUMN = "workspace"

#: Uniqueness that MLflow enforces in application code but not in the schema, per workspace.
#: evaluation_datasets: MLflow looks datasets up by name within a workspace and refuses a duplicate name.
CODE_ENFORCED_UNIQUE_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "evaluation_datasets": (("name",),),
}

#: Key columns MLflow forbids renaming: secret_name is bound into the secret's encryption (AAD), and a
#: trigger on `secrets` rejects any change to it.  The only fix for such a collision is deleting a row.
UNRENAMEABLE_KEY_COLUMNS: dict[str, frozenset[str]] = {
    "secrets": frozenset({"secret_name"}),
}

#: A soft-deleted experiment (or model) must be restored or permanently deleted before it can be renamed.
LIFECYCLE_COLUMN = "lifecycle_stage"
DELETED_LIFECYCLE = "deleted"

#: Columns whose values are never read or printed by any report.
SENSITIVE_COLUMNS = frozenset({"encrypted_value", "wrapped_dek", "masked_value"})
