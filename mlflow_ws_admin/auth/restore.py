"""`auth restore`: put back the RBAC rows an auth migration's journal recorded, on the transaction core.

Refused (exit 2) unless the journal is complete and was written for this database.  The rows must still be
exactly what the migration wrote (its ``after`` rows): anything changed since is a conflict (exit 1), because
restoring over it would silently undo someone's later grant.  Then, in one transaction, the three tables get
their ``before`` rows back, ids included, and are read back to check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection, Engine

from mlflow_ws_admin.auth.apply import JOURNALED, AuthDrifted, lock_scope
from mlflow_ws_admin.auth.state import auth_signature
from mlflow_ws_admin.common.errors import ConflictsAppeared
from mlflow_ws_admin.db.transaction import locked_transaction
from mlflow_ws_admin.engine.journal import JournalRefused, check_journal, read_records

Rows = Mapping[str, Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class AuthJournal:
    before: Rows
    after: Rows

    def count(self, when: str) -> int:
        return sum(len(rows) for rows in getattr(self, when).values())


def read_auth_journal(path: str | Path, identity: Mapping[str, Any]) -> AuthJournal:
    summary = check_journal(path, identity, auth_signature())
    if summary.header.get("operation") != "auth-migrate":
        raise JournalRefused(f"journal {path} is not an auth migration's journal; refusing it")
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {"before": {}, "after": {}}
    for record in read_records(path):
        if record.get("type") != "auth_row":
            continue
        when, table, row = record.get("when"), record.get("table"), record.get("row")
        if when not in rows or not isinstance(table, str) or not isinstance(row, dict):
            raise JournalRefused(f"journal {path} is malformed: an auth_row record lacks its fields; refusing it")
        rows[when].setdefault(table, []).append(row)
    return AuthJournal(rows["before"], rows["after"])


def current_rows(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """The three tables' rows as the journal holds them (JSON values), by id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for t in JOURNALED:
        rows = [dict(r) for r in conn.execute(select(t).order_by(t.c.id)).mappings()]
        out[t.name] = json.loads(json.dumps(rows, default=str))
    return out


def _normalized(rows: Rows) -> dict[str, list[dict[str, Any]]]:
    return {t.name: sorted((dict(r) for r in rows.get(t.name, ())), key=lambda r: r["id"]) for t in JOURNALED}


def check_unchanged(conn: Connection, journal: AuthJournal) -> None:
    if _normalized(current_rows(conn)) != _normalized(journal.after):
        raise ConflictsAppeared(
            "the auth database's roles, grants or assignments changed since the migration wrote them; restoring "
            "would undo those changes, so nothing was changed"
        )


def apply_auth_restore(
    engine: Engine, journal: AuthJournal, dialect: str, *, lock_timeout_s: float, ignore_other_sessions: bool = False
) -> int:
    with locked_transaction(
        engine,
        lock_scope(dialect),
        suspendable=(),
        lock_timeout_s=lock_timeout_s,
        journal=None,
        doing="restoring the auth database (rolled back: nothing was changed)",
        ignore_other_sessions=ignore_other_sessions,
    ) as tx:
        check_unchanged(tx.conn, journal)
        for t in reversed(JOURNALED):  # children first
            tx.conn.execute(delete(t))
        for t in JOURNALED:
            rows = journal.before.get(t.name, [])
            if rows:
                tx.conn.execute(insert(t), [dict(r) for r in rows])
        if _normalized(current_rows(tx.conn)) != _normalized(journal.before):
            raise AuthDrifted("verification failed: the restored rows differ from the journal's; rolled back")
    return journal.count("before")
