"""files/search_v2 by name: matching rules, filters, ranking and cursors.

Matching: the query is split on whitespace into terms; an entry matches when every term occurs,
case-insensitively (Dropbox's case mapping, `paths.lower`), in its name (the last path component).
Files and folders both match; `file_status: deleted` searches deletion markers instead.

Ranking (`order_by: relevance`, the default): first the entries where more terms start a word of
the name (at its start or after one of `WORD_BREAKS`: "rep" ranks "Q3 report.pdf" above
"prepare.txt"), then shorter names (the closer the name is to the query), then path order.
`last_modified_time`: newest `server_modified` first, then path order.

Filtering, ranking and paging happen in the store's query: a page reads at most `max_results + 1`
entries whatever the size of the namespace, and a cursor resumes after the last key returned.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from localbox.domain import paths
from localbox.domain.errors import BadRequest, CallError, PathLookupError
from localbox.domain.models import Entry, EntryKind
from localbox.services.access import can_access
from localbox.services.accounts import Caller
from localbox.services.cursors import CursorKey, seal, unseal
from localbox.services.files import resolve_tx
from localbox.stores.base import MetadataStore, MetadataTx, NameFilter, SearchKey

# FileCategory members as extension lists (Dropbox documents a few of each: "jpg, png, gif, and more").
CATEGORY_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image": ("jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp", "heic", "heif", "svg", "ico", "psd",
              "raw", "cr2", "nef", "arw", "dng", "jfif", "avif"),
    "document": ("doc", "docx", "docm", "dot", "dotx", "txt", "rtf", "odt", "ott", "md", "markdown", "pages",
                 "tex", "wpd", "wps", "epub", "gdoc", "web"),
    "pdf": ("pdf",),
    "spreadsheet": ("xls", "xlsx", "xlsm", "xlsb", "xlt", "xltx", "csv", "tsv", "ods", "ots", "numbers",
                    "gsheet"),
    "presentation": ("ppt", "pptx", "pptm", "pps", "ppsx", "pot", "potx", "odp", "otp", "key", "gslides"),
    "audio": ("mp3", "wav", "mid", "midi", "aac", "flac", "m4a", "ogg", "oga", "opus", "wma", "aif", "aiff",
              "amr", "ape"),
    "video": ("mov", "wmv", "mp4", "m4v", "avi", "mkv", "webm", "flv", "mpg", "mpeg", "3gp", "3g2", "ogv",
              "mts", "m2ts", "vob"),
    "paper": ("paper",),
}
_KNOWN = tuple(sorted({"." + e for exts in CATEGORY_EXTENSIONS.values() for e in exts}))
CATEGORIES = (*CATEGORY_EXTENSIONS, "folder", "others")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """SearchV2Arg as the core sees it (defaults applied by the edge)."""

    query: str
    path: str | None = None
    max_results: int = 100
    by_relevance: bool = True
    deleted: bool = False
    extensions: tuple[str, ...] | None = None
    categories: tuple[str, ...] | None = None
    account_id: str | None = None
    highlights: bool = False


@dataclass(frozen=True, slots=True)
class Match:
    entry: Entry
    spans: list[tuple[str, bool]] | None  # the name cut into (text, highlighted) runs, when asked for


@dataclass(frozen=True, slots=True)
class SearchPage:
    matches: list[Match]
    has_more: bool
    cursor: str | None


def name_filters(q: SearchQuery) -> list[NameFilter]:
    """The kinds and extensions an entry may have.  Extensions and categories both restrict (an
    entry must satisfy both).  They apply to active search only, as Dropbox documents: a search for
    deleted entries ignores them."""
    if q.deleted:
        return [NameFilter(EntryKind.DELETED.value)]
    # An empty list restricts nothing, like an absent one.
    exts = None if not q.extensions else tuple(sorted({"." + paths.lower(e.lstrip(".")) for e in q.extensions
                                                           if e.lstrip(".")}))
    if not q.categories:
        if exts is None:
            return [NameFilter(EntryKind.FILE.value), NameFilter(EntryKind.FOLDER.value)]
        return [NameFilter(EntryKind.FILE.value, exts)]
    filters: list[NameFilter] = []
    cats = set(q.categories)
    wanted = {"." + e for c in cats & set(CATEGORY_EXTENSIONS) for e in CATEGORY_EXTENSIONS[c]}
    if wanted:
        suffixes = tuple(sorted(wanted if exts is None else wanted & set(exts)))
        if suffixes:
            filters.append(NameFilter(EntryKind.FILE.value, suffixes))
    if "others" in cats:
        if exts is None:
            filters.append(NameFilter(EntryKind.FILE.value, None, _KNOWN))
        elif others := tuple(e for e in exts if e not in _KNOWN):
            filters.append(NameFilter(EntryKind.FILE.value, others))
    if "folder" in cats and exts is None:
        filters.append(NameFilter(EntryKind.FOLDER.value))
    return filters


def highlight(name: str, terms: Sequence[str]) -> list[tuple[str, bool]]:
    """`name` cut into runs, highlighted where a term occurs (case-insensitively)."""
    low_chars = [paths.lower(c) for c in name]
    owner = [i for i, lc in enumerate(low_chars) for _ in lc]  # lowered position -> name position
    low = "".join(low_chars)
    marked = [False] * len(name)
    for term in terms:
        start = low.find(term)
        while start >= 0 and term:
            for pos in range(start, start + len(term)):
                marked[owner[pos]] = True
            start = low.find(term, start + len(term))
    runs: list[tuple[str, bool]] = []
    for ch, hit in zip(name, marked, strict=True):
        if runs and runs[-1][1] == hit:
            runs[-1] = (runs[-1][0] + ch, hit)
        else:
            runs.append((ch, hit))
    return runs


@dataclass(frozen=True, slots=True)
class _Cursor:
    namespace_id: str
    under: str
    terms: tuple[str, ...]
    filters: tuple[NameFilter, ...]
    by_relevance: bool
    limit: int
    highlights: bool
    after: SearchKey | None

    def encode(self, key: bytes) -> str:
        filters = [[f.kind, f.suffixes, f.exclude] for f in self.filters]
        raw = json.dumps([self.namespace_id, self.under, self.terms, filters, self.by_relevance, self.limit,
                          self.highlights, self.after], separators=(",", ":")).encode()
        return seal("AAS", key, raw)

    @staticmethod
    def decode(text: str, key: bytes) -> _Cursor:
        try:
            ns, under, terms, filters, rel, limit, hl, after = json.loads(unseal("AAS", key, text))
            return _Cursor(
                str(ns), str(under), tuple(str(t) for t in terms),
                tuple(NameFilter(str(k), None if s is None else tuple(map(str, s)), tuple(map(str, x)))
                      for k, s, x in filters),
                bool(rel), int(limit), bool(hl),
                None if after is None else (float(after[0]), int(after[1]), str(after[2])))
        except (ValueError, TypeError, IndexError, UnicodeDecodeError) as e:
            raise BadRequest('Invalid "cursor" parameter') from e


class SearchService:
    def __init__(self, store: MetadataStore, cursor_key: CursorKey | None = None) -> None:
        self.store = store
        self.cursor_key = cursor_key or CursorKey(store)

    async def search(self, caller: Caller, q: SearchQuery) -> SearchPage:
        """The first page.  Raises CallError("invalid_argument") for a query without terms and
        PathLookupError for a `path` that is not a folder."""
        terms = tuple(dict.fromkeys(paths.lower(t) for t in q.query.split()))
        if not terms:
            raise CallError("invalid_argument", payload={"value": "The search query must not be empty."})
        filters = tuple(name_filters(q))
        key = await self.cursor_key.get()

        def _first(tx: MetadataTx) -> SearchPage:
            ns, entry, ref = resolve_tx(tx, caller, q.path or "")
            if ref.is_root:
                under = ""
            elif entry is None:
                raise PathLookupError("not_found")
            elif entry.kind != EntryKind.FOLDER:
                raise PathLookupError("not_folder")
            else:
                under = entry.path_lower
            # Every entry of a localbox namespace was written by its owner: asking for the entries of
            # anyone else finds nothing.
            kinds = filters if q.account_id in (None, caller.account.account_id) else ()
            cursor = _Cursor(ns, under, terms, kinds, q.by_relevance, q.max_results, q.highlights, None)
            return _page(tx, cursor, key)

        return await self.store.read(_first)

    async def search_continue(self, caller: Caller, cursor_text: str) -> SearchPage:
        key = await self.cursor_key.get()
        cursor = _Cursor.decode(cursor_text, key)

        def _next(tx: MetadataTx) -> SearchPage:
            if not can_access(tx, caller, cursor.namespace_id):
                raise BadRequest('Invalid "cursor" parameter')
            return _page(tx, cursor, key)

        return await self.store.read(_next)


def _page(tx: MetadataTx, c: _Cursor, key: bytes) -> SearchPage:
    rows = tx.search_entries(c.namespace_id, c.under, c.terms, c.filters, by_relevance=c.by_relevance,
                             after=c.after, limit=c.limit + 1) if c.filters else []
    more = len(rows) > c.limit
    rows = rows[: c.limit]
    matches = [Match(e, highlight(e.name, c.terms) if c.highlights else None) for e, _ in rows]
    nxt = None
    if more:
        nxt = _Cursor(c.namespace_id, c.under, c.terms, c.filters, c.by_relevance, c.limit, c.highlights,
                      rows[-1][1]).encode(key)
    return SearchPage(matches, more, nxt)
