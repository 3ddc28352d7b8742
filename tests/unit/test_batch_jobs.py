"""finish_batch jobs when the store fails: transient failures retry in place (keeping the account's
order); anything else ends the job with internal_error and nothing committed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import localbox.services.jobs as jobs
from localbox.app import build_services, open_backends
from localbox.config import Settings
from localbox.domain.errors import PollFailure, StoreUnavailable
from localbox.domain.models import Entry, SessionType
from localbox.services.accounts import ALL_SCOPES, Caller
from localbox.services.files import CommitSpec
from localbox.services.upload_sessions import Body, FinishEntry

pytestmark = pytest.mark.unit


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _wait(svc: Any, caller: Caller, job_id: str) -> list[Any]:
    for _ in range(400):
        outcomes = await svc.batches.check(caller, job_id)
        if outcomes is not None:
            return list(outcomes)
        await asyncio.sleep(0.01)
    raise AssertionError("job never completed")


def _scenario(tmp_path: Path, fail_with: list[BaseException]) -> tuple[list[Any], list[Any] | str]:
    """Launch two batches; the first commit attempts raise `fail_with` in turn.  Returns the first
    batch's outcomes (or the poll error tag) and the second's outcomes."""
    real = jobs.commit_entries_tx
    failures = list(fail_with)

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop(0)
        return real(*args, **kwargs)

    async def main() -> tuple[list[Any], list[Any] | str]:
        settings = Settings(data_dir=tmp_path)
        backends = open_backends(settings)
        svc = build_services(settings, backends)
        acct = svc.accounts.create_account("jobs@example.com")
        caller = Caller(acct, ALL_SCOPES, acct.root_namespace_id)
        await svc.batches.start()
        try:
            ids = [await svc.sessions.start(caller, close=True, session_type=SessionType.SEQUENTIAL,
                                            content_hash=None, body=Body(_once(b"v%d" % i), 2)) for i in range(2)]
            first = await svc.batches.launch(caller, [FinishEntry(ids[0], 2, CommitSpec("/same", "add"))])
            second = await svc.batches.launch(caller, [FinishEntry(ids[1], 2, CommitSpec("/same", "add",
                                                                                         autorename=True))])
            try:
                result_first: list[Any] | str = await _wait(svc, caller, first)
            except PollFailure as e:
                result_first = e.tags[0]
            return result_first, await _wait(svc, caller, second)  # type: ignore[return-value]
        finally:
            await svc.batches.stop()
            await backends.metadata.close()

    jobs.commit_entries_tx = flaky  # type: ignore[assignment]
    try:
        return asyncio.run(main())  # type: ignore[return-value]
    finally:
        jobs.commit_entries_tx = real


def test_transient_store_failures_are_retried_in_order(tmp_path: Path) -> None:
    first, second = _scenario(tmp_path, [StoreUnavailable("disk busy"), StoreUnavailable("disk busy")])
    assert isinstance(first, list) and isinstance(first[0], Entry) and first[0].name == "same"
    # The second batch waited for the first: it sees /same taken and autorenames.
    assert isinstance(second[0], Entry) and second[0].name == "same (1)"


def test_a_job_that_cannot_run_answers_internal_error(tmp_path: Path) -> None:
    first, second = _scenario(tmp_path, [RuntimeError("bug")])
    assert first == "internal_error"
    # Nothing of the failed job was committed, and the queue went on.
    assert isinstance(second[0], Entry) and second[0].name == "same"


def test_purge_forgets_finished_jobs_past_retention(tmp_path: Path) -> None:
    async def main() -> None:
        settings = Settings(data_dir=tmp_path, job_retention=0.1)
        backends = open_backends(settings)
        svc = build_services(settings, backends)
        acct = svc.accounts.create_account("purge@example.com")
        caller = Caller(acct, ALL_SCOPES, acct.root_namespace_id)
        await svc.batches.start()
        try:
            sid = await svc.sessions.start(caller, close=True, session_type=SessionType.SEQUENTIAL,
                                           content_hash=None, body=Body(_once(b"x"), 1))
            job = await svc.batches.launch(caller, [FinishEntry(sid, 1, CommitSpec("/p", "add"))])
            await _wait(svc, caller, job)
            assert await svc.batches.purge_expired() == 0  # still within retention
            await asyncio.sleep(0.2)
            assert await svc.batches.purge_expired() == 1
            assert await backends.metadata.read(lambda tx: tx.get_job(job)) is None
        finally:
            await svc.batches.stop()
            await backends.metadata.close()

    asyncio.run(main())
