"""The basic-auth database: its RBAC rows moved into `default` with every effective permission kept.  MLflow's
permission rules (``rules``), the rows read (``state``), the plan (``plan``), apply and restore on the transaction
core (``apply``, ``restore``), and its preflight checks (``preflight``).

May import ``common``, ``db``, ``findings`` and ``engine`` (the journal, rename templates).
"""
