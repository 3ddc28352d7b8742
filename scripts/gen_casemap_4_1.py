#!/usr/bin/env python3
"""Regenerate `localbox/domain/casemap_4_1.py`: Unicode 4.1.0 simple lowercase mappings.

Dropbox compares paths with Python 2.5's `unicode.lower()`, which applied UnicodeData.txt field 13
(simple lowercase mapping) of Unicode 4.1.0 one code point at a time.  This script reads that
exact file and writes the mapping as compact runs.  It is a development tool: nothing imports it.

    python scripts/gen_casemap_4_1.py UnicodeData-4.1.0.txt            # write the module
    python scripts/gen_casemap_4_1.py UnicodeData-4.1.0.txt --check    # also compare with str.lower()

UnicodeData.txt of 4.1.0 is in the Unicode Character Database archive (Public/4.1.0/ucd/ on the
Unicode Consortium's site, and in the data/ucd/4.1.0-Update folder of the unicode-org/unicodetools
repository).  The script refuses any other file: its SHA-256 must be SOURCE_SHA256.

`--check` lists every code point where the table differs from the running Python's per-character
`str.lower()` restricted to the 4.1 repertoire; with Python 3.11 (Unicode 14.0) that is exactly
U+0130 (simple vs full mapping) and U+0241 (4.1 mapped it to U+0294; 5.0 encoded U+0242 and
repointed it), which is why the table is read from 4.1 data instead of being derived.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import unicodedata
from pathlib import Path

SOURCE_SHA256 = "a9f03f6a061ee210c53e33782288a208bed48c65c70d307b2b214989cedfdab0"
OUTPUT = Path(__file__).resolve().parent.parent / "localbox" / "domain" / "casemap_4_1.py"

Run = tuple[int, int, int, int]  # first, last, step, delta


def parse(text: str) -> tuple[dict[int, int], set[int]]:
    """(simple lowercase mapping, assigned code points) from a UnicodeData.txt."""
    mapping: dict[int, int] = {}
    assigned: set[int] = set()
    first = None
    for line in text.splitlines():
        fields = line.split(";")
        cp = int(fields[0], 16)
        name = fields[1]
        if name.endswith(", First>"):
            first = cp
            continue
        if name.endswith(", Last>"):
            # ranges (CJK, Hangul, private use...) carry no case mappings
            assert first is not None and not fields[13]
            assigned.update(range(first, cp + 1))
            first = None
            continue
        assigned.add(cp)
        if fields[13] and int(fields[13], 16) != cp:
            mapping[cp] = int(fields[13], 16)
    return mapping, assigned


def runs(mapping: dict[int, int]) -> list[Run]:
    """Group the mapping into runs of equal delta at a constant stride (1 or 2, as the blocks lay out)."""
    out: list[Run] = []
    for cp in sorted(mapping):
        delta = mapping[cp] - cp
        if out:
            first, last, step, d = out[-1]
            gap = cp - last
            if d == delta and ((first == last and gap in (1, 2)) or gap == step):
                out[-1] = (first, cp, gap, d)
                continue
        out.append((cp, cp, 1, delta))
    return out


def render(table: list[Run], count: int) -> str:
    lines = [
        '"""Unicode 4.1.0 simple lowercase mappings (UnicodeData.txt field 13): generated, do not edit.',
        "",
        "Written by scripts/gen_casemap_4_1.py from UnicodeData.txt of Unicode 4.1.0",
        f"(SHA-256 {SOURCE_SHA256[:16]}...).  Each run (first, last, step, delta) says that every",
        "step-th code point from first to last lowercases to itself plus delta.  localbox.domain.paths",
        "explains why Dropbox paths need exactly this table.",
        '"""',
        "",
        'UNICODE_VERSION = "4.1.0"',
        f"MAPPINGS = {count}",
        "",
        "RUNS: tuple[tuple[int, int, int, int], ...] = (",
    ]
    lines += [f"    (0x{a:04X}, 0x{b:04X}, {s}, {d}),  # {unicodedata.name(chr(a))}" for a, b, s, d in table]
    lines += [")", ""]
    return "\n".join(lines)


def check(mapping: dict[int, int], assigned: set[int]) -> list[str]:
    """Where the 4.1 table differs from today's per-character str.lower() inside the 4.1 repertoire."""
    diffs = []
    for cp in sorted(assigned):
        now = chr(cp).lower()
        derived = ord(now) if len(now) == 1 and ord(now) in assigned else cp
        if derived != mapping.get(cp, cp):
            diffs.append(f"U+{cp:04X}: 4.1 -> U+{mapping.get(cp, cp):04X}, str.lower() -> {now!r}")
    return diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("unicodedata", type=Path, help="UnicodeData.txt of Unicode 4.1.0")
    ap.add_argument("--check", action="store_true", help="report differences from str.lower()")
    ap.add_argument("--output", type=Path, default=OUTPUT)
    args = ap.parse_args()
    raw = args.unicodedata.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SOURCE_SHA256:
        print(f"{args.unicodedata}: SHA-256 {digest} is not UnicodeData.txt of 4.1.0", file=sys.stderr)
        return 1
    mapping, assigned = parse(raw.decode("ascii"))
    table = runs(mapping)
    assert {cp: cp + d for a, b, s, d in table for cp in range(a, b + 1, s)} == mapping
    args.output.write_text(render(table, len(mapping)), encoding="utf-8")
    print(f"{args.output}: {len(mapping)} mappings in {len(table)} runs")
    if args.check:
        print(f"differences from str.lower() (Unicode {unicodedata.unidata_version}) in the 4.1 repertoire:")
        for line in check(mapping, assigned):
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
