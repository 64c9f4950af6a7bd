"""Rules MLflow 3.18.0 added (read from its store/db/workspace_migration.py and seen on a real server)."""

from __future__ import annotations

import json

from mlflow_ws_admin.common.errors import ExitStatus

from .helpers import migrate, populate, run_cli


def _skill(data, workspace: str, name: str, source_type: str, organization: str = "acme") -> None:
    data.add("skills", workspace=workspace, organization=organization, name=name, created_at=1, last_updated_at=1)
    data.flush()
    data.add(
        "skill_versions",
        workspace=workspace,
        organization=organization,
        name=name,
        version=1,
        source_type=source_type,
        source=f"mlflow-artifacts:/skills/{name}/1/SKILL.md" if source_type == "mlflow" else "https://git.example/x",
        created_at=1,
        last_updated_at=1,
    )


def test_mlflow_stored_skill_versions_are_refused_with_no_override(mlflow_db) -> None:
    """MLflow refuses, with no override, to move a skill version whose content it stores: so do we, whatever
    the flags, in text, JSON and Markdown, and the message names this command's target."""
    populate(
        mlflow_db, lambda data: (_skill(data, "team-b", "summarize", "mlflow"), _skill(data, "team-a", "fetch", "git"))
    )
    before = mlflow_db.fingerprint()

    dry = migrate(mlflow_db.uri, "--dry-run", "--allow-artifact-overlap")
    doc = json.loads(migrate(mlflow_db.uri, "--dry-run", "--format", "json").stdout)
    markdown = migrate(mlflow_db.uri, "--dry-run", "--format", "markdown")
    applied = migrate(mlflow_db.uri, "-y", "--allow-artifact-overlap")

    for result in (dry, markdown, applied):
        assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert "Refused: 1 row(s) whose content MLflow stores in their workspace" in dry.stdout
    assert 'team-b: skill_versions (organization="acme", name="summarize", version=1)' in dry.stdout
    assert "would lose access to their artifact content in the default workspace" in dry.stdout
    assert "register the content again in the default workspace after the move" in dry.stdout
    assert "1 row(s) whose content MLflow stores in their workspace must be fixed" in dry.stdout
    assert "--allow-artifact-overlap" not in dry.stdout  # nothing offers an override
    assert "workspace-stored-content" not in json.dumps(doc["artifact_findings"])  # not an artifact finding
    assert [(r["table"], r["key"], r["workspace"], r["location"]) for r in doc["stored_content"]] == [
        (
            "skill_versions",
            {"organization": "acme", "name": "summarize", "version": 1},
            "team-b",
            "mlflow-artifacts:/skills/summarize/1/SKILL.md",
        )
    ]
    assert "the default workspace" in doc["stored_content"][0]["reason"]
    assert (doc["status"], doc["exit_code"]) == ("conflicts", 1)
    assert "### Refused: 1 row(s) whose content MLflow stores in their workspace" in markdown.stdout
    assert "Refused: 1 row(s)" in applied.stdout
    assert mlflow_db.fingerprint() == before


def test_move_resources_refuses_mlflow_stored_skills_for_its_target(mlflow_db) -> None:
    """move-resources: MLflow's refusal for any source and target, worded for the command's target."""
    populate(
        mlflow_db, lambda data: (_skill(data, "team-a", "summarize", "mlflow"), _skill(data, "team-a", "fetch", "git"))
    )
    before = mlflow_db.fingerprint()

    args = ("db", "move-resources", mlflow_db.uri, "--from", "team-a", "--to", "team-c", "--resource-type", "skills")
    dry = run_cli(*args, "--dry-run", "--allow-artifact-overlap")
    applied = run_cli(*args, "-y", "--allow-artifact-overlap")
    only_git = run_cli(*args, "--name", "@acme/fetch", "--dry-run")

    assert dry.exit_code == applied.exit_code == ExitStatus.CONFLICTS, dry.output + applied.output
    assert "would lose access to their artifact content in workspace 'team-c'" in dry.stdout
    assert "register the content again in workspace 'team-c' after the move" in dry.stdout
    assert "the default workspace" not in dry.stdout
    assert "summarize" in applied.stdout and "Nothing was changed" in applied.stdout
    assert only_git.exit_code == ExitStatus.OK, only_git.output  # a git-sourced skill moves
    assert "Refused" not in only_git.stdout
    assert mlflow_db.fingerprint() == before


def test_preflight_fails_on_mlflow_stored_skills(mlflow_db) -> None:
    populate(mlflow_db, lambda data: _skill(data, "team-b", "summarize", "mlflow"))
    before = mlflow_db.fingerprint()

    result = run_cli("db", "preflight", mlflow_db.uri, "--for", "disable")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    line = next(x for x in result.stdout.splitlines() if "stored content" in x)
    assert line.split()[0] == "FAIL" and "the default workspace" in line, line
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


def _skills_in(db, workspace: str) -> set[tuple[str, str]]:
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT organization, name FROM skills WHERE workspace = '{workspace}'").all()
    return {tuple(r) for r in rows}


def test_move_resources_names_skills_as_mlflow_does(mlflow_db) -> None:
    """`--name summarize` is organization '' only; `--name @acme/summarize` is acme's; a collision in DST on
    (organization, name) is a conflict (exit 1); a name MLflow would refuse is a usage error (exit 2)."""

    def fill(data) -> None:
        _skill(data, "team-a", "summarize", "git", organization="")
        _skill(data, "team-a", "summarize", "git")
        _skill(data, "team-a", "clash", "git")
        _skill(data, "team-b", "clash", "git")  # @acme/clash in DST
        _skill(data, "team-b", "clash", "git", organization="")  # and bare clash: a different skill

    populate(mlflow_db, fill)
    args = ("db", "move-resources", mlflow_db.uri, "--from", "team-a", "--to", "team-b", "--resource-type", "skills")

    before = mlflow_db.fingerprint()
    conflict = run_cli(*args, "--name", "@acme/clash", "-y")
    assert conflict.exit_code == ExitStatus.CONFLICTS, conflict.output
    assert 'organization="acme", name="clash": team-a; team-b' in conflict.stdout
    for bad in ("@acme", "@/x", "Summarize", "@ACME/x"):
        refused = run_cli(*args, "--name", bad, "--dry-run")
        assert refused.exit_code == ExitStatus.USAGE, refused.output
        assert refused.output.count("Error:") == 1 and "'@organization/name'" in refused.output, refused.output
    assert mlflow_db.fingerprint() == before

    bare = run_cli(*args, "--name", "summarize", "-y")
    assert bare.exit_code == ExitStatus.OK, bare.output
    assert ("", "summarize") in _skills_in(mlflow_db, "team-b")
    assert ("acme", "summarize") in _skills_in(mlflow_db, "team-a")

    qualified = run_cli(*args, "--name", "@acme/summarize", "--format", "json", "-y")
    assert qualified.exit_code == ExitStatus.OK, qualified.output
    doc = json.loads(qualified.stdout)
    assert doc["selected"] == {"skills": [{"organization": "acme", "name": "summarize"}]}
    assert doc["names_not_found"] == []
    assert ("acme", "summarize") in _skills_in(mlflow_db, "team-b")
    assert {r["table"]: r["rows_to_move"] for r in doc["tables"] if r["rows_to_move"]} == {
        "skills": 1,
        "skill_versions": 1,
    }
