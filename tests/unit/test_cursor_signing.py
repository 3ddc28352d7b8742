"""Signed cursors (#7): only a cursor sealed with the database's key, for the same kind, opens."""

from __future__ import annotations

import base64
import secrets

import pytest

from localbox.services.cursors import seal, unseal


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
