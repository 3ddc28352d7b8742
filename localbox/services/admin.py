"""State operations of the admin API (test servers): reset everything or one account, and the
`expired_session` fault.  Everything goes through metadata transactions; file bytes of a disk store
are left to block garbage collection (only a memory store is wiped, by the `wipe_blobs` it is given)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable

from localbox.domain.models import Account
from localbox.services.access import RootInfo, root_info_tx
from localbox.services.accounts import Caller
from localbox.stores.base import BlobStore, MetadataStore, MetadataTx


class AdminService:
    def __init__(self, store: MetadataStore, blobs: BlobStore, wipe_blobs: Callable[[], None] | None = None,
                 reseed: Callable[[], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.wipe_blobs = wipe_blobs
        self.reseed = reseed  # applies the server's --seed again after a full reset

    async def find_account(self, who: str) -> Account | None:
        """An account by email (any case) or account id."""
        def _find(tx: MetadataTx) -> Account | None:
            return tx.get_account(who) or tx.get_account_by_email(who)

        return await self.store.read(_find)

    async def root_info(self, account: Account) -> RootInfo:
        """The account's current root info (an injected invalid_root carries it, as Dropbox's does)."""
        return await self.store.read(lambda tx: root_info_tx(tx, account))

    async def reset_all(self, *, reseed: bool = True) -> None:
        await self.store.run(lambda tx: tx.reset_all())
        if self.wipe_blobs is not None:
            self.wipe_blobs()
        if reseed and self.reseed is not None:
            await self.reseed()

    async def reset_account(self, account_id: str) -> int:
        """Forget the account and all it owns; returns how many upload sessions went with it."""
        sessions = await self.store.run(lambda tx: tx.reset_account(account_id))
        for session_id in sessions:
            await self.blobs.discard_staging(session_id)
        return len(sessions)

    async def expire_sessions(self, caller: Caller, session_ids: Iterable[str]) -> None:
        """Make the caller's sessions among `session_ids` expired, as if their lifetime had run out."""
        wanted = list(session_ids)
        past = time.time() - 1

        def _expire(tx: MetadataTx) -> None:
            for session_id in wanted:
                session = tx.get_session(session_id)
                if session is not None and session.account_id == caller.account.account_id:
                    tx.set_session_expiry(session_id, past)

        await self.store.run(_expire)
