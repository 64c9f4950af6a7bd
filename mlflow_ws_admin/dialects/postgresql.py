"""PostgreSQL: table locks with a lock_timeout, and transactional DDL for non-cascading workspace FKs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Connection

from mlflow_ws_admin.schema import ForeignKey

CASCADES_ON_UPDATE = True


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def lock_workspace_tables(conn: Connection, tables: Sequence[str], timeout_s: float) -> None:
    """SHARE ROW EXCLUSIVE blocks concurrent INSERT/UPDATE/DELETE but not readers, until commit."""
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{max(1, int(timeout_s * 1000))}ms'")
    conn.exec_driver_sql(f"LOCK TABLE {', '.join(_quote(conn, t) for t in tables)} IN SHARE ROW EXCLUSIVE MODE")


def release_locks(conn: Connection) -> None:
    """Table locks end with the transaction."""


def suspend_foreign_keys(conn: Connection, fks: Sequence[ForeignKey]) -> bool:
    """Drop the FKs that would block moving parent and child (NO ACTION on a workspace column).  DDL is
    transactional here, so a crash or rollback restores them.  Other FKs keep cascading."""
    for fk in fks:
        conn.exec_driver_sql(f"ALTER TABLE {_quote(conn, fk.child)} DROP CONSTRAINT {_quote(conn, fk.name)}")
    return True


def restore_foreign_keys(conn: Connection, fks: Sequence[ForeignKey]) -> None:
    """Re-create the dropped FKs exactly; PostgreSQL validates every row as it adds them."""
    for fk in fks:
        cols = ", ".join(_quote(conn, c) for c in fk.child_columns)
        parent_cols = ", ".join(_quote(conn, c) for c in fk.parent_columns)
        ddl = (
            f"ALTER TABLE {_quote(conn, fk.child)} ADD CONSTRAINT {_quote(conn, fk.name)} "
            f"FOREIGN KEY ({cols}) REFERENCES {_quote(conn, fk.parent)} ({parent_cols})"
        )
        if fk.on_update:
            ddl += f" ON UPDATE {fk.on_update}"
        if fk.on_delete:
            ddl += f" ON DELETE {fk.on_delete}"
        if fk.deferrable:
            ddl += f" DEFERRABLE INITIALLY {fk.initially or 'IMMEDIATE'}"
        conn.exec_driver_sql(ddl)
