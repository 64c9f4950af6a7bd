"""`--format json`: one document on stdout whose structure is pinned here by a small schema validator."""

from __future__ import annotations

import io
import json

import pytest

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.report.json_doc import write_document

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
    write_document({"a": 1, "conflicts": iter({"i": i, "s": "é"} for i in range(n)), "z": []}, out)
    assert json.loads(out.getvalue()) == {"a": 1, "conflicts": [{"i": i, "s": "é"} for i in range(n)], "z": []}


def test_items_encoded_before_a_stream_fails_are_written() -> None:
    def failing():
        yield from ({"i": i} for i in range(600))
        raise RuntimeError("connection lost")

    out = io.StringIO()
    with pytest.raises(RuntimeError):
        write_document({"conflicts": failing()}, out)
    # Every item read before the failure, in order, and nothing after it: the document's text up to there.
    assert out.getvalue().startswith('{"conflicts":[')
    assert json.loads(out.getvalue() + "]}") == {"conflicts": [{"i": i} for i in range(600)]}
