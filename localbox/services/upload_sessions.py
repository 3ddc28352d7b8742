"""Upload sessions: start, append, finish, and the batch commits (Dropbox semantics live here).

Bytes go to the BlobStore first (durable blocks plus a durable staged tail), then one metadata
transaction moves the session forward with a compare-and-set on its offset.  A commit only writes
metadata: the file is the session's list of block digests.  Appends to one sequential session are
serialized by a per-session lock held for the whole request, so two racing appends can never
interleave bytes; pieces of a concurrent session are independent blocks and take no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from localbox.domain import paths
from localbox.domain.content_hash import BLOCK_SIZE, ContentHasher, hash_from_digests
from localbox.domain.errors import (
    CallError,
    DomainError,
    SessionLookupError,
    StoreUnavailable,
    WriteFailure,
    incorrect_offset,
)
from localbox.domain.models import Entry, Piece, SessionState, SessionType, UploadSession
from localbox.services.account_limits import DEFAULT_MAX_OPEN_SESSIONS, check_open_sessions
from localbox.services.accounts import Caller
from localbox.services.batch_tx import BufferedTx
from localbox.services.files import CommitSpec, Content, FolderCache, commit_file_tx
from localbox.services.mounts import locate_tx, write_namespaces
from localbox.services.session_leases import NoSessionLeases, SessionLeases
from localbox.services.write_locks import LocalNamespaceLocks, NamespaceBusy, NamespaceLocks
from localbox.stores.base import BlobStore, BodyTooLarge, MetadataStore, MetadataTx, StagedAppend

MAX_REQUEST_BODY = 150 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SessionLimits:
    ttl_seconds: float = 7 * 24 * 3600
    max_session_size: int = 2**41 - 2**22  # files.stone; older docs said 350 GB
    max_request_body: int = MAX_REQUEST_BODY
    max_open_sessions: int = DEFAULT_MAX_OPEN_SESSIONS  # per account (account_limits.py); 0: none


@dataclass(frozen=True, slots=True)
class Body:
    """A request body as a stream, with its declared length when the client sent one."""

    chunks: AsyncIterator[bytes]
    length: int | None


@dataclass(frozen=True, slots=True)
class FinishEntry:
    session_id: str
    offset: int
    commit: CommitSpec


EntryOutcome = Entry | DomainError


def new_session_id() -> str:
    return "pid_upload_session:" + secrets.token_urlsafe(36)


class _Locks:
    """Per-key asyncio locks that disappear when nobody holds or waits for them."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, n = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, n + 1)
        try:
            async with lock:
                yield
        finally:
            lock, n = self._locks[key]
            if n == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, n - 1)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


class UploadSessionService:
    def __init__(self, store: MetadataStore, blobs: BlobStore, limits: SessionLimits,
                 write_locks: NamespaceLocks | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.limits = limits
        self._locks = _Locks()
        # Across nodes (#5): SessionLeases when the store is shared by several servers.
        self.leases: NoSessionLeases | SessionLeases = NoSessionLeases()
        self.write_locks = write_locks or LocalNamespaceLocks()
        self._cleanups: set[asyncio.Task[None]] = set()

    # -- helpers -----------------------------------------------------------------------------
    def _discard_soon(self, session_id: str) -> None:
        """Clean up after a call the blob store failed, off that call's path: the client gets its 503
        now rather than after a failing store has also refused (or timed out on) the clean-up.  Best
        effort: nothing refers to these bytes, and the collector removes whatever is left."""

        async def discard() -> None:
            with contextlib.suppress(Exception):
                await self.blobs.discard_staging(session_id)

        task = asyncio.ensure_future(discard())
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    def _check_length(self, body: Body) -> None:
        if body.length is not None and body.length > self.limits.max_request_body:
            raise CallError("payload_too_large")

    async def _load(self, caller: Caller, session_id: str) -> UploadSession:
        now = time.time()
        return await self.store.read(lambda tx: _live_session(tx, caller.account.account_id, session_id, now))

    @staticmethod
    def _check_hash(expected: str | None, actual: str) -> None:
        if expected is not None and expected != actual:
            raise CallError("content_hash_mismatch")

    async def _stage_sequential(
        self, session: UploadSession, body: Body, *, seal: bool, want_hash: bool,
    ) -> tuple[StagedAppend, str | None]:
        """Stream `body` onto the session's staged bytes; returns what was stored and the call's hash."""
        tail = session.offset - len(session.blocks) * BLOCK_SIZE
        room = self.limits.max_session_size - session.offset
        if body.length is not None and body.length > room:
            raise SessionLookupError("too_large")
        # Only an unaligned call needs its own hash pass; an aligned one reuses the block digests.
        hasher = ContentHasher() if want_hash and tail else None
        limit = min(self.limits.max_request_body, room)
        try:
            staged = await self.blobs.append_staged(
                session.session_id, len(session.blocks), tail, body.chunks, limit,
                hasher.update if hasher else None, seal=seal,
            )
        except BodyTooLarge:
            if room < self.limits.max_request_body:
                raise SessionLookupError("too_large") from None
            raise CallError("payload_too_large") from None
        if not want_hash:
            return staged, None
        if hasher is not None:
            return staged, hasher.hexdigest()
        digests = list(staged.new_blocks)
        if staged.tail_length:
            digests.append(staged.tail_digest)
        return staged, hash_from_digests(digests)

    @staticmethod
    def _advanced(session: UploadSession, staged: StagedAppend, close: bool) -> UploadSession:
        return UploadSession(
            session_id=session.session_id, account_id=session.account_id, session_type=session.session_type,
            offset=session.offset + staged.received, closed=session.closed or close, created=session.created,
            expires=session.expires, blocks=[*session.blocks, *staged.new_blocks], state=session.state,
        )

    async def sweep_expired(self, batch: int = 1000) -> int:
        """Forget expired sessions and delete their staged bytes; returns how many went.

        Blocks they completed are shared by content: the garbage collector (services/gc.py) reclaims
        those that nothing else refers to.
        """
        swept = 0
        while True:
            ids = await self.store.run(partial(_delete_expired, now=time.time(), limit=batch))
            for session_id in ids:
                await self.blobs.discard_staging(session_id)
            swept += len(ids)
            if len(ids) < batch:
                return swept

    # -- start -------------------------------------------------------------------------------
    async def start(
        self, caller: Caller, *, close: bool, session_type: SessionType, content_hash: str | None, body: Body,
    ) -> str:
        now = time.time()
        session = UploadSession(
            session_id=new_session_id(), account_id=caller.account.account_id, session_type=session_type,
            offset=0, closed=False, created=now, expires=now + self.limits.ttl_seconds,
        )
        if session_type == SessionType.CONCURRENT:
            if close:
                raise CallError("concurrent_session_close_not_allowed")
            if body.length:
                raise CallError("concurrent_session_data_not_allowed")
            async for chunk in body.chunks:
                if chunk:
                    raise CallError("concurrent_session_data_not_allowed")
            # The hash covers "the file content uploaded in this call": none, so sha256(b"").
            self._check_hash(content_hash, hash_from_digests([]))
        else:
            self._check_length(body)
            try:
                staged, call_hash = await self._stage_sequential(
                    session, body, seal=close, want_hash=content_hash is not None)
                self._check_hash(content_hash, call_hash or "")
            except StoreUnavailable:
                self._discard_soon(session.session_id)
                raise
            except BaseException:
                await self.blobs.discard_staging(session.session_id)
                raise
            session = self._advanced(session, staged, close)

        def _insert_within_limit(tx: MetadataTx) -> None:
            check_open_sessions(tx, session.account_id, now, 1, self.limits.max_open_sessions)
            tx.insert_session(session)

        try:
            await self.store.run(_insert_within_limit)
        except BaseException:
            await self.blobs.discard_staging(session.session_id)
            raise
        return session.session_id

    async def start_batch(self, caller: Caller, *, session_type: SessionType, count: int) -> list[str]:
        now = time.time()
        sessions = [
            UploadSession(session_id=new_session_id(), account_id=caller.account.account_id,
                          session_type=session_type, offset=0, closed=False, created=now,
                          expires=now + self.limits.ttl_seconds)
            for _ in range(count)
        ]

        def _insert(tx: MetadataTx) -> None:
            check_open_sessions(tx, caller.account.account_id, now, count, self.limits.max_open_sessions)
            for s in sessions:
                tx.insert_session(s)

        await self.store.run(_insert)
        return [s.session_id for s in sessions]

    # -- append ------------------------------------------------------------------------------
    async def append(
        self, caller: Caller, session_id: str, offset: int, *, close: bool, content_hash: str | None, body: Body,
    ) -> None:
        self._check_length(body)
        session = await self._load(caller, session_id)
        if session.session_type == SessionType.CONCURRENT:
            # Pieces are independent blocks recorded in one transaction each: no lock, full parallelism.
            await self._append_concurrent(session, offset, close, content_hash, body)
            return
        async with self._locks.hold(session_id), self.leases.hold(session_id):
            session = await self._load(caller, session_id)
            if session.closed:
                raise SessionLookupError("closed")
            if offset != session.offset:
                raise incorrect_offset(session.offset)
            staged, call_hash = await self._stage_sequential(
                session, body, seal=close, want_hash=content_hash is not None)
            self._check_hash(content_hash, call_hash or "")
            await self._save(session, self._advanced(session, staged, close))

    async def append_batch(
        self, caller: Caller, items: list[tuple[str, int, int, bool]], *, content_hash: str | None, body: Body,
    ) -> list[SessionLookupError | None]:
        """append_batch: the body is the entries' data back to back; each entry succeeds on its own.

        The body (at most 150 MiB) is read whole first: its content_hash covers every entry, and
        no entry may be applied before that hash is known to match.
        """
        self._check_length(body)
        total = sum(length for _, _, length, _ in items)
        if body.length is not None and body.length != total:
            raise CallError("length_mismatch")
        parts: list[bytes] = []
        size = 0
        async for chunk in body.chunks:
            size += len(chunk)
            if size > self.limits.max_request_body:
                raise CallError("payload_too_large")
            parts.append(chunk)
        data = b"".join(parts)
        del parts
        if len(data) != total:
            raise CallError("length_mismatch")
        if content_hash is not None:
            hasher = ContentHasher()
            hasher.update(data)
            self._check_hash(content_hash, hasher.hexdigest())
        outcomes: list[SessionLookupError | None] = []
        pos = 0
        for session_id, offset, length, close in items:
            piece = data[pos : pos + length]
            pos += length
            try:
                await self.append(caller, session_id, offset, close=close, content_hash=None,
                                  body=Body(_once(piece), length))
                outcomes.append(None)
            except SessionLookupError as e:
                outcomes.append(e)
        return outcomes

    async def _save(self, before: UploadSession, after: UploadSession) -> None:
        if not await self.store.run(lambda tx: tx.update_session(after, before.offset)):
            raise incorrect_offset(before.offset)  # pragma: no cover - the session lock prevents this
        if len(after.blocks) > len(before.blocks):
            await self.blobs.discard_staging(after.session_id, below_index=len(after.blocks))

    async def _append_concurrent(
        self, session: UploadSession, offset: int, close: bool, content_hash: str | None, body: Body,
    ) -> None:
        if offset % BLOCK_SIZE:
            raise SessionLookupError("concurrent_session_invalid_offset")
        if session.closed and offset >= session.offset:
            raise SessionLookupError("closed")
        if not close and body.length is not None and body.length % BLOCK_SIZE:
            raise SessionLookupError("concurrent_session_invalid_data_size")
        room = self.limits.max_session_size - offset
        if body.length is not None and body.length > room:
            raise SessionLookupError("too_large")
        try:
            blocks, size = await self.blobs.put_blocks(body.chunks, min(self.limits.max_request_body, room))
        except BodyTooLarge:
            if room < self.limits.max_request_body:
                raise SessionLookupError("too_large") from None
            raise CallError("payload_too_large") from None
        if not close and size % BLOCK_SIZE:
            raise SessionLookupError("concurrent_session_invalid_data_size")
        self._check_hash(content_hash, hash_from_digests(blocks))
        piece = Piece(offset=offset, length=size, blocks=blocks)

        def _record(tx: MetadataTx) -> None:
            current = _live_session(tx, session.account_id, session.session_id, time.time())
            if current.closed and (close or offset >= current.offset):
                raise SessionLookupError("closed")
            tx.insert_piece(session.session_id, piece)
            if close:
                expected = current.offset
                current.closed = True
                current.offset = offset + size
                tx.update_session(current, expected)

        await self.store.run(_record)

    # -- finish ------------------------------------------------------------------------------
    async def finish(
        self, caller: Caller, session_id: str, offset: int, commit: CommitSpec, *,
        content_hash: str | None, body: Body,
    ) -> Entry:
        """upload_session/finish: optional last data, then commit.  A path failure keeps the data."""
        self._check_length(body)
        async with self._locks.hold(session_id), self.leases.hold(session_id):
            session = await self._load(caller, session_id)
            if session.session_type == SessionType.CONCURRENT:
                if body.length:
                    raise CallError("concurrent_session_data_not_allowed")
                async for chunk in body.chunks:
                    if chunk:
                        raise CallError("concurrent_session_data_not_allowed")
                self._check_hash(content_hash, hash_from_digests([]))
                return await self._commit_one(caller, FinishEntry(session_id, offset, commit), require_closed=False)
            if offset != session.offset:
                raise incorrect_offset(session.offset)
            if session.closed:
                staged, call_hash = await self._consume_empty(body, content_hash is not None)
                self._check_hash(content_hash, call_hash or "")
            else:
                staged, call_hash = await self._stage_sequential(
                    session, body, seal=True, want_hash=content_hash is not None)
                self._check_hash(content_hash, call_hash or "")
                after = self._advanced(session, staged, True)
                await self._save(session, after)
            return await self._commit_one(
                caller, FinishEntry(session_id, session.offset + staged.received, commit), require_closed=False)

    async def _consume_empty(self, body: Body, want_hash: bool) -> tuple[StagedAppend, str | None]:
        async for chunk in body.chunks:
            if chunk:
                raise SessionLookupError("closed")
        return StagedAppend((), 0, b"", 0), (hash_from_digests([]) if want_hash else None)

    async def upload(self, caller: Caller, commit: CommitSpec, *, content_hash: str | None, body: Body) -> Entry:
        """files/upload: a one-shot session.  On a path failure the session stays for a later finish."""
        session_id = await self.start(
            caller, close=True, session_type=SessionType.SEQUENTIAL, content_hash=content_hash, body=body)
        session = await self._load(caller, session_id)
        try:
            return await self._commit_one(caller, FinishEntry(session_id, session.offset, commit), require_closed=True)
        except WriteFailure as e:
            e.payload["upload_session_id"] = session_id
            raise

    async def _commit_one(self, caller: Caller, entry: FinishEntry, *, require_closed: bool) -> Entry:
        try:
            targets = set(await write_namespaces(self.store, caller, [entry.commit.path]))
            async with self.write_locks.hold(targets) as held:
                def _commit(tx: MetadataTx) -> list[EntryOutcome]:
                    held.take_all(tx, targets)
                    return commit_entries_tx(tx, caller, [entry], require_closed)

                [outcome] = await self.store.run(_commit)
        except NamespaceBusy as busy:
            raise busy.rate_limited() from None
        if isinstance(outcome, DomainError):
            raise outcome
        await self.blobs.discard_staging(entry.session_id)
        return outcome


def _delete_expired(tx: MetadataTx, now: float, limit: int) -> list[str]:
    return tx.delete_expired_sessions(now, limit)


def _live_session(tx: MetadataTx, account_id: str, session_id: str, now: float) -> UploadSession:
    """The session if it exists, belongs to the account, is not committed and has not expired."""
    s = tx.get_session(session_id)
    if s is None or s.account_id != account_id or s.state != SessionState.OPEN or now > s.expires:
        raise SessionLookupError("not_found")
    return s


def _session_content(tx: MetadataTx, s: UploadSession) -> Content:
    if s.session_type == SessionType.SEQUENTIAL:
        return Content(size=s.offset, blocks=tuple(s.blocks))
    blocks: list[bytes] = []
    pos = 0
    for piece in tx.list_pieces(s.session_id):
        if piece.offset > pos or pos >= s.offset:
            break
        if piece.offset < pos:
            continue  # a retried piece that was already covered
        blocks.extend(piece.blocks)
        pos += piece.length
    if pos != s.offset:
        raise CallError("concurrent_session_missing_data")
    return Content(size=pos, blocks=tuple(blocks))


def _prefetch(view: BufferedTx, caller: Caller, entries: list[FinishEntry]) -> None:
    """Read every session of the batch, and every entry the commit rules will look at (each target
    path and its ancestors, in the namespace the path resolves to), in a few queries."""
    view.prefetch_sessions([e.session_id for e in entries])
    wanted: dict[str, list[str]] = {}
    for e in entries:
        try:
            ref = paths.parse(e.commit.path, for_write=True)
            if ref.file_id is not None or ref.rev is not None:
                continue
            at = locate_tx(view, caller, ref, WriteFailure)
        except DomainError:
            continue  # commit_file_tx reports it for that entry
        lower = ""
        for name in at.names:
            lower += "/" + paths.lower(name)
            wanted.setdefault(at.namespace_id, []).append(lower)
    for ns, path_lowers in wanted.items():
        view.prefetch_entries(ns, path_lowers)


def commit_entries_tx(
    tx: MetadataTx, caller: Caller, entries: list[FinishEntry], require_closed: bool,
) -> list[EntryOutcome]:
    """Commit finish entries in order, each on its own: a failure never affects the others.

    The reads and writes of the whole batch go through one BufferedTx (a few statements for the batch
    rather than several per entry); the rules are those of commit_file_tx, entry after entry."""
    now = time.time()
    view = BufferedTx(tx)
    _prefetch(view, caller, entries)
    outcomes: list[EntryOutcome] = []
    known: FolderCache = {}
    for e in entries:
        try:
            s = _live_session(view, caller.account.account_id, e.session_id, now)
            if s.session_type == SessionType.CONCURRENT:
                if not s.closed:
                    raise CallError("concurrent_session_not_closed")
            elif require_closed and not s.closed:
                raise SessionLookupError("not_closed")
            if e.offset != s.offset:
                raise incorrect_offset(s.offset)
            content = _session_content(view, s)
            entry = commit_file_tx(view, caller, e.commit, content, now, known)
            view.mark_session(s.session_id, SessionState.COMMITTED)
            outcomes.append(entry)
        except DomainError as err:
            outcomes.append(err)
    view.flush()
    return outcomes
