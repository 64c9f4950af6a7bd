"""A resolved database location: what the user's URI names, how to show it, and how plan files and journals
recognise the same database again.  Knows nothing of drivers (``connect``) or dialects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from mlflow_ws_admin.common.errors import MASK


@dataclass(frozen=True)
class Target:
    """A resolved database location: the URL to connect with and how to show it."""

    url: URL
    backend: str  # sqlite | postgresql | mysql
    sqlite_path: Path | None = None

    @property
    def display(self) -> str:
        """The URL with its password masked: safe to print."""
        return self.url.render_as_string(hide_password=True).replace("***", MASK)

    @property
    def password(self) -> str | None:
        return self.url.password

    @property
    def identity(self) -> dict[str, Any]:
        """What names one database, without credentials: the SQLite file's absolute path, or host/port/name.
        Plan files and journals are refused on any other database."""
        if self.sqlite_path is not None:
            return {"dialect": "sqlite", "path": str(self.sqlite_path.expanduser().resolve())}
        return {
            "dialect": self.backend,
            "host": self.url.host or "",
            "port": self.url.port,
            "database": self.url.database,
        }
