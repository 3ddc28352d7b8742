"""Dropbox path rules: parsing, validation, case folding, autorename candidates."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localbox.domain import paths
from localbox.domain.errors import DomainError, PathLookupError, WriteFailure

pytestmark = pytest.mark.unit


# -- parsing -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", ()),
        ("/", ()),
        ("/a", ("a",)),
        ("/a/b", ("a", "b")),
        ("/Photos/2024/IMG 0001.JPG", ("Photos", "2024", "IMG 0001.JPG")),
        ("/...", ("...",)),
        ("/.hidden/a..b", (".hidden", "a..b")),
        ("/ü/日本", ("ü", "日本")),
    ],
)
def test_plain_paths(text: str, names: tuple[str, ...]) -> None:
    ref = paths.parse(text)
    assert ref.names == names
    assert ref.namespace_id is None and ref.file_id is None and ref.rev is None
    assert ref.is_root == (names == ())


def test_namespace_paths() -> None:
    ref = paths.parse("ns:123/a/B")
    assert (ref.namespace_id, ref.names) == ("123", ("a", "B"))
    root = paths.parse("ns:4567")
    assert (root.namespace_id, root.names, root.is_root) == ("4567", (), True)
    assert paths.parse("ns:4567/").names == ()


def test_id_and_rev_references() -> None:
    ref = paths.parse("id:a4ayc_80_OEAAAAAAAAAXw")
    assert ref.file_id == "id:a4ayc_80_OEAAAAAAAAAXw"
    assert ref.names == () and not ref.is_root
    rev = paths.parse("rev:a1c10ce0dd78")
    assert rev.rev == "a1c10ce0dd78"
    assert rev.file_id is None and not rev.is_root


@pytest.mark.parametrize(
    "text",
    [
        "/a/",
        "/a//b",
        "//a",
        "//",
        "a/b",
        "a",
        "/./a",
        "/a/.",
        "/a/../b",
        "/..",
        "/a\x00b",
        "ns:abc",
        "ns:abc/a",
        "ns:",
        "ns:12a/x",
        "ns:123/a/",
        "ns:123//a",
        "ns:123/..",
        "ns:123a",
        "id:",
        "id:abc/",
        "id:abc//",
        "id:abc//x",
        "id:abc/x/",
        "id:/x",
        "/" + "x" * 256,
        "/trailing ",
        "/a/tab\t",
        "/a/nbsp\u00a0",
        "ns:123/a ",
    ],
)
def test_malformed_paths(text: str) -> None:
    with pytest.raises(PathLookupError) as e:
        paths.parse(text)
    assert e.value.tags == ("malformed_path",)
    with pytest.raises(WriteFailure) as w:
        paths.parse(text, for_write=True)
    assert w.value.tags == ("malformed_path",)


def test_id_relative_paths() -> None:
    # "A path relative to a folder's ID can be constructed by using a slash" (HTTP docs, Path formats).
    ref = paths.parse("id:abc123xyz/hello/world.txt", for_write=True)
    assert (ref.file_id, ref.names) == ("id:abc123xyz", ("hello", "world.txt"))
    assert paths.parse("id:abc123xyz") == paths.PathRef(file_id="id:abc123xyz")


def test_name_length_limit_is_255() -> None:
    assert paths.parse("/" + "x" * 255).names == ("x" * 255,)


def test_case_folding() -> None:
    assert paths.lower("/Foo/BAR.TXT") == "/foo/bar.txt"
    assert paths.lower("/ÄÖÜ/Ω") == "/äöü/ω"
    assert paths.lower("/already/lower") == "/already/lower"


def test_join_and_parent() -> None:
    assert paths.join(()) == ""
    assert paths.join(("a", "b c")) == "/a/b c"
    assert paths.parent_of(("a", "b", "c")) == ("a", "b")
    assert paths.parent_of(("a",)) == ()


# -- extensions and autorename -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", ("a", ".txt")),
        ("report.final.pdf", ("report.final", ".pdf")),
        ("noext", ("noext", "")),
        (".bashrc", (".bashrc", "")),
        (".config.json", (".config", ".json")),
    ],
)
def test_split_ext(name: str, expected: tuple[str, str]) -> None:
    assert paths.split_ext(name) == expected


def take(it: object, n: int) -> list[str]:
    return list(itertools.islice(it, n))  # type: ignore[call-overload]


def test_autorename_add_numbering() -> None:
    assert take(paths.autorename_candidates("a.txt"), 3) == ["a (1).txt", "a (2).txt", "a (3).txt"]
    assert take(paths.autorename_candidates("Folder"), 2) == ["Folder (1)", "Folder (2)"]
    assert take(paths.autorename_candidates(".bashrc"), 2) == [".bashrc (1)", ".bashrc (2)"]
    assert take(paths.autorename_candidates("x.tar.gz"), 1) == ["x.tar (1).gz"]


def test_autorename_conflicted_copy() -> None:
    assert take(paths.autorename_candidates("a.txt", conflicted_copy=True), 3) == [
        "a (conflicted copy).txt",
        "a (conflicted copy 2).txt",
        "a (conflicted copy 3).txt",
    ]
    assert take(paths.autorename_candidates(".bashrc", conflicted_copy=True), 2) == [
        ".bashrc (conflicted copy)",
        ".bashrc (conflicted copy 2)",
    ]


@settings(max_examples=50, deadline=None)
@given(name=st.text(st.characters(blacklist_characters="/\x00"), min_size=1, max_size=30), n=st.integers(1, 50))
def test_autorename_candidates_are_distinct_and_keep_extension(name: str, n: int) -> None:
    cands = take(paths.autorename_candidates(name), n)
    assert len(set(cands)) == n and name not in cands
    dot = name.rfind(".")
    ext = name[dot:] if dot > 0 else ""
    for c in cands:
        assert c.endswith(ext)


# -- properties ----------------------------------------------------------------------------------
valid_name = (
    st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1, max_size=40)
    .filter(lambda s: s not in (".", ".."))
)


@settings(max_examples=150, deadline=None)
@given(names=st.lists(valid_name, max_size=8).filter(lambda ns: not ns or not ns[-1][-1].isspace()))
def test_valid_names_round_trip(names: list[str]) -> None:
    # (a path may not end with whitespace; names inside it may)
    text = "".join("/" + n for n in names)  # built here, not with paths.join
    ref = paths.parse(text)
    assert ref.names == tuple(names)
    assert paths.join(ref.names) == text
    ns = paths.parse("ns:77" + text)
    assert ns.names == tuple(names) and ns.namespace_id == "77"
    assert paths.parse(text, for_write=True).names == tuple(names)


@settings(max_examples=250, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=60),
        st.lists(st.sampled_from(["/", ".", "..", "a", "\x00", "ns:", "id:", "1", " "]), max_size=20).map("".join),
        st.builds(lambda s: "/" + s, st.text(st.sampled_from("/.a\x00"), max_size=20)),
    )
)
def test_parsed_names_are_always_safe(text: str) -> None:
    try:
        ref = paths.parse(text)
    except DomainError as e:
        assert isinstance(e, PathLookupError)
        assert e.tags == ("malformed_path",)
        return
    for name in ref.names:
        assert name not in ("", ".", "..")
        assert "/" not in name and "\x00" not in name
        assert len(name) <= 255
