"""The `--rename-conflicts` template on its own: syntax checks and the unique-name search (no database)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlflow_ws_admin.common.errors import UsageError
from mlflow_ws_admin.engine.rename_template import RenameTemplate


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{name} ({team})", "unknown placeholder {team}"),
        ("{name", "expected '}'"),
        ("{name!r}", "no format spec or conversion"),
        ("{n:03}", "no format spec or conversion"),
        ("renamed", "has no placeholder"),
    ],
)
def test_bad_templates_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("{", r"\{")):
        RenameTemplate.parse(text)


def test_render_and_literal_braces() -> None:
    template = RenameTemplate.parse("{{{name}}} ({workspace}) #{n}")
    assert template.render("exp", "team-a", 2) == "{exp} (team-a) #2"
    assert template.counts


def test_without_a_counter_a_taken_name_is_refused_with_a_reason() -> None:
    template = RenameTemplate.parse("{name} ({workspace})")
    assert not template.counts
    assert template.unique_name("exp", "a", {"exp (b)"}) == ("exp (a)", None)
    new, why = template.unique_name("exp", "a", {"exp (a)"})
    assert new is None and "already taken" in why


def test_case_folding_and_length_limits() -> None:
    template = RenameTemplate.parse("{name}-{n}")
    assert template.unique_name("Exp", "a", {"exp-1"}, fold=str.casefold) == ("Exp-2", None)
    assert template.unique_name("Exp", "a", {"exp-1"}) == ("Exp-1", None)
    new, why = template.unique_name("x" * 10, "a", set(), max_length=10)
    assert new is None and "12 characters; the column holds 10" in why


@given(
    names=st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=30),
    taken=st.sets(st.text(max_size=6), max_size=30),
)
def test_a_counting_template_always_finds_a_fresh_name(names: list[str], taken: set[str]) -> None:
    template = RenameTemplate.parse("{name}~{n}")
    used = {t.casefold() for t in taken}
    for name in names:
        new, why = template.unique_name(name, "ws", used, fold=str.casefold)
        assert why is None and new.casefold() not in used and new.startswith(name)
        used.add(new.casefold())
