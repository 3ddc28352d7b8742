"""Hostile and malformed input against every implemented route: never a 5xx, never a crash, never a
write outside the data dir.  Case counts are printed (`-s`) and are the README's figures.

LOCALBOX_FUZZ_EXAMPLES sets hypothesis examples per strategy (CI default 150).
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import LocalServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localbox.spec import ROUTES

pytestmark = pytest.mark.reliability
# Input handling lives in the HTTP and service layers, the same whatever stores the data.
RELIABILITY_BACKENDS = ("embedded",)
EXAMPLES = int(os.environ.get("LOCALBOX_FUZZ_EXAMPLES", "150"))
ROUTE_NAMES = sorted(ROUTES)
COUNTS: dict[str, int] = {}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats()
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["path", "cursor", "session_id", "offset", "close", "entries", "commit", "mode",
                         "autorename", "limit", "query", "rev", "from_path", "to_path", "async_job_id",
                         "recursive", "include_deleted", "num_sessions", "length", ".tag", "x"]) | st.text(max_size=8),
        inner, max_size=6),
    max_leaves=25)


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


raw_bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.binary(max_size=300),  # includes invalid UTF-8
    st.integers(1, 200_000).map(_deep),
    st.sampled_from([b'{"path": "/a", "path": "/b"}', b'{"limit": true}', b'{"offset": -1}',
                     b'{"limit": 1e400}', b'\xff\xfe{}', b'{"path": "\\ud800"}', b"", b"null", b"{}"]),
)


# Bytes HTTP forbids in a header value (controls other than tab) become spaces; all else, 0x80+ included, stays.
_HEADER_SAFE = bytes.maketrans(bytes([*range(0, 9), *range(10, 32), 127]), b" " * 32)


def _check(r: httpx.Response, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"


@pytest.fixture(scope="module")
def token(server: LocalServer) -> str:
    return server.new_account().token


def test_random_bodies_and_arguments_on_every_route(server: LocalServer, token: str) -> None:
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as http:

        @settings(max_examples=EXAMPLES * 4, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        @given(route=st.sampled_from(ROUTE_NAMES), body=raw_bodies, as_header=st.booleans(),
               ctype=st.sampled_from(["application/json", "application/octet-stream", "text/plain", None]))
        def one(route: str, body: bytes, as_header: bool, ctype: str | None) -> None:
            headers: dict[str, Any] = {"Authorization": f"Bearer {token}"}
            if ctype:
                headers["Content-Type"] = ctype
            content = body
            if as_header or ROUTES[route].style != "rpc":
                # Raw bytes (invalid UTF-8 included); only what HTTP itself forbids in a header is replaced.
                headers["Dropbox-API-Arg"] = body[:20_000].translate(_HEADER_SAFE).strip()
                content = b"data"
            r = http.post(f"/2/{route}", content=content, headers=headers)
            COUNTS["random"] = COUNTS.get("random", 0) + 1
            _check(r, f"{route} {body[:80]!r}")

        one()


def test_header_abuse(server: LocalServer, token: str) -> None:
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as http:

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(route=st.sampled_from(ROUTE_NAMES), size=st.sampled_from([0, 1, 8_000, 60_000, 300_000]),
               auth=st.sampled_from(["ok", "none", "double", "garbage", "basic", "huge"]),
               doubled_arg=st.booleans(), root=st.sampled_from([None, "{}", "x", '{".tag": "namespace_id"}',
                                                                 '{".tag": "namespace_id", "namespace_id": "-1"}']))
        def one(route: str, size: int, auth: str, doubled_arg: bool, root: str | None) -> None:
            headers: list[tuple[str, Any]] = []
            if auth == "ok":
                headers.append(("Authorization", f"Bearer {token}"))
            elif auth == "double":
                headers += [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer other")]
            elif auth == "garbage":
                headers.append(("Authorization", b"Bearer \xc3\xa9\xff\xfe" * 3))  # type: ignore[arg-type]
            elif auth == "basic":
                headers.append(("Authorization", "Basic dXNlcjpwYXNz"))
            elif auth == "huge":
                headers.append(("Authorization", "Bearer " + "A" * 50_000))
            arg = json.dumps({"path": "/" + "a" * size})
            headers.append(("Dropbox-API-Arg", arg))
            if doubled_arg:
                headers.append(("Dropbox-API-Arg", '{"path": "/b"}'))
            if root is not None:
                headers.append(("Dropbox-API-Path-Root", root))
            try:
                r = http.post(f"/2/{route}", content=b"{}", headers=headers)
            except httpx.RemoteProtocolError:
                COUNTS["headers"] = COUNTS.get("headers", 0) + 1
                return  # the server closed an oversized request: refused, not crashed
            COUNTS["headers"] = COUNTS.get("headers", 0) + 1
            _check(r, f"{route} size={size} auth={auth}")

        one()
    # Still alive and serving.
    assert httpx.post(f"{server.url}/2/check/user", json={"query": "x"},
                      headers={"Authorization": f"Bearer {token}"}).status_code == 200


HOSTILE_NAMES = [
    "..", ".", "", "a/../../etc", "../../../../etc/passwd", "a\x00b", "nul\x00", "ctl\x01\x1f\x7f", "back\\slash",
    "C:\\Windows", "x" * 256, "y" * 1000, "é", unicodedata.normalize("NFD", "é"), "\u202eRTL\u202dmark", "\u200b",
    "Σίσυφος", "ΣΊΣΥΦΟΣ", "straße", "STRASSE", "\ud800", "\ufeffbom", "trailing.", "trailing ", " lead", "a:b",
    "*?<>|\"", "~", "$HOME", "%2e%2e", "\u2025", "\uff0e\uff0e", "con", "aux.txt", "\n", "tab\t", "emoji\U0001f4a9",
]


def _hostile_paths() -> list[str]:
    paths = []
    for n in HOSTILE_NAMES:
        paths += [f"/{n}", f"/dir/{n}", f"/{n}/child", n, f"//{n}", f"/{n}/", f"id:{n}", f"rev:{n}", f"ns:{n}"]
    paths += ["/" + "/".join(["d"] * 200), "/" + "/".join(["z" * 255] * 20)]
    return paths


def test_hostile_paths_get_dropbox_errors_or_contained_results(server: LocalServer, token: str) -> None:
    cases = 0
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as http:
        h = {"Authorization": f"Bearer {token}"}

        def rpc(route: str, arg: Any) -> None:
            nonlocal cases
            r = http.post(f"/2/{route}", content=json.dumps(arg).encode(), headers={**h, "Content-Type":
                                                                                     "application/json"})
            cases += 1
            _check(r, f"{route} {arg!r:.120}")

        def content(route: str, arg: Any) -> None:
            nonlocal cases
            r = http.post(f"/2/{route}", content=b"hostile", headers={
                **h, "Content-Type": "application/octet-stream", "Dropbox-API-Arg": json.dumps(arg)})
            cases += 1
            _check(r, f"{route} {arg!r:.120}")

        for p in _hostile_paths():
            content("files/upload", {"path": p, "mode": "add", "autorename": True})
            rpc("files/create_folder_v2", {"path": p})
            rpc("files/get_metadata", {"path": p})
            rpc("files/list_folder", {"path": p})
            rpc("files/copy_v2", {"from_path": "/dir", "to_path": p})
            rpc("files/move_v2", {"from_path": p, "to_path": "/moved"})
            rpc("files/delete_v2", {"path": p})
            rpc("files/search_v2", {"query": p or "x", "options": {"path": p}})
            content("files/download", {"path": p})
    COUNTS["paths"] = cases
    # Nothing outside the data dir, and inside it only the store's own layout.
    data = server.data_dir
    assert sorted(os.listdir(data / "blobs")) == ["blocks", "staging", "tmp"]
    for root, _, names in os.walk(data):
        for n in names:
            assert n.startswith("metadata.sqlite3") or all(c in "0123456789abcdef" for c in n) or \
                Path(root).parent.name == "staging" or Path(root).name == "staging", os.path.join(root, n)
    parent = sorted(p.name for p in data.parent.iterdir())
    assert all(n.startswith("data") for n in parent), parent
    print(f"\nhostile input cases: {COUNTS}")
