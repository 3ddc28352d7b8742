"""JSON <-> stone conversion, with the request checks Dropbox makes and stone alone doesn't."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from dropbox import stone_serializers as ss
from dropbox import stone_validators as bv


class WireError(Exception):
    """A request that doesn't match its stone type.  `str()` reads like Dropbox's 400 text."""


def _unwrap(v: Any) -> Any:
    return v.validator if isinstance(v, bv.Nullable) else v


_NUMBERS: dict[int, bool] = {}
_FIELDS: dict[int, list[tuple[str, Any]]] = {}  # struct -> its fields that can hold numbers


def _has_numbers(v: Any) -> bool:
    """Whether any integer or real field is reachable from `v` (cached per validator): the bool
    check below skips every subtree without one, e.g. all of CommitInfo in a 1000-entry batch."""
    v = _unwrap(v)
    key = id(v)
    if key in _NUMBERS:
        return _NUMBERS[key]
    _NUMBERS[key] = True  # conservative while a recursive type is being explored
    if isinstance(v, bv.Integer | bv.Real):
        found = True
    elif isinstance(v, bv.Struct):
        subs = [f for _, f in v.definition._all_fields_]
        if isinstance(v, bv.StructTree):
            subs += [f for _, sub in v.definition._tag_to_subtype_.items() for _, f in sub.definition._all_fields_]
        found = any(_has_numbers(f) for f in subs)
    elif isinstance(v, bv.Union):
        found = any(_has_numbers(m) for m in v.definition._tagmap.values())
    elif isinstance(v, bv.List):
        found = _has_numbers(v.item_validator)
    else:
        found = False
    _NUMBERS[key] = found
    return found


def _reject_bool_ints(v: Any, obj: Any, where: str) -> None:
    """stone accepts `true` for an integer (bool is an int in Python); Dropbox does not."""
    v = _unwrap(v)
    if not _has_numbers(v):
        return
    if isinstance(v, bv.Integer | bv.Real) and isinstance(obj, bool):
        raise WireError(f"{where}: expected integer, got boolean".lstrip(": "))
    if isinstance(v, bv.Struct) and isinstance(obj, Mapping):
        if isinstance(v, bv.StructTree) and ".tag" in obj:
            fields = [*v.definition._all_fields_, *_subtype_fields(v, obj[".tag"]).items()]
        else:
            fields = _FIELDS.get(id(v)) or _FIELDS.setdefault(
                id(v), [(n, f) for n, f in v.definition._all_fields_ if _has_numbers(f)])
        for name, sub in fields:
            if name in obj:
                _reject_bool_ints(sub, obj[name], f"{where}.{name}" if where else name)
    elif isinstance(v, bv.Union) and isinstance(obj, Mapping):
        tag = obj.get(".tag")
        member = v.definition._tagmap.get(tag) if isinstance(tag, str) else None
        if member is not None:
            inner = _unwrap(member)
            if isinstance(inner, bv.Struct):
                _reject_bool_ints(inner, {k: x for k, x in obj.items() if k != ".tag"}, where)
            elif tag in obj:
                _reject_bool_ints(inner, obj[tag], where)
    elif isinstance(v, bv.List) and isinstance(obj, list):
        for item in obj:
            _reject_bool_ints(v.item_validator, item, where)


def _subtype_fields(v: Any, tag: Any) -> dict[str, Any]:
    for tags, sub in v.definition._tag_to_subtype_.items():
        if tags == (tag,):
            return dict(sub.definition._all_fields_)
    return {}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python accepts them, JSON does not


def decode_arg(validator: Any, raw: str | bytes | None) -> Any:
    """Decode a route argument (JSON text) strictly: unknown fields, bad types and patterns are errors."""
    if raw is None or (isinstance(raw, bytes | str) and not raw.strip()):
        # Dropbox wants `null` for a Void argument; an empty body is accepted there for curl users.
        if not isinstance(validator, bv.Void):
            raise WireError("could not decode input as JSON")
        obj: Any = None
    else:
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            obj = json.loads(text, parse_constant=_reject_constant)
            if "\\u" in text:
                # "\ud800" escapes can smuggle lone surrogates, which are not text: refuse them here
                # rather than fail later when the value is stored or compared.
                json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except (ValueError, UnicodeError, RecursionError):
            raise WireError("could not decode input as JSON") from None
    try:
        _reject_bool_ints(validator, obj, "")
        return ss.json_compat_obj_decode(validator, obj, strict=True)
    except bv.ValidationError as e:
        raise WireError(str(e)) from None
    except RecursionError:
        raise WireError("input is nested too deeply") from None


def decode_obj(validator: Any, obj: Any) -> Any:
    """A stone object from a JSON-compatible value (strict)."""
    return ss.json_compat_obj_decode(validator, obj, strict=True)


def encode(validator: Any, value: Any) -> str:
    return str(ss.json_encode(validator, value))


def build_union(validator: Any, tags: Sequence[str], payload: Mapping[str, Any] | None = None) -> Any:
    """A JSON-compatible union value from a tag path, validated against `validator`.

    A struct member takes `payload` as its fields (already JSON-compatible); a union member
    recurses into the remaining tags.  A tag the spec doesn't have raises KeyError: a bug to find
    in tests, never a value to send.
    """
    obj = _build(validator, list(tags), dict(payload or {}))
    ss.json_compat_obj_decode(validator, obj, strict=True)  # refuse anything a client would reject
    return obj


def _build(validator: Any, tags: list[str], payload: dict[str, Any]) -> Any:
    v = _unwrap(validator)
    if not isinstance(v, bv.Union):
        raise TypeError(f"{v!r} is not a union")
    tag = tags[0]
    member = v.definition._tagmap[tag]
    inner = _unwrap(member)
    rest = tags[1:]
    if isinstance(inner, bv.Void) or (isinstance(member, bv.Nullable) and not rest and not payload):
        return {".tag": tag}
    if isinstance(inner, bv.Struct):
        return {".tag": tag, **payload}
    if isinstance(inner, bv.Union):
        return {".tag": tag, tag: _build(inner, rest, payload)}
    return {".tag": tag, tag: payload["value"]}
