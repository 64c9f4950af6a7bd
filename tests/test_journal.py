"""The move journal, --prune-workspaces, and `db restore-workspaces`, on every backend."""

from __future__ import annotations

import gzip
import json

import pytest

from mlflow_ws_admin.common.errors import ExitStatus

from .helpers import migrate, populate, run_cli


def restore(uri: str, *flags: str):
    return run_cli("db", "restore-workspaces", uri, *flags)


def _lines(path) -> list[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _write_lines(path, records) -> None:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def _migrated(db, tmp_path, name="move.jsonl", *flags):
    journal = tmp_path / name
    result = migrate(db.uri, "-y", "--journal", str(journal), *flags)
    assert result.exit_code == ExitStatus.OK, result.output
    return journal, result


@pytest.mark.parametrize("name", ["move.jsonl", "move.jsonl.gz"])
def test_round_trip_with_pruning_restores_every_row_and_catalog_row(mlflow_db, tmp_path, name: str) -> None:
    populate(mlflow_db)
    mlflow_db.execute("UPDATE workspaces SET default_artifact_root = 's3://bucket/team-a' WHERE name = 'team-a'")
    mlflow_db.execute("UPDATE workspaces SET description = 'B team' WHERE name = 'team-b'")
    original = mlflow_db.dump()

    journal, result = _migrated(mlflow_db, tmp_path, name, "--prune-workspaces")

    assert 'pruned 3 emptied workspace(s) from the catalog: "team-a", "team-b", "team-c"' in result.stdout
    assert mlflow_db.scalar("SELECT COUNT(*) FROM workspaces") == 1
    records = _lines(journal)
    assert records[0]["type"] == "header" and records[0]["operation"] == "migrate"
    assert [r["type"] for r in records[-2:]] == ["sealed", "complete"]
    rows = [r for r in records if r["type"] == "row"]
    assert len(rows) == 60 == records[-2]["rows"]
    pruned = {r["row"]["name"]: r["row"] for r in records if r["type"] == "catalog_deleted"}
    assert pruned["team-a"]["default_artifact_root"] == "s3://bucket/team-a"
    assert "default" not in pruned

    back = restore(mlflow_db.uri, "--journal", str(journal), "-y")

    assert back.exit_code == ExitStatus.OK, back.output
    assert "Done: moved 60 row(s) back; committed." in back.stdout
    assert mlflow_db.dump() == original


def test_round_trip_of_a_few_rows_among_many_that_never_moved(mlflow_db, tmp_path) -> None:
    """A journal that moved a small part of a table restores as exactly as one that moved most of it (MariaDB
    joins the few rows then, instead of scanning the table)."""

    def stay_in_default(data) -> None:
        for i in range(60):
            data.experiment("default", f"stays-{i}")
        for i in range(20):
            data.registered_model("default", f"stays-model-{i}", versions=2, tags=1, aliases=1)

    populate(mlflow_db, stay_in_default)
    original = mlflow_db.dump()
    journal, _ = _migrated(mlflow_db, tmp_path)

    back = restore(mlflow_db.uri, "--journal", str(journal), "-y")

    assert back.exit_code == ExitStatus.OK, back.output
    assert "Done: moved 60 row(s) back; committed." in back.stdout
    assert mlflow_db.dump() == original


def test_round_trip_removes_the_default_row_apply_created(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    mlflow_db.execute("DELETE FROM workspaces WHERE name = 'default'")
    original = mlflow_db.dump()

    journal, _ = _migrated(mlflow_db, tmp_path)
    assert mlflow_db.scalar("SELECT COUNT(*) FROM workspaces WHERE name = 'default'") == 1
    back = restore(mlflow_db.uri, "--journal", str(journal), "-y")

    assert back.exit_code == ExitStatus.OK, back.output
    assert mlflow_db.dump() == original


def test_restore_is_itself_reversible(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    journal, _ = _migrated(mlflow_db, tmp_path, "move.jsonl", "--prune-workspaces")
    migrated = mlflow_db.dump()

    back = restore(mlflow_db.uri, "--journal", str(journal), "-y", "--journal", str(tmp_path / "undo.jsonl.gz"))
    assert back.exit_code == ExitStatus.OK, back.output
    assert _lines(tmp_path / "undo.jsonl.gz")[0]["operation"] == "restore"
    again = restore(mlflow_db.uri, "--journal", str(tmp_path / "undo.jsonl.gz"), "-y")

    assert again.exit_code == ExitStatus.OK, again.output
    assert mlflow_db.dump() == migrated


def test_restore_dry_run_reports_and_changes_nothing(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    journal, _ = _migrated(mlflow_db, tmp_path, "move.jsonl", "--prune-workspaces")
    before = mlflow_db.fingerprint()

    result = restore(mlflow_db.uri, "--journal", str(journal), "--dry-run")

    assert result.exit_code == ExitStatus.OK, result.output
    assert "experiments: 9 row(s) back to team-a: 3, team-b: 3, team-c: 3" in result.stdout
    assert 'catalog row "team-a" re-created' in result.stdout
    assert "Dry run: 60 row(s) would move back. Nothing was changed." in result.stdout
    assert mlflow_db.fingerprint() == before


def test_restore_conflicts_block_and_change_nothing(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    mlflow_db.execute("UPDATE registered_models SET creation_time = 1000")
    journal, _ = _migrated(mlflow_db, tmp_path)
    # occupied: team-a got a new experiment with the name the restore needs there
    mlflow_db.execute(
        "INSERT INTO experiments (experiment_id, name, workspace, lifecycle_stage) "
        "VALUES (777777, 'team-a-exp-0', 'team-a', 'active')"
    )
    # replaced: the moved model was deleted in `default` and a new one took its name
    for table in ("model_version_tags", "registered_model_aliases", "registered_model_tags", "model_versions"):
        mlflow_db.execute(f"DELETE FROM {table} WHERE name = 'team-b-model-1'")
    mlflow_db.execute("DELETE FROM registered_models WHERE name = 'team-b-model-1'")
    mlflow_db.execute(
        "INSERT INTO registered_models (name, workspace, creation_time) VALUES ('team-b-model-1', 'default', 2000)"
    )
    before = mlflow_db.fingerprint()

    text = restore(mlflow_db.uri, "--journal", str(journal), "-y")
    as_json = restore(mlflow_db.uri, "--journal", str(journal), "-y", "--format", "json")

    assert text.exit_code == as_json.exit_code == ExitStatus.CONFLICTS, text.output
    assert "Restore conflicts: 2" in text.stdout
    assert 'experiments occupied: name="team-a-exp-0" -> team-a' in text.stdout
    assert 'registered_models replaced: name="team-b-model-1" -> team-b' in text.stdout
    assert "model_versions: 2 journaled row(s) no longer exist" in text.stdout
    doc = json.loads(as_json.stdout)
    assert doc["status"] == "conflicts" and doc["conflict_count"] == 2
    assert {(c["table"], c["reason"]) for c in doc["conflicts"]} == {
        ("experiments", "occupied"),
        ("registered_models", "replaced"),
    }
    assert mlflow_db.fingerprint() == before


def test_incomplete_journal_is_refused(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    journal, _ = _migrated(mlflow_db, tmp_path)
    records = _lines(journal)
    torn = tmp_path / "torn.jsonl"
    _write_lines(torn, records[:-1])  # sealed, but the completion mark never came
    before = mlflow_db.fingerprint()

    result = restore(mlflow_db.uri, "--journal", str(torn), "-y")
    as_json = restore(mlflow_db.uri, "--journal", str(torn), "-y", "--format", "json")

    assert result.exit_code == ExitStatus.USAGE
    assert "is incomplete" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    doc = json.loads(as_json.stdout)
    assert doc["status"] == "error" and doc["exit_code"] == 2 and "incomplete" in doc["message"]
    assert mlflow_db.fingerprint() == before


def test_a_malformed_row_late_in_the_journal_changes_nothing(mlflow_db, tmp_path) -> None:
    """Row records are checked as restore reads them (ahead of the moves, in a thread): one lacking its
    fields after other tables have moved back rolls them back too."""
    populate(mlflow_db)
    journal, _ = _migrated(mlflow_db, tmp_path)
    records = _lines(journal)
    last = max(i for i, r in enumerate(records) if r["type"] == "row")
    records[last] = {"type": "row", "table": records[last]["table"], "key": records[last]["key"]}
    broken = tmp_path / "broken.jsonl"
    # As the tool writes them (no spaces), so that only restore parses the row records.
    broken.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
    before = mlflow_db.fingerprint()

    for flags in (["-y"], ["--dry-run"]):
        result = restore(mlflow_db.uri, "--journal", str(broken), *flags)

        assert result.exit_code == ExitStatus.USAGE, result.output
        assert "malformed" in result.stderr
        assert mlflow_db.fingerprint() == before


def test_truncated_gzip_journal_is_refused(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    journal, _ = _migrated(mlflow_db, tmp_path, "move.jsonl.gz")
    data = journal.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    before = mlflow_db.fingerprint()

    result = restore(mlflow_db.uri, "--journal", str(cut), "-y")

    assert result.exit_code == ExitStatus.USAGE
    assert "incomplete" in result.stderr
    assert mlflow_db.fingerprint() == before


def test_foreign_journal_is_refused(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    journal, _ = _migrated(mlflow_db, tmp_path)
    records = _lines(journal)
    records[0]["database"]["identity"]["database" if "database" in records[0]["database"]["identity"] else "path"] = (
        "other"
    )
    foreign = tmp_path / "foreign.jsonl"
    _write_lines(foreign, records)
    before = mlflow_db.fingerprint()

    result = restore(mlflow_db.uri, "--journal", str(foreign), "-y")

    assert result.exit_code == ExitStatus.USAGE
    assert "belongs to another database" in result.stderr
    assert mlflow_db.fingerprint() == before


def test_journal_is_never_overwritten(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    existing = tmp_path / "j.jsonl"
    existing.write_text("keep me\n")
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "-y", "--journal", str(existing))

    assert result.exit_code == ExitStatus.USAGE
    assert "already exists" in result.stderr
    assert existing.read_text() == "keep me\n"
    assert mlflow_db.fingerprint() == before


def test_rolled_back_apply_leaves_no_journal(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    plan = tmp_path / "plan.json"
    assert migrate(mlflow_db.uri, "--dry-run", "--plan-out", str(plan)).exit_code == ExitStatus.OK
    mlflow_db.execute("UPDATE experiments SET name = 'drift' WHERE name = 'team-a-exp-0'")
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "-y", "--plan", str(plan), "--journal", str(tmp_path / "j.jsonl"))

    assert result.exit_code == ExitStatus.VERIFICATION_FAILED
    assert not (tmp_path / "j.jsonl").exists()  # nothing was committed, so there is nothing to undo
    assert mlflow_db.fingerprint() == before
