"""Database access: a URI resolved into a ``Target`` and an engine (``target``, ``connect``), one ``Dialect`` per
backend (``dialects/``), driver errors translated (``translate``), schema reflection and the FK graph (``schema``),
the one locked-transaction core every change runs on (``transaction``), and MLflow-shaped sample databases from
captured schemas (``sample_data``).

May import ``common`` only.  Knows nothing of Moves, plans or reports.
"""
