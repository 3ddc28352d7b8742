"""files/search_v2 and files/search/continue_v2 (file and folder names)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from localbox.api.context import Call, Services
from localbox.api.convert import search_result_json
from localbox.api.responses import json_ok
from localbox.services.search import CATEGORIES, SearchPage, SearchQuery


def _tags(values: list[Any] | None) -> tuple[str, ...] | None:
    # Strict decoding leaves only the spec's tags (never `other`); read each through its is_* method.
    if values is None:
        return None
    return tuple(next(c for c in CATEGORIES if getattr(v, f"is_{c}")()) for v in values)


async def search_v2(svc: Services, call: Call) -> Any:
    a = call.arg
    o = a.options
    mfo = a.match_field_options
    highlights = bool(mfo.include_highlights) if mfo is not None else bool(a.include_highlights)
    q = SearchQuery(query=a.query, highlights=highlights)
    if o is not None:
        q = SearchQuery(
            query=a.query, path=o.path, max_results=o.max_results,
            by_relevance=o.order_by is None or o.order_by.is_relevance(), deleted=o.file_status.is_deleted(),
            extensions=None if o.file_extensions is None else tuple(o.file_extensions),
            categories=_tags(o.file_categories), account_id=o.account_id, highlights=highlights,
        )
    return _result(await svc.search.search(call.caller, q))


async def search_continue_v2(svc: Services, call: Call) -> Any:
    return _result(await svc.search.search_continue(call.caller, call.arg.cursor))


def _result(page: SearchPage) -> Response:
    return json_ok(json.dumps(search_result_json(page)))


HANDLERS = {
    "files/search_v2": search_v2,
    "files/search/continue_v2": search_continue_v2,
}
