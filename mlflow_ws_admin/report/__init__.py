"""Renderers of a Plan or an outcome: text (Rich), the JSON document, Markdown for CI summaries, preflight text,
terminal progress, and the auth reports.  They never touch the database.

May import every layer below the use cases (``common``, ``db``, ``findings``, ``engine``, ``auth``).
"""
