"""Fault rules: what to inject, where, and how often.  Pure logic: no HTTP, no wire types.

A rule matches calls by route (a glob over the route path, e.g. `files/upload_session/*`), by
account (email or account id) and by entry path (a glob over the lower-cased paths a call names),
lets the first `after` matching calls through, then fires with `probability` (drawn from the rule's
own seeded RNG, so a run repeats exactly) until it has fired `times` times (None: without end).
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import random
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

UPLOAD_DATA_ROUTES = frozenset({
    "files/upload", "files/upload_session/start", "files/upload_session/append",
    "files/upload_session/append_v2", "files/upload_session/append_batch", "files/upload_session/finish",
})
APPEND_ROUTES = frozenset({"files/upload_session/append", "files/upload_session/append_v2"})
SESSION_ROUTES = frozenset({
    "files/upload_session/append", "files/upload_session/append_v2", "files/upload_session/append_batch",
    "files/upload_session/finish", "files/upload_session/finish_batch", "files/upload_session/finish_batch_v2",
})
CHECK_ROUTES = frozenset({
    "files/upload_session/finish_batch/check", "files/create_folder_batch/check", "files/delete_batch/check",
    "files/move_batch/check_v2", "files/copy_batch/check_v2",
})
# The routes whose error unions carry a session lookup failure for the call as a whole.
LOOKUP_ROUTES = APPEND_ROUTES | {"files/upload_session/finish"}
FINISH_BATCH_ROUTES = frozenset({"files/upload_session/finish_batch", "files/upload_session/finish_batch_v2"})
# The routes a batch job answers to: the one that launched it and the one that polls it.
JOB_ROUTES: dict[str, tuple[str, ...]] = {
    "finish_batch": ("files/upload_session/finish_batch", "files/upload_session/finish_batch/check"),
    "finish_batch_v2": ("files/upload_session/finish_batch_v2",),
    "create_folder_batch": ("files/create_folder_batch", "files/create_folder_batch/check"),
    "delete_batch": ("files/delete_batch", "files/delete_batch/check"),
    "move_batch": ("files/move_batch_v2", "files/move_batch/check_v2"),
    "copy_batch": ("files/copy_batch_v2", "files/copy_batch/check_v2"),
}
ASYNC_JOB_ROUTES = frozenset(r for kind, routes in JOB_ROUTES.items() if kind != "finish_batch_v2" for r in routes)
_POLLED_BY = {routes[0]: routes[1:] for routes in JOB_ROUTES.values()}


class FaultError(ValueError):
    """A rule that cannot be added (unknown kind, bad parameter): the admin API answers 400."""


def _number(name: str, low: float, high: float = math.inf, *, integer: bool = False,
            optional: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
            raise FaultError(f"{name} must be {'an integer' if integer else 'a number'}")
        if not low <= value <= high:
            raise FaultError(f"{name} must be between {low} and {high}")
        return value

    return check


def _choice(name: str, *options: Any) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in options:
            raise FaultError(f"{name} must be one of {', '.join(map(str, options))}")
        return value

    return check


@dataclass(frozen=True, slots=True)
class Kind:
    """One fault of the catalogue: where it can apply, and its parameters with their defaults."""

    name: str
    doc: str
    routes: frozenset[str] | None  # None: any route
    params: Mapping[str, tuple[Any, Callable[[Any], Any]]] = field(default_factory=dict)
    per_entry: bool = False  # decided for each entry of a batch, not for the call
    job: bool = False  # decided when a batch job is launched
    answers: bool = False  # replaces the call's answer: one such fault per call, the first added


_RETRY = {"retry_after": (1, _number("retry_after", 0, 86400, integer=True))}
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("too_many_requests", "HTTP 429, reason too_many_requests, Retry-After; body JSON or text (params.format)",
         None, {**_RETRY, "format": ("json", _choice("format", "json", "text"))}, answers=True),
    Kind("too_many_write_operations", "HTTP 429 JSON, reason too_many_write_operations (namespace lock), "
         "Retry-After", None, _RETRY, answers=True),
    Kind("server_error", "HTTP 500 or 503 (params.status), plain text; the call is not applied", None,
         {"status": (500, _choice("status", 500, 502, 503, 504)),
          "retry_after": (None, _number("retry_after", 0, 86400, integer=True, optional=True))}, answers=True),
    Kind("latency", "the call waits params.seconds before it runs", None,
         {"seconds": (1.0, _number("seconds", 0, 3600))}),
    Kind("bandwidth", "request and response bodies move at params.bytes_per_second", None,
         {"bytes_per_second": (1024 * 1024, _number("bytes_per_second", 1, integer=True))}),
    Kind("drop_response", "the call is applied, then the connection closes without a response", None),
    Kind("partial_body", "only a prefix of the body is stored (params.bytes, or params.fraction of it), then "
         "the connection closes without a response: a retry meets incorrect_offset", APPEND_ROUTES,
         {"bytes": (None, _number("bytes", 0, integer=True, optional=True)),
          "fraction": (0.5, _number("fraction", 0, 1))}),
    Kind("insufficient_space", "the call runs as if the account's space were used up (path/insufficient_space "
         "where it commits bytes)", None),
    Kind("expired_session", "the upload sessions the call names expire just before it runs (not_found)",
         SESSION_ROUTES),
    Kind("content_hash_mismatch", "the call fails with content_hash_mismatch; nothing is stored",
         UPLOAD_DATA_ROUTES, answers=True),
    Kind("invalid_async_job_id", "a batch /check answers invalid_async_job_id", CHECK_ROUTES, answers=True),
    Kind("entry_too_many_write_operations", "finish_batch / finish_batch_v2 entries fail with "
         "too_many_write_operations (not committed; the session stays usable)", FINISH_BATCH_ROUTES,
         per_entry=True, answers=True),
    Kind("not_closed", "finish_batch / finish_batch_v2 entries fail with lookup_failed/not_closed, as if their "
         "session had not been closed (not committed; the session stays usable)", FINISH_BATCH_ROUTES,
         per_entry=True, answers=True),
    Kind("closed", "append / append_v2 / finish fail with the session lookup error closed (an append after "
         "close=true); nothing is stored", LOOKUP_ROUTES, answers=True),
    Kind("too_large", "append / append_v2 / finish fail with too_large (the session would pass the largest "
         "file size); nothing is stored", LOOKUP_ROUTES, answers=True),
    Kind("payload_too_large", "the call fails with payload_too_large (a request body over 150 MiB); nothing "
         "is stored", UPLOAD_DATA_ROUTES, answers=True),
    Kind("invalid_root", "HTTP 422 PathRootError invalid_root carrying the caller's current root info (as "
         "after the user joined or left a team)", None, answers=True),
    Kind("no_permission", "HTTP 422 PathRootError no_permission (the path root names a namespace the caller "
         "may not use)", None, answers=True),
    Kind("connection_reset", "the call is applied and its response starts, then the connection breaks after "
         "params.bytes (or params.fraction) of the response body: the client sees a short read", None,
         {"bytes": (None, _number("bytes", 0, integer=True, optional=True)),
          "fraction": (0.5, _number("fraction", 0, 1))}),
    Kind("slow_commit", "the call's commit holds its namespaces' write locks params.seconds before it runs: "
         "other writers into them wait, and past --write-wait get too_many_write_operations", None,
         {"seconds": (5.0, _number("seconds", 0, 3600))}),
    Kind("job_stuck", "a batch job stays in_progress for params.seconds (null: forever) after its launch",
         ASYNC_JOB_ROUTES, {"seconds": (None, _number("seconds", 0, optional=True))}, job=True),
    Kind("job_internal_error", "a batch job's /check answers internal_error; params.committed: whether its "
         "entries were committed all the same", ASYNC_JOB_ROUTES,
         {"committed": (False, _choice("committed", True, False))}, job=True),
)}


def _glob(pattern: str | None, value: str) -> bool:
    return pattern is None or fnmatch.fnmatchcase(value, pattern)


@dataclass(slots=True)
class FaultRule:
    id: str
    kind: str
    route: str | None = None
    account: str | None = None
    path: str | None = None
    probability: float = 1.0
    times: int | None = None
    after: int = 0
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    matched: int = 0  # matching calls (or entries) seen
    fired: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def spec(self) -> Kind:
        return KINDS[self.kind]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "route": self.route, "account": self.account, "path": self.path,
                "probability": self.probability, "times": self.times, "after": self.after, "seed": self.seed,
                "params": dict(self.params), "matched": self.matched, "fired": self.fired,
                "exhausted": self.exhausted}

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def applies(self, route: str, account: tuple[str, str] | None, paths: Iterable[str] | None) -> bool:
        """Whether a call (or entry) is one this rule is about; `account` is (account_id, email)."""
        if self.spec.job:
            # A job is launched by one route and polled by another: a rule may name either.
            if route not in _POLLED_BY or not any(_glob(self.route, r) for r in (route, *_POLLED_BY[route])):
                return False
        elif not _glob(self.route, route) or (self.spec.routes is not None and route not in self.spec.routes):
            return False
        if self.account is not None and (
                account is None or self.account.lower() not in (account[0].lower(), account[1].lower())):
            return False
        if self.path is not None:
            pattern = self.path.lower()
            if not any(fnmatch.fnmatchcase(p.lower(), pattern) for p in paths or ()):
                return False
        return True

    def draw(self) -> bool:
        """Count one matching call and decide whether the fault fires on it."""
        if self.exhausted:
            return False
        self.matched += 1
        if self.matched <= self.after:
            return False
        if self.probability < 1.0 and self.rng.random() >= self.probability:
            return False
        self.fired += 1
        return True


_FIELDS = {"kind", "route", "account", "path", "probability", "times", "after", "seed", "params", "id"}


def parse_rule(obj: Mapping[str, Any], rule_id: str) -> FaultRule:
    """A rule from its JSON form (the admin API's POST body), validated, with defaults filled in."""
    if not isinstance(obj, Mapping):
        raise FaultError("a fault is a JSON object")
    unknown = set(obj) - _FIELDS
    if unknown:
        raise FaultError(f"unknown field(s): {', '.join(sorted(unknown))}")
    kind = obj.get("kind")
    if kind not in KINDS:
        raise FaultError(f"kind must be one of: {', '.join(KINDS)}")
    spec = KINDS[kind]
    for name in ("route", "account", "path"):
        if obj.get(name) is not None and not isinstance(obj[name], str):
            raise FaultError(f"{name} must be a string")
    route = obj.get("route")
    if route is not None and spec.routes is not None and not any(_glob(route, r) for r in spec.routes):
        raise FaultError(f"{kind} applies only to {', '.join(sorted(spec.routes))}")
    probability = _number("probability", 0, 1)(obj.get("probability", 1.0))
    times = _number("times", 1, integer=True, optional=True)(obj.get("times"))
    after = _number("after", 0, integer=True)(obj.get("after", 0))
    seed = obj.get("seed")
    seed = secrets.randbelow(2**31) if seed is None else _number("seed", 0, 2**63, integer=True)(seed)
    raw_params = obj.get("params") or {}
    if not isinstance(raw_params, Mapping):
        raise FaultError("params must be an object")
    extra = set(raw_params) - set(spec.params)
    if extra:
        known = ", ".join(spec.params) or "none"
        raise FaultError(f"{kind} has no parameter(s) {', '.join(sorted(extra))} (known: {known})")
    params = {name: check(raw_params.get(name, default)) for name, (default, check) in spec.params.items()}
    return FaultRule(id=rule_id, kind=kind, route=route, account=obj.get("account"), path=obj.get("path"),
                     probability=float(probability), times=times, after=after, seed=seed, params=params,
                     rng=random.Random(seed))


class FaultBook:
    """The server's fault rules, in the order they were added.  Safe to use from several threads."""

    def __init__(self) -> None:
        self._rules: dict[str, FaultRule] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._rules)

    def add(self, obj: Mapping[str, Any]) -> FaultRule:
        with self._lock:
            rule_id = obj.get("id") if isinstance(obj, Mapping) else None
            if rule_id is not None and (not isinstance(rule_id, str) or not rule_id or rule_id in self._rules):
                raise FaultError(f"id {rule_id!r} is taken or not a non-empty string")
            rule = parse_rule(obj, rule_id or f"f{next(self._ids)}")
            self._rules[rule.id] = rule
            return rule

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules.values())

    def get(self, rule_id: str) -> FaultRule | None:
        return self._rules.get(rule_id)

    def delete(self, rule_id: str) -> bool:
        with self._lock:
            return self._rules.pop(rule_id, None) is not None

    def clear(self) -> int:
        with self._lock:
            n = len(self._rules)
            self._rules.clear()
            return n

    def fire(self, kinds: Iterable[str], route: str, account: tuple[str, str] | None,
             paths: Iterable[str] | None = None) -> list[FaultRule]:
        """The rules of `kinds` that fire on this call (or entry): at most one per kind, and one of the
        kinds that answer the call instead of it; rules added first come first."""
        if not self._rules:
            return []
        wanted = set(kinds)
        path_list = list(paths) if paths is not None else None
        fired: list[FaultRule] = []
        answered = False
        with self._lock:
            for rule in self._rules.values():
                if rule.kind not in wanted or (answered and rule.spec.answers):
                    continue
                if rule.applies(route, account, path_list) and rule.draw():
                    fired.append(rule)
                    wanted.discard(rule.kind)
                    answered = answered or rule.spec.answers
        return fired
