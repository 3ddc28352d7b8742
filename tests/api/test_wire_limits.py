"""Limits and lifetimes on the wire, against a server started with small limits.

This module overrides `server` with its own `localbox serve --max-session-size 1000 --session-ttl 2s`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from _apiwire import Api, route_error
from dropbox import files
from harness import running_server

pytestmark = pytest.mark.api

MAX = 1000
TTL = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    args = ["--max-session-size", str(MAX), "--session-ttl", f"{TTL:g}s"]
    with running_server(tmp_path_factory.mktemp("limits") / "data", args) as srv:
        yield srv


def test_append_past_max_session_size_is_too_large(api: Api) -> None:
    sid = api.start_ok(b"x" * 600)
    r = api.content("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": 600}}, b"y" * 401)
    assert route_error(r, files.UploadSessionAppendError_validator, "too_large") == {".tag": "too_large"}
    # Up to the limit is fine.
    api.append_ok(sid, 600, b"y" * 400)


def test_start_past_max_session_size_is_an_error(api: Api) -> None:
    r = api.content("files/upload_session/start", {}, b"z" * (MAX + 1))
    # UploadSessionStartError has no too_large; payload_too_large is the closest tag. Never a 5xx.
    assert r.status_code in (200, 409), r.text
    if r.status_code == 409:
        route_error(r, files.UploadSessionStartError_validator)


def test_finish_past_max_session_size(api: Api, folder: str) -> None:
    sid = api.start_ok(b"a" * 900)
    r = api.finish(sid, 900, f"{folder}/big", b"b" * 200)
    assert route_error(r, files.UploadSessionFinishError_validator, "lookup_failed", "too_large") == {
        ".tag": "lookup_failed", "lookup_failed": {".tag": "too_large"}}


def test_expired_session_is_not_found(api: Api, folder: str) -> None:
    sid = api.start_ok(b"old")
    fresh = api.start_ok(b"new", close=True)
    time.sleep(TTL + 0.5)
    r = api.content("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": 3}}, b"x")
    assert route_error(r, files.UploadSessionAppendError_validator, "not_found") == {".tag": "not_found"}
    r = api.finish(fresh, 3, f"{folder}/late")
    route_error(r, files.UploadSessionFinishError_validator, "lookup_failed", "not_found")
