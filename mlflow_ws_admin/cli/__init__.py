"""Click only: the command tree (``main``, and ``auth`` for the basic-auth group), the options several commands
share (``options``), and ``boundary``, the single place where exceptions become exit codes.

Each command parses its options and calls one use case (``usecases``).  Nothing imports this package.
"""
