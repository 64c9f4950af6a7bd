"""The vocabulary every layer shares: exit codes and the tool's errors (``errors``), facts about MLflow the schema
does not state (``mlflow_facts``), how user data is quoted in every report (``display``), and ``gc_pause``.

Imports nothing of this package: every other layer may import it.
"""
