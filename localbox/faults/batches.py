"""The BatchService's fault hooks, over the server's FaultBook: which finish_batch entries fail (with
too_many_write_operations or not_closed), and what becomes of a launched job (stuck, internal_error)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from localbox.faults.calls import CURRENT
from localbox.faults.model import JOB_ROUTES, FaultBook
from localbox.services.accounts import Caller
from localbox.services.jobs import JobFate

# Per-entry kinds, with the UploadSessionFinishError tag each makes an entry fail with.
ENTRY_KINDS = {"entry_too_many_write_operations": "too_many_write_operations", "not_closed": "not_closed"}


class BatchFaultHooks:
    def __init__(self, book: FaultBook) -> None:
        self.book = book

    def failing_entries(self, caller: Caller, kind: str, paths: Sequence[str]) -> dict[int, str]:
        if not self.book:
            return {}
        route = JOB_ROUTES[kind][0]
        who = (caller.account.account_id, caller.account.email)
        failing: dict[int, str] = {}
        for i, path in enumerate(paths):
            for rule in self.book.fire(ENTRY_KINDS, route, who, [path]):
                if i not in failing:  # the first rule added wins an entry that several hit
                    failing[i] = ENTRY_KINDS[rule.kind]
                record = CURRENT.get()
                if record is not None:
                    record.note(rule.id, rule.kind, f"entry {i}")
        return failing

    def job_fate(self, caller: Caller, kind: str) -> JobFate | None:
        if not self.book or kind not in JOB_ROUTES:
            return None
        fired = self.book.fire(("job_stuck", "job_internal_error"), JOB_ROUTES[kind][0],
                               (caller.account.account_id, caller.account.email))
        if not fired:
            return None
        fate = JobFate()
        record = CURRENT.get()
        for rule in fired:
            if record is not None:
                record.note(rule.id, rule.kind)
            if rule.kind == "job_stuck":
                seconds = rule.params["seconds"]
                fate = JobFate(stuck_until=None if seconds is None else time.time() + seconds,
                               stuck_forever=seconds is None, internal_error=fate.internal_error,
                               committed=fate.committed)
            else:
                fate = JobFate(stuck_until=fate.stuck_until, stuck_forever=fate.stuck_forever,
                               internal_error=True, committed=bool(rule.params["committed"]))
        return fate
