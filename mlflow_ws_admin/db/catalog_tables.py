"""What the MySQL/MariaDB and PostgreSQL catalog readers (``mysql_catalog``, ``postgresql_catalog``) hand
``db.schema.reflect_schema``.  Its own module: ``db.schema`` imports the readers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tables:
    """Every table's name, columns ({name, nullable, length}) and foreign keys, as the Inspector shapes them."""

    names: list[str]
    columns: dict[str, list[dict]]
    foreign_keys: dict[str, list[dict]]
