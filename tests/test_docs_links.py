"""The README and docs/ link to each other: every relative link must reach a file, and every #anchor a heading
of that file (GitHub's slug rules). The README stays a short front door."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import ROOT

README_MAX_LINES = 250

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]


def without_code(text: str) -> str:
    """The text with fenced blocks and code spans blanked out (a `[a](b)` in code is not a link)."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return CODE_SPAN.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (link targets and markup dropped), lower-cased, every character
    but letters, digits, spaces, `-` and `_` dropped, spaces turned into `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor GitHub makes for the headings of `path`; a repeated slug gets -1, -2, ..."""
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(FENCE.sub("", path.read_text())):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    broken = []
    for match in LINK.finditer(without_code(path.read_text())):
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{path.relative_to(root)}: {target}: no such file")
        elif anchor and dest.is_file() and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{path.relative_to(root)}: {target}: no heading #{anchor} in {dest.relative_to(root)}")
    return broken


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert path.exists()
    assert broken_links(path) == []


def test_readme_lists_every_docs_page() -> None:
    assert len(documents()) > 3
    readme = (ROOT / "README.md").read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, f"README.md does not point at docs/{page.name}"


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


def test_slugs_follow_github() -> None:
    assert slug("Journal and undo: `db restore-workspaces`") == "journal-and-undo-db-restore-workspaces"
    assert slug("Moving resources between workspaces: `db move-resources`") == (
        "moving-resources-between-workspaces-db-move-resources"
    )
    assert slug("CI: preflight on every change") == "ci-preflight-on-every-change"
    assert slug("What can only be widened or dropped, and why") == "what-can-only-be-widened-or-dropped-and-why"
    assert slug("snake_case and 3.17.2") == "snake_case-and-3172"


def test_the_checker_catches_broken_links(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Part\n\n## Part\n\n"
        "[ok](#part) [ok](#part-1) [bad](#part-2) [gone](missing.md) [here](page.md#title) [bad](page.md#nope)\n"
        "`[in code](nowhere.md)`\n\n```\n[fenced](nowhere.md)\n```\n[web](https://example.com/#x)\n"
    )
    assert broken_links(page, tmp_path) == [
        "page.md: #part-2: no heading #part-2 in page.md",
        "page.md: missing.md: no such file",
        "page.md: page.md#nope: no heading #nope in page.md",
    ]
