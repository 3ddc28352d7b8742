"""Per-account caps on open upload sessions and pending batch jobs.

Dropbox documents no such limit and no error for it; the closest documented answer is a 429
`too_many_requests` with Retry-After (README, "Behaviour where Dropbox is silent"), which every SDK
already backs off from.  Each check runs in the transaction that adds the session or job, so
concurrent starts cannot overshoot the cap.
"""

from __future__ import annotations

from localbox.domain.errors import RateLimited
from localbox.stores.base import MetadataTx

DEFAULT_MAX_OPEN_SESSIONS = 10_000
DEFAULT_MAX_PENDING_JOBS = 1_000
# Sessions free up only when the client commits (or they expire): give it time to do so.
SESSIONS_RETRY_AFTER = 10
# A pending job is usually done within milliseconds.
JOBS_RETRY_AFTER = 1


def check_open_sessions(tx: MetadataTx, account_id: str, now: float, adding: int, limit: int) -> None:
    """Refuse `adding` more sessions when the account would have more than `limit` open (0: no limit)."""
    if limit and tx.count_open_sessions(account_id, now) + adding > limit:
        raise RateLimited("too_many_requests", SESSIONS_RETRY_AFTER)


def check_pending_jobs(tx: MetadataTx, account_id: str, limit: int) -> None:
    """Refuse one more job when the account already has `limit` pending (0: no limit)."""
    if limit and tx.count_pending_jobs(account_id) >= limit:
        raise RateLimited("too_many_requests", JOBS_RETRY_AFTER)
