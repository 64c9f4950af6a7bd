"""Extra mlflow_facts about MLflow that the database schema does not state.

Everything else is discovered by reflection (see ``schema``).  Each entry names a table and column(s) and
applies only when they exist, so older and newer MLflow schemas work unchanged.
"""

from __future__ import annotations

DEFAULT_WORKSPACE = "default"

#: Tables every MLflow tracking database has, with or without workspaces: without them a database is not
#: MLflow's at all (and MLflow's migrations must not be suggested for it).
TRACKING_TABLES = ("experiments", "runs")

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
#: Why, in the words of MLflow's code (mlflow/utils/crypto.py ``_create_aad``; the trigger is created by the
#: migration 1bd49d398cd23_add_secrets_tables).
UNRENAMEABLE_REASONS: dict[str, str] = {
    "secrets": "MLflow binds secret_name into the secret's encryption (AES-GCM associated data, "
    "mlflow/utils/crypto.py _create_aad) and a trigger rejects any change to it",
}

#: Columns MLflow derives from a row's name, recomputed when --rename-conflicts renames it: table -> (column,
#: the column it is derived with).  An evaluation dataset's digest is sha256("<name>:<last_update_time>")[:8]
#: (mlflow/store/tracking/sqlalchemy_store.py ``_compute_dataset_digest``).
NAME_DERIVED_COLUMNS: dict[str, tuple[str, str]] = {
    "evaluation_datasets": ("digest", "last_update_time"),
}

#: Columns MLflow builds from a row's name and another column, rebuilt when --rename-conflicts renames it:
#: table -> (column, the other column).  A skill's search_text is "<name> <description>", each with whitespace
#: runs collapsed and stripped, empty parts left out (mlflow/store/tracking/skill_registry_search_text.py).
NAME_SEARCH_TEXT_COLUMNS: dict[str, tuple[str, str]] = {
    "skills": ("search_text", "description"),
}

#: mlflow/utils/validation.py MAX_EXPERIMENT_NAME_LENGTH.
MAX_EXPERIMENT_NAME_LENGTH = 500

#: A registered model is a prompt when this tag says "true" (mlflow/prompt/constants.py IS_PROMPT_TAG_KEY).
MODEL_TAGS_TABLE = "registered_model_tags"
PROMPT_TAG_KEY = "mlflow.prompt.is_prompt"
PROMPT_TAG_VALUE = "true"

#: A soft-deleted experiment (or model) must be restored or permanently deleted before it can be renamed.
LIFECYCLE_COLUMN = "lifecycle_stage"
DELETED_LIFECYCLE = "deleted"

#: Columns whose values are never read or printed by any report.
SENSITIVE_COLUMNS = frozenset({"encrypted_value", "wrapped_dek", "masked_value"})

#: Where experiments keep their artifact location, and where a workspace may set its own artifact root.
EXPERIMENTS_TABLE = "experiments"
EXPERIMENT_ID_COLUMN = "experiment_id"
ARTIFACT_LOCATION_COLUMN = "artifact_location"
CATALOG_ARTIFACT_ROOT_COLUMN = "default_artifact_root"

#: With workspaces on, new experiments land in `<root>/workspaces/<workspace>/<experiment_id>`; the server refuses
#: a root that ends in this segment or sits under `workspaces/<name>`.
RESERVED_ARTIFACT_SEGMENT = "workspaces"
#: URI scheme of artifacts served through the tracking server's proxy (`--serve-artifacts`).
PROXIED_ARTIFACT_SCHEME = "mlflow-artifacts"

#: Tables MLflow's tracking and registry stores scope by workspace; `supports_workspaces()` needs their column.
WORKSPACE_STORE_TABLES = (
    "experiments",
    "registered_models",
    "model_versions",
    "registered_model_tags",
    "model_version_tags",
    "registered_model_aliases",
    "webhooks",
)

#: Valid workspace names: DNS-label-like, 2-63 characters, minus names that clash with server routes.
WORKSPACE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
WORKSPACE_NAME_LENGTH = (2, 63)
RESERVED_WORKSPACE_NAMES = frozenset({"workspaces", "api", "ajax-api", "static-files"})

#: Rows whose content MLflow stores itself, under the path of the workspace the row lives in: table ->
#: (column, value that marks them, column holding the stored location).  Moved into another workspace, their
#: content can no longer be reached (seen on a real 3.18.0 server: `mlflow-artifacts:/skills/...` answers 404).
#: MLflow 3.18.0's own migrate and move-resources refuse them (store/db/workspace_migration.py); new in 3.18.0.
WORKSPACE_STORED_CONTENT: dict[str, tuple[str, str, str]] = {
    "skill_versions": ("source_type", "mlflow", "source"),
}

#: Resources whose name MLflow qualifies with another key column: table -> (that column, how a qualified name
#: starts).  MLflow 3.18.0 names a skill `name` (organization '') or `@organization/name`, in `--name` too
#: (mlflow/utils/validation.py ``_parse_skill_identities``).
QUALIFIED_NAMES: dict[str, tuple[str, str]] = {"skills": ("organization", "@")}
#: mlflow/utils/validation.py: a skill's name and its organization's (each 1-64 characters).
SKILL_NAME_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
ORGANIZATION_NAME_PATTERN = r"^[a-z0-9]+([-.][a-z0-9]+)*$"
MAX_SKILL_NAME_LENGTH = 64

#: Resources whose key MLflow's client cannot rename (no rename API as of 3.18.0): a collision there is fixed
#: by deleting (or re-creating under another name), never by a client rename.
NO_CLIENT_RENAME = frozenset({"skills", "evaluation_datasets"})

#: Columns that record when a row was created.  The move journal keeps their value so that restore can tell the
#: row it moved from a new row that took the same name in `default` since (a "replaced" restore conflict).
CREATION_COLUMNS = ("creation_time", "creation_timestamp", "created_at", "created_time")


#: Where MLflow stores a registered model's or a prompt's *name* as text, outside the rows that carry it through a
#: foreign key.  A rename cannot follow these safely (MLflow's own rename_registered_model leaves them too), and
#: after a merge the old name would resolve to another workspace's model or prompt, so --rename-conflicts refuses
#: to rename a model or prompt that is referenced this way from its own workspace:
#: - ``model_versions.source`` = ``models:/<name>/<version>`` for a copied version (copy_model_version,
#:   mlflow/store/model_registry/abstract_store.py);
#: - the ``mlflow.linkedPrompts`` tag (JSON list of {"name", "version"}) on runs (``tags``), traces
#:   (``trace_tags``) and logged models (``logged_model_tags``) (mlflow/tracing/constant.py, abstract_store.py);
#: - ``entity_associations.destination_id`` = ``<name>/<version>`` for a trace's PROMPT_VERSION
#:   (mlflow/store/tracking/sqlalchemy_store.py).
LINKED_PROMPTS_TAG = "mlflow.linkedPrompts"
MODEL_URI_PREFIX = "models:/"
PROMPT_VERSION_ASSOCIATION = "prompt_version"


# --- db import-database ---------------------------------------------------------------------------------------

#: The table holding a database's alembic revision: SOURCE and TARGET of an import must be at the same one.
ALEMBIC_VERSION_TABLE = "alembic_version"

#: Tables an import never copies, with why: the schema's own bookkeeping, and a running server's transient
#: coordination state (leases and locks held by SOURCE's server processes mean nothing in TARGET).
NOT_IMPORTED_TABLES: dict[str, str] = {
    ALEMBIC_VERSION_TABLE: "the schema revision, checked instead of copied",
    CATALOG_TABLE: "the workspace catalog: rows go into the --workspace given",
    "scheduler_leases": "a running server's scheduler leases",
    "job_locks": "a running server's job locks",
}

#: Columns that hold an integer id TARGET allocates without a foreign key saying so: (table, column) of the id
#: -> (table, column, (type column, type value) or None).  A typed reference only holds the id when its type
#: column says so (mlflow/entities/entity_type.py EntityAssociationType.EXPERIMENT; the trace-analytics rollups
#: of mlflow/store/db/trace_rollups.py key their rows by experiment_id).
UNCONSTRAINED_ID_REFERENCES: dict[tuple[str, str], tuple[tuple[str, str, tuple[str, str] | None], ...]] = {
    (EXPERIMENTS_TABLE, EXPERIMENT_ID_COLUMN): (
        ("entity_associations", "source_id", ("source_type", "experiment")),
        ("entity_associations", "destination_id", ("destination_type", "experiment")),
        ("sql_trace_metric_daily_rollups", "experiment_id", None),
        ("sql_span_cost_daily_rollups", "experiment_id", None),
        ("sql_assessment_daily_rollups", "experiment_id", None),
        ("sql_trace_rollup_rebuild_queue", "experiment_id", None),
    ),
}

#: References between rows that no foreign key declares, by string id: (table, column, (type column, type value)
#: or None for always, parent table, parent column).  ``import-database --from-workspace`` follows them (with the
#: experiment ids above) to take the rows of tables that no foreign key ties to a workspace: a run's dataset
#: inputs and a logged model's inputs/outputs (mlflow/store/tracking/sqlalchemy_store.py ``_log_inputs``,
#: ``log_outputs``: SqlInput's source_type/destination_type), their tags, and the entity associations
#: (mlflow/entities/entity_type.py EntityAssociationType).
UNCONSTRAINED_ROW_REFERENCES: tuple[tuple[str, str, tuple[str, str] | None, str, str], ...] = (
    ("inputs", "source_id", ("source_type", "DATASET"), "datasets", "dataset_uuid"),
    ("inputs", "source_id", ("source_type", "RUN_INPUT"), "runs", "run_uuid"),
    ("inputs", "source_id", ("source_type", "RUN_OUTPUT"), "runs", "run_uuid"),
    ("inputs", "destination_id", ("destination_type", "RUN"), "runs", "run_uuid"),
    ("inputs", "destination_id", ("destination_type", "MODEL_INPUT"), "logged_models", "model_id"),
    ("inputs", "destination_id", ("destination_type", "MODEL_OUTPUT"), "logged_models", "model_id"),
    ("input_tags", "input_uuid", None, "inputs", "input_uuid"),
    *(
        ("entity_associations", f"{end}_id", (f"{end}_type", kind), parent, column)
        for end in ("source", "destination")
        for kind, parent, column in (
            ("evaluation_dataset", "evaluation_datasets", "dataset_id"),
            ("run", "runs", "run_uuid"),
            ("model", "logged_models", "model_id"),
            ("trace", "trace_info", "request_id"),
        )
    ),
)

#: Columns holding an artifact URI (docs: reference/mlflow-schema-facts, "Where stored artifact URIs live").
ARTIFACT_URI_COLUMNS: tuple[tuple[str, str], ...] = (
    (EXPERIMENTS_TABLE, ARTIFACT_LOCATION_COLUMN),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
)
