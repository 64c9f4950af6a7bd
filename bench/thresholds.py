"""The regression guard of ``bench.py --check``: measured figures against the limits in thresholds.toml.

Kept apart from bench.py (no database, no subprocess) so that tests/test_bench_thresholds.py can check the
comparison itself without timing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser from PyPI
    import tomli as tomllib

THRESHOLDS = Path(__file__).resolve().with_name("thresholds.toml")

#: (figure, backend) -> the most it may measure
Limits = dict[tuple[str, str], float]


@dataclass(frozen=True)
class Verdict:
    figure: str
    backend: str
    limit: float
    measured: float | None  # None: not measured in this run (backend or scenario not asked for)

    @property
    def status(self) -> str:
        if self.measured is None:
            return "skipped"
        return "ok" if self.measured <= self.limit else "REGRESSION"


def load_limits(path: Path = THRESHOLDS) -> Limits:
    """thresholds.toml as (figure, backend) -> limit; a value that is not a positive number is refused."""
    with path.open("rb") as f:
        doc = tomllib.load(f)
    limits: Limits = {}
    for figure, per_backend in doc.items():
        if not isinstance(per_backend, dict):
            raise ValueError(f"{path.name}: [{figure}] must be a table of backend = limit")
        for backend, limit in per_backend.items():
            if isinstance(limit, bool) or not isinstance(limit, int | float) or limit <= 0:
                raise ValueError(f"{path.name}: [{figure}] {backend} = {limit!r} is not a positive number")
            limits[(figure, backend)] = float(limit)
    return limits


def compare(measured: dict[tuple[str, str], float], limits: Limits) -> list[Verdict]:
    """One verdict per limit, in the file's order; figures without a limit are not judged."""
    return [
        Verdict(figure, backend, limit, measured.get((figure, backend))) for (figure, backend), limit in limits.items()
    ]


def regressed(verdicts: list[Verdict]) -> bool:
    return any(v.status == "REGRESSION" for v in verdicts)


def table(verdicts: list[Verdict]) -> str:
    """A plain-text table: figure, backend, measured, limit, status."""
    rows = [("figure", "backend", "measured", "limit", "status")]
    for v in verdicts:
        shown = "-" if v.measured is None else f"{v.measured:.3f}"
        rows.append((v.figure, v.backend, shown, f"{v.limit:g}", v.status))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
