"""Preflight checks as values: each is pass, warn or fail with a one-line reason and a few examples.  Built by
``engine.preflight`` (and ``auth.preflight``), rendered by ``report``."""

from __future__ import annotations

from dataclasses import dataclass

PASS, WARN, FAIL = "pass", "warn", "fail"
#: Which way workspaces are being switched: off (this tool's job: the checks of migrate-to-default-workspace),
#: or on (the reserved-path checks MLflow's docs list for enabling them).
DISABLE, ENABLE = "disable", "enable"
#: Examples listed under a warn/fail check; the reason line carries the full count.
MAX_DETAILS = 5


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # PASS | WARN | FAIL
    reason: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreflightResult:
    database: str  # display URL, password masked
    default_artifact_root: str | None  # masked
    checks: tuple[Check, ...]
    direction: str = DISABLE

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def count(self, status: str) -> int:
        return sum(1 for c in self.checks if c.status == status)
