"""bench.py --check's comparison (bench/thresholds.py): no timing here, only the verdicts on given figures and
the limits the repository keeps.  The speed itself is measured by `python bench/bench.py --check`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _thresholds():
    spec = importlib.util.spec_from_file_location("mwa_bench_thresholds", BENCH / "thresholds.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


th = _thresholds()


def test_the_repository_keeps_the_issue_goals() -> None:
    limits = th.load_limits()
    assert limits == {
        ("apply / raw", "sqlite"): 1.10,
        ("apply / raw", "postgresql"): 1.05,
        ("apply / raw", "mysql"): 1.10,
        ("dry run 60k, text (s)", "sqlite"): 1.0,
        ("dry run 60k, --format json (s)", "sqlite"): 1.5,
    }


def test_a_figure_over_its_limit_is_a_regression_and_at_it_is_not() -> None:
    limits = {("apply / raw", "postgresql"): 1.05, ("dry run 60k, text (s)", "sqlite"): 1.0}
    at_limit = th.compare({("apply / raw", "postgresql"): 1.05, ("dry run 60k, text (s)", "sqlite"): 0.4}, limits)
    assert [v.status for v in at_limit] == ["ok", "ok"]
    assert not th.regressed(at_limit)
    over = th.compare({("apply / raw", "postgresql"): 1.051, ("dry run 60k, text (s)", "sqlite"): 0.4}, limits)
    assert [v.status for v in over] == ["REGRESSION", "ok"]
    assert th.regressed(over)


def test_unmeasured_figures_are_skipped_not_failed_and_unlimited_ones_not_judged() -> None:
    limits = {("apply / raw", "sqlite"): 1.1, ("apply / raw", "mysql"): 1.1}
    verdicts = th.compare({("apply / raw", "sqlite"): 1.02, ("something else", "sqlite"): 99.0}, limits)
    assert [(v.backend, v.status) for v in verdicts] == [("sqlite", "ok"), ("mysql", "skipped")]
    assert not th.regressed(verdicts)


def test_the_table_shows_every_verdict() -> None:
    limits = {("apply / raw", "sqlite"): 1.1, ("apply / raw", "mysql"): 1.1}
    out = th.table(th.compare({("apply / raw", "sqlite"): 1.234}, limits))
    lines = out.splitlines()
    assert lines[0].split() == ["figure", "backend", "measured", "limit", "status"]
    assert "1.234" in lines[2] and lines[2].rstrip().endswith("REGRESSION")
    assert lines[3].split()[-3:] == ["-", "1.1", "skipped"]


@pytest.mark.parametrize("bad", ["0", "-1.0", '"fast"', "true"])
def test_a_limit_that_is_not_a_positive_number_is_refused(tmp_path, bad) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text(f'["apply / raw"]\nsqlite = {bad}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="not a positive number"):
        th.load_limits(path)
