"""``--artifact-policy relocate``: the moved experiments' artifact objects move with them, and every stored URI
under a moved prefix is rewritten in the move's transaction.

The protocol, in this order, so that a SIGKILL anywhere leaves every artifact readable through the server:

1. ``transfer`` (before the lock): copy each experiment's prefix to its new place (a hard link on one
   filesystem, a server-side copy on S3; objects already there are skipped, so a re-run finishes a killed
   copy) and verify it (count, sizes, ETags).  The database still names the old prefix, whose objects are intact.
2. Under apply's lock: ``transfer`` again (only what was logged meanwhile), then ``rewrite_uris`` in the same
   transaction that moves the rows; the journal records each object move before COMMIT.
3. After COMMIT: ``delete_sources`` removes the old objects whose copy is verified (``--keep-source-artifacts``
   keeps them).  Killed before or during it, the new prefix is already complete and in use; the old objects
   are only garbage (``db restore-workspaces`` skips identical ones when it copies back).

``db restore-workspaces`` runs the same steps from each move's new prefix back to its old one, which carries
objects written under the new prefix after the move (runs logged in DST meanwhile) back too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, and_, bindparam, column, inspect, or_, select, table, text
from sqlalchemy.engine import Connection

from mlflow_ws_admin.common import mlflow_facts
from mlflow_ws_admin.db.schema import WorkspaceSchema
from mlflow_ws_admin.engine.move import Move
from mlflow_ws_admin.findings.artifacts import normalize_location
from mlflow_ws_admin.stores.base import (
    Location,
    Progress,
    TargetOccupied,
    copy_prefix,
    delete_copied,
    pending_copies,
    same_object,
    undo_copies,
    verify_copy,
)
from mlflow_ws_admin.stores.locate import locate

#: Where MLflow stores artifact URIs (docs: the facts measured on real servers).  Any other string column found
#: holding a moved prefix is rewritten too, and reported as unknown.
KNOWN_URI_COLUMNS = frozenset(
    {
        ("experiments", "artifact_location"),
        ("runs", "artifact_uri"),
        ("logged_models", "artifact_location"),
        ("model_versions", "storage_location"),
        ("model_versions", "source"),
        ("trace_tags", "value"),  # the tag mlflow.artifactLocation
    }
)
#: Columns that tie a table to runs, traces or experiments: such tables may store artifact URIs.
_RUN_OR_TRACE_COLUMNS = frozenset({"run_uuid", "run_id", "request_id", "experiment_id"})
#: Identifier columns: names and keys, never a URI (skipping them keeps huge tables such as metrics unscanned).
_NOT_URI_COLUMNS = frozenset({"key", "name", "workspace", "status", "lifecycle_stage", "stage"})
#: The root of a server started with --serve-artifacts (and no --default-artifact-root).
PROXIED_ROOT = "mlflow-artifacts:/"
#: Prefixes per LIKE query.
_PREFIX_BATCH = 100


@dataclass(frozen=True)
class ArtifactMove:
    """One experiment's artifact prefix: the stored URI before and after, and where its objects are."""

    experiment_id: str
    from_uri: str
    to_uri: str
    #: the objects' physical places (``mlflow-artifacts:`` resolved under the server's destination)
    source: str
    target: str
    objects: int = 0
    bytes: int = 0

    def reversed(self) -> ArtifactMove:
        return ArtifactMove(self.experiment_id, self.to_uri, self.from_uri, self.target, self.source)

    def record(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "from": self.from_uri,
            "to": self.to_uri,
            "source": self.source,
            "target": self.target,
            "objects": self.objects,
            "bytes": self.bytes,
        }

    @staticmethod
    def from_record(record: Mapping[str, Any]) -> ArtifactMove:
        return ArtifactMove(
            str(record["experiment_id"]),
            record["from"],
            record["to"],
            record["source"],
            record["target"],
            int(record.get("objects") or 0),
            int(record.get("bytes") or 0),
        )


@dataclass(frozen=True)
class UriColumn:
    """A column holding stored URIs under a moved prefix, and how many rows will be rewritten."""

    table: str
    column: str
    rows: int

    @property
    def known(self) -> bool:
        return (self.table, self.column) in KNOWN_URI_COLUMNS


@dataclass(frozen=True)
class Relocation:
    """The read-only plan of ``--artifact-policy relocate``."""

    moves: tuple[ArtifactMove, ...]
    #: (experiment_id, location) of moved experiments whose location follows no derived layout: left alone
    left_alone: tuple[tuple[str, str], ...] = ()
    #: the stored URIs the move rewrites, per column
    columns: tuple[UriColumn, ...] = ()
    #: target prefixes that already hold other objects: each blocks (never overwritten)
    occupied: tuple[str, ...] = ()
    #: (registered model, version) staying behind whose files move: readable only once the model moves too
    split_versions: tuple[tuple[str, Any], ...] = ()
    #: table -> (primary key, the string columns scanned for stored URIs): what apply locks and rewrites
    tables: Mapping[str, tuple[tuple[str, ...], list[str]]] = field(default_factory=dict)

    @property
    def objects(self) -> int:
        return sum(m.objects for m in self.moves)

    @property
    def bytes(self) -> int:
        return sum(m.bytes for m in self.moves)


# --- planning (read-only) ---------------------------------------------------------------------------------


def derived_locations(root: str | None, workspace: str, catalog_root: str | None, experiment_id: str) -> set[str]:
    """The locations MLflow's server gives experiment ``experiment_id`` of ``workspace``: under the workspace's own
    root when the catalog sets one, else ``ROOT/workspaces/<ws>/<id>``, and the legacy ``ROOT/<id>`` of an
    experiment created before workspaces."""
    from mlflow_ws_admin.engine.selection import append_to_uri_path, retargeted, workspace_root

    found = set()
    if catalog_root:
        found.add(retargeted(catalog_root, experiment_id))
    if root:
        found.add(append_to_uri_path(root, experiment_id))
        found.add(retargeted(workspace_root(root, None, workspace), experiment_id))
    return {_strip(u) for u in found}


def target_location(root: str | None, target: str, catalog_root: str | None, experiment_id: str) -> str | None:
    """Where MLflow's server would place a new experiment ``experiment_id`` in ``target``."""
    from mlflow_ws_admin.engine.selection import retargeted, workspace_root

    base = workspace_root(root, catalog_root, target)
    return None if base is None else _strip(retargeted(base, experiment_id))


def _strip(uri: str) -> str:
    stripped = uri.rstrip("/")
    return stripped if not stripped.endswith(":") else uri  # ``mlflow-artifacts:/`` keeps its slash


def plan_relocation(
    conn: Connection,
    schema: WorkspaceSchema,
    experiments: Iterable[tuple[Any, str | None]],
    *,
    source: str,
    target: str,
    workspaces: Mapping[str, str | None],
    root: str | None,
    artifacts_destination: str | None,
    move: Move | None = None,
) -> Relocation:
    """Which prefixes move where (listing their objects), which locations are left alone, which stored URIs
    will be rewritten.  Reads the database and the stores; writes nothing."""
    moves, left, occupied = [], [], []
    for experiment_id, location in experiments:
        ident = str(experiment_id)
        if not location:
            continue
        stored = _strip(location)
        to = target_location(root, target, workspaces.get(target), ident)
        derived = {normalize_location(u) for u in derived_locations(root, source, workspaces.get(source), ident)}
        # Compared normalized (``file:///a``, ``file:/a`` and ``/a`` are one place), as the artifact findings do.
        if to is None or normalize_location(stored) not in derived:
            left.append((ident, location))
            continue
        src = locate(stored, artifacts_destination=artifacts_destination)
        dst = locate(to, artifacts_destination=artifacts_destination)
        objects = src.list()
        try:
            pending_copies(objects, dst.list(), dst)
        except TargetOccupied:
            occupied.append(str(dst))
        moves.append(
            ArtifactMove(ident, stored, to, str(src), str(dst), len(objects), sum(o.size for o in objects.values()))
        )
    tables = candidate_tables(conn, schema)
    prefixes = [m.from_uri for m in moves]
    columns = scan_uri_columns(conn, tables, prefixes)
    split = _versions_left_behind(conn, schema, move, prefixes) if move is not None else ()
    return Relocation(tuple(moves), tuple(left), columns, tuple(occupied), split, tables)


def _versions_left_behind(
    conn: Connection, schema: WorkspaceSchema, move: Move, prefixes: Sequence[str]
) -> tuple[tuple[str, Any], ...]:
    """Registered model versions that stay in SRC while the files they point at move: MLflow serves a path only
    to the workspace owning it, so such a version reads again only once its model moves too."""
    from mlflow_ws_admin.engine import queries

    name = "model_versions"
    if not prefixes or name not in {wt.name for wt in schema.tables}:
        return ()
    wt = schema.table(name)
    t = queries.table_clause(wt)
    if not all(c in t.c for c in ("name", "version", "storage_location")):
        return ()
    staying = and_(t.c[wt.workspace_column] == move.source, ~queries.rows_moving(wt, move))
    stmt = select(t.c["name"], t.c["version"], t.c["storage_location"]).where(
        staying, or_(*(t.c["storage_location"].startswith(p, autoescape=True) for p in prefixes))
    )
    found = {(n, v) for n, v, loc in conn.execute(stmt) if any(_under(loc, p) for p in prefixes)}
    return tuple(sorted(found, key=str))


def moving_experiments(conn: Connection, schema: WorkspaceSchema, move: Move) -> list[tuple[Any, str | None]]:
    """(experiment_id, artifact_location) of every experiment the move takes along."""
    from mlflow_ws_admin.engine import queries

    if not move.moves_table(mlflow_facts.EXPERIMENTS_TABLE):
        return []
    wt = schema.table(mlflow_facts.EXPERIMENTS_TABLE)
    t = queries.table_clause(wt)
    ident, location = t.c[mlflow_facts.EXPERIMENT_ID_COLUMN], t.c[mlflow_facts.ARTIFACT_LOCATION_COLUMN]
    return [
        tuple(r) for r in conn.execute(select(ident, location).where(queries.rows_moving(wt, move)).order_by(ident))
    ]


def candidate_tables(conn: Connection, schema: WorkspaceSchema) -> dict[str, tuple[tuple[str, ...], list[str]]]:
    """table -> (primary key, string columns that may hold a URI), for every workspace-scoped table and every
    table tied to runs, traces or experiments.  Read from the schema, so a column a newer MLflow adds is
    scanned too: every table's columns and primary key in one read each (per table, PostgreSQL took ~0.5 s for
    MLflow's 46 tables), the foreign keys from the schema."""
    names = sorted(schema.all_table_names)
    insp = inspect(conn)
    columns = {name: cols for (_, name), cols in insp.get_multi_columns(filter_names=names).items()}
    keys = {name: key for (_, name), key in insp.get_multi_pk_constraint(filter_names=names).items()}
    fk_columns: dict[str, set[str]] = {}
    for fk in schema.all_foreign_keys:
        fk_columns.setdefault(fk.child, set()).update(fk.child_columns)
    workspace_tables = {wt.name for wt in schema.tables}
    out = {}
    for name in names:
        cols = columns.get(name, [])
        if name not in workspace_tables and not {c["name"] for c in cols} & _RUN_OR_TRACE_COLUMNS:
            continue
        pk = tuple(keys.get(name, {}).get("constrained_columns") or ())
        strings = [
            c["name"]
            for c in cols
            if isinstance(c["type"], String)
            and c["name"] not in pk
            and c["name"] not in fk_columns.get(name, ())
            and c["name"] not in _NOT_URI_COLUMNS
            and not c["name"].endswith("_id")
        ]
        if strings and pk:
            out[name] = (pk, strings)
    return out


def _under(value: Any, prefix: str) -> bool:
    return isinstance(value, str) and (value == prefix or value.startswith(prefix.rstrip("/") + "/"))


def _matches(
    conn: Connection, name: str, pk: Sequence[str], cols: Sequence[str], prefixes: Sequence[str]
) -> Iterator[tuple[tuple[Any, ...], str, str, str]]:
    """(primary key, column, value, the prefix it is under) of every value of ``cols`` in ``name`` under a prefix:
    one scan of the table for all its columns (per batch of prefixes), not one per column.  LIKE finds a superset
    (MySQL compares without case); the exact test is Python's.

    The statement is SQL text: a relocation scans every candidate table (~50 in MLflow's schema, most of them
    empty), and compiling each one's Core expression cost ~1 ms, most of a scan's time (57 ms on SQLite)."""
    quote = conn.dialect.identifier_preparer.quote
    n = len(pk)
    per_query = max(1, _PREFIX_BATCH // len(cols))  # at most _PREFIX_BATCH LIKE terms a statement, as before
    selected = ", ".join(quote(c) for c in (*pk, *cols))
    for i in range(0, len(prefixes), per_query):
        batch = prefixes[i : i + per_query]
        where = " OR ".join(f"{quote(c)} LIKE :p{j} ESCAPE '/'" for c in cols for j in range(len(batch)))
        stmt = text(f"SELECT {selected} FROM {quote(name)} WHERE {where}")
        for row in conn.execute(stmt, {f"p{j}": _like_prefix(p) for j, p in enumerate(batch)}):
            for col, value in zip(cols, row[n:], strict=True):
                # The longest prefix wins should one moved prefix sit inside another.
                hit = max((p for p in batch if _under(value, p)), key=len, default=None)
                if hit is not None:
                    yield tuple(row[:n]), col, value, hit


def _like_prefix(prefix: str) -> str:
    """The LIKE pattern of every value starting with ``prefix``: its wildcards (and '/', the escape) escaped."""
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def scan_uri_columns(
    conn: Connection, tables: Mapping[str, tuple[tuple[str, ...], list[str]]], prefixes: Sequence[str]
) -> tuple[UriColumn, ...]:
    """Read-only: the columns holding values under ``prefixes``, with their row counts."""
    if not prefixes:
        return ()
    found = []
    for name, (pk, cols) in tables.items():
        rows = Counter(col for _, col, _, _ in _matches(conn, name, pk, cols, list(prefixes)))
        found += [UriColumn(name, col, rows[col]) for col in cols if rows[col]]
    return tuple(found)


def rewrite_uris(
    conn: Connection,
    tables: Mapping[str, tuple[tuple[str, ...], list[str]]],
    pairs: Mapping[str, str],
) -> tuple[UriColumn, ...]:
    """Inside the move's transaction: every value under an old prefix of ``pairs`` gets the new prefix in its
    place.  Returns the rows rewritten per column."""
    done = []
    old = sorted(pairs)
    for name, (pk, cols) in tables.items():
        changes: dict[str, list[tuple[tuple[Any, ...], str]]] = {}
        for key, col, value, hit in _matches(conn, name, pk, cols, old):
            changes.setdefault(col, []).append((key, pairs[hit] + value[len(hit) :]))
        for col in cols:
            if col not in changes:
                continue
            t = table(name, *(column(c) for c in {*pk, col}))
            where = and_(*(t.c[c] == bindparam(f"mwa_k{i}") for i, c in enumerate(pk)))
            conn.execute(
                t.update().where(where).values({col: bindparam("mwa_v")}),
                [{"mwa_v": new, **{f"mwa_k{i}": v for i, v in enumerate(key)}} for key, new in changes[col]],
            )
            done.append(UriColumn(name, col, len(changes[col])))
    return tuple(done)


# --- the objects ------------------------------------------------------------------------------------------


def _places(move: ArtifactMove) -> tuple[Location, Location]:
    return locate(move.source), locate(move.target)


def transfer(
    moves: Sequence[ArtifactMove],
    *,
    workers: int,
    on_progress: Progress | None = None,
    landed: list[tuple[ArtifactMove, tuple[str, ...]]] | None = None,
) -> int:
    """Copy and verify every move (idempotent).  Returns the objects copied by this call.  A failure (a store
    refusing, an object gone, a copy that does not verify) removes what this call copied before it is raised;
    ``landed`` collects what a successful call copied, for a caller that may fail later (``CopiesBeforeCommit``)."""
    done: list[tuple[ArtifactMove, tuple[str, ...]]] = []
    copied = 0
    try:
        for move in moves:
            src, dst = _places(move)
            result = copy_prefix(src, dst, workers=workers, on_progress=on_progress)
            done.append((move, result.keys))
            copied += result.copied
            verify_copy(src, dst, result.listed)  # what the copy listed: objects logged since are the next pass's
    except Exception as exc:
        raise undo_transfer(done, exc) from None
    if landed is not None:
        landed.extend(done)
    return copied


def undo_transfer(landed: Sequence[tuple[ArtifactMove, tuple[str, ...]]], failure: Exception) -> Exception:
    """Delete what ``transfer`` copied (it was absent before, and nothing names it yet); returns the failure
    to raise, which says what stays should a delete fail too."""
    for move, keys in reversed(landed):
        failure = undo_copies(_places(move)[1], keys, failure)
    return failure


class CopiesBeforeCommit:
    """What a run copied to the new prefixes before its commit: removed again when the run fails before it
    commits (a refusal under the lock, a lost lock, a store error), so a failed run leaves the objects as they
    were.  Never once the commit began: the database may name the new prefixes then."""

    def __init__(self) -> None:
        self.landed: list[tuple[ArtifactMove, tuple[str, ...]]] = []
        #: set as the last statement before the commit
        self.committing = False

    def __enter__(self) -> CopiesBeforeCommit:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        # An interrupt is a crash like SIGKILL: the copies stay for the re-run, which reuses them.
        if isinstance(exc, Exception) and not self.committing and self.landed:
            failure = undo_transfer(self.landed, exc)
            self.landed = []
            if failure is not exc:
                raise failure from None
        return False


def committed(conn: Connection, schema: WorkspaceSchema, moves: Sequence[ArtifactMove]) -> list[ArtifactMove]:
    """The moves whose experiment the database already names by its new prefix (their rewrite committed)."""
    wt = schema.table(mlflow_facts.EXPERIMENTS_TABLE)
    t = table(wt.name, column(mlflow_facts.EXPERIMENT_ID_COLUMN), column(mlflow_facts.ARTIFACT_LOCATION_COLUMN))
    ident, location = t.c[mlflow_facts.EXPERIMENT_ID_COLUMN], t.c[mlflow_facts.ARTIFACT_LOCATION_COLUMN]
    ids = [m.experiment_id for m in moves]
    now = {str(i): loc for i, loc in conn.execute(select(ident, location).where(ident.in_(ids)))}
    return [m for m in moves if now.get(m.experiment_id) == m.to_uri]


def leftovers(moves: Sequence[ArtifactMove]) -> dict[str, int]:
    """experiment id -> old objects whose verified copy is at the new prefix (what ``delete_sources`` removes)."""
    out = {}
    for move in moves:
        src, dst = _places(move)
        there = dst.list()
        out[move.experiment_id] = sum(1 for k, i in src.list().items() if k in there and same_object(i, there[k]))
    return out


def delete_sources(moves: Sequence[ArtifactMove]) -> int:
    """After COMMIT: delete each old object whose copy is verified at the new prefix.  Returns how many."""
    deleted = 0
    for move in moves:
        src, dst = _places(move)
        deleted += delete_copied(src, dst)
    return deleted
