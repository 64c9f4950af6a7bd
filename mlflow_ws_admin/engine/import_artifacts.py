"""``db import-database``'s artifact locations (``--artifact-policy``).

``preserve`` (the only policy so far) keeps every stored location.  An absolute location (``s3://...``,
``/srv/mlruns/...``) reads the same through TARGET's server as it did through SOURCE's.  Two kinds do not, and are
reported (never blocking: the rows are copied as they are):

- ``proxied``: ``mlflow-artifacts:/...`` names a path under SOURCE's server's ``--artifacts-destination``;
  TARGET's server looks under its own, where nothing is until the objects are copied there;
- ``relative``: a path without a scheme (``./mlruns/1``) resolves against the server's working directory.

``relocate`` (copying the objects under TARGET's destination and rewriting the locations) plugs in at
``relocate_locations``: it needs the object-store layer, which this module does not have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData, and_, func, not_, select
from sqlalchemy.engine import Connection

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.errors import UsageError

PRESERVE, RELOCATE = "preserve", "relocate"
PROXIED, RELATIVE = "proxied", "relative"
EXAMPLES = 3


@dataclass(frozen=True)
class ArtifactNote:
    table: str
    column: str
    kind: str  # proxied | relative
    count: int
    examples: tuple[str, ...]


def artifact_notes(
    source: Connection, meta: MetaData, copied: Iterable[str], where: Mapping[str, Any] | None = None
) -> tuple[ArtifactNote, ...]:
    """SOURCE's stored locations that TARGET's server cannot read as they are (read-only); ``where``: table ->
    the WHERE clause of its copied rows (``--from-workspace``)."""
    copied = set(copied)
    notes = []
    for table, column in mlflow_facts.ARTIFACT_URI_COLUMNS:
        t = meta.tables.get(table)
        if table not in copied or t is None or column not in t.c:
            continue
        c = t.c[column]
        kinds = {
            PROXIED: c.like(f"{mlflow_facts.PROXIED_ARTIFACT_SCHEME}:%"),
            # a path without a scheme that is not absolute: `./mlruns/1`, `mlruns/1` (not a prompt's placeholder
            # `dummy-source`, which names no path)
            RELATIVE: and_(c.like("%/%"), not_(c.like("%:%")), not_(c.like("/%"))),
        }
        for kind, condition in kinds.items():
            if where and table in where:
                condition = and_(condition, where[table])
            count = source.execute(select(func.count()).select_from(t).where(condition)).scalar_one()
            if count:
                rows = source.execute(select(c).where(condition).order_by(c).limit(EXAMPLES)).scalars()
                notes.append(ArtifactNote(table, column, kind, count, tuple(rows)))
    return tuple(notes)


def check_policy(policy: str) -> None:
    if policy == RELOCATE:
        relocate_locations()


def relocate_locations() -> None:
    """The seam for ``--artifact-policy relocate``: copy each proxied location's objects under TARGET's
    ``--artifacts-destination`` (through the object-store layer) and return the rewrite of its location.
    Until that layer exists, the policy is refused before anything is read."""
    raise UsageError(
        "--artifact-policy relocate is not available yet (it needs the artifact store layer); use preserve"
    )
