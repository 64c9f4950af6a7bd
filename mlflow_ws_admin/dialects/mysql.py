"""MySQL/MariaDB: LOCK TABLES inside the transaction, and FK checks switched off for non-cascading FKs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, column, exists, func, select, table
from sqlalchemy.engine import Connection

from mlflow_ws_admin.errors import VerificationFailed
from mlflow_ws_admin.schema import ForeignKey

CASCADES_ON_UPDATE = True


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def lock_workspace_tables(conn: Connection, tables: Sequence[str], timeout_s: float) -> None:
    """WRITE locks block other sessions' reads and writes of these tables until UNLOCK TABLES, which we
    issue only after COMMIT/ROLLBACK (the documented way to combine LOCK TABLES with InnoDB).

    While the locks are held, every query may reference each table only by its own name (no aliases)."""
    seconds = max(1, int(timeout_s))
    conn.exec_driver_sql(f"SET SESSION lock_wait_timeout = {seconds}")
    conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {seconds}")
    conn.exec_driver_sql("LOCK TABLES " + ", ".join(f"{_quote(conn, t)} WRITE" for t in tables))


def release_locks(conn: Connection) -> None:
    conn.exec_driver_sql("UNLOCK TABLES")


def suspend_foreign_keys(conn: Connection, fks: Sequence[ForeignKey]) -> bool:
    """MySQL has no transactional DDL, so switch FK checks off for this session instead; apply verifies
    the suspended FKs itself before commit.  With checks off InnoDB does not cascade either."""
    if not fks:
        return True
    conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
    return False


def restore_foreign_keys(conn: Connection, fks: Sequence[ForeignKey]) -> None:
    """Switch checks back on, after proving what MySQL will not re-check: every suspended FK resolves."""
    if not fks:
        return
    broken = [f"{fk.child} -> {fk.parent}: {n}" for fk in fks if (n := conn.execute(_dangling(fk)).scalar_one())]
    if broken:
        raise VerificationFailed(f"foreign keys would dangle after the move ({'; '.join(broken)}); rolled back")
    conn.exec_driver_sql("SET SESSION foreign_key_checks = 1")


def _dangling(fk: ForeignKey) -> Select:
    """Child rows whose (non-NULL) FK columns match no parent row.  Tables by name only: LOCK TABLES."""
    child = table(fk.child, *(column(c) for c in fk.child_columns))
    parent = table(fk.parent, *(column(c) for c in fk.parent_columns))
    match = exists().where(
        *(parent.c[p] == child.c[c] for c, p in zip(fk.child_columns, fk.parent_columns, strict=True))
    )
    return select(func.count()).select_from(child).where(*(child.c[c].is_not(None) for c in fk.child_columns), ~match)
