"""mlflow-ws-admin: move MLflow workspace-scoped rows into the reserved ``default`` workspace."""

__version__ = "0.1.0"
