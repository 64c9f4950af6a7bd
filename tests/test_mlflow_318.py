"""Rules MLflow 3.18.0 added (read from its store/db/workspace_migration.py and seen on a real server)."""

from __future__ import annotations

import json

from mlflow_ws_admin.common.errors import ExitStatus

from .helpers import migrate, populate


def _skill(data, workspace: str, name: str, source_type: str) -> None:
    data.add("skills", workspace=workspace, organization="acme", name=name, created_at=1, last_updated_at=1)
    data.flush()
    data.add(
        "skill_versions",
        workspace=workspace,
        organization="acme",
        name=name,
        version=1,
        source_type=source_type,
        source=f"mlflow-artifacts:/skills/{name}/1/SKILL.md" if source_type == "mlflow" else "https://git.example/x",
        created_at=1,
        last_updated_at=1,
    )


def test_mlflow_stored_skill_versions_block_the_move(mlflow_db) -> None:
    populate(
        mlflow_db, lambda data: (_skill(data, "team-b", "summarize", "mlflow"), _skill(data, "team-a", "fetch", "git"))
    )
    before = mlflow_db.fingerprint()

    dry = migrate(mlflow_db.uri, "--dry-run")
    doc = json.loads(migrate(mlflow_db.uri, "--dry-run", "--format", "json").stdout)
    applied = migrate(mlflow_db.uri, "-y")

    assert dry.exit_code == applied.exit_code == ExitStatus.CONFLICTS, dry.output + applied.output
    assert "workspace-stored-content" in dry.stdout
    assert 'skill_versions (organization="acme", name="summarize", version=1)' in dry.stdout
    stored = [f for f in doc["artifact_findings"] if f["kind"] == "workspace-stored-content"]
    assert [(f["severity"], f["location"]) for f in stored] == [
        ("blocking", "mlflow-artifacts:/skills/summarize/1/SKILL.md")
    ]
    assert "fetch" not in json.dumps(stored)  # a git-sourced version keeps its content where it was
    assert mlflow_db.fingerprint() == before


def test_skill_collisions_say_mlflow_has_no_rename(mlflow_db) -> None:
    populate(
        mlflow_db, lambda data: (_skill(data, "team-a", "summarize", "git"), _skill(data, "team-b", "summarize", "git"))
    )
    before = mlflow_db.fingerprint()

    dry = migrate(mlflow_db.uri, "--dry-run")

    assert dry.exit_code == ExitStatus.CONFLICTS, dry.output
    assert 'organization="acme", name="summarize": team-a; team-b' in dry.stdout
    assert "fix: MLflow has no rename for skills" in dry.stdout
    assert mlflow_db.fingerprint() == before
