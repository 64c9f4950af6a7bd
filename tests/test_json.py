"""`--format json`: one document on stdout whose structure is pinned here by a small schema validator."""

from __future__ import annotations

import io
import json

import pytest

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.report.json_doc import conflict_items, write_document

from .helpers import migrate, populate, run_cli

# A tiny JSON-schema subset: {"type": ..., "keys": {...required...}, "optional": {...}, "items": ..., "values": ...}
INT, STR, BOOL = {"type": int}, {"type": str}, {"type": bool}
OPT_STR = {"type": (str, type(None))}
SCALAR = {"type": (str, int, float, bool, type(None))}
DOCUMENT = {
    "type": dict,
    "keys": {
        "schema_version": {"type": int, "const": 1},
        "status": {"type": str, "enum": ["ok", "conflicts", "applied", "nothing_to_move", "aborted", "error"]},
        "exit_code": INT,
        "dry_run": BOOL,
        "database": {"type": dict, "keys": {"dialect": OPT_STR, "url": OPT_STR}},
        "tables": {
            "type": list,
            "items": {
                "type": dict,
                "keys": {"table": STR, "rows_to_move": INT, "by_workspace": {"type": dict, "values": INT}},
            },
        },
        "total_rows_to_move": INT,
        "conflicts": {
            "type": list,
            "items": {
                "type": dict,
                "keys": {
                    "table": STR,
                    "key": {"type": dict, "values": SCALAR},
                    "rows": {"type": list, "items": {"type": dict, "keys": {"workspace": OPT_STR}, "values": SCALAR}},
                    "dependent_rows": INT,
                },
                # fix: the one action that works in MLflow for the group; resource: "prompt" for a prompt
                "optional": {"reason": STR, "detail": STR, "fix": STR, "resource": STR},
            },
        },
        "conflict_count": INT,
        "artifact_findings": {
            "type": list,
            "items": {
                "type": dict,
                "keys": {"kind": STR, "severity": STR, "experiment_id": SCALAR, "location": STR, "detail": STR},
            },
        },
        # rows MLflow stores content for under their workspace (3.18.0's skill versions): refused, no override
        "stored_content": {
            "type": list,
            "items": {
                "type": dict,
                "keys": {
                    "table": STR,
                    "key": {"type": dict, "values": SCALAR},
                    "workspace": STR,
                    "location": STR,
                    "reason": STR,
                    "fix": STR,
                },
            },
        },
        "workspaces_pruned": {"type": list, "items": STR},
        # --rename-conflicts: every planned rename ([] without it)
        "renames": {
            "type": list,
            "items": {
                "type": dict,
                "keys": {
                    "table": STR,
                    "key": {"type": dict, "values": SCALAR},
                    "workspace": OPT_STR,
                    "old": STR,
                    "new": STR,
                },
            },
        },
    },
    "optional": {
        "message": STR,
        "rows_moved": {"type": (int, type(None))},
        "other_sessions": {"type": (list, type(None)), "items": STR},  # null: SQLite cannot tell
        "missing_rows": {"type": dict, "values": INT},
        "workspaces_recreated": {"type": list, "items": STR},
        "columns_restored": INT,
        # db restore-workspaces: the relocations it moves back; objects copied and deleted (null until applied)
        "artifact_moves": {
            "type": list,
            "items": {"type": dict, "keys": {"experiment_id": STR, "from": STR, "to": STR}},
        },
        "artifact_objects_copied": {"type": (int, type(None))},
        "artifact_objects_deleted": {"type": (int, type(None))},
        # with --rename-conflicts: the colliding rows it cannot rename (they block), and, once applied, the rows
        # renamed per table (dependent rows included; null before apply)
        "renames_refused": {
            "type": list,
            "items": {
                "type": dict,
                "keys": {
                    "table": STR,
                    "key": {"type": dict, "values": SCALAR},
                    "workspace": OPT_STR,
                    "old": STR,
                    "reason": STR,
                },
            },
        },
        "rows_renamed": {"type": (dict, type(None)), "values": INT},
    },
}

# db move-resources: the same document plus its selection fields, all required.
_ROW_REF = {"type": dict, "keys": {"table": STR, "key": {"type": dict, "values": SCALAR}, "name": SCALAR}}
_REFERENCE = {"type": dict, "keys": {"row": _ROW_REF, "references": _ROW_REF, "via": STR}}
MOVE_DOCUMENT = {
    **DOCUMENT,
    "keys": {
        **DOCUMENT["keys"],
        "source_workspace": STR,
        "target_workspace": STR,
        "selected": {"type": dict, "values": {"type": list, "items": {"type": dict, "values": SCALAR}}},
        "names_not_found": {"type": list, "items": STR},
        "pulled_along": {"type": list, "items": _REFERENCE},
        "references_left_behind": {"type": list, "items": _REFERENCE},
        "artifact_policy": {"type": str, "enum": ["preserve", "retarget", "relocate"]},
        "artifact_root": OPT_STR,
        "artifact_locations_retargeted": {"type": (int, type(None))},
        # --artifact-policy relocate: per moved experiment the prefix that moves ([] under the other policies)
        "artifact_moves": {
            "type": list,
            "items": {
                "type": dict,
                "keys": {"experiment_id": STR, "from": STR, "to": STR, "objects": INT, "bytes": INT},
            },
        },
    },
    "optional": {
        **DOCUMENT["optional"],
        # relocate only: the stored URIs rewritten per column, locations left alone, targets that block, and
        # (null until applied) the objects copied by the run and deleted after its commit (null: kept)
        "artifact_uris_rewritten": {
            "type": list,
            "items": {"type": dict, "keys": {"table": STR, "column": STR, "rows": INT, "known": BOOL}},
        },
        "artifact_locations_left_alone": {
            "type": list,
            "items": {"type": dict, "keys": {"experiment_id": STR, "location": STR}},
        },
        "artifact_targets_occupied": {"type": list, "items": STR},
        # registered model versions staying in SRC whose files move (a finding: move the model too, or accept it)
        "artifact_versions_left_behind": {
            "type": list,
            "items": {"type": dict, "keys": {"name": STR, "version": SCALAR}},
        },
        "artifact_objects_copied": {"type": (int, type(None))},
        "artifact_objects_deleted": {"type": (int, type(None))},
    },
}


def validate(value, schema, path="$") -> None:
    assert isinstance(value, schema["type"]), f"{path}: {type(value).__name__} is not {schema['type']}"
    if schema["type"] is int:
        assert not isinstance(value, bool), f"{path}: bool is not int"
    if "const" in schema:
        assert value == schema["const"], f"{path}: {value!r}"
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r}"
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, dict):
        required, optional = schema.get("keys", {}), schema.get("optional", {})
        missing = required.keys() - value.keys()
        assert not missing, f"{path}: missing {sorted(missing)}"
        for key, item in value.items():
            sub = required.get(key) or optional.get(key) or schema.get("values")
            assert sub is not None, f"{path}: unexpected key {key!r}"
            validate(item, sub, f"{path}.{key}")


def document(result) -> dict:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"stdout must be one JSON document: {result.stdout!r}"
    doc = json.loads(lines[0])
    validate(doc, DOCUMENT)
    assert doc["exit_code"] == result.exit_code
    return doc


def _collide(data) -> None:
    for i in range(7):
        data.experiment("team-a", f"dup-{i}")
        data.experiment("team-b", f"dup-{i}")
    data.registered_model("team-a", "fraud", versions=3, tags=2, aliases=1)
    data.registered_model("team-c", "fraud", versions=2)


def test_validator_rejects_a_wrong_shape() -> None:
    good = {
        "schema_version": 1, "status": "ok", "exit_code": 0, "dry_run": True,
        "database": {"dialect": "sqlite", "url": "sqlite:///x"}, "tables": [], "total_rows_to_move": 0,
        "conflicts": [], "conflict_count": 0, "artifact_findings": [], "stored_content": [], "workspaces_pruned": [],
        "renames": [],
    }  # fmt: skip
    validate(good, DOCUMENT)
    for broken in ({**good, "status": "fine"}, {**good, "exit_code": True}, {**good, "extra": 1}):
        try:
            validate(broken, DOCUMENT)
        except AssertionError:
            continue
        raise AssertionError(f"accepted {broken}")


def test_dry_run_json_lists_every_conflict_and_changes_nothing(mlflow_db) -> None:
    populate(mlflow_db, _collide)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run", "--format", "json")

    assert result.exit_code == ExitStatus.CONFLICTS
    doc = document(result)
    assert doc["status"] == "conflicts" and doc["dry_run"] is True
    assert doc["conflict_count"] == 8 == len(doc["conflicts"])  # not truncated to 5 per table
    fraud = next(c for c in doc["conflicts"] if c["table"] == "registered_models")
    assert fraud["key"] == {"name": "fraud"}
    assert [r["workspace"] for r in fraud["rows"]] == ["team-a", "team-c"]
    assert fraud["dependent_rows"] == 13
    exp = next(c for c in doc["conflicts"] if c["key"] == {"name": "dup-3"})
    assert {r["workspace"] for r in exp["rows"]} == {"team-a", "team-b"}
    assert all("experiment_id" in r for r in exp["rows"])
    tables = {t["table"]: t for t in doc["tables"]}
    assert tables["experiments"]["by_workspace"]["team-a"] == 3 + 7 + 0
    assert doc["total_rows_to_move"] == sum(t["rows_to_move"] for t in doc["tables"])
    assert "Migrate to the" not in result.stdout  # no human report mixed into the JSON
    assert mlflow_db.fingerprint() == before


def _group_item(plan, tc, group) -> dict:
    """A conflict item built from the plan's own group values (the form the items had before they were
    written straight from the records), to hold the fast writer to."""
    item = {
        "table": tc.table,
        "key": dict(group.key),
        "rows": [
            {"workspace": r.workspace, **dict(r.identity), **(dict(r.stored_key) if r.stored_key != group.key else {})}
            for r in group.rows
        ],
        "dependent_rows": group.dependent_rows,
    }
    if plan.is_prompt_group(tc, group):
        item["resource"] = "prompt"
    if not plan.resolved(tc):
        item["fix"] = plan.group_fix(tc, group)
    return item


@pytest.mark.parametrize("flags", [(), ("--rename-conflicts", "{name}-{workspace}")], ids=["fixes", "renames"])
def test_json_items_are_the_plans_groups(mlflow_db, backend: str, flags: tuple[str, ...]) -> None:
    """Every item, field by field and in order, is the group the plan reads for it: deleted rows, dependents,
    prompts, a group whose keeper is `default`, keys without a client rename, a secret that cannot be renamed,
    names needing JSON escapes, and (MySQL) one group spelled three ways."""
    from mlflow_ws_admin.db.schema import reflect_schema
    from mlflow_ws_admin.engine.move import Move, RenamePolicy
    from mlflow_ws_admin.engine.plan import build_plan, read_conflict_records
    from mlflow_ws_admin.engine.rename_template import RenameTemplate

    from .test_rename_conflicts import _collide as collide_every_kind

    def fill(data) -> None:
        collide_every_kind(data)
        data.experiment("team-a", 'q"uo\\te é %s', lifecycle_stage="deleted")
        data.experiment("team-c", 'q"uo\\te é %s')
        data.workspace("analytics")  # sorts before `default`, which keeps its name
        data.experiment("analytics", "kept-in-default")
        data.experiment("default", "kept-in-default")
        data.secret("team-a", "token")
        data.secret("team-b", "token")
        data.registered_model("team-a", "Spelled" if backend == "mysql" else "spelled", versions=2)
        data.registered_model("team-b", "spelled")
        data.registered_model("team-c", "SPELLED" if backend == "mysql" else "spelled", tags=1)

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    with mlflow_db.engine.connect() as conn:
        schema = reflect_schema(conn)
        move = Move(rename=RenamePolicy(RenameTemplate.parse(flags[1]))) if flags else Move()
        plan = build_plan(conn, schema, database="x", sample_limit=0, move=move)
        # Both from the same records: MySQL may pick another spelling of a case-insensitive key each query.
        records = {}
        for tc in plan.conflicts:
            layout, rows = read_conflict_records(conn, schema, schema.table(tc.table), tc.key, None, move)
            records[tc.table] = (layout, list(rows))
    out = io.StringIO()
    write_document({"conflicts": conflict_items(plan, lambda tc, n: records[tc.table], None)}, out)
    expected = [
        _group_item(plan, tc, g) for tc in plan.conflicts for g in records[tc.table][0].groups(records[tc.table][1])
    ]
    assert json.loads(out.getvalue())["conflicts"] == expected
    assert len(expected) == plan.conflict_count >= 9
    assert any("resource" in i for i in expected) and any("fix" in i for i in expected)  # a secret's, renamed or not
    assert any("fix" not in i for i in expected) == bool(flags)
    assert any(i["dependent_rows"] for i in expected) and any(len(i["rows"]) == 3 for i in expected)
    spelled = [r for i in expected for r in i["rows"] if set(r) & set(i["key"])]  # a spelling of its own
    assert bool(spelled) == (backend == "mysql")
    doc = document(migrate(mlflow_db.uri, "--dry-run", "--format", "json", *flags))
    assert len(doc["conflicts"]) == len(expected)
    assert mlflow_db.fingerprint() == before


def test_max_conflicts_caps_the_list_but_not_the_count(mlflow_db) -> None:
    populate(mlflow_db, _collide)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run", "--format", "json", "--max-conflicts", "3")

    doc = document(result)
    assert len(doc["conflicts"]) == 3 and doc["conflict_count"] == 8
    assert mlflow_db.fingerprint() == before


def test_clean_dry_run_and_nothing_to_move(mlflow_db) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    clean = document(migrate(mlflow_db.uri, "--dry-run", "--format", "json"))
    assert clean["status"] == "ok" and clean["exit_code"] == 0 and clean["conflicts"] == []
    assert clean["database"]["dialect"] == mlflow_db.backend
    assert mlflow_db.fingerprint() == before

    assert migrate(mlflow_db.uri, "-y").exit_code == ExitStatus.OK
    after = mlflow_db.fingerprint()
    empty = document(migrate(mlflow_db.uri, "--dry-run", "--format", "json"))
    assert empty["status"] == "nothing_to_move" and empty["total_rows_to_move"] == 0
    assert mlflow_db.fingerprint() == after


def test_applied_document_lists_pruned_workspaces(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)

    result = migrate(mlflow_db.uri, "-y", "--format", "json", "--prune-workspaces")

    assert result.exit_code == ExitStatus.OK, result.output
    doc = document(result)
    assert doc["status"] == "applied" and doc["dry_run"] is False
    assert doc["rows_moved"] == doc["total_rows_to_move"] > 0  # counted under the lock
    assert doc["workspaces_pruned"] == ["team-a", "team-b", "team-c"]
    assert mlflow_db.scalar("SELECT COUNT(*) FROM workspaces") == 1


def test_restore_documents(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    journal = tmp_path / "j.jsonl"
    assert migrate(mlflow_db.uri, "-y", "--journal", str(journal), "--prune-workspaces").exit_code == 0
    before = mlflow_db.fingerprint()

    dry = document(
        run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "--dry-run", "--format", "json")
    )
    assert dry["status"] == "ok" and dry["total_rows_to_move"] == 60
    assert dry["workspaces_recreated"] == ["team-a", "team-b", "team-c"]
    assert mlflow_db.fingerprint() == before

    done = document(
        run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "-y", "--format", "json")
    )
    assert done["status"] == "applied"
    again = document(
        run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "--dry-run", "--format", "json")
    )
    assert again["status"] == "nothing_to_move" and sum(again["missing_rows"].values()) == 60


def test_errors_are_json_documents_without_the_password(tmp_path) -> None:
    missing = run_cli(
        "db", "migrate-to-default-workspace", f"sqlite:///{tmp_path}/nope.db", "--dry-run", "--format", "json"
    )
    assert missing.exit_code == ExitStatus.DATABASE_ERROR
    doc = document(missing)
    assert doc["status"] == "error" and "not found" in doc["message"]
    assert not (tmp_path / "nope.db").exists()

    uri = "postgresql://admin:s3cr3t-pw@127.0.0.1:1/mlflow"
    refused = run_cli("db", "migrate-to-default-workspace", uri, "--dry-run", "--format", "json")
    doc = document(refused)
    assert doc["status"] == "error" and doc["exit_code"] == ExitStatus.DATABASE_ERROR
    assert doc["database"]["url"] == "postgresql+psycopg2://admin:***@127.0.0.1:1/mlflow"
    assert "s3cr3t-pw" not in refused.stdout + refused.stderr

    usage = run_cli("db", "migrate-to-default-workspace", "http://tracking:5000", "--dry-run", "--format", "json")
    assert document(usage)["exit_code"] == ExitStatus.USAGE


@pytest.mark.parametrize("n", [0, 1, 499, 500, 501, 1000, 1234])
def test_streamed_items_are_written_in_batches_as_one_list(n: int) -> None:
    out = io.StringIO()
    # The stream yields its items encoded already (conflict_items writes each group's JSON itself).
    items = (json.dumps({"i": i, "s": "é"}, ensure_ascii=False) for i in range(n))
    write_document({"a": 1, "conflicts": items, "z": []}, out)
    assert json.loads(out.getvalue()) == {"a": 1, "conflicts": [{"i": i, "s": "é"} for i in range(n)], "z": []}


def test_items_encoded_before_a_stream_fails_are_written() -> None:
    def failing():
        yield from (json.dumps({"i": i}) for i in range(600))
        raise RuntimeError("connection lost")

    out = io.StringIO()
    with pytest.raises(RuntimeError):
        write_document({"conflicts": failing()}, out)
    # Every item read before the failure, in order, and nothing after it: the document's text up to there.
    assert out.getvalue().startswith('{"conflicts":[')
    assert json.loads(out.getvalue() + "]}") == {"conflicts": [{"i": i} for i in range(600)]}
