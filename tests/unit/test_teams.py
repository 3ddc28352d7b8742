"""Unit tests of the team rules: the namespace access rule, the monthly data transport counter, the
per-token rate limiter (property-tested) and the --rate-limit parser."""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localbox.cli_team import parse_rate
from localbox.domain.teams import AdminMode, month_of
from localbox.services.access import can_access
from localbox.services.accounts import AccountService, Caller
from localbox.services.rate_limits import RateLimiter
from localbox.services.teams import TeamService, TransportLimitReached
from localbox.stores.sqlite import SqliteMetadataStore

pytestmark = pytest.mark.unit


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[SqliteMetadataStore]:
    s = SqliteMetadataStore(tmp_path / "m.sqlite3")
    yield s
    asyncio.run(s.close())


def test_access_rule(store: SqliteMetadataStore) -> None:
    accounts, teams = AccountService(store), TeamService(store)
    ann, bob, eve = (accounts.create_account(f"{n}@example.com", n.title()) for n in ("ann", "bob", "eve"))
    team = teams.create_team("Acme")
    teams.add_member("Acme", "ann@example.com", admin=True)
    teams.add_member("Acme", "bob@example.com")
    folder = teams.create_folder("Acme", "Projects")
    other = teams.create_team("Other")

    def may(account: object, ns: str, mode: str | None = None) -> bool:
        caller = Caller(account, frozenset(), account.root_namespace_id, select_admin=mode)  # type: ignore[attr-defined,arg-type]
        return bool(store.run_sync(lambda tx: can_access(tx, caller, ns)))

    assert may(bob, bob.root_namespace_id) and may(bob, team.root_namespace_id) and may(bob, folder.namespace_id)
    assert not may(bob, ann.root_namespace_id)  # a member's home is theirs
    assert not may(ann, bob.root_namespace_id, AdminMode.TEAM_ADMIN)
    assert may(ann, bob.root_namespace_id, AdminMode.WHOLE_TEAM)  # admins reading the whole team
    assert not may(bob, ann.root_namespace_id, AdminMode.WHOLE_TEAM)  # ... only admins
    assert not may(eve, team.root_namespace_id) and not may(eve, folder.namespace_id)
    assert not may(ann, other.root_namespace_id) and not may(ann, "999")
    teams.remove_member("Acme", "bob@example.com")
    assert not may(bob, folder.namespace_id) and may(bob, bob.root_namespace_id)
    assert not may(ann, bob.root_namespace_id, AdminMode.WHOLE_TEAM)  # no longer the team's


def test_transport_counter_limits_and_resets_monthly(store: SqliteMetadataStore) -> None:
    accounts, teams = AccountService(store), TeamService(store)
    ann = accounts.create_account("ann@example.com")
    loner = accounts.create_account("solo@example.com")
    teams.create_team("Acme")
    teams.add_member("Acme", "ann@example.com")
    teams.set_transport_limit("Acme", 2)
    may31 = calendar.timegm((2026, 5, 31, 23, 59, 59))
    june1 = may31 + 1

    async def go() -> list[bool]:
        out = []
        for when in (may31, may31, may31, june1, june1, june1):
            try:
                await teams.count_transport_call(ann.account_id, when)
                out.append(True)
            except TransportLimitReached:
                out.append(False)
        for _ in range(5):  # an account on no team is never limited
            await teams.count_transport_call(loner.account_id, may31)
        return out

    assert asyncio.run(go()) == [True, True, False, True, True, False]
    team, may = teams.usage("Acme", month_of(may31))
    assert (may.calls, may.denied, team.transport_limit) == (2, 1, 2)
    assert teams.usage("Acme", "2026-06")[1].calls == 2


@settings(max_examples=200, deadline=None)
@given(rate=st.integers(1, 50), gaps=st.lists(st.floats(0, 2, allow_nan=False), min_size=1, max_size=200))
def test_rate_limiter_never_admits_more_than_burst_plus_refill(rate: int, gaps: list[float]) -> None:
    limiter = RateLimiter()
    now, admitted = 0.0, 0
    for gap in gaps:
        now += gap
        wait = limiter.admit("k", rate, now)
        if wait is None:
            admitted += 1
        else:
            assert wait >= 1
    assert admitted <= rate + now * rate + 1e-6


def test_rate_limiter_refuses_then_admits_after_retry_after() -> None:
    limiter = RateLimiter()
    assert [limiter.admit("k", 2, 0.0) for _ in range(2)] == [None, None]
    wait = limiter.admit("k", 2, 0.0)
    assert wait == 1
    assert limiter.admit("k", 2, float(wait)) is None
    assert limiter.admit("other", 2, 0.0) is None  # keys are independent


@pytest.mark.parametrize(("text", "per_second"), [("10/s", 10.0), ("3", 3.0), ("600/min", 10.0), ("0.5/s", 0.5)])
def test_parse_rate(text: str, per_second: float) -> None:
    assert parse_rate(text) == per_second


@pytest.mark.parametrize("text", ["", "0/s", "-1/s", "ten", "5/h"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)
