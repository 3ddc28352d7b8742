"""Dropbox path rules: parsing, validation, case folding, autorename candidates.

Dropbox paths are case-insensitive and case-preserving: entries are keyed by the lower-cased path,
and the display form keeps the case the entry was created with.  A path is a sequence of names;
it can never step outside its namespace because `.`/`..` and empty names are rejected before the
path is used, and paths never touch the file system (file bytes are stored by content hash).

Case folding is Dropbox's, not Python 3's: Dropbox compares paths with what Python 2.5's
`unicode.lower()` did, and `path_lower` in every response is that string.  That function mapped
each code point on its own through the *simple* lowercase mapping of Unicode 4.1.0 (UnicodeData.txt
field 13): no context (a final capital sigma U+03A3 becomes U+03C3, never final U+03C2), no full
mappings (U+0130 `İ` is `i`, not `i` + U+0307), and nothing assigned or given a lowercase later
(Cherokee U+13A0.., Georgian Mtavruli U+1C90.., capital sharp s U+1E9E stay as they are).
`str.lower()` differs on all three counts, and one 4.1 mapping was even repointed later (U+0241
lowercased to U+0294 in 4.1 and to U+0242 since 5.0), so the mapping cannot be derived from today's
data: `casemap_4_1` holds the 893 mappings read from the 4.1.0 UnicodeData.txt itself by
`scripts/gen_casemap_4_1.py`, which also reports where they differ from `str.lower()`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from localbox.domain.casemap_4_1 import RUNS
from localbox.domain.errors import DomainError, PathLookupError, WriteFailure

# Dropbox rejects names above 255 characters (WriteError.malformed_path); a full path has no
# documented limit, but a sane one keeps indexes small.
MAX_NAME_LENGTH = 255
MAX_PATH_LENGTH = 4096

_NS_RE = re.compile(r"ns:([0-9]+)(/.*)?\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class PathRef:
    """A parsed path argument: a plain path, `ns:<id>/path`, `id:<file id>` or `rev:<rev>`."""

    names: tuple[str, ...] = ()  # with `file_id`: the path below that folder
    namespace_id: str | None = None  # from an `ns:` prefix
    file_id: str | None = None  # from an `id:` reference
    rev: str | None = None  # from a `rev:` reference

    @property
    def is_root(self) -> bool:
        return not self.names and self.file_id is None and self.rev is None


# code point -> code point, for str.translate; includes A-Z for mixed ASCII/non-ASCII names
_LOWER_4_1: dict[int, int] = {
    cp: cp + delta for first, last, step, delta in RUNS for cp in range(first, last + 1, step)
}


def lower(path: str) -> str:
    """Dropbox's case folding of a path or name (see the module docstring); length-preserving."""
    if path.isascii():
        # in ASCII the 4.1 table is exactly A-Z -> a-z, and str.lower() is faster than translate
        return path.lower()
    return path.translate(_LOWER_4_1)


def join(names: tuple[str, ...]) -> str:
    return "".join("/" + n for n in names)


def parent_of(names: tuple[str, ...]) -> tuple[str, ...]:
    return names[:-1]


def _split(rest: str, error: type[DomainError]) -> tuple[str, ...]:
    if rest in ("", "/"):
        # "/" is how some clients name the root; Dropbox's own root is "".
        return ()
    # Dropbox's path rules: "Paths may not end with a slash or whitespace" (HTTP docs, Path formats).
    if not rest.startswith("/") or rest.endswith("/") or rest[-1].isspace():
        raise error("malformed_path")
    if len(rest) > MAX_PATH_LENGTH or "\x00" in rest:
        raise error("malformed_path")
    names = tuple(rest[1:].split("/"))
    for name in names:
        if name in ("", ".", "..") or len(name) > MAX_NAME_LENGTH:
            raise error("malformed_path")
    return names


def parse(path: str, *, for_write: bool = False) -> PathRef:
    """Parse a path argument that already passed the route's stone pattern.

    Raises WriteFailure (writes) or PathLookupError (reads) tagged `malformed_path`.
    """
    error: type[DomainError] = WriteFailure if for_write else PathLookupError
    if path.startswith("id:"):
        # "id:abc123xyz/hello.txt" is a path relative to the folder with that id (HTTP docs, Path formats).
        file_id, slash, rest = path.partition("/")
        if len(file_id) <= 3 or (slash and rest in ("", "/")):
            raise error("malformed_path")
        return PathRef(names=_split(slash + rest, error) if slash else (), file_id=file_id)
    if path.startswith("rev:"):
        return PathRef(rev=path[4:])
    m = _NS_RE.match(path)
    if m:
        return PathRef(names=_split(m.group(2) or "", error), namespace_id=m.group(1))
    if path.startswith("ns:"):
        raise error("malformed_path")
    return PathRef(names=_split(path, error))


def split_ext(name: str) -> tuple[str, str]:
    """`report.final.pdf` -> (`report.final`, `.pdf`); dot-files have no extension."""
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:]


def autorename_candidates(name: str, *, conflicted_copy: bool = False, folder: bool = False) -> Iterator[str]:
    """Names to try, in order, when `autorename` resolves a conflict.

    add/overwrite append the first free number: `a (1).txt`, `a (2).txt`, ...  An update against a
    stale rev keeps both versions as Dropbox does: `a (conflicted copy).txt`, then numbered.  A
    folder's name has no extension: `v1.2` becomes `v1.2 (1)`.
    """
    stem, ext = (name, "") if folder else split_ext(name)
    if conflicted_copy:
        yield f"{stem} (conflicted copy){ext}"
        n = 2
        while True:
            yield f"{stem} (conflicted copy {n}){ext}"
            n += 1
    n = 1
    while True:
        yield f"{stem} ({n}){ext}"
        n += 1
