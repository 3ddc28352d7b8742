"""Signed cursors (#7): only a cursor sealed with the database's key, for the same kind, opens."""

from __future__ import annotations

import base64
import secrets

import pytest

from localbox.domain.errors import BadRequest
from localbox.services.cursors import seal, unseal
from localbox.services.mount_listing import Part, TeamCursor


def test_a_sealed_cursor_opens_with_its_kind_and_key_only() -> None:
    key, other = secrets.token_bytes(32), secrets.token_bytes(32)
    payload = b'["123","/docs",false,false,2000,5,null,""]'
    cursor = seal("AAH", key, payload)
    assert cursor.startswith("AAH") and "=" not in cursor
    assert unseal("AAH", key, cursor) == payload
    for bad_kind, bad_key in (("AAS", key), ("AAH", other)):
        with pytest.raises(ValueError):
            unseal(bad_kind, bad_key, cursor if bad_kind == "AAH" else "AAS" + cursor[3:])


@pytest.mark.parametrize("where", [0, 31, 32, 60])  # in the MAC, its last byte, the payload's first, later
def test_any_flipped_byte_is_refused(where: int) -> None:
    key = secrets.token_bytes(32)
    cursor = seal("AAH", key, b'["123","/docs",false,false,2000,5,null,""]')
    raw = bytearray(base64.urlsafe_b64decode(cursor[3:] + "=="))
    raw[where] ^= 0x01
    with pytest.raises(ValueError):
        unseal("AAH", key, "AAH" + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("="))


@pytest.mark.parametrize("text", ["", "AAH", "AAH!!!", "AAH" + "A" * 10, "garbage"])
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        unseal("AAH", secrets.token_bytes(32), text)


def test_team_root_cursors_round_trip_and_refuse_anything_else() -> None:
    key = secrets.token_bytes(32)
    c = TeamCursor("root", False, 5, (Part("root", "", 3, None), Part("home", "Bob", 7, 9)), 1, "/a")
    text = c.encode(key)
    assert text.startswith("AAT") and TeamCursor.decode(text, key) == c
    raw = bytearray(base64.urlsafe_b64decode(text[3:] + "=="))
    raw[40] ^= 0x01
    sealed_list_cursor = seal("AAH", key, b'["123","",true,false,2000,5,null,""]')
    # Tampered, relabelled from a plain listing's cursor, another key's, or well signed but ill-formed.
    for bad in ("AAT" + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("="), "AAT" + sealed_list_cursor[3:],
                TeamCursor("root", False, 5, c.parts, 1, None).encode(secrets.token_bytes(32)),
                TeamCursor("root", False, 5, (), 0, None).encode(key),
                TeamCursor("root", False, 5, c.parts[1:], 0, None).encode(key),
                TeamCursor("root", False, 5, c.parts, 3, None).encode(key),
                seal("AAT", key, b'{"not": "a list"}')):
        with pytest.raises(BadRequest):
            TeamCursor.decode(bad, key)
