"""The use cases, one function per command (alembic's ``command.py``): typed options, a resolved ``Target`` and a
``UI`` in, an ``ExitStatus`` out.  ``commands`` for the tracking database, ``auth_commands`` for basic-auth's.

May import every layer below the CLI (``common``, ``db``, ``findings``, ``engine``, ``auth``, ``report``); knows
nothing of Click.
"""
