from mlflow_ws_admin.cli import entry_point

entry_point()
