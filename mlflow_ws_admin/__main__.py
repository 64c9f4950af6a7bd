from mlflow_ws_admin.cli import main

main()
