"""Child rows that an ON UPDATE CASCADE foreign key would move.

PostgreSQL fires the cascade as a trigger per parent row, so when a move takes a large share of a child table
apply drops that FK, moves the child with an UPDATE of its own and re-creates the FK (validated) before COMMIT;
a small share keeps the cascade, and so does a user who does not own the child table.  Whichever way, every
child row moves with its parent and every FK is there afterwards exactly as before, on every backend."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from mlflow_ws_admin.common.errors import ExitStatus

from .helpers import migrate, populate, run_cli
from .test_privileges import select_only_uri  # noqa: F401 (a fixture)

CHILDREN = ("model_versions", "model_version_tags", "registered_model_tags", "registered_model_aliases")


def _models(data) -> None:
    for ws in ("team-a", "team-b"):
        for i in range(20):
            data.registered_model(ws, f"{ws}-m{i}", versions=2, tags=1, aliases=1)


def _foreign_keys(db) -> dict[str, list[dict]]:
    with db.engine.connect() as conn:
        insp = inspect(conn)
        return {t: sorted(insp.get_foreign_keys(t), key=repr) for t in sorted(insp.get_table_names())}


def _constraint_ids(db) -> dict[str, int]:
    """PostgreSQL's id of each FK of the model registry's children: a dropped and re-created FK gets a new one."""
    rows = db.engine.connect().execute(
        text("SELECT conname, oid FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(:t)"),
        {"t": list(CHILDREN)},
    )
    return dict(rows.all())


def _rows_by_workspace(db, table: str) -> dict[str, int]:
    with db.engine.connect() as conn:
        return dict(conn.execute(text(f"SELECT workspace, COUNT(*) FROM {table} GROUP BY workspace")).all())


def test_a_migration_moves_every_child_and_keeps_every_foreign_key(mlflow_db, backend: str) -> None:
    populate(mlflow_db, _models)
    fks = _foreign_keys(mlflow_db)
    ids = _constraint_ids(mlflow_db) if backend == "postgresql" else {}
    totals = {t: sum(_rows_by_workspace(mlflow_db, t).values()) for t in CHILDREN}

    result = migrate(mlflow_db.uri, "-y")

    assert result.exit_code == ExitStatus.OK, result.output
    for table in CHILDREN:
        assert _rows_by_workspace(mlflow_db, table) == {"default": totals[table]}
    assert _foreign_keys(mlflow_db) == fks
    if backend == "postgresql":
        # Most of every child table moved: each FK was dropped and re-created rather than cascaded through.
        after = _constraint_ids(mlflow_db)
        assert after.keys() == ids.keys() and all(after[name] != ids[name] for name in ids), (ids, after)


def test_a_small_move_keeps_the_cascade(mlflow_db, backend: str) -> None:
    """One model of 40 (plus the other teams' spread): its children follow it through the cascade."""
    populate(mlflow_db, _models)
    fks = _foreign_keys(mlflow_db)
    ids = _constraint_ids(mlflow_db) if backend == "postgresql" else {}
    versions = _rows_by_workspace(mlflow_db, "model_versions")

    result = run_cli(
        "db", "move-resources", mlflow_db.uri, "--from", "team-a", "--to", "team-b",
        "--resource-type", "registered_models", "--name", "team-a-m0", "-y",
    )  # fmt: skip

    assert result.exit_code == ExitStatus.OK, result.output
    moved = _rows_by_workspace(mlflow_db, "model_versions")
    assert moved["team-a"] == versions["team-a"] - 2 and moved["team-b"] == versions["team-b"] + 2
    assert (
        mlflow_db.scalar("SELECT COUNT(*) FROM model_version_tags WHERE name = 'team-a-m0' AND workspace = 'team-b'")
        == 2
    )
    assert _foreign_keys(mlflow_db) == fks
    if backend == "postgresql":
        assert _constraint_ids(mlflow_db) == ids


@pytest.mark.postgresql_only
def test_a_user_who_does_not_own_the_tables_moves_through_the_cascade(
    mlflow_db,
    select_only_uri: str,  # noqa: F811
) -> None:
    """Only an owner may drop and re-create an FK: a user with UPDATE on every table still migrates, the slower way."""
    populate(mlflow_db, _models)
    user = select_only_uri.split("//")[1].split(":")[0]
    mlflow_db.execute(f"GRANT UPDATE ON ALL TABLES IN SCHEMA public TO {user}")
    ids = _constraint_ids(mlflow_db)

    result = migrate(select_only_uri, "-y")

    assert result.exit_code == ExitStatus.OK, result.output
    assert _rows_by_workspace(mlflow_db, "model_version_tags").keys() == {"default"}
    assert _constraint_ids(mlflow_db) == ids
