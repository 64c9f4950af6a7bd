"""What can block a move or needs a person's attention, as values and pure checks: name conflicts
(``conflicts``), artifact-location findings (``artifacts``), one MLflow action per conflict group (``fix_hints``),
preflight checks (``checks``), and the tracking-server probe (``server_probe``).

May import ``common``, ``db`` and ``stores``.  Nothing here reads the database itself: the engine feeds it rows.
"""
