"""Difference test: `db move-resources` against the installed MLflow's own `mlflow db move-resources` (3.17.2 or
3.18.0, whichever MWA_MLFLOW_PYTHON has), on every backend.

Two identical databases are built from that release's captured schema; each step runs MLflow's command on one and
ours on the other, with the same arguments, and then every row of every table (workspace-scoped tables, the
catalog, `experiments.artifact_location`, everything) must be the same in both.  A step that one refuses, the
other must refuse too, and both databases must be unchanged.

MLflow is never a dependency: it runs in the interpreter of MWA_MLFLOW_PYTHON (default
/tmp/mwa-mlflow-venvs/3.17.2/bin/python), and every test here skips without it.  Importing MLflow takes ~5 s,
so one MLflow interpreter per test runs each `mlflow db move-resources ...` command line through MLflow's own
Click entry point (`mlflow.cli.cli`, what `python -m mlflow` runs), one after the other; set
MWA_MLFLOW_FRESH_PROCESS=1 to start a new `python -m mlflow db move-resources ...` for every step instead.

Where the two deliberately differ (several types in one call, gateway types, ...), tests/test_move_resources.py
shows our behaviour without MLflow.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import MetaData

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.sample_data import SampleData

from .conftest import ScratchDB, _create_scratch
from .helpers import fill_db, run_cli

MLFLOW_PYTHON = os.environ.get("MWA_MLFLOW_PYTHON", "/tmp/mwa-mlflow-venvs/3.17.2/bin/python")
FRESH_PROCESS = os.environ.get("MWA_MLFLOW_FRESH_PROCESS", "") not in ("", "0")
#: The MLflow releases this file knows (their captured schemas are loaded, their known defects spelled out): it
#: compares against whichever of them MWA_MLFLOW_PYTHON has.
KNOWN_VERSIONS = ("3.17.2", "3.18.0")
SERVER_ROOT = "s3://mlflow-artifacts/root"
TEAM_C_ROOT = "s3://team-c-bucket/artifacts"

pytestmark = pytest.mark.skipif(not Path(MLFLOW_PYTHON).exists(), reason=f"no MLflow interpreter at {MLFLOW_PYTHON}")

#: Runs `mlflow ...` command lines read from stdin (one JSON list per line) through MLflow's own Click entry
#: point, answering each with one JSON line {code, stdout, stderr} on the original stdout (fd 1 is pointed at
#: stderr meanwhile, so nothing else can get into the answers).
_DRIVER = r"""
import contextlib, io, json, os, sys, traceback
answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
from mlflow.cli import cli
import mlflow
answers.write(json.dumps({"version": mlflow.__version__}) + "\n")
answers.flush()
for line in sys.stdin:
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(args=json.loads(line), prog_name="mlflow", standalone_mode=True)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:
            traceback.print_exc()
            code = 1
    answers.write(json.dumps({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}) + "\n")
    answers.flush()
"""


def _mlflow_env() -> dict[str, str]:
    """This environment without any MLFLOW_* setting (a stray MLFLOW_WORKSPACE_STORE_URI would decide the test)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


@functools.cache
def _mlflow_version() -> str:
    out = subprocess.run(
        [MLFLOW_PYTHON, "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        env=_mlflow_env(),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class MlflowCli:
    """`mlflow db move-resources` of MWA_MLFLOW_PYTHON: one interpreter for every call (or one per call)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def move(self, uri: str, *args: str) -> Outcome:
        argv = ["db", "move-resources", uri, *args]
        if FRESH_PROCESS:
            done = subprocess.run(
                [MLFLOW_PYTHON, "-m", "mlflow", *argv], capture_output=True, text=True, env=_mlflow_env(), timeout=300
            )
            return Outcome(done.returncode, done.stdout, done.stderr)
        if self.process is None:
            self.process = subprocess.Popen(
                [MLFLOW_PYTHON, "-c", _DRIVER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=_mlflow_env(),
            )
            assert json.loads(self._answer())["version"] == _mlflow_version()
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(argv) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self._answer())
        return Outcome(answer["code"], answer["stdout"], answer["stderr"])

    def _answer(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the MLflow interpreter exited ({self.process.poll()})"
        return line

    def close(self) -> None:
        if self.process is not None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


# --- the data: every case's rows side by side, in workspaces that do not interfere ----------------------------


def _fill(data: SampleData) -> None:
    """On top of fill_db's collision-free resources in default and team-a/b/c (each named after its workspace)."""

    def experiment(ws: str, name: str, tags: dict[str, str] | None = None, **values: object) -> int:
        exp_id = data.experiment(ws, name, **values)
        for key, value in (tags or {}).items():
            data.add("experiment_tags", experiment_id=exp_id, key=key, value=value)
        return exp_id

    # by name (with their tags: experiment_tags have no workspace column, they stay with experiment_id)
    experiment("team-a", "by-name-1", {"owner": "alice"}, artifact_location="s3://old/by-name-1")
    experiment("team-a", "by-name-2", lifecycle_stage="deleted")
    # by tag: every given tag must match
    experiment("team-a", "tagged-both", {"project": "churn", "env": "prod"})
    experiment("team-a", "tagged-project-only", {"project": "churn", "env": "dev"})
    experiment("team-a", "tagged-env-only", {"env": "prod"})
    # a conflict in DST (team-b), and the dry run's experiment
    experiment("team-a", "clash-exp")
    experiment("team-b", "clash-exp")
    experiment("team-a", "dry-run-exp", {"k": "v"})
    # retarget: under the server root, under a catalog root (team-c), under a root with a query string
    experiment("team-a", "retarget-1", artifact_location="s3://old-bucket/1")
    experiment("team-a", "retarget-2", {"batch": "2"}, artifact_location=None)
    experiment("team-a", "retarget-catalog-1", {"retarget": "catalog"}, artifact_location="/mnt/old")
    experiment("team-a", "retarget-catalog-2", {"retarget": "catalog"})
    experiment("team-a", "retarget-query")
    # a registered model with versions, tags and aliases, by name; another by tag; a conflicting one
    data.registered_model("team-a", "model-full", versions=3, tags=2, aliases=2)
    data.registered_model("team-a", "model-tagged", versions=2, tags=1, aliases=2)
    data.add("registered_model_tags", workspace="team-a", name="model-tagged", key="owner", value="risk")
    data.registered_model("team-a", "model-clash", versions=2, tags=1, aliases=1)
    data.registered_model("team-b", "model-clash", versions=1)
    # an MCP server with every child table (mcp_access_endpoints follow it by server_name)
    data.add("mcp_servers", workspace="team-a", name="mcp-one")
    for version in ("1.0.0", "1.1.0"):
        data.add("mcp_server_versions", workspace="team-a", name="mcp-one", version=version, server_json="{}")
    data.add("mcp_server_version_tags", workspace="team-a", name="mcp-one", version="1.0.0", key="k", value="v")
    data.add("mcp_server_tags", workspace="team-a", name="mcp-one", key="tier", value="gold")
    data.add("mcp_server_aliases", workspace="team-a", name="mcp-one", alias="latest", version="1.1.0")
    data.add("mcp_access_endpoints", workspace="team-a", id="mae-1", server_name="mcp-one")
    # all of a type: team-c's webhooks and jobs (more than fill_db's one each)
    data.webhook("team-c", "team-c-hook-extra")
    data.job("team-c")
    data.dataset("team-a", "dataset-move")


def _has_skills() -> bool:
    """Skills are new in MLflow 3.18.0."""
    return tuple(int(p) for p in _mlflow_version().split(".")[:3]) >= (3, 18, 0)


def _skill(
    data: SampleData, ws: str, name: str, org: str = "", source_type: str = "git", tags: dict[str, str] | None = None
) -> None:
    """A skill with one version, an alias and a version tag; its tags."""
    data.add("skills", workspace=ws, organization=org, name=name, created_at=1, last_updated_at=1)
    data.flush()
    source = f"mlflow-artifacts:/skills/{name}/{'0' * 32}" if source_type == "mlflow" else "https://git.example/x"
    data.add(
        "skill_versions",
        workspace=ws,
        organization=org,
        name=name,
        version=1,
        source_type=source_type,
        source=source,
        created_at=1,
        last_updated_at=1,
    )
    data.flush()
    data.add("skill_aliases", workspace=ws, organization=org, name=name, alias="prod", version=1)
    data.add("skill_version_tags", workspace=ws, organization=org, name=name, version=1, key="k", value="v")
    for key, value in (tags or {}).items():
        data.add("skill_tags", workspace=ws, organization=org, name=name, key=key, value=value)


def _fill_skills(data: SampleData) -> None:
    """MLflow 3.18.0: every case of the other data, plus skills (named `name` or `@organization/name`)."""
    _fill(data)
    _skill(data, "team-a", "summarize")  # `summarize`
    _skill(data, "team-a", "summarize", "acme", tags={"owner": "alice"})  # `@acme/summarize`
    _skill(data, "team-a", "tagged", "acme", tags={"project": "churn", "env": "prod"})
    _skill(data, "team-a", "tagged-project-only", tags={"project": "churn", "env": "dev"})
    _skill(data, "team-a", "clash", "acme")
    _skill(data, "team-b", "clash", "acme")
    _skill(data, "team-b", "clash")  # bare `clash` in DST is another skill than `@acme/clash`
    _skill(data, "team-a", "stored", "acme", source_type="mlflow")
    _skill(data, "team-c", "c-one")
    _skill(data, "team-c", "c-two", "org.example")


def _build(db: ScratchDB) -> ScratchDB:
    db.load(_mlflow_version())
    with db.engine.begin() as conn:
        fill_db(conn, _fill_skills if _has_skills() else _fill)
        conn.exec_driver_sql(f"UPDATE workspaces SET default_artifact_root = '{TEAM_C_ROOT}' WHERE name = 'team-c'")
        # MLflow names every job; only MySQL's schema lets job_name be NULL, and MLflow 3.17.2's move-resources
        # crashes printing a NULL name (TypeError, after its COMMIT).
        conn.exec_driver_sql("UPDATE jobs SET job_name = id WHERE job_name IS NULL")
    return db


def dump(db: ScratchDB) -> dict[str, list[tuple]]:
    """Every row of every table, sorted (as ``ScratchDB.dump``), with the tables reflected once per database."""
    meta = _metadata.get(db.uri)
    with db.engine.connect() as conn:
        if meta is None:
            meta = _metadata[db.uri] = MetaData()
            meta.reflect(conn)
        return {name: sorted((tuple(r) for r in conn.execute(t.select())), key=repr) for name, t in meta.tables.items()}


_metadata: dict[str, MetaData] = {}


@dataclass
class Pair:
    """Two identical databases: MLflow's command runs on `theirs`, ours on `ours`; `dumps` are both databases'
    contents after the last step."""

    theirs: ScratchDB
    ours: ScratchDB
    mlflow: MlflowCli
    dumps: tuple[dict, dict] = ({}, {})

    def step(self, *args: str) -> tuple[Outcome, Outcome]:
        """Run both, then dump both databases."""
        theirs = self.mlflow.move(self.theirs.uri, *args)
        result = run_cli("db", "move-resources", self.ours.uri, *args, env={"NO_COLOR": "1", "COLUMNS": "200"})
        self.dumps = dump(self.theirs), dump(self.ours)
        return theirs, Outcome(result.exit_code, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def mlflow_cli() -> Iterator[MlflowCli]:
    """One MLflow interpreter for the backends this worker runs (importing MLflow is most of a call's cost)."""
    if _mlflow_version() not in KNOWN_VERSIONS:
        pytest.skip(
            f"this file compares against MLflow {', '.join(KNOWN_VERSIONS)}; {MLFLOW_PYTHON} has {_mlflow_version()}"
        )
    mlflow = MlflowCli()
    try:
        yield mlflow
    finally:
        mlflow.close()


@pytest.fixture
def pair(backend: str, tmp_path: Path, mlflow_cli: MlflowCli) -> Iterator[Pair]:
    made = []
    try:
        for side in ("theirs", "ours"):
            folder = tmp_path / side
            folder.mkdir()
            made.append(_create_scratch(backend, folder))
        theirs, ours = (_build(next(gen)) for gen in made)
        yield Pair(theirs, ours, mlflow_cli, (dump(theirs), dump(ours)))
    finally:
        for gen in made:
            for _ in gen:
                pass
        _metadata.clear()


def _ids(db: ScratchDB, *names: str) -> dict[str, int]:
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT name, experiment_id FROM experiments").all()
    return {name: exp_id for name, exp_id in rows if name in names}


def _assert_same(theirs: dict, ours: dict, what: str) -> None:
    differ = {t: (sorted(set(theirs[t]) - set(ours[t])), sorted(set(ours[t]) - set(theirs[t]))) for t in theirs}
    differ = {t: d for t, d in differ.items() if theirs[t] != ours[t]}
    assert not differ, f"{what}: tables differ (MLflow-only rows, our-only rows): {differ}"


def _rows(dump: dict, table: str, name: str) -> list[tuple]:
    """The rows of a table that belong to the resource called ``name`` (its name column, wherever it is)."""
    at = {
        "experiments": 1,
        "evaluation_datasets": 1,
        "model_version_tags": 2,
        "registered_model_tags": 2,
        "registered_model_aliases": 2,
    }
    index = at.get(table, 1 if table.startswith("mcp_") else 0)
    return [r for r in dump[table] if r[index] == name]


def test_move_resources_agrees_with_mlflow(pair: Pair) -> None:
    """Every case on one pair of databases, step by step: after each step both databases are identical."""
    start = pair.dumps[1]
    assert pair.dumps[0] == start
    steps = 0

    def agree(*args: str, code: int = ExitStatus.OK) -> tuple[Outcome, Outcome, dict]:
        nonlocal steps
        theirs, ours = pair.step(*args)
        what = f"move-resources {' '.join(args)}"
        assert theirs.code == code, f"{what}: MLflow exited {theirs.code}: {theirs.output[-2000:]}"
        assert ours.code == code, f"{what}: we exited {ours.code}: {ours.output[-3000:]}"
        _assert_same(*pair.dumps, what)
        steps += 1
        return theirs, ours, pair.dumps[1]

    def experiments(*args: str) -> list[str]:
        return ["--from", "team-a", "--to", "team-b", "--resource-type", "experiments", *args]

    def workspaces(dump: dict, table: str, name: str) -> set[str]:
        rows = _rows(dump, table, name)
        assert rows, f"no {table} row of {name}"
        return {r[0] if table.startswith("mcp_") else r[-1] for r in rows}

    # 1. By name, with a name that exists nowhere (both move the others and skip it), a deleted experiment too.
    before = pair.dumps[1]
    theirs, ours, after = agree(*experiments("--name", "by-name-1", "--name", "by-name-2", "--name", "no-such", "-y"))
    assert "Moved 2 experiments row(s) from 'team-a' to 'team-b'." in theirs.stdout
    assert "Done: moved 2 row(s) in 1 table(s) into `team-b`; committed." in ours.stdout
    assert workspaces(after, "experiments", "by-name-1") == workspaces(after, "experiments", "by-name-2") == {"team-b"}
    assert after["experiment_tags"] == before["experiment_tags"]  # they follow by experiment_id, untouched

    # 2. By tag: only the experiment with both tags.
    theirs, _, after = agree(*experiments("--tag", "project=churn", "--tag", "env=prod", "-y"))
    assert "Moved 1 experiments row(s)" in theirs.stdout
    assert workspaces(after, "experiments", "tagged-both") == {"team-b"}
    assert workspaces(after, "experiments", "tagged-project-only") == {"team-a"}
    assert workspaces(after, "experiments", "tagged-env-only") == {"team-a"}

    # 3. All of a type, without a filter: team-c's webhooks, then its jobs, then its registered models (with
    #    their versions, tags and aliases).
    for resource_type, count in (("webhooks", 2), ("jobs", 2), ("registered_models", 2)):
        theirs, _, after = agree("--from", "team-c", "--to", "team-b", "--resource-type", resource_type, "-y")
        assert f"Moved {count} {resource_type} row(s) from 'team-c' to 'team-b'." in theirs.stdout
    for table in ("webhooks", "jobs", "registered_models", "model_versions", "model_version_tags"):
        assert not [r for r in after[table] if "team-c" in r], f"{table} rows left in team-c"
    assert workspaces(after, "model_versions", "team-c-model-0") == {"team-b"}

    # 4. A registered model with versions, tags and aliases, by name.
    before = pair.dumps[1]
    _, ours, after = agree(
        "--from", "team-a", "--to", "team-c", "--resource-type", "registered_models", "--name", "model-full", "-y"
    )
    assert "Done: moved 11 row(s) in 5 table(s) into `team-c`; committed." in ours.stdout
    for table, count in (
        ("registered_models", 1),
        ("model_versions", 3),
        ("model_version_tags", 3),
        ("registered_model_tags", 2),
        ("registered_model_aliases", 2),
    ):
        assert len(_rows(after, table, "model-full")) == count, table
        assert workspaces(after, table, "model-full") == {"team-c"}, table
        assert len(after[table]) == len(before[table])

    # 5. An MCP server with every child table, by name.
    _, _, after = agree(
        "--from", "team-a", "--to", "team-c", "--resource-type", "mcp_servers", "--name", "mcp-one", "-y"
    )
    for table in ("mcp_servers", "mcp_server_versions", "mcp_server_version_tags", "mcp_server_tags"):
        assert workspaces(after, table, "mcp-one") == {"team-c"}, table
    assert [r[1] for r in after["mcp_access_endpoints"] if r[0] == "mae-1"] == ["team-c"]

    # 6. Conflicts in DST: both refuse, both databases unchanged (the name that does not collide stays too).
    for args in (
        ["--resource-type", "registered_models", "--name", "model-clash", "--name", "team-a-model-0", "-y"],
        ["--resource-type", "experiments", "-y"],  # every experiment of team-a: clash-exp is in team-b
    ):
        before = pair.dumps
        theirs, ours, _ = agree("--from", "team-a", "--to", "team-b", *args, code=1)
        assert "already exist in workspace 'team-b' and would conflict" in theirs.stderr
        assert "Error: conflicts found under the lock, rolled back, nothing changed" in ours.stderr
        assert pair.dumps == before

    # 7. Dry run: both print what would move and change nothing.
    before = pair.dumps
    theirs, ours, _ = agree(*experiments("--name", "dry-run-exp", "--dry-run"))
    assert "Dry run completed. 1 experiments row(s) would be moved from 'team-a' to 'team-b':" in theirs.stdout
    assert "dry-run-exp" in theirs.stdout
    assert 'Move resources from "team-a" to "team-b" (dry run, read-only)' in ours.stdout
    assert "Selected root rows: experiments: 1" in ours.stdout
    assert "Dry run: 1 row(s) in 1 table(s) would move to `team-b`; no conflicts. Nothing was changed." in ours.stdout
    assert pair.dumps == before

    # 8. Retarget under the server's root (team-b has no root of its own): ROOT/workspaces/team-b/<id>.
    ids = _ids(pair.ours, "retarget-1", "retarget-2")
    theirs, _, after = agree(
        *experiments("--name", "retarget-1", "--name", "retarget-2", "--artifact-policy", "retarget"),
        "--default-artifact-root",
        SERVER_ROOT,
        "-y",
    )
    assert f"Repointed 2 experiment artifact root(s) under {SERVER_ROOT}/workspaces/team-b." in theirs.stdout
    locations = {r[1]: r[2] for r in after["experiments"] if r[1] in ids}
    assert locations == {n: f"{SERVER_ROOT}/workspaces/team-b/{i}" for n, i in ids.items()}

    # 9. Retarget into team-c, whose catalog row has its own default_artifact_root: it wins, as is.
    ids = _ids(pair.ours, "retarget-catalog-1", "retarget-catalog-2")
    _, _, after = agree(
        *("--from", "team-a", "--to", "team-c", "--resource-type", "experiments", "--tag", "retarget=catalog"),
        *("--artifact-policy", "retarget", "--default-artifact-root", SERVER_ROOT, "-y"),
    )
    locations = {r[1]: r[2] for r in after["experiments"] if r[1] in ids}
    assert locations == {n: f"{TEAM_C_ROOT}/{i}" for n, i in ids.items()}

    # 10. Retarget under a root with a query string: the path goes before it, as MLflow appends paths.
    (exp_id,) = _ids(pair.ours, "retarget-query").values()
    _, _, after = agree(
        *experiments("--name", "retarget-query", "--artifact-policy", "retarget"),
        *("--default-artifact-root", "s3://bucket/root/?region=eu-west-1", "-y"),
    )
    assert [r[2] for r in _rows(after, "experiments", "retarget-query")] == [
        f"s3://bucket/root/workspaces/team-b/{exp_id}?region=eu-west-1"
    ]

    # 11. An evaluation dataset (its name is not in DST): moved by name.
    _, _, after = agree(
        "--from", "team-a", "--to", "team-b", "--resource-type", "evaluation_datasets", "--name", "dataset-move", "-y"
    )
    assert workspaces(after, "evaluation_datasets", "dataset-move") == {"team-b"}

    # 12. A registered model by tag, with its versions, tags and aliases: last, since on SQLite MLflow leaves
    #     some of them behind (see _assert_model_by_tag).
    _assert_model_by_tag(pair)

    assert pair.dumps[1] != start  # the steps did move rows
    assert steps == 14


def _assert_model_by_tag(pair: Pair) -> None:
    """--tag on registered models.  MLflow 3.17.2 selects the models through a subquery on
    registered_model_tags in SRC, and runs it again for every child table after registered_model_tags itself
    has moved: on SQLite (no ON UPDATE CASCADE, foreign keys off) the model's version tags and aliases stay
    behind in SRC, pointing at a model that is gone from it.  PostgreSQL and MySQL cascade them along, and there
    the two tools agree row for row; on SQLite ours moves them too, and every other row agrees."""
    args = ["--from", "team-a", "--to", "team-c", "--resource-type", "registered_models", "--tag", "owner=risk", "-y"]
    theirs, ours = pair.step(*args)
    theirs_dump, ours_dump = pair.dumps
    assert theirs.code == 0, theirs.output[-2000:]
    assert ours.code == 0, ours.output[-3000:]
    assert "Moved 1 registered_models row(s) from 'team-a' to 'team-c'." in theirs.stdout
    assert "Done: moved 9 row(s) in 5 table(s) into `team-c`; committed." in ours.stdout
    model_tables = ("registered_models", "model_versions", "registered_model_tags", "model_version_tags")
    for table in (*model_tables, "registered_model_aliases"):
        rows = _rows(ours_dump, table, "model-tagged")
        assert rows and all(r[-1] == "team-c" for r in rows), f"ours: {table} {rows}"
    if pair.theirs.backend != "sqlite":
        _assert_same(theirs_dump, ours_dump, " ".join(args))
        return
    left_behind = ("model_version_tags", "registered_model_aliases")
    for table in left_behind:
        theirs_rows = _rows(theirs_dump, table, "model-tagged")
        assert theirs_rows and all(r[-1] == "team-a" for r in theirs_rows), f"MLflow: {table} {theirs_rows}"
        assert [r[:-1] for r in theirs_rows] == [r[:-1] for r in _rows(ours_dump, table, "model-tagged")]
    _assert_same(
        {t: rows for t, rows in theirs_dump.items() if t not in left_behind},
        {t: rows for t, rows in ours_dump.items() if t not in left_behind},
        " ".join(args),
    )


def _skills_of(dump: dict, table: str, org: str, name: str) -> set[str]:
    """The workspaces holding a skill's rows of ``table`` (workspace, organization, name lead every skill table)."""
    return {r[0] for r in dump[table] if r[1] == org and r[2] == name}


SKILL_TABLES = ("skills", "skill_versions", "skill_tags", "skill_version_tags", "skill_aliases")


def test_move_resources_of_skills_agrees_with_mlflow(pair: Pair) -> None:
    """MLflow 3.18.0's skills: by `@org/name`, by bare name, by tag, every skill of a workspace; a conflict on
    (organization, name) in DST; an MLflow-stored skill version, which both refuse with no override."""
    if not _has_skills():
        pytest.skip(f"MLflow {_mlflow_version()} has no skills")

    def agree(*args: str, code: int = ExitStatus.OK) -> tuple[Outcome, Outcome, dict]:
        theirs, ours = pair.step(*args)
        what = f"move-resources {' '.join(args)}"
        assert theirs.code == code, f"{what}: MLflow exited {theirs.code}: {theirs.output[-2000:]}"
        assert ours.code == code, f"{what}: we exited {ours.code}: {ours.output[-3000:]}"
        _assert_same(*pair.dumps, what)
        return theirs, ours, pair.dumps[1]

    skills = ("--from", "team-a", "--to", "team-b", "--resource-type", "skills")

    # 1. `@acme/summarize` is acme's only: the bare `summarize` stays.
    theirs, _, after = agree(*skills, "--name", "@acme/summarize", "-y")
    assert "Moved 1 skills row(s) from 'team-a' to 'team-b'." in theirs.stdout
    for table in SKILL_TABLES:
        assert _skills_of(after, table, "acme", "summarize") == {"team-b"}, table
    assert _skills_of(after, "skills", "", "summarize") == {"team-a"}

    # 2. A bare name is organization '' only.
    _, _, after = agree(*skills, "--name", "summarize", "-y")
    for table in ("skills", "skill_versions", "skill_aliases", "skill_version_tags"):
        assert _skills_of(after, table, "", "summarize") == {"team-b"}, table

    # 3. By tag: every given tag must match.
    _, _, after = agree(*skills, "--tag", "project=churn", "--tag", "env=prod", "-y")
    assert _skills_of(after, "skills", "acme", "tagged") == {"team-b"}
    assert _skills_of(after, "skills", "", "tagged-project-only") == {"team-a"}

    # 4. A conflict on (organization, name) in DST: both refuse, nothing changes.
    before = pair.dumps
    theirs, ours, _ = agree(*skills, "--name", "@acme/clash", "-y", code=ExitStatus.CONFLICTS)
    assert "already exist in workspace 'team-b' and would conflict" in theirs.stderr
    assert "'@acme/clash'" in theirs.stderr
    assert 'organization="acme", name="clash"' in ours.stdout
    assert pair.dumps == before

    # 5. An MLflow-stored skill version: both refuse, with MLflow's words for the target; ours whatever the flags.
    theirs, ours, _ = agree(*skills, "--name", "@acme/stored", "-y", code=ExitStatus.CONFLICTS)
    assert "would lose access to their artifact content in workspace 'team-b'" in theirs.stderr
    assert "would lose access to their artifact content in workspace 'team-b'" in ours.stdout
    assert pair.dumps == before
    forced = run_cli(
        "db", "move-resources", pair.ours.uri, *skills, "--name", "@acme/stored", "--allow-artifact-overlap", "-y"
    )
    assert forced.exit_code == ExitStatus.CONFLICTS, forced.output
    assert dump(pair.ours) == before[1]

    # 6. Every skill of a workspace, organizations and all.
    theirs, _, after = agree("--from", "team-c", "--to", "team-b", "--resource-type", "skills", "-y")
    assert "Moved 2 skills row(s) from 'team-c' to 'team-b'." in theirs.stdout
    assert _skills_of(after, "skills", "org.example", "c-two") == _skills_of(after, "skills", "", "c-one") == {"team-b"}

    # 7. A name MLflow cannot parse: MLflow exits 1 (its ClickException), ours 2 (a usage error, as documented);
    #    neither changes anything.
    before = pair.dumps
    theirs, ours = pair.step(*skills, "--name", "@acme", "-y")
    assert theirs.code == 1 and "Skill identities must be 'name' or '@organization/name'" in theirs.stderr
    assert ours.code == ExitStatus.USAGE and "'@organization/name'" in ours.stderr, ours.output
    assert pair.dumps == before
