"""`--rename-conflicts TEMPLATE` and `--keep`, on every backend, through the real CLI: the plan (text and JSON,
read-only), refusals, apply in the same transaction with every dependent row renamed, and restore."""

from __future__ import annotations

import hashlib
import json

import pytest

from mlflow_ws_admin.common.errors import ExitStatus

from .helpers import migrate, populate, run_cli
from .test_json import document

TEMPLATE = "{name}-{workspace}"


def move(db_uri: str, *flags: str):
    return run_cli("db", "move-resources", db_uri, *flags)


def _digest(name: str, at: int) -> str:
    return hashlib.sha256(f"{name}:{at}".encode()).hexdigest()[:8]


def _prompt(data, ws: str, name: str) -> None:
    data.registered_model(ws, name, versions=1)
    data.add("registered_model_tags", workspace=ws, name=name, key="mlflow.prompt.is_prompt", value="true")


def _mcp_server(data, ws: str, name: str, versions: int = 1) -> None:
    data.add("mcp_servers", workspace=ws, name=name)
    for v in range(1, versions + 1):
        # Valid JSON text on every backend (MariaDB checks it; the others store a JSON string).
        data.add("mcp_server_versions", workspace=ws, name=name, version=f"{v}.0.0", server_json="{}")
    data.add("mcp_server_tags", workspace=ws, name=name, key="owner")


def _dataset(data, ws: str, dataset_id: str, name: str, at: int) -> None:
    data.add(
        "evaluation_datasets",
        dataset_id=dataset_id,
        name=name,
        workspace=ws,
        last_update_time=at,
        digest=_digest(name, at),
    )


def _collide(data) -> None:
    """Collisions of every renameable kind: experiments (one also in `default`), a model with versions, tags
    and aliases, a prompt, evaluation datasets, an MCP server with versions and tags."""
    data.experiment("default", "churn", creation_time=300)
    data.experiment("team-a", "churn", creation_time=100)
    data.experiment("team-b", "churn", creation_time=200)
    data.experiment("team-a", "ranker", creation_time=500)
    data.experiment("team-b", "ranker", creation_time=400)
    data.registered_model("team-a", "fraud", versions=3, tags=2, aliases=2)
    data.registered_model("team-c", "fraud", versions=2, tags=1, aliases=1)
    _prompt(data, "team-a", "greeting")
    _prompt(data, "team-b", "greeting")
    _dataset(data, "team-a", "d-a", "golden", 1111)
    _dataset(data, "team-b", "d-b", "golden", 2222)
    _mcp_server(data, "team-a", "com.example/search", versions=2)
    _mcp_server(data, "team-c", "com.example/search", versions=1)


def _names(mlflow_db, table: str, column: str = "name") -> list[tuple]:
    with mlflow_db.engine.connect() as conn:
        from sqlalchemy import text

        return sorted(tuple(r) for r in conn.execute(text(f"SELECT workspace, {column} FROM {table}")))


def _dangling(mlflow_db) -> dict[str, int]:
    """Child rows whose (workspace, name) has no parent row: what a rename that missed a table leaves."""
    pairs = {
        "model_versions": "registered_models",
        "registered_model_tags": "registered_models",
        "registered_model_aliases": "registered_models",
        "model_version_tags": "registered_models",
        "mcp_server_versions": "mcp_servers",
        "mcp_server_tags": "mcp_servers",
    }
    found = {}
    for child, parent in pairs.items():
        n = mlflow_db.scalar(
            f"SELECT COUNT(*) FROM {child} c WHERE NOT EXISTS "
            f"(SELECT 1 FROM {parent} p WHERE p.workspace = c.workspace AND p.name = c.name)"
        )
        if n:
            found[child] = n
    return found


def test_dry_run_shows_every_rename_and_changes_nothing(mlflow_db) -> None:
    populate(mlflow_db, _collide)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run", "--rename-conflicts", TEMPLATE)

    assert result.exit_code == ExitStatus.OK, result.output
    out = result.stdout
    assert 'Renames (--rename-conflicts "{name}-{workspace}", --keep default): 7 row(s)' in out
    # --keep default: the row already in `default` keeps "churn"; both team rows are renamed.
    assert '"churn" → "churn-team-a"' in out and '"churn" → "churn-team-b"' in out
    # No row in `default`: the oldest by creation time keeps its name (team-b's ranker, created at 400).
    assert '"ranker" → "ranker-team-a"' in out and "ranker-team-b" not in out
    assert '"fraud" → "fraud-team-c"' in out and '"greeting" → "greeting-team-b"' in out
    assert '"com.example/search" → "com.example/search-team-c"' in out
    assert '"golden" → "golden-team-b"' in out
    assert "resolved by --rename-conflicts" in out
    assert "models:/<old>/1" in out  # external references break: the report says so
    assert "7 colliding row(s) renamed first. Nothing was changed." in out
    assert mlflow_db.fingerprint() == before


def test_json_lists_renames_and_changes_nothing(mlflow_db) -> None:
    populate(mlflow_db, _collide)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run", "--format", "json", "--rename-conflicts", TEMPLATE, "--keep", "newest")

    assert result.exit_code == ExitStatus.OK, result.output
    doc = document(result)
    assert doc["status"] == "ok" and doc["renames_refused"] == [] and doc["rows_renamed"] is None
    experiments = sorted((r["workspace"], r["old"], r["new"]) for r in doc["renames"] if r["table"] == "experiments")
    # --keep newest: churn created last in `default` (300), ranker in team-a (500).
    assert experiments == [
        ("team-a", "churn", "churn-team-a"),
        ("team-b", "churn", "churn-team-b"),
        ("team-b", "ranker", "ranker-team-b"),
    ]
    model = next(r for r in doc["renames"] if r["table"] == "registered_models" and r["old"] == "fraud")
    assert model["key"] == {"name": "fraud"} and model["workspace"] in ("team-a", "team-c")
    experiment = next(r for r in doc["renames"] if r["table"] == "experiments")
    assert set(experiment["key"]) == {"experiment_id"}
    assert mlflow_db.fingerprint() == before


def test_apply_renames_every_dependent_and_restore_brings_back_the_exact_original(mlflow_db, tmp_path) -> None:
    populate(mlflow_db, _collide)
    original = mlflow_db.dump()
    journal = str(tmp_path / "rename.jsonl")

    result = migrate(mlflow_db.uri, "-y", "--rename-conflicts", TEMPLATE, "--journal", journal)

    assert result.exit_code == ExitStatus.OK, result.output
    for table in ("experiments", "registered_models", "model_versions", "evaluation_datasets", "mcp_servers"):
        assert mlflow_db.outside_default(table) == 0, table
    assert ("default", "fraud-team-c") in _names(mlflow_db, "registered_models")
    assert _names(mlflow_db, "model_versions").count(("default", "fraud-team-c")) == 2
    assert _names(mlflow_db, "registered_model_aliases").count(("default", "fraud-team-c")) == 1
    assert _names(mlflow_db, "registered_model_tags").count(("default", "fraud-team-c")) == 1
    assert _names(mlflow_db, "model_version_tags").count(("default", "fraud-team-c")) == 2
    assert _names(mlflow_db, "registered_model_tags").count(("default", "greeting-team-b")) == 1  # still a prompt
    assert _names(mlflow_db, "mcp_server_versions").count(("default", "com.example/search-team-c")) == 1
    assert _names(mlflow_db, "mcp_server_tags").count(("default", "com.example/search-team-c")) == 1
    assert _dangling(mlflow_db) == {}
    # The dataset's digest follows its name, as MLflow computes it.
    digest = mlflow_db.scalar("SELECT digest FROM evaluation_datasets WHERE dataset_id = 'd-b'")
    assert digest == _digest("golden-team-b", 2222)
    out = result.stdout
    assert "renamed 3 row(s) of experiments" in out
    assert "renamed 3 row(s) of model_versions" in out  # fraud-team-c: 2, greeting-team-b: 1
    assert f"the journal {journal}" in out

    applied = mlflow_db.fingerprint()
    preview = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", journal, "--dry-run")
    assert preview.exit_code == ExitStatus.OK, preview.output
    assert "19 value(s) changed by --rename-conflicts put back" in preview.stdout
    assert "Dry run: 99 row(s) would move back" in preview.stdout
    assert mlflow_db.fingerprint() == applied

    restored = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", journal, "-y")

    assert restored.exit_code == ExitStatus.OK, restored.output
    # 7 renamed rows; 11 rows storing their names (fraud-team-c: 2 versions, 2 version tags, a tag, an alias;
    # greeting-team-b: a version, its tag, the prompt tag; the MCP server: a version, a tag); 1 digest
    assert "19 value(s) changed by --rename-conflicts put back" in restored.stdout
    assert mlflow_db.dump() == original


def test_move_resources_renames_the_moving_row_and_restore_undoes_it(mlflow_db, tmp_path) -> None:
    def fill(data) -> None:
        data.registered_model("team-a", "fraud", versions=2, tags=1, aliases=1)
        data.registered_model("team-b", "fraud", versions=1)
        # Left behind in team-a, and holding the name the template would give first: the new name must be free in
        # the source too (the row is renamed there, before it moves).
        data.registered_model("team-a", "fraud-team-a", versions=1)

    populate(mlflow_db, fill)
    original = mlflow_db.dump()
    journal = str(tmp_path / "move.jsonl")
    flags = ("--from", "team-a", "--to", "team-b", "--resource-type", "registered_models", "--name", "fraud")

    result = move(mlflow_db.uri, *flags, "-y", "--rename-conflicts", "{name}-{workspace}-{n}", "--journal", journal)

    assert result.exit_code == ExitStatus.OK, result.output
    models = _names(mlflow_db, "registered_models")
    assert ("team-b", "fraud") in models and ("team-b", "fraud-team-a-1") in models
    assert ("team-a", "fraud-team-a") in models  # left behind, untouched
    assert _names(mlflow_db, "model_versions").count(("team-b", "fraud-team-a-1")) == 2
    assert _dangling(mlflow_db) == {}

    restored = run_cli("db", "restore-workspaces", mlflow_db.uri, "--journal", journal, "-y")

    assert restored.exit_code == ExitStatus.OK, restored.output
    assert mlflow_db.dump() == original


def test_a_secret_collision_stays_blocking(mlflow_db) -> None:
    def fill(data) -> None:
        data.experiment("team-a", "churn")
        data.experiment("team-b", "churn")
        data.secret("team-a", "openai-key")
        data.secret("team-b", "openai-key")

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "-y", "--rename-conflicts", TEMPLATE)

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert "secret_name cannot be renamed" in result.stdout
    assert "Blocked: 1 conflict group(s) in 1 table(s)" in result.stdout
    assert mlflow_db.fingerprint() == before


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        # No {n}: the one candidate is taken by a row that does not collide.
        ("renamed-{name}", "'renamed-churn' is already taken; add {n} to the template"),
        # 256 characters is the column's length.
        ("{name}" + "x" * 260, "characters; the column holds 256"),
    ],
)
def test_a_template_without_a_valid_unique_name_blocks_and_says_why(mlflow_db, template: str, reason: str) -> None:
    def fill(data) -> None:
        data.experiment("team-a", "churn")
        data.experiment("team-b", "churn")
        data.experiment("team-c", "renamed-churn")

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run", "--rename-conflicts", template)

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert "Cannot rename: 1 row(s) (they stay conflicts)" in result.stdout
    assert reason in result.stdout
    assert "1 row(s) that --rename-conflicts cannot rename" in result.stdout
    assert mlflow_db.fingerprint() == before


def test_mlflow_name_rules_refuse_an_invalid_prompt_name(mlflow_db) -> None:
    populate(mlflow_db, lambda data: (_prompt(data, "team-a", "greeting"), _prompt(data, "team-b", "greeting")))
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run", "--format", "json", "--rename-conflicts", "{name} ({workspace})")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    doc = document(result)
    assert doc["renames"] == []
    [refused] = doc["renames_refused"]
    assert refused["old"] == "greeting" and "prompt's name may only hold" in refused["reason"]
    assert mlflow_db.fingerprint() == before


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--rename-conflicts", "{nme}"), "unknown placeholder {nme}"),
        (("--rename-conflicts", "fixed"), "the template has no placeholder"),
        (("--rename-conflicts", "{name"), "write {{ and }} for literal braces"),
        (("--keep", "oldest"), "add --rename-conflicts"),
    ],
)
def test_bad_rename_options_are_usage_errors(mlflow_db, flags: tuple[str, ...], message: str) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "-y", *flags)

    assert result.exit_code == ExitStatus.USAGE, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and message in line
    assert mlflow_db.fingerprint() == before


@pytest.mark.mysql_only
def test_case_insensitive_groups_show_every_spelling_and_rename_to_free_names(mlflow_db) -> None:
    def fill(data) -> None:
        data.experiment("team-a", "Churn")
        data.experiment("team-b", "churn")
        data.experiment("team-c", "CHURN-TEAM-B-1")  # equal to the first candidate for team-b under the collation

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    dry = migrate(mlflow_db.uri, "--dry-run", "--rename-conflicts", "{name}-{workspace}-{n}")

    assert dry.exit_code == ExitStatus.OK, dry.output
    assert 'name="Churn"' in dry.stdout and 'name="churn"' in dry.stdout
    assert mlflow_db.fingerprint() == before

    result = migrate(mlflow_db.uri, "-y", "--rename-conflicts", "{name}-{workspace}-{n}")

    assert result.exit_code == ExitStatus.OK, result.output
    assert [r for r in _names(mlflow_db, "experiments") if "churn" in r[1].lower()] == [
        ("default", "CHURN-TEAM-B-1"),
        ("default", "Churn"),
        ("default", "churn-team-b-2"),
    ]


@pytest.mark.mysql_only
def test_groups_follow_the_columns_collation_accents_and_padding_included(mlflow_db) -> None:
    """Planning groups rows in Python by collation weights: names equal only under the collation ('ß' = 's'
    and 'é' = 'e' in utf8mb4_general_ci) are one group, and a NO PAD collation keeps a trailing space apart."""
    from sqlalchemy import text

    with mlflow_db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE experiments MODIFY name VARCHAR(256) NOT NULL COLLATE utf8mb4_general_nopad_ci"))

    def fill(data) -> None:
        data.registered_model("team-a", "Straße")
        data.registered_model("team-b", "strase")
        data.registered_model("team-a", "Café")
        data.registered_model("team-b", "cafe")
        data.experiment("team-a", "churn")
        data.experiment("team-b", "churn ")  # another name under NO PAD: no collision
        data.experiment("team-c", "CHURN")  # the same as team-a's: case is still ignored

    populate(mlflow_db, fill)

    result = migrate(mlflow_db.uri, "-y", "--rename-conflicts", "{name}-{workspace}")

    assert result.exit_code == ExitStatus.OK, result.output
    assert [r for r in _names(mlflow_db, "registered_models") if r[1][:3].lower() in ("caf", "str")] == [
        ("default", "Café"),
        ("default", "Straße"),
        ("default", "cafe-team-b"),
        ("default", "strase-team-b"),
    ]
    assert [r for r in _names(mlflow_db, "experiments") if "churn" in r[1].lower()] == [
        ("default", "CHURN-team-c"),
        ("default", "churn"),
        ("default", "churn "),
    ]


@pytest.mark.mysql_only
def test_a_new_name_only_the_collation_finds_taken_is_refused_in_the_plan(mlflow_db) -> None:
    """utf8mb4_general_ci equates 'ß' with 's' and the name fold does not: the database weighs the chosen names,
    so 'x-team-s' counts as taken by an existing 'x-team-ß', and without {n} the row is refused in the dry run."""

    def fill(data) -> None:
        data.experiment("team-a", "x")
        data.experiment("team-s", "x")
        data.experiment("team-c", "x-team-ß")

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    dry = migrate(mlflow_db.uri, "--dry-run", "--rename-conflicts", "{name}-{workspace}")

    assert dry.exit_code == ExitStatus.CONFLICTS, dry.output
    assert "'x-team-s' is already taken; add {n} to the template" in dry.stdout
    assert mlflow_db.fingerprint() == before


@pytest.mark.mysql_only
def test_a_new_name_only_the_collation_finds_taken_moves_on_to_the_next_n(mlflow_db) -> None:
    def fill(data) -> None:
        data.experiment("team-a", "x")
        data.experiment("team-s", "x")
        data.experiment("team-c", "x-team-ß-1")  # 'x-team-s-1' under utf8mb4_general_ci

    populate(mlflow_db, fill)

    result = migrate(mlflow_db.uri, "-y", "--rename-conflicts", "{name}-{workspace}-{n}")

    assert result.exit_code == ExitStatus.OK, result.output
    assert [r for r in _names(mlflow_db, "experiments") if r[1].startswith("x")] == [
        ("default", "x"),
        ("default", "x-team-s-2"),
        ("default", "x-team-ß-1"),
    ]


@pytest.mark.mysql_only
def test_two_new_names_the_collation_equates_do_not_both_stay(mlflow_db) -> None:
    """'s-1' and 'ß-1' differ under the name fold but not under utf8mb4_general_ci: the second takes {n} = 2."""

    def fill(data) -> None:
        data.experiment("team-a", "ß")  # the oldest: keeps its name
        data.experiment("team-b", "s")
        data.experiment("team-c", "ß")

    populate(mlflow_db, fill)

    result = migrate(mlflow_db.uri, "-y", "--rename-conflicts", "{name}-{n}")

    assert result.exit_code == ExitStatus.OK, result.output
    assert [r for r in _names(mlflow_db, "experiments") if r[1][0] in "sß"] == [
        ("default", "s-1"),
        ("default", "ß"),
        ("default", "ß-2"),
    ]


@pytest.mark.mysql_only
def test_ascii_fold_collations_equate_printable_ascii_only_by_case(mlflow_db) -> None:
    """The collations whose printable ASCII names skip the weighing: under each that the server has, every
    printable ASCII character has a weight, two have the same weight only when they are equal ignoring case,
    and strings with punctuation keep it apart (an ignorable '-' would make 'a-b' equal 'ab')."""
    from sqlalchemy import text

    from mlflow_ws_admin.db.dialects.mysql import ASCII_FOLD_COLLATIONS

    probes = [chr(i) for i in range(32, 127)] + ["a-b", "ab", "a_b", "a.b", "a b", "a--b", "ch", "c", "ll", "l"]
    checked = []
    with mlflow_db.engine.connect() as conn:
        available = {r[0] for r in conn.execute(text("SHOW COLLATION"))}
        for collation in sorted(ASCII_FOLD_COLLATIONS & available):
            charset = collation.split("_")[0]
            weight = {
                p: conn.execute(
                    text(f"SELECT WEIGHT_STRING(CONVERT(:p USING {charset}) COLLATE {collation})"), {"p": p}
                ).scalar()
                for p in probes
            }
            assert all(weight.values()), f"{collation}: an ignorable printable character"
            for a in probes:
                for b in probes:
                    if weight[a] == weight[b]:  # equal under the collation: equal under the fold too
                        assert a.lower() == b.lower(), (collation, a, b)
            checked.append(collation)
    assert len(checked) == len(ASCII_FOLD_COLLATIONS), f"not on this server: {ASCII_FOLD_COLLATIONS - set(checked)}"


@pytest.mark.mysql_only
def test_printable_ascii_names_skip_the_weighing_only_under_a_known_collation(mlflow_db) -> None:
    """utf8mb4_roman_ci equates 'I' with 'J': there even ASCII names are weighed, so 'Ix' is taken by 'jx'."""
    from sqlalchemy import text

    with mlflow_db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE experiments MODIFY name VARCHAR(256) NOT NULL COLLATE utf8mb4_roman_ci"))

    def fill(data) -> None:
        data.experiment("team-a", "x")
        data.experiment("team-b", "x")
        data.experiment("team-c", "x-j1")

    populate(mlflow_db, fill)

    result = migrate(mlflow_db.uri, "-y", "--rename-conflicts", "{name}-i{n}")

    assert result.exit_code == ExitStatus.OK, result.output
    assert [r for r in _names(mlflow_db, "experiments") if r[1].startswith("x")] == [
        ("default", "x"),
        ("default", "x-i2"),
        ("default", "x-j1"),
    ]


def test_restore_refuses_to_record_a_journal_of_renames(mlflow_db, tmp_path) -> None:
    populate(mlflow_db, lambda data: (data.experiment("team-a", "x"), data.experiment("team-b", "x")))
    journal = str(tmp_path / "j.jsonl")
    assert migrate(mlflow_db.uri, "-y", "--rename-conflicts", TEMPLATE, "--journal", journal).exit_code == 0
    before = mlflow_db.fingerprint()

    result = run_cli(
        "db", "restore-workspaces", mlflow_db.uri, "--journal", journal, "-y", "--record-journal", str(tmp_path / "u")
    )

    assert result.exit_code == ExitStatus.USAGE, result.output
    assert "--record-journal cannot journal a restore that puts renamed names back" in result.stderr
    assert mlflow_db.fingerprint() == before
    with open(journal) as f:
        assert json.loads(f.readline())["type"] == "header"  # the refused run left the journal as it was


def test_markdown_lists_renames_and_refusals(mlflow_db) -> None:
    def fill(data) -> None:
        data.experiment("team-a", "churn")
        data.experiment("team-b", "churn")
        _prompt(data, "team-a", "greeting")
        _prompt(data, "team-c", "greeting")

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run", "--format", "markdown", "--rename-conflicts", "{name} ({workspace})")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    out = result.stdout
    assert '### Renames (--rename-conflicts "{name} ({workspace})", --keep default): 1 row(s) in 1 table(s)' in out
    assert "| experiments | team-b (experiment&#95;id=" in out and '| "churn" | "churn (team-b)" |' in out
    assert "**Cannot rename: 1 row(s) (they stay conflicts)**" in out
    assert "a prompt's name may only hold letters" in out
    assert "Fix: resolved by --rename-conflicts (see Renames)" in out
    assert mlflow_db.fingerprint() == before


# --- fix hints without --rename-conflicts ------------------------------------------------------------------


def test_fix_hints_give_the_real_client_call_and_label_prompts(mlflow_db) -> None:
    def fill(data) -> None:
        data.experiment("team-a", "churn", experiment_id=41)
        data.experiment("team-b", "churn", experiment_id=42)
        data.registered_model("team-a", "fraud")
        data.registered_model("team-c", "fraud")
        _prompt(data, "team-a", "greeting")
        _prompt(data, "team-b", "greeting")
        _dataset(data, "team-a", "d-a", "golden", 1)
        _dataset(data, "team-b", "d-b", "golden", 2)
        _mcp_server(data, "team-a", "com.example/search")
        _mcp_server(data, "team-c", "com.example/search")

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    out = result.stdout
    assert 'fix: mlflow.set_workspace("team-b"); MlflowClient().rename_experiment("42", "<new name>")' in out
    assert 'fix: mlflow.set_workspace("team-c"); MlflowClient().rename_registered_model("fraud", "<new name>")' in out
    # The prompt is labelled a prompt, and not sent to rename_registered_model (which answers "not found").
    assert 'name="greeting" (prompt): team-a; team-b' in out
    assert 'MlflowClient().rename_registered_model("greeting"' not in out
    assert 'MlflowClient().delete_prompt("greeting")), or use --rename-conflicts (MLflow has no prompt rename)' in out
    assert "MLflow has no rename for evaluation datasets" in out and 'delete_dataset(dataset_id="d-b")' in out
    assert 'MLflow has no rename for MCP servers: register "com.example/search" again' in out

    doc = document(migrate(mlflow_db.uri, "--dry-run", "--format", "json"))
    greeting = next(c for c in doc["conflicts"] if c["key"] == {"name": "greeting"})
    assert greeting["resource"] == "prompt" and "MLflow has no prompt rename" in greeting["fix"]
    churn = next(c for c in doc["conflicts"] if c["key"] == {"name": "churn"})
    assert "fix" in churn and '"42"' in churn["fix"] and "resource" not in churn
    assert mlflow_db.fingerprint() == before


@pytest.mark.mysql_only
def test_every_spelling_of_a_case_insensitive_group_is_shown_with_its_own_call(mlflow_db) -> None:
    def fill(data) -> None:
        data.registered_model("team-a", "Fraud")
        data.registered_model("team-b", "fraud")
        data.registered_model("team-c", "FRAUD")

    populate(mlflow_db, fill)

    result = migrate(mlflow_db.uri, "--dry-run")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    out = result.stdout
    [line] = [line for line in out.splitlines() if line.startswith('  name="')]
    # The group's key is one spelling; every row that spells it otherwise shows its own.
    for ws, spelling in (("team-a", "Fraud"), ("team-b", "fraud"), ("team-c", "FRAUD")):
        assert f'{ws} (name="{spelling}")' in line or line.startswith(f'  name="{spelling}": '), line
    assert 'mlflow.set_workspace("team-b"); MlflowClient().rename_registered_model("fraud", "<new name>")' in out
    assert 'mlflow.set_workspace("team-c"); MlflowClient().rename_registered_model("FRAUD", "<new name>")' in out
    doc = document(migrate(mlflow_db.uri, "--dry-run", "--format", "json"))
    [group] = [c for c in doc["conflicts"] if c["table"] == "registered_models"]
    assert [r.get("name", group["key"]["name"]) for r in group["rows"]] == ["Fraud", "fraud", "FRAUD"]


def test_a_model_or_prompt_referenced_by_name_from_its_workspace_is_not_renamed(mlflow_db) -> None:
    def fill(data) -> None:
        _prompt(data, "team-a", "greeting")
        _prompt(data, "team-b", "greeting")
        data.registered_model("team-a", "fraud")
        data.registered_model("team-c", "fraud")
        data.registered_model("team-c", "fraud-copy")
        data.flush()
        # team-c copied fraud's version 1 (copy_model_version stores the source by name)
        data.add("model_versions", workspace="team-c", name="fraud-copy", version=2, source="models:/fraud/1")
        for ws, run in (("team-a", "r-a"), ("team-b", "r-b")):
            exp = data.experiment(ws, f"prompting-{ws}")
            data.flush()
            data.add("runs", run_uuid=run, experiment_id=exp, status="FINISHED", lifecycle_stage="active")
            data.flush()
            data.add("tags", run_uuid=run, key="mlflow.linkedPrompts", value='[{"name": "greeting", "version": "1"}]')

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "-y", "--format", "json", "--rename-conflicts", TEMPLATE)

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    doc = document(result)
    refused = {(r["workspace"], r["old"]): r["reason"] for r in doc["renames_refused"]}
    # team-a keeps both names, so team-a's references stay right; team-b's run and team-c's copy would not.
    assert set(refused) == {("team-b", "greeting"), ("team-c", "fraud")}
    assert "a run's mlflow.linkedPrompts tag" in refused[("team-b", "greeting")]
    assert "model_versions.source of 'fraud-copy' version 2 ('models:/fraud/1')" in refused[("team-c", "fraud")]
    assert mlflow_db.fingerprint() == before


def _skill_rows(db, name: str) -> dict[str, list[tuple]]:
    """Every row of a skill (by its name, any organization and workspace), per skill table."""
    tables = ("skills", "skill_versions", "skill_tags", "skill_version_tags", "skill_aliases")
    with db.engine.connect() as conn:
        return {
            t: sorted(tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {t} WHERE name = '{name}'"))
            for t in tables
        }


def test_git_sourced_skills_are_renamed_with_their_dependents(mlflow_db) -> None:
    """A git-sourced skill is renamed in its name column, its organization kept, its versions, tags, version tags
    and aliases following, and its search_text rebuilt as MLflow builds it; a skill with MLflow-stored content is
    listed in renames_refused with the reason (text, JSON, Markdown), never skipped silently."""
    from .test_mlflow_318 import _skill

    def fill(data) -> None:
        _skill(data, "team-a", "summarize", "git")
        _skill(data, "team-b", "summarize", "git")
        data.add("skill_tags", workspace="team-b", organization="acme", name="summarize", key="k", value="v")
        data.add("skill_aliases", workspace="team-b", organization="acme", name="summarize", alias="prod", version=1)
        data.add(
            "skill_version_tags",
            workspace="team-b",
            organization="acme",
            name="summarize",
            version=1,
            key="k",
            value="v",
        )
        _skill(data, "team-a", "stored", "git")
        _skill(data, "team-b", "stored", "mlflow")  # team-a keeps the name (--keep default: the oldest)

    populate(mlflow_db, fill)
    mlflow_db.execute(
        "UPDATE skills SET description = 'Sums  up\ttext', search_text = 'summarize Sums up text' "
        "WHERE name = 'summarize'"
    )
    before = mlflow_db.fingerprint()

    dry = migrate(mlflow_db.uri, "--dry-run", "--rename-conflicts", TEMPLATE)
    doc = document(migrate(mlflow_db.uri, "--dry-run", "--format", "json", "--rename-conflicts", TEMPLATE))
    markdown = migrate(mlflow_db.uri, "--dry-run", "--format", "markdown", "--rename-conflicts", TEMPLATE)

    for result in (dry, markdown):
        assert result.exit_code == ExitStatus.CONFLICTS, result.output  # the stored skill blocks
    assert [(r["table"], r["key"], r["workspace"], r["old"], r["new"]) for r in doc["renames"]] == [
        ("skills", {"organization": "acme", "name": "summarize"}, "team-b", "summarize", "summarize-team-b")
    ]
    assert [(r["key"], r["workspace"], r["old"]) for r in doc["renames_refused"]] == [
        ({"organization": "acme", "name": "stored"}, "team-b", "stored")
    ]
    reason = doc["renames_refused"][0]["reason"]
    assert "MLflow stores content of this skill's versions under its name" in reason
    assert reason in dry.stdout.replace("\n", " ") or "MLflow stores content of this skill" in dry.stdout
    assert "Cannot rename: 1 row(s)" in markdown.stdout and "MLflow stores content of this skill" in markdown.stdout
    assert mlflow_db.fingerprint() == before

    # Without the stored skill, the rename applies.
    mlflow_db.execute("DELETE FROM skill_versions WHERE name = 'stored' AND workspace = 'team-b'")
    mlflow_db.execute("DELETE FROM skills WHERE name = 'stored' AND workspace = 'team-b'")
    old = _skill_rows(mlflow_db, "summarize")
    applied = migrate(mlflow_db.uri, "-y", "--rename-conflicts", TEMPLATE)

    assert applied.exit_code == ExitStatus.OK, applied.output
    new = _skill_rows(mlflow_db, "summarize-team-b")
    kept = _skill_rows(mlflow_db, "summarize")
    for table, rows in old.items():
        team_b = [r for r in rows if r[0] == "team-b"]
        assert team_b and len(new[table]) == len(team_b), table
        assert all(r[0] == "default" and r[1] == "acme" for r in new[table]), (table, new[table])
        assert len(kept[table]) == len(rows) - len(team_b), table
    (skill,) = new["skills"]
    assert "summarize-team-b Sums up text" in skill
    assert all("summarize-team-b" not in r for r in kept["skills"])


def test_json_after_apply_lists_the_renames_made_under_the_lock(mlflow_db) -> None:
    def fill(data) -> None:
        data.experiment("team-a", "churn")
        data.experiment("team-b", "churn")
        data.registered_model("team-a", "fraud", versions=2, aliases=1)
        data.registered_model("team-b", "fraud", versions=1)

    populate(mlflow_db, fill)

    result = migrate(mlflow_db.uri, "-y", "--format", "json", "--rename-conflicts", TEMPLATE)

    assert result.exit_code == ExitStatus.OK, result.output
    doc = document(result)
    assert doc["status"] == "applied"
    assert sorted((r["table"], r["workspace"], r["new"]) for r in doc["renames"]) == [
        ("experiments", "team-b", "churn-team-b"),
        ("registered_models", "team-b", "fraud-team-b"),
    ]
    assert doc["rows_renamed"] == {
        "experiments": 1,
        "registered_models": 1,
        "model_versions": 1,
        "model_version_tags": 1,
    }
    assert mlflow_db.outside_default("experiments") == 0


# --- after a prompt: apply renames what the person reviewed, or nothing ---------------------------------------


def _prompted_rename(db, on_confirm) -> tuple[ExitStatus, str]:
    """The migrate use case with a terminal UI; ``on_confirm`` runs while the person reads the plan.  Returns the
    exit status and the error the CLI boundary would print."""
    from mlflow_ws_admin.common.errors import ConflictsAppeared
    from mlflow_ws_admin.db.connect import resolve_target
    from mlflow_ws_admin.usecases import commands

    def confirm(question: str) -> bool:
        on_confirm()
        return True

    ui = commands.UI(stdin_is_terminal=True, confirm=confirm)
    options = commands.MigrateOptions(rename_conflicts=TEMPLATE)
    try:
        return commands.migrate(resolve_target(db.uri), options, commands.Output(), ui), ""
    except ConflictsAppeared as exc:
        return ExitStatus.CONFLICTS, exc.message


def _two_churns(data) -> None:
    data.experiment("team-a", "churn")
    data.experiment("team-b", "churn")


def test_the_reviewed_renames_are_applied(mlflow_db, capsys: pytest.CaptureFixture[str]) -> None:
    populate(mlflow_db, _two_churns)

    status, _ = _prompted_rename(mlflow_db, lambda: None)

    assert status == ExitStatus.OK
    assert '"churn" → "churn-team-b"' in capsys.readouterr().out  # shown before the prompt
    assert ("default", "churn-team-b") in _names(mlflow_db, "experiments")
    assert mlflow_db.outside_default("experiments") == 0


def test_renames_that_changed_since_the_review_roll_back(mlflow_db, capsys: pytest.CaptureFixture[str]) -> None:
    populate(mlflow_db, _two_churns)
    before: list = []

    def collide_meanwhile() -> None:
        # A third churn arrives while the person reads the plan: the reviewed renames no longer cover it.
        mlflow_db.execute(
            "INSERT INTO experiments (experiment_id, name, workspace, lifecycle_stage) "
            "VALUES (990001, 'churn', 'team-c', 'active')"
        )
        before.append(mlflow_db.fingerprint())

    status, error = _prompted_rename(mlflow_db, collide_meanwhile)

    assert status == ExitStatus.CONFLICTS
    assert error.startswith("the colliding rows changed since the plan, so its renames no longer hold")
    # Rolled back; the read-only report that follows shows the renames as they are now.
    assert '"churn" → "churn-team-c"' in capsys.readouterr().out
    assert mlflow_db.fingerprint() == before[0]
