"""`--format markdown`: parsed back with a small GFM table parser and held against the JSON document of the
same run; hostile names stay inside their cells; every run is read-only."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_ws_admin.common.errors import ExitStatus
from mlflow_ws_admin.db.sample_data import SampleData
from mlflow_ws_admin.report.markdown import TOP_WORKSPACES, escape

from .helpers import migrate, populate, run_cli

VERDICT = re.compile(r"^\*\*Verdict: ([A-Z ]+) — exit code (\d+)\.\*\* ")
DELIMITER = re.compile(r"^\|( *:?-+:? *\|)+$")
SHARED = "s3://bkt/shared"


# --- a small Markdown reader: headings, tables, the verdict -------------------------------------------------


@dataclass
class MdTable:
    heading: str  # the nearest heading above the table
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [row[i] for row in self.rows]


def split_row(line: str) -> list[str]:
    # Every `|` in user data is an entity, so a plain split is exact; an unescaped one would add a cell.
    assert line.startswith("|") and line.endswith("|"), line
    return [cell.strip() for cell in line[1:-1].split("|")]


def parse_tables(doc: str) -> list[MdTable]:
    """Every GFM table with the heading it sits under.  A row with a cell count other than its header's (a
    stray `|`) fails; a row broken by a newline would end its table early, which the callers' counts catch."""
    lines = doc.split("\n")
    tables: list[MdTable] = []
    heading, i = "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = html.unescape(line.lstrip("#").strip())
        if line.startswith("|") and i + 1 < len(lines) and DELIMITER.match(lines[i + 1]):
            table = MdTable(heading, split_row(line))
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = split_row(lines[i])
                assert len(cells) == len(table.header), f"row broke out of its cells: {lines[i]!r}"
                table.rows.append(cells)
                i += 1
            tables.append(table)
            continue
        i += 1
    return tables


def tables_under(tables: list[MdTable], heading_prefix: str) -> list[MdTable]:
    return [t for t in tables if t.heading.startswith(heading_prefix)]


def verdict(doc: str) -> tuple[str, int]:
    lines = [ln for ln in doc.split("\n") if VERDICT.match(ln)]
    assert len(lines) == 1, doc
    word, code = VERDICT.match(lines[0]).groups()
    return word, int(code)


def text(cell: str) -> str:
    """What a reader sees in a cell: entities decoded, `<br>` as a line break."""
    return html.unescape(cell.replace("<br>", "\n"))


def count(cell: str) -> int:
    return int(text(cell).strip("*").replace(",", ""))


def assert_only_our_markup(doc: str) -> None:
    """No HTML but our `<br>`, no raw newline inside a table row (checked by the parser)."""
    assert not re.search(r"<(?!br>)", doc), re.search(r".{0,40}<(?!br>).{0,40}", doc).group(0)


def json_doc(result) -> dict:
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == result.exit_code
    return doc


# --- the escaping itself -------------------------------------------------------------------------------------


def _as_seen(value: str) -> str:
    # What the reader should see: printable text as is, anything else as a visible \\u escape.
    return "".join(
        ch if ch.isprintable() else f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}" for ch in value
    )


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_escape_leaves_nothing_markdown_acts_on_and_reads_back(value: str) -> None:
    escaped = escape(value)
    assert html.unescape(escaped) == _as_seen(value)
    assert not set(escaped) & set("|\\`*_~[]$<>\n\r")
    assert all(ch.isprintable() for ch in escaped)


# --- migrate --dry-run ---------------------------------------------------------------------------------------


def _conflicts_and_findings(data) -> None:
    """7 experiment name collisions (more than the 5 shown per key), a colliding model with dependents, a
    blocking artifact overlap across workspaces, and a table fed by 7 workspaces (more than 5 listed)."""
    for i in range(7):
        data.experiment("team-a", f"dup-{i}")
        data.experiment("team-b", f"dup-{i}")
    data.registered_model("team-a", "fraud", versions=3, tags=2, aliases=1)
    data.registered_model("team-c", "fraud", versions=2)
    data.experiment("team-a", "owner", artifact_location=SHARED)
    data.experiment("team-b", "intruder", artifact_location=SHARED + "/")
    for n in range(1, 5):
        data.workspace(f"extra-{n}")
        for i in range(n):
            data.webhook(f"extra-{n}", f"hook-{n}-{i}")


def _check_moves(tables: list[MdTable], doc: dict) -> None:
    (moves,) = tables_under(tables, "Rows to move")
    by_table = {text(row[0]).strip("*"): row for row in moves.rows}  # the total row is bold
    moving = [t for t in doc["tables"] if t["rows_to_move"]]
    assert set(by_table) == {t["table"] for t in moving} | {"total"}
    assert count(by_table["total"][1]) == doc["total_rows_to_move"]
    for t in moving:
        _, rows, sources = by_table[t["table"]]
        assert count(rows) == t["rows_to_move"]
        ranked = sorted(t["by_workspace"].items(), key=lambda p: (-p[1], p[0]))
        expected = ", ".join(f"{ws}: {n:,}" for ws, n in ranked[:TOP_WORKSPACES])
        if len(ranked) > TOP_WORKSPACES:
            expected += f", … {len(ranked) - TOP_WORKSPACES} more workspaces"
        assert text(sources) == expected, t["table"]


def _group_cells(group: dict) -> tuple[str, list[str], int]:
    """A JSON conflict group as its Markdown cells should read."""
    key = ", ".join(f"{col}={json.dumps(val, ensure_ascii=False)}" for col, val in group["key"].items())
    rows = []
    for row in group["rows"]:
        ident = [f"{c}={json.dumps(v, ensure_ascii=False)}" for c, v in row.items() if c != "workspace"]
        rows.append(f"{row['workspace']} ({', '.join(ident)})" if ident else row["workspace"])
    return key, rows, group["dependent_rows"]


def _check_conflicts(tables: list[MdTable], doc: dict, md: str, per_key: int | None) -> None:
    shown = tables_under(tables, "experiments — key") + tables_under(tables, "registered_models — key")
    assert len(shown) == len({c["table"] for c in doc["conflicts"]}) == 2
    for table in shown:
        name = table.heading.split(" — ")[0]
        groups = [g for g in doc["conflicts"] if g["table"] == name]
        expected = groups if per_key is None else groups[:per_key]
        assert len(table.rows) == len(expected), name
        for cells, group in zip(table.rows, expected, strict=True):
            key, rows, dependents = _group_cells(group)
            assert text(cells[0]) == key
            assert text(cells[1]).split("\n") == rows
            assert int(text(cells[2]).split(" ")[0].replace(",", "")) == dependents
        more = len(groups) - len(expected)
        assert (f"… {more:,} more group(s)" in md) == (more > 0 and name == "experiments"), name


def _check_findings(tables: list[MdTable], doc: dict) -> None:
    (overlaps,) = tables_under(tables, "overlap — ")
    findings = [f for f in doc["artifact_findings"] if f["kind"] == "overlap"]
    assert len(overlaps.rows) == len(findings) == 1
    assert [text(c) for c in overlaps.column("severity")] == [f["severity"] for f in findings]
    assert [json.loads(text(c)) for c in overlaps.column("location")] == [f["location"] for f in findings]
    assert [text(c) for c in overlaps.column("detail")] == [f["detail"] for f in findings]


def test_dry_run_markdown_matches_the_json_document(mlflow_db) -> None:
    populate(mlflow_db, _conflicts_and_findings)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run", "--format", "markdown")
    doc = json_doc(migrate(mlflow_db.uri, "--dry-run", "--format", "json"))

    assert result.exit_code == ExitStatus.CONFLICTS == doc["exit_code"], result.output
    assert verdict(result.stdout) == ("BLOCKED", ExitStatus.CONFLICTS)
    assert_only_our_markup(result.stdout)
    tables = parse_tables(result.stdout)
    _check_moves(tables, doc)
    _check_conflicts(tables, doc, result.stdout, per_key=5)
    _check_findings(tables, doc)
    assert mlflow_db.fingerprint() == before


def test_verbose_markdown_lists_every_group(mlflow_db) -> None:
    populate(mlflow_db, _conflicts_and_findings)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run", "--format", "markdown", "--verbose")
    doc = json_doc(migrate(mlflow_db.uri, "--dry-run", "--format", "json"))

    assert result.exit_code == ExitStatus.CONFLICTS
    _check_conflicts(parse_tables(result.stdout), doc, result.stdout, per_key=None)
    assert mlflow_db.fingerprint() == before


def test_clean_and_empty_dry_runs(mlflow_db) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    clean = migrate(mlflow_db.uri, "--dry-run", "--format", "markdown")
    assert clean.exit_code == ExitStatus.OK and verdict(clean.stdout) == ("PASS", 0)
    assert "### Conflicts" not in clean.stdout and "No artifact findings." in clean.stdout
    _check_moves(parse_tables(clean.stdout), json_doc(migrate(mlflow_db.uri, "--dry-run", "--format", "json")))
    assert mlflow_db.fingerprint() == before

    assert migrate(mlflow_db.uri, "-y").exit_code == ExitStatus.OK
    after = mlflow_db.fingerprint()
    empty = migrate(mlflow_db.uri, "--dry-run", "--format", "markdown")
    assert empty.exit_code == ExitStatus.OK and verdict(empty.stdout) == ("NOTHING TO MOVE", 0)
    assert "No rows to move" in empty.stdout
    assert mlflow_db.fingerprint() == after


HOSTILE = {
    "pipe": "a|b||c",
    "backticks": "``code`` and `x`",
    "html": "<script>alert(1)</script><b>&amp;",
    "newline": "line1\nline2\r\nline3",
    "markdown": "[click](https://evil.invalid) ![img](x) *em* _u_ ~~s~~ $x$",
    "backslash": "C:\\temp\\|\\",
    "longest": "n|" * 128,  # 256: the name columns' limit on PostgreSQL and MySQL
}
LONG_ROOT = "s3://roots/" + "x|<i>`" * 50  # 311 characters in a text column


def test_hostile_names_stay_inside_their_cells(mlflow_db) -> None:
    odd_ws = "ws|<b>`x`</b>"

    def fill(data) -> None:
        data.workspace(odd_ws, default_artifact_root=LONG_ROOT)
        data.workspace("roots-twin", default_artifact_root=LONG_ROOT)
        for name in HOSTILE.values():
            data.experiment("team-a", name)
            data.experiment(odd_ws, name)

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()

    result = migrate(mlflow_db.uri, "--dry-run", "--format", "markdown", "--verbose")

    assert result.exit_code == ExitStatus.CONFLICTS, result.output
    assert_only_our_markup(result.stdout)
    for raw in ("<script>", "<b>", "``code``", "](https://", "*em*", "_u_", "~~s~~", "$x$", "|b|"):
        assert raw not in result.stdout, raw
    tables = parse_tables(result.stdout)
    (experiments,) = tables_under(tables, "experiments — key")
    keys = {text(c) for c in experiments.column("key")}
    assert keys == {f"name={json.dumps(n, ensure_ascii=False)}" for n in HOSTILE.values()}
    for cell in experiments.column("rows (workspace and identity)"):
        assert text(cell).split("\n")[1].startswith(json.dumps(odd_ws) + " (experiment_id="), cell
    (moves,) = tables_under(tables, "Rows to move")
    sources = {text(row[0]): text(row[2]) for row in moves.rows}
    assert f", {json.dumps(odd_ws)}: {len(HOSTILE)}, " in sources["experiments"]
    (roots,) = tables_under(tables, "workspace-root-overlap")
    assert {json.loads(text(c)) for c in roots.column("location")} == {LONG_ROOT}
    assert mlflow_db.fingerprint() == before


@pytest.mark.postgresql_only
def test_password_is_masked(mlflow_db) -> None:
    """The trust-auth test server accepts any password, so the URI can carry one through the whole run."""
    populate(mlflow_db)
    uri = mlflow_db.url.set(password="s3cr3t|pw`<x>").render_as_string(hide_password=False)
    before = mlflow_db.fingerprint()

    result = migrate(uri, "--dry-run", "--format", "markdown")

    assert result.exit_code == ExitStatus.OK, result.output
    assert "s3cr3t" not in result.stdout + result.stderr
    assert "postgres:&#42;&#42;&#42;@127.0.0.1" in result.stdout  # masked, and the mask escaped like any text
    assert mlflow_db.fingerprint() == before


def test_markdown_is_refused_without_dry_run(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    before = mlflow_db.fingerprint()

    applied = migrate(mlflow_db.uri, "-y", "--format", "markdown")
    restored = run_cli(
        "db", "restore-workspaces", mlflow_db.uri, "--journal", str(tmp_path / "j.jsonl"), "-y", "--format", "markdown"
    )

    for result in (applied, restored):
        assert result.exit_code == ExitStatus.USAGE, result.output
        assert result.stdout == "" and "--format markdown reports a --dry-run" in result.stderr
    assert mlflow_db.fingerprint() == before


# --- restore-workspaces --dry-run ----------------------------------------------------------------------------


def test_restore_dry_run_markdown_matches_json(mlflow_db, tmp_path) -> None:
    populate(mlflow_db)
    journal = tmp_path / "move.jsonl"
    assert migrate(mlflow_db.uri, "-y", "--journal", str(journal), "--prune-workspaces").exit_code == 0
    args = ("db", "restore-workspaces", mlflow_db.uri, "--journal", str(journal), "--dry-run")
    clean = run_cli(*args, "--format", "markdown")
    assert clean.exit_code == ExitStatus.OK and verdict(clean.stdout) == ("PASS", 0), clean.output
    assert "Restore conflicts" not in clean.stdout and 'catalog row "team-a" re-created' in html.unescape(clean.stdout)
    # Two rows take journaled names in their old workspace: the restore is blocked by them.
    with mlflow_db.engine.begin() as conn, SampleData(conn) as data:
        data.workspace("team-a")
        data.experiment("team-a", "team-a-exp-0", experiment_id=2_000_001)
        data.experiment("team-a", "team-a-exp-1", experiment_id=2_000_002)
    before = mlflow_db.fingerprint()

    result = run_cli(*args, "--format", "markdown")
    doc = json_doc(run_cli(*args, "--format", "json"))

    assert result.exit_code == ExitStatus.CONFLICTS == doc["exit_code"], result.output
    assert verdict(result.stdout) == ("BLOCKED", 1)
    tables = parse_tables(result.stdout)
    (moves,) = tables_under(tables, "Rows to move back")
    by_table = {text(r[0]).strip("*"): count(r[1]) for r in moves.rows}
    assert by_table == {t["table"]: t["rows_to_move"] for t in doc["tables"] if t["rows_to_move"]} | {
        "total": doc["total_rows_to_move"]
    }
    (conflicts,) = tables_under(tables, "Restore conflicts")
    assert len(conflicts.rows) == doc["conflict_count"] == 2
    for cells, c in zip(conflicts.rows, doc["conflicts"], strict=True):
        assert [text(x) for x in cells[:2]] == [c["table"], c["reason"]]
        assert text(cells[2]) == ", ".join(f"{k}={json.dumps(v)}" for k, v in c["key"].items())
        assert text(cells[3]) == c["rows"][0]["workspace"]
    assert mlflow_db.fingerprint() == before


# --- db preflight --------------------------------------------------------------------------------------------


def test_preflight_markdown_matches_json(mlflow_db) -> None:
    def fill(data) -> None:
        data.workspace("Bad|Name<b>")  # invalid: a failed check whose example holds the hostile name
        data.experiment("team-a", "x", artifact_location="s3://root/workspaces/team-b/1")

    populate(mlflow_db, fill)
    before = mlflow_db.fingerprint()
    args = ("db", "preflight", mlflow_db.uri, "--for", "enable", "--default-artifact-root", "s3://root")

    result = run_cli(*args, "--format", "markdown")
    doc = json_doc(run_cli(*args, "--format", "json"))

    assert result.exit_code == ExitStatus.CONFLICTS == doc["exit_code"], result.output
    assert verdict(result.stdout) == ("FAIL", 1)
    assert_only_our_markup(result.stdout)
    (checks,) = parse_tables(result.stdout)
    assert [
        (text(r[0]).lower(), text(r[1]), text(r[2]), text(r[3]).split("\n") if r[3] else []) for r in checks.rows
    ] == [(c["status"], c["name"], c["reason"], c["details"]) for c in doc["checks"]]
    assert any('"Bad|Name<b>"' in d for c in doc["checks"] for d in c["details"])
    assert mlflow_db.fingerprint() == before


def test_an_error_leaves_stdout_empty(tmp_path) -> None:
    """The error goes to stderr as in text mode; a CI summary gets no half report (the recipes say why)."""
    uri = f"sqlite:///{tmp_path}/nope.db"
    for args in (("db", "migrate-to-default-workspace", uri, "--dry-run"), ("db", "preflight", uri)):
        result = run_cli(*args, "--format", "markdown")
        assert result.exit_code == ExitStatus.DATABASE_ERROR, result.output
        assert result.stdout == "" and result.stderr.startswith("Error: ")
    assert not (tmp_path / "nope.db").exists()
