"""Dropbox's path case folding: Python 2.5's unicode.lower(), i.e. Unicode 4.1.0 simple lowercase mappings.

The reference points are independent of the generated table: hand-picked characters with known 4.1
behaviour, today's `str.lower()` with every place it must differ listed below (and why), and the 3.2
repertoire that ships with Python (`unicodedata.ucd_3_2_0`) plus the 4.0/4.1 additions that take part
in case mappings.
"""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from localbox.domain import casemap_4_1, paths

pytestmark = pytest.mark.unit

UCD_3_2 = unicodedata.ucd_3_2_0

# -- where paths.lower() and str.lower() part ways, and why ------------------------------------------
# str.lower() applies the full mapping where one exists; Python 2.5 applied only the simple one.
SIMPLE_NOT_FULL = {"\u0130": "i"}  # İ: str.lower() gives "i̇" (i + U+0307)
# 4.1 lowercased U+0241 to U+0294; 5.0 encoded a proper small letter U+0242 and repointed the mapping.
REPOINTED = {"\u0241": "\u0294"}
# Capitals that 4.1 had but without a lowercase letter: it was encoded later, so 4.1 had no mapping.
LOWERCASE_ENCODED_LATER = [  # (first, last, version of the lowercase, what)
    (0x023A, 0x023A, "5.0", "A with stroke -> U+2C65"),
    (0x023E, 0x023E, "5.0", "T with diagonal stroke -> U+2C66"),
    (0x03FD, 0x03FF, "5.0", "reversed/dotted lunate sigma symbols -> U+037B..U+037D"),
    (0x04C0, 0x04C0, "5.0", "Cyrillic palochka -> U+04CF"),
    (0x13A0, 0x13F4, "8.0", "Cherokee -> U+AB70..U+ABBF, U+13F8..U+13FC"),
    (0x2132, 0x2132, "5.0", "turned capital F -> U+214E"),
    (0x2183, 0x2183, "5.0", "Roman numeral reversed one hundred -> U+2184"),
]
# Capitals (with a lowercase today) that were encoded after 4.1: unknown to Python 2.5, left alone.
ASSIGNED_AFTER_4_1 = [  # (first, last, versions, block)
    (0x0243, 0x024E, "5.0", "Latin Extended-B"),
    (0x0370, 0x0376, "5.1", "Greek Heta, archaic Sampi, Pamphylian Digamma"),
    (0x037F, 0x037F, "7.0", "Greek Yot"),
    (0x03CF, 0x03CF, "5.1", "Greek Kai symbol"),
    (0x04FA, 0x04FE, "5.0", "Cyrillic"),
    (0x0510, 0x052E, "5.0-7.0", "Cyrillic Supplement"),
    (0x10C7, 0x10CD, "6.1", "Georgian Asomtavruli Yn, Aen"),
    (0x13F5, 0x13F5, "8.0", "Cherokee Mv"),
    (0x1C90, 0x1CBF, "11.0", "Georgian Mtavruli"),
    (0x1E9E, 0x1E9E, "5.1", "Latin capital sharp s"),
    (0x1EFA, 0x1EFE, "5.1", "Middle Welsh"),
    (0x2C2F, 0x2C2F, "14.0", "Glagolitic caudate chrivi"),
    (0x2C60, 0x2C7F, "5.0-5.2", "Latin Extended-C"),
    (0x2CEB, 0x2CF2, "5.2-6.1", "Coptic"),
    (0xA640, 0xA69A, "5.1-7.0", "Cyrillic Extended-B"),
    (0xA722, 0xA7F5, "5.1-14.0", "Latin Extended-D"),
    (0x104B0, 0x104D3, "9.0", "Osage"),
    (0x10570, 0x10595, "14.0", "Vithkuqi"),
    (0x10C80, 0x10CB2, "8.0", "Old Hungarian"),
    (0x118A0, 0x118BF, "7.0", "Warang Citi"),
    (0x16E40, 0x16E5F, "11.0", "Medefaidrin"),
    (0x1E900, 0x1E921, "9.0", "Adlam"),
]
LEFT_ALONE = LOWERCASE_ENCODED_LATER + ASSIGNED_AFTER_4_1

# -- the 4.1 repertoire, as far as case mappings go ---------------------------------------------------
# Everything in the table is in Python's bundled 3.2 data except these 4.0/4.1 additions (DerivedAge).
ADDED_IN_4_0_OR_4_1 = [
    (0x0237, 0x0241, "4.1", "Latin Extended-B tail: C/T/Z with stroke/hook, glottal stop"),
    (0x03F7, 0x03FB, "4.0", "Greek Sho, lunate sigma, San"),
    (0x04F6, 0x04F7, "4.1", "Cyrillic Ghe with descender"),
    (0x2C00, 0x2C2E, "4.1", "Glagolitic capitals"),  # U+2C2F is 14.0
    (0x2C30, 0x2C5E, "4.1", "Glagolitic small letters"),
    (0x2C80, 0x2CE3, "4.1", "Coptic"),
    (0x2D00, 0x2D25, "4.1", "Georgian Nuskhuri (lowercase of Asomtavruli U+10A0..U+10C5)"),
    (0x10426, 0x10427, "4.0", "Deseret Oi, Ew"),
    (0x1044E, 0x1044F, "4.0", "Deseret oi, ew"),
]


def _within(cp: int, ranges: list[tuple[int, int, str, str]]) -> bool:
    return any(first <= cp <= last for first, last, _, _ in ranges)


def in_4_1(ch: str) -> bool:
    return UCD_3_2.category(ch) != "Cn" or _within(ord(ch), ADDED_IN_4_0_OR_4_1)


def table() -> dict[int, int]:
    return {cp: cp + d for first, last, step, d in casemap_4_1.RUNS for cp in range(first, last + 1, step)}


# -- hand-picked cases ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\u0130", "i"),  # İ: simple mapping, one character
        ("/İstanbul/DİYARBAKIR", "/istanbul/diyarbakir"),
        ("\u039f\u0394\u039f\u03a3", "\u03bf\u03b4\u03bf\u03c3"),  # final capital sigma: U+03C3, not U+03C2
        ("/\u03a3\u0391\u03a3/\u03a3.txt", "/\u03c3\u03b1\u03c3/\u03c3.txt"),
        ("\u10a0", "\u2d00"),  # Georgian Asomtavruli An -> Nuskhuri an (both 4.1)
        ("\u1c90", "\u1c90"),  # Georgian Mtavruli An (11.0): unchanged, though str.lower() gives ა
        ("\u13a0", "\u13a0"),  # Cherokee A: lowercase only since 8.0
        ("\u1e9e", "\u1e9e"),  # capital sharp s (5.1)
        ("\u2c00", "\u2c30"),  # Glagolitic Azu (4.1)
        ("\u212a", "k"),  # Kelvin sign
        ("\u2126", "\u03c9"),  # Ohm sign -> ω
        ("\u212b", "\u00e5"),  # Angstrom sign -> å
        ("\u0241", "\u0294"),  # glottal stop: 4.1's mapping, repointed to U+0242 in 5.0
        ("\u0243", "\u0243"),  # B with stroke (5.0)
        ("\u01c5", "\u01c6"),  # titlecase Dž has a simple lowercase
        ("\u1f88", "\u1f80"),  # Greek titlecase with prosgegrammeni
        ("\U00010400", "\U00010428"),  # Deseret (3.1), outside the BMP
        ("\U000104b0", "\U000104b0"),  # Osage (9.0)
        ("/Foo/BAR.TXT", "/foo/bar.txt"),
        ("/Ünïcödé/ÄÖÜ Ω", "/ünïcödé/äöü ω"),
        ("/日本/ファイル.JPG", "/日本/ファイル.jpg"),
        ("", ""),
    ],
)
def test_hand_picked(text: str, expected: str) -> None:
    assert paths.lower(text) == expected


def test_table_is_the_4_1_data() -> None:
    t = table()
    assert casemap_4_1.UNICODE_VERSION == "4.1.0"
    assert len(t) == casemap_4_1.MAPPINGS == 893  # no run overlaps another
    assert all(k != v for k, v in t.items())
    # ASCII: exactly A-Z, so the ASCII fast path is the same function
    assert {k: v for k, v in t.items() if k < 128} == {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


# -- properties -------------------------------------------------------------------------------------------
@given(st.text())
@example("\u03a3\u0391\u03a3 \u0130 \u10a0 \u1c90 \u13a0 \u1e9e")
def test_idempotent(s: str) -> None:
    once = paths.lower(s)
    assert paths.lower(once) == once


@given(st.text())
@example("\u039f\u0394\u039f\u03a3 \u0130")
def test_per_character_and_length_preserving(s: str) -> None:
    out = paths.lower(s)
    assert len(out) == len(s)
    assert out == "".join(paths.lower(c) for c in s)


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_agrees_with_str_lower(s: str) -> None:
    assert paths.lower(s) == s.lower()
    # an ASCII name inside a non-ASCII path folds the same way (translate path, not the fast path)
    assert paths.lower("é" + s)[1:] == s.lower()


@given(st.characters())
def test_never_maps_outside_the_4_1_repertoire(ch: str) -> None:
    out = paths.lower(ch)
    if out != ch:
        assert in_4_1(ch) and in_4_1(out), f"U+{ord(ch):04X} -> U+{ord(out):04X}"


def test_table_stays_inside_the_4_1_repertoire() -> None:
    for k, v in table().items():
        assert in_4_1(chr(k)) and in_4_1(chr(v)), f"U+{k:04X} -> U+{v:04X}"


def test_agrees_with_str_lower_except_where_listed() -> None:
    """Every code point: paths.lower(c) == c.lower() unless c is one of the listed exceptions."""
    unexplained = []
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        ours, now = paths.lower(ch), ch.lower()
        if ch in SIMPLE_NOT_FULL or ch in REPOINTED:
            assert ours == {**SIMPLE_NOT_FULL, **REPOINTED}[ch] != now
        elif _within(cp, LEFT_ALONE):
            assert ours == ch, f"U+{cp:04X} must be left alone"
        elif ours != now:
            unexplained.append(cp)
    if unicodedata.unidata_version != "14.0.0":
        # a newer Python knows characters that 14.0 did not; 4.1 did not know them either
        unexplained = [cp for cp in unexplained if paths.lower(chr(cp)) == chr(cp) and not in_4_1(chr(cp))]
    assert unexplained == [], [f"U+{cp:04X}" for cp in unexplained]


def test_listed_exceptions_really_differ() -> None:
    """The lists above are not padding: each range holds characters that str.lower() does change."""
    for first, last, _, what in LEFT_ALONE:
        assert any(chr(cp).lower() != chr(cp) for cp in range(first, last + 1)), what
