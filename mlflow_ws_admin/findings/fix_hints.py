"""One action per conflict group that works in MLflow (3.17.2) for that resource, with the rows' real ids, names
and workspaces, or the plain statement that MLflow offers none.

The calls are MLflow's public client API as of 3.17.2: ``MlflowClient().rename_experiment(experiment_id, new_name)``
and ``rename_registered_model(name, new_name)``.  A prompt is a registered model tagged
``mlflow.prompt.is_prompt=true``, and ``rename_registered_model`` answers "not found" for it: MLflow has no prompt
rename.  Nor is there one for evaluation datasets, MCP servers (``update_mcp_server`` takes no new name) or skills.
Gateway endpoints and model definitions are renamed through the gateway REST API (UpdateGatewayEndpoint,
UpdateGatewayModelDefinition), which the Python client does not wrap.  A secret's name is bound into its encryption.
Each row is told apart by its stored key, so a case-insensitive group shows every spelling.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from mlflow_ws_admin.common import mlflow_facts

if TYPE_CHECKING:
    from mlflow_ws_admin.findings.conflicts import ConflictRow

NEW_NAME = "<new name>"


def _q(value: Any) -> str:
    """A Python literal for the call: ids are passed as strings, as MLflow's client takes them.  (The string
    encoder itself, as json.dumps(ensure_ascii=False) spells a str: a JSON report asks for 120k of them.)"""
    return encode_basestring(str(value))


def is_prompt_group(table: str, rows: Sequence[ConflictRow], prompts: Collection[tuple[Any, Any]]) -> bool:
    # `not prompts` first: a JSON report asks this of every one of 60k groups, and most databases have no prompts
    return (
        table == "registered_models"
        and bool(prompts)
        and any((r.workspace, _stored(r, "name")) in prompts for r in rows)
    )


def keeper_index(workspaces: Sequence[Any], target: str) -> int:
    """Which row of a group keeps its name: the target workspace's, else the first."""
    for i, workspace in enumerate(workspaces):
        if workspace == target:
            return i
    return 0


def group_fix(
    table: str, rows: Sequence[ConflictRow], *, target: str, prompts: Collection[tuple[Any, Any]] = ()
) -> str:
    """The action for every row of the group but the one that keeps its name (``keeper_index``)."""
    keep = keeper_index([r.workspace for r in rows], target)
    others = [r for i, r in enumerate(rows) if i != keep]
    return others_fix(table, others, prompt=is_prompt_group(table, rows, prompts))


def others_fix(table: str, others: Sequence[ConflictRow], *, prompt: bool) -> str:
    """``group_fix`` for the rows that do not keep their name, told whether the group is a prompt's."""
    if prompt:
        return "; ".join(_prompt(r) for r in others) + " (MLflow has no prompt rename)"
    act = _ACTIONS.get(table)
    if act is None:
        return "; ".join(f"in workspace {_q(r.workspace)} rename {_describe(r)}" for r in others)
    return "; ".join(act(r) for r in others)


def _stored(row: ConflictRow, column: str) -> Any:
    return dict(row.stored_key).get(column)


def _identity(row: ConflictRow, column: str) -> Any:
    return dict(row.identity).get(column)


def _describe(row: ConflictRow) -> str:
    parts = [f"{c}={_q(v)}" for c, v in (*row.identity, *row.stored_key)]
    return f"({', '.join(parts)})"


def _in(row: ConflictRow) -> str:
    return _set_workspace(row.workspace)


@functools.lru_cache(maxsize=256)
def _set_workspace(workspace: Any) -> str:
    # A few workspaces among 60k groups: each one's call is spelled once.
    return f"mlflow.set_workspace({_q(workspace)}); "


def _experiment(row: ConflictRow) -> str:
    exp_id = _q(_identity(row, mlflow_facts.EXPERIMENT_ID_COLUMN))
    call = f"MlflowClient().rename_experiment({exp_id}, {_q(NEW_NAME)})"
    if row.deleted:  # MLflow renames only active experiments
        return f"{_in(row)}MlflowClient().restore_experiment({exp_id}); {call}"
    return f"{_in(row)}{call}"


def _model(row: ConflictRow) -> str:
    return f"{_in(row)}MlflowClient().rename_registered_model({_q(_stored(row, 'name'))}, {_q(NEW_NAME)})"


def _prompt(row: ConflictRow) -> str:
    name = _q(_stored(row, "name"))
    return (
        f"prompt {name} in {_q(row.workspace)}: register it again under a new name "
        f"(mlflow.genai.register_prompt) and delete it ({_in(row)}MlflowClient().delete_prompt({name})), "
        "or use --rename-conflicts"
    )


def _dataset(row: ConflictRow) -> str:
    dataset_id = _q(_identity(row, "dataset_id"))
    return (
        f"MLflow has no rename for evaluation datasets: re-create dataset {dataset_id} under a new name, then "
        f"{_in(row)}mlflow.genai.datasets.delete_dataset(dataset_id={dataset_id}); or use --rename-conflicts"
    )


def _mcp_server(row: ConflictRow) -> str:
    name = _q(_stored(row, "name"))
    return (
        f"MLflow has no rename for MCP servers: register {name} again under a new name, then "
        f"{_in(row)}MlflowClient().delete_mcp_server({name}); or use --rename-conflicts"
    )


def _gateway(kind: str, id_column: str) -> Any:
    def action(row: ConflictRow) -> str:
        return (
            f"in workspace {_q(row.workspace)}, rename {id_column} {_q(_identity(row, id_column))} through the "
            f"gateway REST API (Update{kind} with a new name; the Python client has no call for it), "
            "or use --rename-conflicts"
        )

    return action


def _secret(row: ConflictRow) -> str:
    return (
        f"secret {_q(_identity(row, 'secret_id'))} in {_q(row.workspace)} cannot be renamed (its name is bound into "
        "its encryption): create it again under a new name and delete this one (gateway API DeleteGatewaySecret)"
    )


def _skill(row: ConflictRow) -> str:
    return f"MLflow has no rename for skills: in workspace {_q(row.workspace)} delete {_describe(row)} or re-create it under a new name"


_ACTIONS = {
    mlflow_facts.EXPERIMENTS_TABLE: _experiment,
    "registered_models": _model,
    "evaluation_datasets": _dataset,
    "mcp_servers": _mcp_server,
    "endpoints": _gateway("GatewayEndpoint", "endpoint_id"),
    "model_definitions": _gateway("GatewayModelDefinition", "model_definition_id"),
    "secrets": _secret,
    "skills": _skill,
}
