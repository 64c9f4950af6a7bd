"""The few places where SQLite, PostgreSQL and MySQL/MariaDB really differ, one small module each."""

from __future__ import annotations

from types import ModuleType


def for_backend(backend: str) -> ModuleType:
    """The dialect module for 'sqlite', 'postgresql' or 'mysql'."""
    if backend == "sqlite":
        from mlflow_ws_admin.dialects import sqlite as module
    elif backend == "postgresql":
        from mlflow_ws_admin.dialects import postgresql as module
    elif backend == "mysql":
        from mlflow_ws_admin.dialects import mysql as module
    else:
        raise ValueError(f"unsupported backend {backend!r}")
    return module
