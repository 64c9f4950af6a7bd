"""Render a preflight result: one line per check (PASS / WARN / FAIL and its reason), then a summary.

Reasons and details may carry user data (names, locations), so everything is printed as rich ``Text``.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from mlflow_ws_admin.findings.checks import FAIL, PASS, WARN, PreflightResult

_STYLE = {PASS: "green", WARN: "yellow", FAIL: "bold red"}


def render_preflight(result: PreflightResult, console: Console) -> None:
    console.print(
        Text(
            f"Workspace preflight for turning workspaces {'off' if result.direction == 'disable' else 'on'} (read-only)",
            style="bold",
        )
    )
    console.print(Text(f"Database: {result.database}"))
    console.print(Text(f"Artifact root: {result.default_artifact_root or '(not given)'}"))
    console.print()
    width = max(len(c.name) for c in result.checks)
    for check in result.checks:
        line = Text(f"{check.status.upper():<4}", style=_STYLE[check.status])
        line.append(f"  {check.name:<{width}}  {check.reason}")
        console.print(line)
        for detail in check.details:
            console.print(Text(f"      {detail}"))
    console.print()
    summary = f"{result.count(PASS)} passed, {result.count(WARN)} warning(s), {result.count(FAIL)} failed: " + (
        "fix the failed checks first." if result.failed else "nothing blocks."
    )
    console.print(Text(summary, style="bold red" if result.failed else "bold"))
