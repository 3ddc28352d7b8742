"""The hand-built batch result JSON must be exactly what stone would emit for the same values."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localbox.api.convert import batch_entries_json, file_metadata, file_metadata_json, metadata, metadata_json
from localbox.domain.errors import CallError, SessionLookupError, WriteFailure, incorrect_offset
from localbox.domain.models import Entry, EntryKind
from localbox.spec import encode, files

pytestmark = pytest.mark.unit

names = st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1,
                max_size=40)


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    name = draw(names)
    folder = draw(st.lists(names, max_size=3))
    display = "".join("/" + n for n in [*folder, name])
    return Entry(
        namespace_id="1", path_lower=display.lower(), path_display=display, name=name, kind=EntryKind.FILE,
        id="id:" + draw(st.text("abcXYZ019_-", min_size=1, max_size=22)), seq=draw(st.integers(1, 2**40)),
        rev=draw(st.text("0123456789abcdef", min_size=9, max_size=30)), size=draw(st.integers(0, 2**41)),
        content_hash=draw(st.text("0123456789abcdef", min_size=64, max_size=64)),
        client_modified=draw(st.integers(0, 4_000_000_000)) + draw(st.floats(0, 0.999)),
        server_modified=draw(st.integers(0, 4_000_000_000)),
    )


@settings(max_examples=200, deadline=None)
@given(entries())
def test_file_metadata_json_matches_stone(entry: Entry) -> None:
    by_stone = encode(files.FileMetadata_validator, file_metadata(entry))
    assert json.dumps(file_metadata_json(entry)) == by_stone


@settings(max_examples=50, deadline=None)
@given(st.lists(entries(), max_size=5))
def test_batch_entries_match_stone(batch: list[Entry]) -> None:
    errors = [incorrect_offset(7), SessionLookupError("not_closed"), WriteFailure("conflict", "file"),
              CallError("concurrent_session_missing_data"), WriteFailure("malformed_path")]
    outcomes = [*batch, *errors]
    ours = json.dumps({"entries": batch_entries_json(outcomes)})
    decoded = files.UploadSessionFinishBatchResult_validator
    from localbox.spec.codec import decode_obj

    obj = decode_obj(decoded, json.loads(ours))
    assert encode(decoded, obj) == ours
    failure = obj.entries[len(batch)].get_failure()
    assert failure.is_lookup_failed() and failure.get_lookup_failed().get_incorrect_offset().correct_offset == 7
    assert obj.entries[len(batch) + 2].get_failure().get_path().get_conflict().is_file()


@settings(max_examples=200, deadline=None)
@given(entries(), st.sampled_from([EntryKind.FILE, EntryKind.FOLDER, EntryKind.DELETED]))
def test_metadata_json_matches_stone(entry: Entry, kind: EntryKind) -> None:
    entry.kind = kind
    assert json.dumps(metadata_json(entry)) == encode(files.Metadata_validator, metadata(entry))
