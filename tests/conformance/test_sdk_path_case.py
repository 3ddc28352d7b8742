"""Dropbox's case rules through the official SDK: paths fold with Unicode 4.1.0 simple lowercase
mappings (Python 2.5's unicode.lower()), not with Python 3's str.lower().

Expected values are spelled out code point by code point; none is computed with localbox code.
"""

from __future__ import annotations

import pytest
from dropbox import files
from sdk_helpers import api_error, blob, content_hash, download, list_all, tag_path

pytestmark = pytest.mark.conformance

OVERWRITE = files.WriteMode.overwrite

GEORGIAN_AN_CAPITAL = "\u10a0"  # Asomtavruli, lowercase U+2D00 since 4.1
GEORGIAN_AN_SMALL = "\u2d00"
I_DOT = "\u0130"  # simple lowercase i (str.lower() gives two code points)
SIGMA, SMALL_SIGMA = "\u03a3", "\u03c3"
KELVIN, OHM, ANGSTROM = "\u212a", "\u2126", "\u212b"
GLAGOLITIC_AZU, GLAGOLITIC_AZU_SMALL = "\u2c00", "\u2c30"
CHEROKEE_A, CHEROKEE_A_SMALL = "\u13a0", "\uab70"  # a case pair only since 8.0
MTAVRULI_AN, MKHEDRULI_AN = "\u1c90", "\u10d0"  # a case pair only since 11.0
SHARP_S_CAPITAL, SHARP_S = "\u1e9e", "\u00df"  # capital encoded in 5.1


def test_path_lower_is_the_4_1_mapping(dbx) -> None:
    folder = f"/{GEORGIAN_AN_CAPITAL}-D{I_DOT}R"
    path = f"{folder}/\u039f\u0394\u039f{SIGMA} {KELVIN}{OHM}{ANGSTROM} {CHEROKEE_A}{MTAVRULI_AN}{SHARP_S_CAPITAL}.TXT"
    want_lower = (f"/{GEORGIAN_AN_SMALL}-dir/\u03bf\u03b4\u03bf{SMALL_SIGMA} k\u03c9\u00e5 "
                  f"{CHEROKEE_A}{MTAVRULI_AN}{SHARP_S_CAPITAL}.txt")
    data = blob(40, "case41")
    md = dbx.files_upload(data, path)
    assert md.path_display == path
    assert md.path_lower == want_lower
    assert len(md.path_lower) == len(path)  # one code point for one: U+0130 does not grow
    assert md.content_hash == content_hash(data)
    # the folder created on the way has the same folding, and keeps the case it was created with
    (parent,) = list_all(dbx, "")
    assert isinstance(parent, files.FolderMetadata)
    assert parent.path_display == folder and parent.path_lower == f"/{GEORGIAN_AN_SMALL}-dir"
    # the folded path and any other 4.1 case variant name the same file
    assert dbx.files_get_metadata(want_lower).id == md.id
    other = (f"/{GEORGIAN_AN_SMALL}-d{I_DOT}r/\u03bf\u0394\u03bf{SIGMA} k{OHM}\u00c5 "
             f"{CHEROKEE_A}{MTAVRULI_AN}{SHARP_S_CAPITAL}.tXt")
    assert download(dbx, other)[1] == data
    # final sigma U+03C2 is a letter of its own, not a spelling of U+03C3
    final = want_lower.replace(f"\u03bf{SMALL_SIGMA} ", "\u03bf\u03c2 ")
    assert tag_path(api_error(dbx.files_get_metadata, final)) == "path/not_found"
    # str.lower() of the name is a different path for Dropbox: Cherokee, Mtavruli and U+1E9E stay put
    py3 = f"{folder}/{path.rsplit('/', 1)[1].lower()}"
    assert py3 != path
    err = api_error(dbx.files_get_metadata, py3)
    assert tag_path(err) == "path/not_found"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (GLAGOLITIC_AZU, GLAGOLITIC_AZU_SMALL),
        (GEORGIAN_AN_CAPITAL, GEORGIAN_AN_SMALL),
        (KELVIN, "k"),
        (KELVIN, "K"),
        (OHM, "\u03a9"),
        (ANGSTROM, "\u00c5"),
        (I_DOT, "i"),
        (f"x{SIGMA}", f"X{SMALL_SIGMA}"),  # a capital sigma ending a word is still U+03C3
    ],
)
def test_4_1_case_pairs_collide(dbx, first: str, second: str) -> None:
    a = dbx.files_upload(b"first", f"/pairs/{first}.txt")
    err = api_error(dbx.files_upload, b"second", f"/pairs/{second}.txt")
    assert tag_path(err) == "path/conflict/file"
    # overwrite through the other spelling replaces the same file and keeps its display name
    ow = dbx.files_upload(b"second", f"/pairs/{second}.txt", mode=OVERWRITE)
    assert ow.id == a.id and ow.path_display == f"/pairs/{first}.txt"
    ren = dbx.files_upload(b"third", f"/pairs/{second}.txt", autorename=True)
    assert ren.path_display == f"/pairs/{second} (1).txt"
    assert len(list_all(dbx, "/pairs")) == 2


@pytest.mark.parametrize(
    ("upper", "lower"),
    [
        (CHEROKEE_A, CHEROKEE_A_SMALL),
        (MTAVRULI_AN, MKHEDRULI_AN),
        (SHARP_S_CAPITAL, SHARP_S),
        ("\u0243", "\u0180"),  # capital B with stroke is 5.0
        (SMALL_SIGMA, "\u03c2"),  # final sigma is not folded to sigma
    ],
)
def test_post_4_1_case_pairs_are_distinct_files(dbx, upper: str, lower: str) -> None:
    up = dbx.files_upload(b"upper", f"/distinct/{upper}.txt")
    low = dbx.files_upload(b"lower", f"/distinct/{lower}.txt")
    assert up.id != low.id
    assert up.path_lower == f"/distinct/{upper}.txt" != low.path_lower
    assert {m.name for m in list_all(dbx, "/distinct")} == {f"{upper}.txt", f"{lower}.txt"}
    assert download(dbx, f"/DISTINCT/{upper}.TXT")[1] == b"upper"
    assert download(dbx, f"/Distinct/{lower}.Txt")[1] == b"lower"


def test_glottal_stop_folds_as_in_4_1(dbx) -> None:
    """U+0241 lowercased to U+0294 in 4.1 (5.0 repointed it to the new U+0242)."""
    md = dbx.files_upload(b"g", "/\u0241.txt")
    assert md.path_lower == "/\u0294.txt"
    assert tag_path(api_error(dbx.files_upload, b"h", "/\u0294.txt")) == "path/conflict/file"
    small = dbx.files_upload(b"s", "/\u0242.txt")  # today's lowercase of U+0241 is another name
    assert small.id != md.id and small.path_lower == "/\u0242.txt"
