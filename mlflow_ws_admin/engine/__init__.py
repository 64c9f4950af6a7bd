"""The Move, the engine's one operation: which rows go into which workspace (``move``, ``selection``), planned
read-only into one ``Plan`` value (``queries``, ``artifact_scan``, ``renames``, ``plan``), applied on the locked
transaction core (``apply``), journaled (``journal``, ``planfile``) and undone (``restore``); ``preflight`` builds
the checklist of ``db preflight`` from the same reads.

May import ``common``, ``db``, ``stores`` and ``findings``.  Never prints: reports are ``report``'s job.
"""
