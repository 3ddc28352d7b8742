"""Property-based wire tests: garbage in is always a 400 text answer (never 5xx), valid data round-trips."""

from __future__ import annotations

import itertools
import json
import secrets
import unicodedata
from typing import Any

import pytest
from _apiwire import Api, bad_input, check_file_metadata, content_hash, describe, ok_json
from dropbox import check, files
from dropbox import stone_serializers as ss
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.api

FAST = settings(max_examples=40, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SLOW = settings(max_examples=15, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# -- strategies -----------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)), max_leaves=12)

# Valid argument templates per route; each leaf is annotated with its JSON type so a mutation can
# swap in a value of a *different* type (which no stone validator accepts).
SID = "pid_upload_session:property"
TEMPLATES: dict[str, dict[str, Any]] = {
    "files/upload_session/start": {"close": False, "session_type": {".tag": "sequential"}},
    "files/upload_session/append_v2": {"cursor": {"session_id": SID, "offset": 0}, "close": False},
    "files/upload_session/finish": {"cursor": {"session_id": SID, "offset": 0},
                                    "commit": {"path": "/p/x.txt", "mode": {".tag": "add"}, "autorename": False,
                                               "mute": False, "strict_conflict": False}},
    "files/upload": {"path": "/p/x.txt", "mode": {".tag": "add"}, "autorename": False, "mute": False,
                     "strict_conflict": False},
}
RPC_TEMPLATES: dict[str, dict[str, Any]] = {
    "files/upload_session/start_batch": {"num_sessions": 2},
    "files/upload_session/finish_batch_v2": {"entries": [
        {"cursor": {"session_id": SID, "offset": 0}, "commit": {"path": "/p/y.txt"}}]},
    "files/upload_session/finish_batch/check": {"async_job_id": "job"},
    "files/get_metadata": {"path": "/p/x.txt", "include_deleted": False},
    "files/list_folder": {"path": "", "recursive": False, "limit": 10},
    "check/user": {"query": "q"},
}


def leaves(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out: list[tuple] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += leaves(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += leaves(v, (*prefix, i))
    else:
        out.append(prefix)
    return out


def set_at(obj: Any, path: tuple, value: Any) -> Any:
    obj = json.loads(json.dumps(obj))
    cur = obj
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return obj


def del_at(obj: Any, path: tuple) -> Any:
    obj = json.loads(json.dumps(obj))
    cur = obj
    for p in path[:-1]:
        cur = cur[p]
    del cur[path[-1]]
    return obj


def wrong_type_for(value: Any) -> st.SearchStrategy[Any]:
    """Values of a JSON type different from `value`'s (bool counts as its own type, so offset=true fails)."""
    choices: list[st.SearchStrategy[Any]] = [st.lists(st.integers(), max_size=2),
                                             st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)]
    if not isinstance(value, bool):
        choices.append(st.booleans())
    if isinstance(value, bool) or not isinstance(value, int | float):
        choices.append(st.integers(-5, 5))
        choices.append(st.floats(allow_nan=False, allow_infinity=False))
    if not isinstance(value, str):
        choices.append(st.text(max_size=5))
    return st.one_of(choices)


@st.composite
def invalid_args(draw: st.DrawFn, template: dict[str, Any]) -> Any:
    kind = draw(st.sampled_from(["wrong_type", "unknown_key", "drop_required", "not_object", "bad_tag"]))
    paths = leaves(template)
    if kind == "wrong_type":
        path = draw(st.sampled_from(paths))
        cur: Any = template
        for p in path:
            cur = cur[p]
        return set_at(template, path, draw(wrong_type_for(cur)))
    if kind == "unknown_key":
        dict_paths = [()] + [p[:-1] for p in paths if len(p) > 1 and not isinstance(p[-1], int)]
        path = draw(st.sampled_from(dict_paths))
        key = "zz_" + draw(st.text(alphabet="abcdefgh_", min_size=1, max_size=6))
        if path == ():
            return {**template, key: draw(json_values)}
        cur = template
        for p in path:
            cur = cur[p]
        if ".tag" in cur and len(cur) == 1:
            return set_at(template, path, {**cur, key: 1})
        return set_at(template, path, {**cur, key: draw(json_values)})
    if kind == "drop_required":
        required = [p for p in paths if p[-1] in ("session_id", "offset", "path", "num_sessions",
                                                   "async_job_id", ".tag")]
        assume(required)
        return del_at(template, draw(st.sampled_from(required)))
    if kind == "bad_tag":
        tag_paths = [p for p in paths if p[-1] == ".tag"]
        assume(tag_paths)
        return set_at(template, draw(st.sampled_from(tag_paths)),
                      draw(st.sampled_from(["other", "", "ADD", "bogus", "sequential_"])))
    # `null` is deliberately absent: stone decodes null as the default value of a struct whose fields
    # all have defaults (UploadSessionStartArg, EchoArg), so it is a *valid* argument there.
    return draw(st.one_of(st.lists(json_values, max_size=3), st.text(max_size=10), st.integers(),
                          st.booleans()))


# -- garbage arguments are always 400 text --------------------------------------------------------

def route_spec(route: str) -> Any:
    import dropbox

    ns, name = route.split("/", 1)
    return getattr(getattr(dropbox, ns), name.replace("/", "_"))


def null_is_valid(route: str) -> bool:
    """stone accepts `null` (and localbox maps an empty body/header to null) for a struct whose fields
    all have defaults."""
    arg = route_spec(route).arg_type
    return bool(getattr(arg, "has_default", lambda: False)())


@pytest.mark.parametrize("route", sorted(TEMPLATES))
def test_templates_are_valid_stone(route: str) -> None:
    # Sanity for the mutation strategy: the unmutated template decodes with the SDK's arg validator.
    ss.json_compat_obj_decode(route_spec(route).arg_type, TEMPLATES[route], strict=True)


@pytest.mark.parametrize("route", sorted(RPC_TEMPLATES))
def test_rpc_templates_are_valid_stone(route: str) -> None:
    ss.json_compat_obj_decode(route_spec(route).arg_type, RPC_TEMPLATES[route], strict=True)


@FAST
@given(data=st.data())
def test_invalid_header_args_are_400(api: Api, data: st.DataObject) -> None:
    route = data.draw(st.sampled_from(sorted(TEMPLATES)))
    arg = data.draw(invalid_args(TEMPLATES[route]))
    ascii_only = data.draw(st.booleans())
    r = api.content(route, arg, b"", ascii_only=ascii_only)
    assert r.status_code == 400, f"arg={arg!r}\n{describe(r)}"
    bad_input(r, route)


@FAST
@given(data=st.data())
def test_invalid_rpc_args_are_400(api: Api, data: st.DataObject) -> None:
    route = data.draw(st.sampled_from(sorted(RPC_TEMPLATES)))
    arg = data.draw(invalid_args(RPC_TEMPLATES[route]))
    r = api.rpc(route, arg)
    assert r.status_code == 400, f"arg={arg!r}\n{describe(r)}"
    bad_input(r, route)


def _is_json(b: bytes) -> bool:
    try:
        json.loads(b)
    except ValueError:
        return False
    return True


@FAST
@given(route=st.sampled_from(sorted(RPC_TEMPLATES)), body=st.binary(max_size=64))
def test_non_json_rpc_bodies_are_400(api: Api, route: str, body: bytes) -> None:
    assume(not _is_json(body))
    assume(body.strip() or not null_is_valid(route))
    bad_input(api.rpc(route, raw=body), route)


@FAST
@given(route=st.sampled_from(sorted(TEMPLATES)),
       header=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40))
def test_non_json_arg_headers_are_400(api: Api, route: str, header: str) -> None:
    assume(header == header.strip())  # h11 refuses surrounding whitespace; servers strip it anyway
    assume(not _is_json(header.encode()))
    assume(header or not null_is_valid(route))
    bad_input(api.content(route, raw_arg=header.encode(), data=b"x"), route)


@FAST
@given(route=st.sampled_from(sorted(TEMPLATES)), value=json_values)
def test_random_json_arg_headers_never_5xx(api: Api, route: str, value: Any) -> None:
    # Random JSON is almost never a valid argument; whatever it is, the answer is a proper 4xx/2xx.
    r = api.content(route, value, b"")
    assert r.status_code < 500, describe(r)
    if r.status_code == 400:
        bad_input(r, route)
    elif r.status_code == 409:
        assert r.headers["content-type"] == "application/json"
    else:
        assert r.status_code == 200, describe(r)


# -- valid data round-trips ----------------------------------------------------------------------

SAFE_PUNCT = " -_()[]{}!#$%&'+,;=@~^`."
name_chars = st.one_of(
    st.characters(categories=("Lu", "Ll", "Lo", "Nd"), max_codepoint=0xFFFF),
    st.sampled_from(list(SAFE_PUNCT)),
    st.sampled_from(["😀", "☺", "€", "ß", "İ", "ǅ", "ﬃ", "Σ", "ς"]),
)


@st.composite
def names(draw: st.DrawFn) -> str:
    name = draw(st.text(alphabet=name_chars, min_size=1, max_size=40))
    assume(name == name.strip() and not name.endswith(".") and name not in (".", ".."))
    assume(unicodedata.normalize("NFC", name) == name)
    return name


@SLOW
@given(name=names(), ascii_only=st.booleans(), data=st.binary(max_size=300))
def test_names_round_trip(api: Api, name: str, ascii_only: bool, data: bytes) -> None:
    folder = f"/prop-{secrets.token_hex(6)}"
    path = f"{folder}/{name}"
    r = api.content("files/upload", {"path": path}, data, ascii_only=ascii_only)
    md = ok_json(r, files.FileMetadata_validator)
    check_file_metadata(md, data=data)
    assert md["name"] == name and md["path_display"] == path
    got = api.metadata_ok(path)
    assert got["name"] == name and got["id"] == md["id"]
    listed = ok_json(api.rpc("files/list_folder", {"path": folder}), files.ListFolderResult_validator)
    assert [e["name"] for e in listed["entries"]] == [name]
    d = api.download({"path": path}, method="GET", url_params=True, ascii_only=ascii_only)
    assert d.status_code == 200, describe(d)
    assert d.content == data
    raw = d.headers["dropbox-api-result"]
    assert raw.isascii()
    assert json.loads(raw)["name"] == name


@SLOW
@given(data=st.binary(min_size=0, max_size=5000), cuts=st.lists(st.integers(0, 5000), max_size=5),
       close_early=st.booleans())
def test_session_chunking_round_trips(api: Api, data: bytes, cuts: list[int], close_early: bool) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)] or [b""]
    sid = api.start_ok(pieces[0], content_hash=content_hash(pieces[0]))
    off = len(pieces[0])
    for i, p in enumerate(pieces[1:], start=1):
        last = i == len(pieces) - 1
        api.append_ok(sid, off, p, close=close_early and last, content_hash=content_hash(p))
        off += len(p)
    path = f"/chunks-{secrets.token_hex(6)}.bin"
    md = api.finish_ok(sid, off, path)
    check_file_metadata(md, path=path, data=data)
    assert api.download_bytes(path) == data


@pytest.fixture(scope="module")
def ranged(server, shared_account) -> tuple[str, bytes]:
    import httpx

    data = bytes(range(256)) * 8 + b"tail"
    with httpx.Client(base_url=server.url, trust_env=False) as c:
        Api(c, shared_account.token).upload_ok("/ranged.bin", data)
    return "/ranged.bin", data


@FAST
@given(st.data())
def test_ranges_match_slices(api: Api, ranged: tuple[str, bytes], data: st.DataObject) -> None:
    path, blob = ranged
    n = len(blob)
    kind = data.draw(st.sampled_from(["closed", "open", "suffix"]))
    if kind == "closed":
        start = data.draw(st.integers(0, n - 1))
        end = data.draw(st.integers(start, n + 50))
        spec, lo, hi = f"bytes={start}-{end}", start, min(end, n - 1)
    elif kind == "open":
        start = data.draw(st.integers(0, n - 1))
        spec, lo, hi = f"bytes={start}-", start, n - 1
    else:
        k = data.draw(st.integers(1, n + 50))
        spec, lo, hi = f"bytes=-{k}", max(0, n - k), n - 1
    r = api.download({"path": path}, headers={"Range": spec})
    assert r.status_code == 206, f"{spec}\n{describe(r)}"
    assert r.content == blob[lo:hi + 1], spec
    assert r.headers["content-range"] == f"bytes {lo}-{hi}/{n}", spec


@FAST
@given(query=st.text(max_size=500))
def test_check_user_echoes_any_query(api: Api, query: str) -> None:
    r = api.rpc("check/user", {"query": query})
    assert ok_json(r, check.EchoResult_validator) == {"result": query}
