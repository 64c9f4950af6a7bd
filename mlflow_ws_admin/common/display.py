"""How user data looks in every report (text, preflight, artifact findings): one rule, no renderer needed."""

from __future__ import annotations

import json
import re
from typing import Any

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def quoted(value: Any) -> str:
    """A value as a reader should see it: strings JSON-quoted (escapes visible), NULL as null."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def workspace_order(ws: str | None) -> tuple[bool, str]:
    """A sort key: workspaces by name, a NULL workspace last."""
    return (ws is None, ws or "")


def workspace_label(ws: str | None) -> str:
    """Plain for ordinary names; JSON-quoted when empty or holding anything a reader could misread
    (spaces, quotes, newlines, `:`/`;` separators), so each group stays one unambiguous line."""
    if ws is None:
        return "(null)"
    return ws if _PLAIN_NAME.fullmatch(ws) else quoted(ws)
