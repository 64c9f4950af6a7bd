"""``db import-database``'s artifact locations (``--artifact-policy``).

``preserve`` (the default) keeps every stored location.  An absolute location (``s3://...``,
``/srv/mlruns/...``) reads the same through TARGET's server as it did through SOURCE's.  Two kinds do not, and are
reported (never blocking: the rows are copied as they are):

- ``proxied``: ``mlflow-artifacts:/...`` names a path under SOURCE's server's ``--artifacts-destination``;
  TARGET's server looks under its own, where nothing is until the objects are copied there;
- ``relative``: a path without a scheme (``./mlruns/1``) resolves against the server's working directory.

``relocate`` copies the objects of SOURCE's proxied experiment prefixes (``mlflow-artifacts:/<id>``,
``mlflow-artifacts:/workspaces/<s>/<id>``, under SOURCE's server's destination) to where TARGET's server places
the imported experiment (``mlflow-artifacts:/workspaces/<W>/<new id>`` under TARGET's destination, or under W's
catalog root), through the object-store layer that ``db move-resources --artifact-policy relocate`` uses
(``engine.relocate``).  SOURCE's objects are only read.  The new ids are known only under TARGET's lock, so
``plan_import_relocation`` runs again there; the copy (idempotent, never overwriting) and its verification run
under the lock before COMMIT, journaled before they start, and every stored URI of the inserted rows under an
old prefix takes the new one as it is loaded (``uri_rewriter``: a proxied value costs one split and a dict
lookup per prefix depth).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData, and_, func, not_, select
from sqlalchemy.engine import Connection

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.common.errors import UsageError
from mlflow_ws_admin.db.schema import WorkspaceSchema
from mlflow_ws_admin.engine.journal import JournalWriter
from mlflow_ws_admin.engine.relocate import (
    PROXIED_ROOT,
    ArtifactMove,
    Relocation,
    candidate_tables,
    derived_locations,
    scan_uri_columns,
    target_location,
    transfer,
)
from mlflow_ws_admin.stores.base import Progress, same_object
from mlflow_ws_admin.stores.locate import locate

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


@dataclass(frozen=True)
class ArtifactDestinations:
    """``--artifact-policy relocate``: SOURCE's and TARGET's servers' ``--artifacts-destination``."""

    source: str
    target: str


def check_policy(policy: str, destinations: tuple[str | None, str | None]) -> ArtifactDestinations | None:
    """The destinations ``relocate`` needs (both), refused with ``preserve``; an unsupported store is refused
    (exit 2) before anything is read."""
    given = [d for d in destinations if d]
    if policy != RELOCATE:
        if given:
            raise UsageError(
                "--source-artifacts-destination and --artifacts-destination go with --artifact-policy relocate; add it"
            )
        return None
    source, target = destinations
    if not source or not target:
        raise UsageError(
            "--artifact-policy relocate needs both servers' artifact stores: pass --source-artifacts-destination "
            "(SOURCE's server's --artifacts-destination) and --artifacts-destination (TARGET's)"
        )
    for uri in (source, target):
        locate(uri)  # gs://, a relative path, ...: refused here, exit 2
    return ArtifactDestinations(source, target)


def plan_import_relocation(
    source: Connection,
    target: Connection,
    meta_source: MetaData,
    meta_target: MetaData,
    *,
    workspace: str,
    source_workspace: str | None,
    experiment_delta: int,
    copied: Iterable[str],
    schema: WorkspaceSchema,
    destinations: ArtifactDestinations,
    previous: Relocation | None = None,
    experiments_where: Any = None,
) -> Relocation:
    """Read-only on both databases and stores: for every SOURCE experiment whose proxied location follows the
    layout SOURCE's server derives, the prefix copied to TARGET's place for its new id (old id +
    ``experiment_delta``), with its objects and bytes; the columns holding stored URIs under those prefixes; a
    target prefix holding anything but finished copies of SOURCE's objects blocks.  Under the lock ``previous``
    (the reviewed plan's) gives the candidate columns and their counts: SOURCE's old prefixes did not change.
    ``experiments_where``: the filter of the experiments copied (``--from-workspace``), None for all."""
    from_ws = source_workspace or mlflow_facts.DEFAULT_WORKSPACE
    source_root = _catalog_root(source, meta_source, from_ws)
    target_root = _catalog_root(target, meta_target, workspace)
    exp = meta_source.tables[mlflow_facts.EXPERIMENTS_TABLE]
    ident, location = exp.c[mlflow_facts.EXPERIMENT_ID_COLUMN], exp.c[mlflow_facts.ARTIFACT_LOCATION_COLUMN]
    stmt = select(ident, location).where(location.like(f"{mlflow_facts.PROXIED_ARTIFACT_SCHEME}:%")).order_by(ident)
    if experiments_where is not None:  # --from-workspace: only the experiments copied
        stmt = stmt.where(experiments_where)
    proxied = source.execute(stmt).all()
    moves, left, occupied = [], [], []
    for old_id, stored in proxied:
        prefix = stored.rstrip("/")
        if prefix not in derived_locations(PROXIED_ROOT, from_ws, source_root, str(old_id)):
            left.append((str(old_id), stored))  # a custom proxied path: never guessed at
            continue
        new_id = str(old_id + experiment_delta)
        to = target_location(PROXIED_ROOT, workspace, target_root, new_id)
        assert to is not None  # PROXIED_ROOT always gives one
        src = locate(prefix, artifacts_destination=destinations.source)
        dst = locate(to, artifacts_destination=destinations.target)
        objects, there = src.list(), dst.list()
        # The experiment is new in TARGET: anything at its prefix but a finished copy of SOURCE's objects (a
        # killed earlier run with the same ids left those) belongs to someone else.
        if any(k not in objects or not same_object(objects[k], i) for k, i in there.items()):
            occupied.append(str(dst))
        size = sum(o.size for o in objects.values())
        moves.append(ArtifactMove(new_id, prefix, to, str(src), str(dst), len(objects), size))
    if previous is not None and [m.from_uri for m in previous.moves] == [m.from_uri for m in moves]:
        tables, columns = previous.tables, previous.columns
    else:
        copied = set(copied)
        tables = {t: v for t, v in candidate_tables(source, schema).items() if t in copied}
        columns = scan_uri_columns(source, tables, [m.from_uri for m in moves])
    return Relocation(tuple(moves), tuple(left), columns, tuple(occupied), (), tables)


def _catalog_root(conn: Connection, meta: MetaData, workspace: str) -> str | None:
    """``workspace``'s own ``default_artifact_root`` in the catalog on ``conn`` (None when unset or absent)."""
    catalog = meta.tables.get(mlflow_facts.CATALOG_TABLE)
    if catalog is None or mlflow_facts.CATALOG_ARTIFACT_ROOT_COLUMN not in catalog.c:
        return None
    name = catalog.c[mlflow_facts.CATALOG_NAME_COLUMN]
    stmt = select(catalog.c[mlflow_facts.CATALOG_ARTIFACT_ROOT_COLUMN]).where(name == workspace)
    return conn.execute(stmt).scalar()


def uri_rewriter(
    relocation: Relocation | None, table: str, columns: Sequence[str]
) -> Callable[[tuple[Any, ...]], tuple[Any, ...]] | None:
    """TARGET's row -> the same row with every stored URI under an old prefix moved to its new one (None when
    ``table`` holds no candidate column).  Per value: a type test and ``startswith``; a proxied value then costs
    one split and a dict lookup per prefix depth (the longest prefix wins, as the move's rewrite does)."""
    if relocation is None or not relocation.moves or table not in relocation.tables:
        return None
    scanned = set(relocation.tables[table][1])
    positions = [i for i, c in enumerate(columns) if c in scanned]
    if not positions:
        return None
    pairs = {m.from_uri: m.to_uri for m in relocation.moves}
    scheme = f"{mlflow_facts.PROXIED_ARTIFACT_SCHEME}:"
    # The prefixes' depths ('/' counts), deepest first: one split, then one lookup per depth (legacy and
    # workspaces/ layouts: two), rather than one per '/' of the value.
    depths = sorted({p.count("/") for p in pairs}, reverse=True)

    def moved(value: str) -> str:
        parts = value.split("/", depths[0] + 1)
        for n in depths:
            if len(parts) > n:
                head = "/".join(parts[: n + 1])
                new = pairs.get(head)
                if new is not None:
                    return new + value[len(head) :]
        return value

    def rewrite(row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = None
        for p in positions:
            value = row[p]
            if value.__class__ is str and value.startswith(scheme):
                new = moved(value)
                if new is not value:
                    values = values or list(row)
                    values[p] = new
        return row if values is None else tuple(values)

    return rewrite


def copy_artifacts(
    relocation: Relocation, journal: JournalWriter | None, *, workers: int, on_progress: Progress | None = None
) -> int:
    """Under TARGET's lock, before COMMIT: journal every copy (on disk before it starts, so that a killed run's
    copies can be found again), then copy and verify each prefix.  Returns the objects this run copied."""
    if journal:
        for m in relocation.moves:
            journal.artifact_move(m.record())
        journal.sync()
    return transfer(relocation.moves, workers=workers, on_progress=on_progress)
