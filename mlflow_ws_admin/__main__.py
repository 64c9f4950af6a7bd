from mlflow_ws_admin.cli.main import entry_point

entry_point()
