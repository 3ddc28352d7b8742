"""Leases of the SQLite metadata store (MetadataTx's session and job leases, stores/base.py).

One SQLite file serves one node, so these never contend across machines; they exist so that the
services run one code path on every backend (PostgreSQL's take row locks, stores/postgres.py)."""

from __future__ import annotations

import sqlite3
from typing import Any

from localbox.domain.models import Job, JobState

# The oldest runnable job: pending, not held back, not leased by a live owner, and first among the
# runnable pending jobs of its account (each account's batches commit in arrival order).
CLAIMABLE = """
SELECT job_id FROM jobs j
WHERE state = 'pending' AND (run_after IS NULL OR run_after <= :now)
  AND (owner IS NULL OR lease_until < :now)
  AND NOT EXISTS (
    SELECT 1 FROM jobs k WHERE k.account_id = j.account_id AND k.state = 'pending'
      AND (k.run_after IS NULL OR k.run_after <= :now)
      AND (k.created < j.created OR (k.created = j.created AND k.job_id < j.job_id)))
ORDER BY created, job_id LIMIT 1
"""

PENDING_BEFORE = """
SELECT 1 FROM jobs WHERE account_id = :account AND state = 'pending'
  AND (run_after IS NULL OR run_after <= :now) AND created <= :created LIMIT 1
"""


class LeaseTxMixin:
    db: sqlite3.Connection

    def _job_row(self, job_id: str) -> Any:
        return self.db.execute("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()

    def lock_session(self, session_id: str, owner: str, now: float, until: float) -> bool:
        cur = self.db.execute(
            "UPDATE sessions SET lock_owner=?, lock_until=? WHERE session_id=? "
            "AND (lock_owner IS NULL OR lock_owner=? OR lock_until < ?)", (owner, until, session_id, owner, now))
        return cur.rowcount == 1

    def unlock_session(self, session_id: str, owner: str) -> None:
        self.db.execute("UPDATE sessions SET lock_owner=NULL, lock_until=NULL WHERE session_id=? AND lock_owner=?",
                        (session_id, owner))

    def claim_job(self, owner: str, now: float, until: float) -> Job | None:
        row = self.db.execute(CLAIMABLE, {"now": now}).fetchone()
        if row is None:
            return None
        self.db.execute("UPDATE jobs SET owner=?, lease_until=? WHERE job_id=?", (owner, until, row[0]))
        return self._lease_job(self._job_row(row[0]))

    @staticmethod
    def _lease_job(row: Any) -> Job:
        return Job(row[0], row[1], row[2], JobState(row[3]), row[4], row[5], row[6], row[7], row[10])

    def renew_job(self, job_id: str, owner: str, until: float) -> bool:
        cur = self.db.execute("UPDATE jobs SET lease_until=? WHERE job_id=? AND owner=? AND state='pending'",
                              (until, job_id, owner))
        return cur.rowcount == 1

    def hold_job(self, job_id: str, owner: str) -> bool:
        row = self.db.execute("SELECT 1 FROM jobs WHERE job_id=? AND owner=? AND state='pending'",
                              (job_id, owner)).fetchone()
        return row is not None

    def release_job(self, job_id: str, owner: str, run_after: float | None) -> None:
        self.db.execute("UPDATE jobs SET owner=NULL, lease_until=NULL, run_after=? WHERE job_id=? AND owner=?",
                        (run_after, job_id, owner))

    def release_leases(self) -> int:
        return self.db.execute("UPDATE jobs SET owner=NULL, lease_until=NULL WHERE owner IS NOT NULL").rowcount

    def pending_before(self, account_id: str, created: float, now: float) -> bool:
        row = self.db.execute(PENDING_BEFORE, {"account": account_id, "created": created, "now": now}).fetchone()
        return row is not None
