"""files_search_v2 and files_search_continue_v2 through the official SDK."""

from __future__ import annotations

import pytest
from dropbox import files
from sdk_helpers import api_error

pytestmark = pytest.mark.conformance


def _names(res: files.SearchV2Result) -> list[str]:
    out = []
    for m in res.matches:
        assert m.match_type.is_filename()
        out.append(m.metadata.get_metadata().path_display)
    return out


def test_search_v2_and_continue(dbx) -> None:
    for path in ["/Docs/Budget 2024.xlsx", "/Docs/budget-notes.txt", "/Docs/Old/budget.pdf", "/Pics/budgie.png",
                 "/Docs/unrelated.txt"]:
        dbx.files_upload(path.encode(), path)
    res = dbx.files_search_v2("BUDGET")
    assert sorted(_names(res)) == ["/Docs/Budget 2024.xlsx", "/Docs/Old/budget.pdf", "/Docs/budget-notes.txt"]
    assert res.has_more is False
    md = res.matches[0].metadata.get_metadata()
    assert isinstance(md, files.FileMetadata) and md.content_hash and md.rev

    seen: list[str] = []
    page = dbx.files_search_v2("bud", files.SearchOptions(max_results=2))
    while True:
        assert len(page.matches) <= 2
        seen += _names(page)
        if not page.has_more:
            break
        page = dbx.files_search_continue_v2(page.cursor)
    assert sorted(seen) == sorted(_names(dbx.files_search_v2("bud")))
    assert len(seen) == 4


def test_search_v2_options(dbx) -> None:
    for path in ["/S/report.pdf", "/S/Report Photos/report.jpg", "/S/report.txt"]:
        dbx.files_upload(b"r", path)
    opts = files.SearchOptions(path="/S", file_categories=[files.FileCategory.image, files.FileCategory.folder])
    assert sorted(_names(dbx.files_search_v2("report", opts))) == ["/S/Report Photos", "/S/Report Photos/report.jpg"]
    opts = files.SearchOptions(path="/S", file_extensions=["txt"], order_by=files.SearchOrderBy.last_modified_time)
    assert _names(dbx.files_search_v2("report", opts)) == ["/S/report.txt"]
    res = dbx.files_search_v2("report", files.SearchOptions(path="/S/Report Photos"),
                              match_field_options=files.SearchMatchFieldOptions(include_highlights=True))
    assert [(s.highlight_str, s.is_highlighted) for s in res.matches[0].highlight_spans] == [
        ("report", True), (".jpg", False)]
    folder = dbx.files_search_v2("photos").matches[0].metadata.get_metadata()
    assert isinstance(folder, files.FolderMetadata)


def test_search_v2_errors(dbx) -> None:
    err = api_error(dbx.files_search_v2, "x", files.SearchOptions(path="/nowhere"))
    assert err.is_path() and err.get_path().is_not_found()
    err = api_error(dbx.files_search_v2, " ")
    assert err.is_invalid_argument()
