"""The CI recipes of docs/ci.md, run as written: their shell is extracted from the YAML and run by bash
with errexit and pipefail (as GitHub's `shell: bash` and GitLab's runner do), against a scratch database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlflow_ws_admin.common.errors import ExitStatus

from .conftest import ROOT
from .helpers import populate

RECIPES = ROOT / "docs" / "ci.md"
SECTIONS = {"github": "### GitHub Actions", "gitlab": "### GitLab CI"}
BLOCK_SCALAR = re.compile(r"^(\s*)(?:run:|-) \|$")
#: Where each recipe leaves its Markdown report (GitHub: the step summary the test points it to).
REPORT = {"github": "summary.md", "gitlab": "workspace-report.md"}
UNREACHABLE = {"sqlite": "sqlite:///{tmp}/no-such.db", "postgresql": "postgresql://postgres@127.0.0.1:1/mlflow"}
two_backends = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def recipe_shell(name: str) -> str:
    """The one multi-line shell block (`run: |` or `- |`) of the recipe's YAML, dedented."""
    doc = RECIPES.read_text()
    section = doc[doc.index(SECTIONS[name]) :]
    yaml = re.search(r"```yaml\n(.*?)\n```", section, re.S).group(1).split("\n")
    blocks = []
    for i, line in enumerate(yaml):
        if match := BLOCK_SCALAR.match(line):
            indent = len(match.group(1))
            body = []
            for nxt in yaml[i + 1 :]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                body.append(nxt)
            blocks.append(textwrap.dedent("\n".join(body)))
    assert len(blocks) == 1, f"{name}: expected one shell block, found {len(blocks)}"
    return blocks[0]


def run_recipe(name: str, uri: str, tmp_path: Path) -> tuple[int, str, list[str]]:
    """Run the recipe in tmp_path; returns its exit code, the Markdown report it left, and the `sleep` calls
    (a shim records them instead of waiting, so the retry policy is visible and fast)."""
    shims = tmp_path / "shims"
    shims.mkdir()
    sleeps = tmp_path / "sleeps.log"
    (shims / "sleep").write_text(f'#!/bin/sh\necho "$@" >> "{sleeps}"\n')
    (shims / "sleep").chmod(0o755)
    tool = Path(sys.executable).parent / "mlflow-ws-admin"
    assert tool.exists(), f"the installed command is missing: {tool}"
    script = tmp_path / "recipe.sh"
    script.write_text(recipe_shell(name))
    env = {
        "PATH": os.pathsep.join([str(shims), str(tool.parent), os.environ.get("PATH", "")]),
        "HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": uri,
        "GITHUB_STEP_SUMMARY": str(tmp_path / REPORT["github"]),
    }
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = tmp_path / REPORT[name]
    calls = sleeps.read_text().split("\n")[:-1] if sleeps.exists() else []
    return proc.returncode, report.read_text() if report.exists() else "", calls


def _collide(data) -> None:
    data.experiment("team-a", "churn")
    data.experiment("team-b", "churn")


@two_backends
@pytest.mark.parametrize("recipe", ["github", "gitlab"])
def test_recipe_blocks_on_conflicts(recipe, mlflow_db, tmp_path) -> None:
    populate(mlflow_db, _collide)
    before = mlflow_db.fingerprint()

    code, report, sleeps = run_recipe(recipe, mlflow_db.uri, tmp_path)

    assert code == ExitStatus.CONFLICTS, report
    assert "## Workspace preflight (read-only)" in report
    assert "**Verdict: BLOCKED — exit code 1.**" in report
    assert 'name="churn"' in report
    plan = json.loads((tmp_path / "workspace-plan.json").read_text())
    assert plan["status"] == "conflicts" and plan["conflict_count"] == 1
    assert sleeps == []  # a conflict is an answer, not a reason to retry
    assert mlflow_db.fingerprint() == before


@two_backends
@pytest.mark.parametrize("recipe", ["github", "gitlab"])
def test_recipe_passes_a_clean_database(recipe, mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    code, report, sleeps = run_recipe(recipe, mlflow_db.uri, tmp_path)

    assert code == ExitStatus.OK, report
    assert "**Verdict: PASS — exit code 0.**" in report and "BLOCKED" not in report
    assert json.loads((tmp_path / "workspace-plan.json").read_text())["status"] == "ok"
    assert sleeps == []
    assert mlflow_db.fingerprint() == before


@two_backends
def test_recipe_retries_database_errors_then_fails(backend, tmp_path) -> None:
    uri = UNREACHABLE[backend].format(tmp=tmp_path)

    code, report, sleeps = run_recipe("github", uri, tmp_path)

    assert code == ExitStatus.DATABASE_ERROR
    assert sleeps == ["30", "30"] * 3  # three commands, three attempts each
    assert report.count("**mlflow-ws-admin could not run (exit 3): see the job log.**") == 2
    assert json.loads((tmp_path / "workspace-plan.json").read_text())["status"] == "error"
    assert not (tmp_path / "no-such.db").exists()


def test_recipe_does_not_retry_a_missing_secret(tmp_path) -> None:
    code, report, sleeps = run_recipe("gitlab", "", tmp_path)

    assert code == ExitStatus.USAGE
    assert sleeps == []
    assert "could not run (exit 2)" in report
