"""JSON <-> stone: decode_arg strictness with the SDK's validators, and build_union."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from dropbox import stone_serializers as ss
from dropbox import stone_validators as bv
from hypothesis import given, settings
from hypothesis import strategies as st

from localbox.spec import WireError, build_union, decode_arg, files

pytestmark = pytest.mark.unit

BATCH = files.UploadSessionFinishBatchArg_validator


def finish_arg(offset: Any = 0, **commit: Any) -> dict[str, Any]:
    return {"cursor": {"session_id": "sid", "offset": offset}, "commit": {"path": "/a.txt", **commit}}


# -- decode_arg ----------------------------------------------------------------------------------
def test_valid_finish_arg_decodes() -> None:
    arg = decode_arg(files.UploadSessionFinishArg_validator, json.dumps(finish_arg(12, mode="overwrite")))
    assert arg.cursor.session_id == "sid"
    assert arg.cursor.offset == 12
    assert arg.commit.path == "/a.txt"
    assert arg.commit.mode.is_overwrite()


def test_bytes_body_decodes() -> None:
    arg = decode_arg(files.UploadSessionCursor_validator, b'{"session_id": "s", "offset": 3}')
    assert (arg.session_id, arg.offset) == ("s", 3)


@pytest.mark.parametrize("value", [True, False])
def test_bool_for_integer_offset_is_rejected(value: bool) -> None:
    with pytest.raises(WireError):
        decode_arg(files.UploadSessionCursor_validator, json.dumps({"session_id": "s", "offset": value}))
    with pytest.raises(WireError):
        decode_arg(files.UploadSessionFinishArg_validator, json.dumps(finish_arg(value)))
    with pytest.raises(WireError):
        decode_arg(BATCH, json.dumps({"entries": [finish_arg(0), finish_arg(value)]}))


def test_bool_for_integer_is_rejected_inside_a_union_struct_member() -> None:
    # UploadSessionStartArg has no integer, but append_v2's arg nests the cursor struct.
    raw = json.dumps({"cursor": {"session_id": "s", "offset": True}, "close": False})
    with pytest.raises(WireError):
        decode_arg(files.UploadSessionAppendArg_validator, raw)


def test_stone_alone_would_accept_the_bool() -> None:
    # Guards the test above: the SDK's own decoder lets `true` through as an integer.
    obj = ss.json_compat_obj_decode(
        files.UploadSessionCursor_validator, {"session_id": "s", "offset": True}, strict=True)
    assert obj.offset is True or obj.offset == 1


def test_float_for_integer_is_rejected() -> None:
    with pytest.raises(WireError):
        decode_arg(files.UploadSessionCursor_validator, '{"session_id": "s", "offset": 1.0}')


@pytest.mark.parametrize(
    "obj",
    [
        {"session_id": "s", "offset": 0, "extra": 1},
        {"session_id": "s", "offset": 0, "Offset": 1},
    ],
)
def test_unknown_fields_are_rejected(obj: dict[str, Any]) -> None:
    with pytest.raises(WireError):
        decode_arg(files.UploadSessionCursor_validator, json.dumps(obj))


def test_unknown_nested_field_is_rejected() -> None:
    raw = json.dumps({"entries": [finish_arg(0, surprise=True)]})
    with pytest.raises(WireError):
        decode_arg(BATCH, raw)


def test_missing_required_field_is_rejected() -> None:
    with pytest.raises(WireError):
        decode_arg(files.UploadSessionCursor_validator, '{"session_id": "s"}')


@pytest.mark.parametrize("raw", ['"add"', '{".tag": "add"}', '"overwrite"', '{".tag": "overwrite"}'])
def test_write_mode_short_and_long_forms(raw: str) -> None:
    mode = decode_arg(files.WriteMode_validator, raw)
    assert mode.is_add() or mode.is_overwrite()
    assert mode.is_add() == ("add" in raw)


def test_write_mode_update_carries_rev() -> None:
    mode = decode_arg(files.WriteMode_validator, '{".tag": "update", "update": "a1c10ce0dd78"}')
    assert mode.is_update() and mode.get_update() == "a1c10ce0dd78"


@pytest.mark.parametrize(
    "raw",
    ['"nope"', '{".tag": "nope"}', '{".tag": "update"}', '{".tag": "update", "update": "XYZ"}', "5", "[]"],
)
def test_bad_write_modes(raw: str) -> None:
    with pytest.raises(WireError):
        decode_arg(files.WriteMode_validator, raw)


def test_finish_batch_entry_limit() -> None:
    ok = decode_arg(BATCH, json.dumps({"entries": [finish_arg(i) for i in range(1000)]}))
    assert len(ok.entries) == 1000
    with pytest.raises(WireError):
        decode_arg(BATCH, json.dumps({"entries": [finish_arg(i) for i in range(1001)]}))


@pytest.mark.parametrize("raw", ["{", '{"session_id": "s",}', "nul", b"\xff\xfe\xfd", "{'a': 1}", '{"a": 1} x'])
def test_malformed_json(raw: str | bytes) -> None:
    with pytest.raises(WireError) as e:
        decode_arg(files.UploadSessionCursor_validator, raw)
    assert str(e.value) == "could not decode input as JSON"


@pytest.mark.parametrize("raw", [None, "", b"", "  ", b"\n"])
def test_empty_body_for_void_arg(raw: str | bytes | None) -> None:
    assert decode_arg(bv.Void(), raw) is None


def test_empty_body_for_struct_arg_is_rejected() -> None:
    with pytest.raises(WireError):
        decode_arg(files.UploadSessionCursor_validator, "")


def test_deeply_nested_json_is_a_wire_error() -> None:
    raw = "[" * 100_000 + "]" * 100_000
    with pytest.raises(WireError):
        decode_arg(BATCH, raw)


# -- build_union ---------------------------------------------------------------------------------
def test_build_union_nested_struct_payload() -> None:
    obj = build_union(files.UploadSessionFinishError_validator, ["lookup_failed", "incorrect_offset"],
                      {"correct_offset": 5})
    assert obj == {".tag": "lookup_failed", "lookup_failed": {".tag": "incorrect_offset", "correct_offset": 5}}
    decoded = ss.json_compat_obj_decode(files.UploadSessionFinishError_validator, obj, strict=True)
    assert decoded.is_lookup_failed()
    assert decoded.get_lookup_failed().get_incorrect_offset().correct_offset == 5


def test_build_union_void_tags() -> None:
    obj = build_union(files.UploadSessionFinishError_validator, ["path", "conflict", "file"])
    assert obj == {".tag": "path", "path": {".tag": "conflict", "conflict": {".tag": "file"}}}
    decoded = ss.json_compat_obj_decode(files.UploadSessionFinishError_validator, obj, strict=True)
    assert decoded.get_path().get_conflict().is_file()
    assert build_union(files.UploadSessionLookupError_validator, ["not_found"]) == {".tag": "not_found"}


def test_build_union_json_text_decodes_through_the_sdk() -> None:
    obj = build_union(files.UploadSessionLookupError_validator, ["closed"])
    decoded = ss.json_decode(files.UploadSessionLookupError_validator, json.dumps(obj), strict=True)
    assert decoded.is_closed()


@pytest.mark.parametrize(
    "tags", [["no_such_tag"], ["lookup_failed", "no_such_tag"], ["path", "conflict", "no_such_kind"]]
)
def test_build_union_unknown_tag_raises_key_error(tags: list[str]) -> None:
    with pytest.raises(KeyError):
        build_union(files.UploadSessionFinishError_validator, tags)


# -- property: any JSON either decodes or is a WireError ------------------------------------------
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
EMPTY_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
tags = st.sampled_from(["add", "overwrite", "update", "zzz", ""])


@st.composite
def mostly(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """Usually a valid value, sometimes an arbitrary JSON value."""
    return draw(valid if draw(st.integers(0, 9)) < 8 else json_values)


near_mode = mostly(st.one_of(
    tags, st.fixed_dictionaries({".tag": tags}, optional={"update": mostly(st.just("0123456789a"))}),
))
near_cursor = mostly(st.fixed_dictionaries(
    {"session_id": mostly(st.text(max_size=8)), "offset": mostly(st.integers(-3, 2**65))},
))
near_commit = mostly(st.fixed_dictionaries(
    {"path": mostly(st.sampled_from(["/a", "", "id:x", "a", "/a/", "ns:1/a"]))},
    optional={
        "mode": near_mode,
        "autorename": mostly(st.booleans()),
        "client_modified": mostly(st.sampled_from(["2020-01-02T03:04:05Z", "2020-13-01T00:00:00Z"])),
        "mute": mostly(st.booleans()),
        "strict_conflict": mostly(st.one_of(st.booleans(), st.integers(0, 1))),
        "property_groups": mostly(st.just([])),
    },
))
near_entry = mostly(st.fixed_dictionaries(
    {"cursor": near_cursor, "commit": near_commit},
    optional={"content_hash": mostly(st.sampled_from(["", EMPTY_HASH]))},
))
near_batch = mostly(st.fixed_dictionaries(
    {"entries": mostly(st.lists(near_entry, max_size=4))},
))


def _decode_or_wire_error(raw: str | bytes) -> None:
    with contextlib.suppress(WireError):
        decode_arg(BATCH, raw)


@settings(max_examples=150, deadline=None)
@given(obj=near_batch)
def test_random_json_decodes_or_is_wire_error(obj: Any) -> None:
    _decode_or_wire_error(json.dumps(obj))


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.text(max_size=40), st.binary(max_size=40)))
def test_random_text_decodes_or_is_wire_error(raw: str | bytes) -> None:
    _decode_or_wire_error(raw)


@settings(max_examples=100, deadline=None)
@given(entries=st.lists(st.tuples(st.integers(0, 2**64 - 1), st.sampled_from(["add", "overwrite"])), max_size=5))
def test_well_formed_batches_decode_faithfully(entries: list[tuple[int, str]]) -> None:
    raw = json.dumps({"entries": [finish_arg(off, mode=mode) for off, mode in entries]})
    arg = decode_arg(BATCH, raw)
    assert [(e.cursor.offset, e.commit.mode.is_add()) for e in arg.entries] == [
        (off, mode == "add") for off, mode in entries
    ]


@pytest.mark.parametrize("escaped", [r"\ud800", r"\udfff", r"a\ud83d", r"\ude00b"])
def test_lone_surrogate_escapes_are_not_text(escaped: str) -> None:
    raw = '{"session_id": "' + escaped + '", "offset": 1}'
    with pytest.raises(WireError, match="could not decode input as JSON"):
        decode_arg(files.UploadSessionCursor_validator, raw)


def test_surrogate_pairs_are_text() -> None:
    cursor = decode_arg(files.UploadSessionCursor_validator, r'{"session_id": "\ud83d\ude00", "offset": 1}')
    assert cursor.session_id == "\U0001f600"
