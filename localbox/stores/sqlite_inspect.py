"""InspectTx for the SQLite metadata store (#9): read-only listings over the existing tables."""

from __future__ import annotations

import sqlite3

from localbox.domain.models import Account, SessionState, SessionType, UploadSession
from localbox.domain.teams import Team
from localbox.stores.base import JobRow

_JOB_ROW = "job_id, account_id, kind, state, created, completed"


class InspectTxMixin:
    db: sqlite3.Connection

    def list_accounts(self, limit: int) -> list[Account]:
        rows = self.db.execute("SELECT account_id, email, given_name, surname, root_namespace_id, created, quota "
                               "FROM accounts ORDER BY email LIMIT ?", (limit,))
        return [Account(*row) for row in rows]

    def list_teams(self, limit: int) -> list[Team]:
        rows = self.db.execute("SELECT team_id, name, root_namespace_id, created, transport_limit FROM teams "
                               "ORDER BY name LIMIT ?", (limit,))
        return [Team(*row) for row in rows]

    def list_open_sessions(self, limit: int) -> list[UploadSession]:
        rows = self.db.execute("SELECT session_id, account_id, session_type, offset, closed, created, expires, state "
                               "FROM sessions WHERE state=? ORDER BY created DESC LIMIT ?",
                               (SessionState.OPEN.value, limit))
        return [UploadSession(r[0], r[1], SessionType(r[2]), r[3], bool(r[4]), r[5], r[6], [], SessionState(r[7]))
                for r in rows]

    def list_job_rows(self, limit: int, account_id: str | None = None) -> list[JobRow]:
        if account_id is None:
            rows = self.db.execute(f"SELECT {_JOB_ROW} FROM jobs ORDER BY created DESC LIMIT ?", (limit,))
        else:
            rows = self.db.execute(f"SELECT {_JOB_ROW} FROM jobs WHERE account_id=? ORDER BY created DESC LIMIT ?",
                                   (account_id, limit))
        return [JobRow(*row) for row in rows]

    def jobs_completed_after(self, after: float, limit: int) -> list[JobRow]:
        rows = self.db.execute(f"SELECT {_JOB_ROW} FROM jobs WHERE completed > ? ORDER BY completed LIMIT ?",
                               (after, limit))
        return [JobRow(*row) for row in rows]
