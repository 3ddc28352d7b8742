"""Change-feed routes: files/list_folder/get_latest_cursor and files/list_folder/longpoll."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from localbox.api.context import Call, Services
from localbox.domain.errors import BadRequest
from localbox.spec import files


async def list_folder_get_latest_cursor(svc: Services, call: Call) -> Any:
    a = call.arg
    if a.path == "/":
        raise BadRequest('request body: path: Specify the root folder as an empty string rather than as "/".')
    cursor = await svc.changes.latest_cursor(call.caller, a.path, recursive=bool(a.recursive),
                                             include_deleted=bool(a.include_deleted), limit=a.limit)
    return files.ListFolderGetLatestCursorResult(cursor=cursor)


async def list_folder_longpoll(svc: Services, call: Call) -> Any:
    """Noauth: the cursor is the credential.  The wait ends early if the client goes away, so a
    dropped connection does not keep a waiter for up to eight minutes."""
    poll = asyncio.ensure_future(svc.changes.longpoll(call.arg.cursor, float(call.arg.timeout)))
    gone = asyncio.ensure_future(_disconnected(call.request))
    try:
        await asyncio.wait({poll, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (poll, gone):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    if not poll.done() or poll.cancelled():
        return Response(status_code=499)  # nobody is listening any more
    return files.ListFolderLongpollResult(changes=poll.result())


async def _disconnected(request: Request) -> None:
    """Returns once the client has disconnected (the request body was already read in full)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


HANDLERS = {
    "files/list_folder/get_latest_cursor": list_folder_get_latest_cursor,
    "files/list_folder/longpoll": list_folder_longpoll,
}
