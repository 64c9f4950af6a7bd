"""`--rename-conflicts TEMPLATE`: how a colliding row's new name is made.

Shared by every command that renames (tracking conflicts, auth roles).  A template holds literal text and the
placeholders ``{name}`` (the key's name), ``{workspace}`` (the row's source workspace) and ``{n}`` (a counter,
from 1, raised until the result is unique).  Without ``{n}`` a template yields exactly one candidate; when that
is taken or too long, the caller reports the row instead of inventing a name.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable, Collection
from dataclasses import dataclass

from mlflow_ws_admin.common.errors import UsageError

PLACEHOLDERS = ("name", "workspace", "n")


@dataclass(frozen=True)
class RenameTemplate:
    text: str

    @classmethod
    def parse(cls, text: str) -> RenameTemplate:
        """Check the template's syntax once, at the command line (exit 2 on a bad one)."""
        try:
            fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text) if f is not None]
        except ValueError as exc:
            raise UsageError(f"--rename-conflicts {text!r}: {exc} (write {{{{ and }}}} for literal braces)") from None
        for field_name, spec, conversion in fields:
            if field_name not in PLACEHOLDERS:
                known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                raise UsageError(f"--rename-conflicts {text!r}: unknown placeholder {{{field_name}}}; use {known}")
            if spec or conversion:
                raise UsageError(f"--rename-conflicts {text!r}: placeholders take no format spec or conversion")
        if not fields:
            raise UsageError(
                f"--rename-conflicts {text!r}: the template has no placeholder, so every renamed row would get "
                "the same name; use {name}, {workspace} or {n}"
            )
        return cls(text)

    @functools.cached_property
    def counts(self) -> bool:
        return "{n}" in self.text.replace("{{", "").replace("}}", "")

    def render(self, name: str, workspace: str, n: int = 1) -> str:
        return self.text.format(name=name, workspace=workspace, n=n)

    def unique_name(
        self,
        name: str,
        workspace: str,
        taken: Collection[str],
        *,
        fold: Callable[[str], str] = lambda s: s,
        max_length: int | None = None,
    ) -> tuple[str | None, str | None]:
        """The first candidate whose folded form is not in ``taken`` (already folded) and that fits.

        Returns ``(new_name, None)`` or ``(None, why)``.  ``fold`` is the key's comparison (``str.casefold``
        under a case-insensitive collation), so uniqueness is judged the way the database's unique index will.
        """
        # Each taken name can block at most one value of n, so len(taken) + 1 tries always suffice.
        tries = len(taken) + 1 if self.counts else 1
        for n in range(1, tries + 1):
            candidate = self.render(name, workspace, n)
            if max_length is not None and len(candidate) > max_length:
                return None, f"{candidate!r} is {len(candidate)} characters; the column holds {max_length}"
            if not candidate.strip():
                return None, "the template gives an empty name"
            if fold(candidate) not in taken:
                return candidate, None
        return None, f"{self.render(name, workspace)!r} is already taken; add {{n}} to the template"
