"""Signed cursors (#7): list_folder, get_latest_cursor and search cursors carry an HMAC-SHA256 of
their content, so that a client cannot hand-make one.  files/list_folder/longpoll takes no token:
without the signature, any namespace id put into a cursor would tell whether that namespace changed.

The key is one per database, kept in its meta table (which resets keep) and made by whichever node
needs it first, so cursors stay valid across restarts, resets and every node sharing the database.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets

from localbox.stores.base import MetadataStore

SETTING = "cursor_key"
_MAC = 32  # bytes of HMAC-SHA256


def seal(kind: str, key: bytes, payload: bytes) -> str:
    """`kind` (a short tag such as "AAH") + unpadded base64url of MAC || payload.  The MAC covers the
    kind too: a cursor of one route is not accepted by another."""
    mac = hmac.new(key, kind.encode() + b"\0" + payload, hashlib.sha256).digest()
    return kind + base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")


def unseal(kind: str, key: bytes, text: str) -> bytes:
    """The payload of a cursor `seal` made with this kind and key; ValueError for anything else."""
    if not text.startswith(kind):
        raise ValueError("not a cursor of this kind")
    body = text[len(kind):]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as e:
        raise ValueError("not base64") from e
    mac, payload = raw[:_MAC], raw[_MAC:]
    expected = hmac.new(key, kind.encode() + b"\0" + payload, hashlib.sha256).digest()
    if len(mac) != _MAC or not hmac.compare_digest(mac, expected):
        raise ValueError("bad signature")
    return payload


class CursorKey:
    """The database's cursor key, read (or made) once per process: it never changes."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self._key: bytes | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> bytes:
        if self._key is not None:
            return self._key
        async with self._lock:
            if self._key is None:
                value = await self.store.read(lambda tx: tx.get_setting(SETTING))
                if value is None:
                    fresh = secrets.token_hex(32)
                    value = await self.store.run(lambda tx: tx.setting_or_default(SETTING, fresh))
                self._key = bytes.fromhex(value)
            return self._key
