"""Name conflicts as values: groups of rows from different workspaces that would share a per-workspace key once
they sit in one workspace, and the per-table fix.  The engine finds them (``engine.plan``); reports render them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.db.schema import UniqueKey


@dataclass(frozen=True)
class ConflictRow:
    workspace: str | None
    #: identifying columns other than the key and the workspace, e.g. (("experiment_id", 7),)
    identity: tuple[tuple[str, Any], ...]
    deleted: bool
    #: the row's own key values as stored (a case-insensitive group holds several spellings)
    stored_key: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class ConflictGroup:
    key: tuple[tuple[str, Any], ...]
    rows: tuple[ConflictRow, ...]
    #: rows of descendant tables dragged into this collision, e.g. (("model_versions", 12),)
    dependents: tuple[tuple[str, int], ...]

    @property
    def dependent_rows(self) -> int:
        return sum(n for _, n in self.dependents)

    @property
    def has_deleted(self) -> bool:
        return any(r.deleted for r in self.rows)


@dataclass(frozen=True)
class ConflictLayout:
    """Where each part of a conflict record sits (``engine.queries.conflict_rows``): the group's key values,
    its size, its dependent-row counts, then the row's own columns.  Worked out once per query, not per row:
    a JSON report reads every row of 60k groups."""

    key_columns: tuple[str, ...]
    #: the dependent tables whose counts follow the group's size, in order
    dependents: tuple[str, ...]
    workspace_at: int
    #: the lifecycle stage, where the table has one
    stage_at: int | None
    #: (column, position) of the identifying columns other than the key and the workspace
    identity_at: tuple[tuple[str, int], ...]
    #: (column, position) of the row's own stored key
    stored_at: tuple[tuple[str, int], ...]

    @classmethod
    def of(
        cls, key_columns: Sequence[str], workspace_column: str, row_columns: Sequence[str], dependents: Sequence[str]
    ) -> ConflictLayout:
        """``row_columns``: the row's own columns, which follow the key, the size and the dependent counts."""
        start = len(key_columns) + 1 + len(dependents)
        pos = {c: start + i for i, c in enumerate(row_columns)}  # the last of a repeated name wins, as a dict would
        return cls(
            key_columns=tuple(key_columns),
            dependents=tuple(dependents),
            workspace_at=pos[workspace_column],
            stage_at=pos.get(mlflow_facts.LIFECYCLE_COLUMN),
            identity_at=tuple(
                (c, i)
                for c, i in pos.items()
                if c not in (workspace_column, mlflow_facts.LIFECYCLE_COLUMN) and c not in key_columns
            ),
            stored_at=tuple((c, pos[c]) for c in key_columns),
        )

    def spans(self, records: Iterable[Sequence[Any]]) -> Iterator[tuple[tuple, list[Sequence[Any]]]]:
        """(the group's key values, its records), one group at a time: the records arrive ordered by group."""
        n_key = len(self.key_columns)
        current: tuple | None = None
        rows: list[Sequence[Any]] = []
        for record in records:
            values = tuple(record[:n_key])
            if values != current:
                if current is not None:
                    yield current, rows
                current, rows = values, []
            rows.append(record)
        if current is not None:
            yield current, rows

    def groups(self, records: Iterable[Sequence[Any]]) -> Iterator[ConflictGroup]:
        for key_values, rows in self.spans(records):
            yield self.group(key_values, rows)

    def group(self, key_values: tuple, records: Sequence[Sequence[Any]]) -> ConflictGroup:
        first = len(self.key_columns) + 1
        counts = records[0][first : first + len(self.dependents)]
        return ConflictGroup(
            key=tuple(zip(self.key_columns, key_values, strict=True)),
            rows=tuple(self.row(r) for r in records),
            dependents=tuple((t, int(n)) for t, n in zip(self.dependents, counts, strict=True) if n),
        )

    def row(self, record: Sequence[Any]) -> ConflictRow:
        return ConflictRow(
            workspace=record[self.workspace_at],
            identity=tuple([(c, record[i]) for c, i in self.identity_at]),
            deleted=self.stage_at is not None and record[self.stage_at] == mlflow_facts.DELETED_LIFECYCLE,
            stored_key=tuple([(c, record[i]) for c, i in self.stored_at]),
        )

    def dependent_rows(self, record: Sequence[Any]) -> int:
        if not self.dependents:
            return 0
        first = len(self.key_columns) + 1
        return sum(int(n) for n in record[first : first + len(self.dependents)])


@dataclass(frozen=True)
class TableConflicts:
    """All root conflict groups of one per-workspace key of one table."""

    table: str
    key: UniqueKey
    group_count: int
    #: the first groups in key order (all of them when the plan was built without a limit)
    sample: tuple[ConflictGroup, ...]
    renameable: bool
    #: (workspace, groups holding a row of it), sorted by workspace: exact, whether groups are sampled or not
    by_workspace: tuple[tuple[str | None, int], ...] = ()

    @property
    def fix_hint(self) -> str:
        return fix_hint(self.table, self.key, self.renameable)


def fix_hint(table: str, key: UniqueKey, renameable: bool) -> str:
    what = ", ".join(key.columns)
    if not renameable:
        return (
            f"permanently delete all but one row of each group ({what} cannot be renamed: MLflow binds it "
            "into the secret's encryption)"
        )
    if table in mlflow_facts.NO_CLIENT_RENAME:
        return (
            f"MLflow has no rename for {table}: permanently delete all but one row of each group, or re-create "
            "it under a new name and delete the old one"
        )
    return f"rename all but one row of each group (change {what}), or permanently delete the extras"


def is_renameable(table: str, key: UniqueKey) -> bool:
    return not (mlflow_facts.UNRENAMEABLE_KEY_COLUMNS.get(table, frozenset()) & set(key.columns))
