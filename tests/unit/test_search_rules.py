"""search_v2 rules: the store's name query against a plain-Python reference, filters, highlights,
and the hand-built result JSON pinned to stone."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localbox.api.convert import metadata, search_result_json
from localbox.domain import paths
from localbox.domain.models import Entry, EntryKind
from localbox.services.search import Match, SearchPage, SearchQuery, highlight, name_filters
from localbox.spec import encode, files
from localbox.stores.base import WORD_BREAKS, NameFilter
from localbox.stores.sqlite import SqliteMetadataStore

pytestmark = pytest.mark.unit

_ns = itertools.count(1)
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteMetadataStore]:
    s = SqliteMetadataStore(Path(tmp_path_factory.mktemp("search")) / "metadata.sqlite3")
    yield s
    asyncio.run(s.close())


# Names from a small alphabet, so that terms, word breaks and suffixes collide often.
small_names = st.text("abAB .-_(x", min_size=1, max_size=8).filter(lambda n: n.strip(".") != "" and n not in (".",))
terms = st.lists(st.text("abx", min_size=1, max_size=2), min_size=1, max_size=2)
kinds = st.sampled_from([EntryKind.FILE, EntryKind.FOLDER, EntryKind.DELETED])


def _reference(entries: list[Entry], under: str, ts: list[str], filters: list[NameFilter],
               by_relevance: bool) -> list[str]:
    def ends(name: str, suffixes: tuple[str, ...]) -> bool:
        return any(name.endswith(s) and len(name) > len(s) for s in suffixes)

    def passes(e: Entry) -> bool:
        name = e.path_lower.rsplit("/", 1)[1]
        return any(f.kind == e.kind.value and (f.suffixes is None or ends(name, f.suffixes))
                   and not ends(name, f.exclude) for f in filters)

    def key(e: Entry) -> tuple[float, int, str]:
        name = e.path_lower.rsplit("/", 1)[1]
        if not by_relevance:
            return (-e.server_modified, 0, e.path_lower)
        starts = sum(name.startswith(t) or any(b + t in name for b in WORD_BREAKS) for t in ts)
        return (-starts, len(name), e.path_lower)

    hits = [e for e in entries if e.path_lower.startswith(under + "/")
            and all(t in e.path_lower.rsplit("/", 1)[1] for t in ts) and passes(e)]
    return [e.path_lower for e in sorted(hits, key=key)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(small_names, min_size=1, max_size=3), kinds, st.integers(0, 3)),
                max_size=25),
       terms, st.booleans(), st.integers(1, 4),
       st.lists(st.tuples(kinds, st.none() | st.lists(st.sampled_from([".a", ".b", ".ab", "x"]), max_size=2),
                          st.lists(st.sampled_from([".a", ".b"]), max_size=2)), min_size=1, max_size=3))
def test_search_entries_matches_the_reference(store: SqliteMetadataStore, raw, ts, by_relevance, page_size,
                                              raw_filters) -> None:
    ns = str(next(_ns))
    entries: dict[str, Entry] = {}
    for names, kind, modified in raw:
        display = "".join("/" + n for n in names)
        lower = paths.lower(display)
        entries[lower] = Entry(namespace_id=ns, path_lower=lower, path_display=display, name=names[-1],
                               kind=kind, id=f"id:{next(_ids)}", seq=1, server_modified=float(modified))

    def _put(tx) -> None:  # type: ignore[no-untyped-def]
        for e in entries.values():
            tx.put_entry(e)

    store.run_sync(_put)
    filters = [NameFilter(k.value, None if s is None else tuple(s), tuple(x)) for k, s, x in raw_filters]
    lowered = [paths.lower(t) for t in ts]
    for under in ("", *sorted({e.path_lower.rsplit("/", 1)[0] for e in entries.values()} - {""})[:2]):
        expected = _reference(list(entries.values()), under, lowered, filters, by_relevance)
        got: list[str] = []
        after = None
        while True:
            rows = store.run_sync(lambda tx, a=after, u=under: tx.search_entries(  # type: ignore[misc]
                ns, u, lowered, filters, by_relevance=by_relevance, after=a, limit=page_size))
            got += [e.path_lower for e, _ in rows]
            if len(rows) < page_size:
                break
            after = rows[-1][1]
        assert got == expected


def test_name_filters_combine_extensions_and_categories() -> None:
    def f(**kw) -> list[NameFilter]:  # type: ignore[no-untyped-def]
        return name_filters(SearchQuery(query="x", **kw))

    assert f() == [NameFilter("file"), NameFilter("folder")]
    assert f(extensions=()) == f(categories=()) == f()
    assert f(extensions=("PDF", ".txt", "")) == [NameFilter("file", (".pdf", ".txt"))]
    assert f(categories=("pdf", "folder")) == [NameFilter("file", (".pdf",)), NameFilter("folder")]
    assert f(categories=("folder",), extensions=("pdf",)) == []
    assert f(categories=("image",), extensions=("png", "pdf")) == [NameFilter("file", (".png",))]
    others = f(categories=("others",))
    assert len(others) == 1 and others[0].suffixes is None and ".pdf" in others[0].exclude
    assert f(categories=("others",), extensions=("weird", "pdf")) == [NameFilter("file", (".weird",))]
    assert f(deleted=True, extensions=("pdf",)) == [NameFilter("deleted")]


def test_highlight_examples() -> None:
    assert highlight("Q3 Report.pdf", ["rep", "q3"]) == [("Q3", True), (" ", False), ("Rep", True),
                                                          ("ort.pdf", False)]
    assert highlight("aaa", ["aa"]) == [("aa", True), ("a", False)]
    assert highlight("abc", ["x"]) == [("abc", False)]
    assert highlight("ÄÖ", ["ö"]) == [("Ä", False), ("Ö", True)]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=30), st.lists(st.text(min_size=1, max_size=3), max_size=3))
def test_highlight_spans_cover_the_name(name: str, ts: list[str]) -> None:
    lowered = [paths.lower(t) for t in ts]
    runs = highlight(name, lowered)
    assert "".join(text for text, _ in runs) == name
    assert all(a[1] != b[1] for a, b in itertools.pairwise(runs))
    low = "".join(paths.lower(c) for c in name)
    assert any(hit for _, hit in runs) == any(t in low for t in lowered)


_names = st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1,
                 max_size=20)


@st.composite
def _entries(draw: st.DrawFn) -> Entry:
    name = draw(_names)
    display = "".join("/" + n for n in [*draw(st.lists(_names, max_size=2)), name])
    return Entry(
        namespace_id="1", path_lower=display.lower(), path_display=display, name=name, kind=draw(kinds),
        id="id:" + draw(st.text("abcXYZ019_-", min_size=1, max_size=22)), seq=draw(st.integers(1, 2**40)),
        rev=draw(st.text("0123456789abcdef", min_size=9, max_size=30)), size=draw(st.integers(0, 2**41)),
        content_hash=draw(st.text("0123456789abcdef", min_size=64, max_size=64)),
        client_modified=draw(st.integers(0, 4_000_000_000)), server_modified=draw(st.integers(0, 4_000_000_000)),
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_entries(), st.none() | st.lists(st.tuples(st.text(max_size=5), st.booleans()),
                                                          max_size=4)), max_size=4),
       st.booleans(), st.none() | st.text("AZaz09-_", min_size=1, max_size=40))
def test_search_result_json_matches_stone(matches, has_more: bool, cursor: str | None) -> None:
    page = SearchPage([Match(e, spans) for e, spans in matches], has_more, cursor)
    by_stone = encode(files.SearchV2Result_validator, files.SearchV2Result(
        matches=[files.SearchMatchV2(
            metadata=files.MetadataV2.metadata(metadata(e)), match_type=files.SearchMatchTypeV2.filename,
            highlight_spans=None if spans is None else [files.HighlightSpan(t, h) for t, h in spans])
            for e, spans in matches],
        has_more=has_more, cursor=cursor))
    assert json.dumps(search_result_json(page)) == by_stone


def test_search_entries_dot_files_have_no_extension(store: SqliteMetadataStore) -> None:
    ns = str(next(_ns))

    def _put(tx) -> None:  # type: ignore[no-untyped-def]
        for lower in ("/.pdf", "/a.pdf", "/.pdf.pdf", "/pdf"):
            tx.put_entry(Entry(namespace_id=ns, path_lower=lower, path_display=lower, name=lower[1:],
                               kind=EntryKind.FILE, id=f"id:{next(_ids)}", seq=1))

    store.run_sync(_put)

    def found(f: NameFilter) -> list[str]:
        rows = store.run_sync(lambda tx: tx.search_entries(ns, "", ["pdf"], [f], by_relevance=True, after=None,
                                                           limit=10))
        return sorted(e.path_lower for e, _ in rows)

    assert found(NameFilter("file", (".pdf",))) == ["/.pdf.pdf", "/a.pdf"]
    assert found(NameFilter("file", None, (".pdf",))) == ["/.pdf", "/pdf"]
