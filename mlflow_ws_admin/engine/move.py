"""The Move: the engine's one operation.  Every command is "move these rows into that workspace".

A Move is a plain value, resolved before anything is locked or written:

- ``migrate-to-default-workspace``: every row outside `default` moves into `default` (``MIGRATE``);
- ``move-resources``: the selected root rows of one workspace, their FK dependents and the rows they
  reference, move into another (``selection.select_resources`` builds it);
- ``restore-workspaces`` moves journaled rows back, each to its own workspace (its target is per row, so it
  reads the journal instead of building a Move; ``restore`` runs on the same locked-transaction core).

``queries`` turns a Move into SQL predicates; ``plan`` reads what it would do; ``apply`` runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.engine.rename_template import RenameTemplate


@dataclass(frozen=True)
class TableSelection:
    """The rows of one table that move: those in the move's source workspace, and, when ``values`` is given,
    only those whose ``columns`` hold one of its tuples (a root's primary key, carried down to a dependent)."""

    columns: tuple[str, ...] = ()
    #: None: every row of the source workspace
    values: tuple[tuple[Any, ...], ...] | None = None

    @property
    def everything(self) -> bool:
        return self.values is None


@dataclass(frozen=True)
class RenamePolicy:
    """``--rename-conflicts TEMPLATE --keep ...``: colliding rows are renamed instead of blocking the move."""

    template: RenameTemplate
    #: which row of a conflict group keeps its name: default | oldest | newest
    keep: str = "default"


@dataclass(frozen=True)
class Move:
    target: str = mlflow_facts.DEFAULT_WORKSPACE
    #: None: every workspace but the target (and NULL workspaces): the migration to `default`
    source: str | None = None
    #: table -> its selected rows; a table that is absent does not move.  None: every workspace table moves.
    selection: Mapping[str, TableSelection] | None = None
    #: experiment id -> its new artifact_location (``--artifact-policy retarget``), set in the same UPDATE pass
    retarget: Mapping[Any, str] = field(default_factory=dict)
    #: rename colliding rows (``--rename-conflicts``); the names themselves are read by ``renames.plan_renames``
    rename: RenamePolicy | None = None

    @property
    def is_migration(self) -> bool:
        """Everything into `default`: the catalog row may be created and emptied workspaces pruned."""
        return self.selection is None

    def moves_table(self, table: str) -> bool:
        return self.selection is None or table in self.selection


#: migrate-to-default-workspace: every row outside `default` moves into it.
MIGRATE = Move()
