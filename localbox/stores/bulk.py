"""What both metadata backends' bulk writes (put_entries) compute the same way, whatever their SQL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from localbox.domain.models import Entry, EntryKind

Key = tuple[str, str]  # (namespace_id, path_lower)


def last_per_path(entries: Sequence[Entry]) -> dict[Key, Entry]:
    """The entry that ends up at each path when `entries` are put in order (the last one wins), so that
    one multi-row upsert writes each row once."""
    return {(e.namespace_id, e.path_lower): e for e in entries}


def byte_growth(latest: Mapping[Key, Entry], old_file_sizes: Mapping[Key, int]) -> dict[str, int]:
    """How much each namespace's byte count grows when `latest` replaces what is stored, given the size
    of every stored file among those paths (paths without a stored file are absent)."""
    growth: dict[str, int] = {}
    for key, e in latest.items():
        delta = (e.size if e.kind == EntryKind.FILE else 0) - old_file_sizes.get(key, 0)
        if delta:
            growth[e.namespace_id] = growth.get(e.namespace_id, 0) + delta
    return {ns: d for ns, d in growth.items() if d}


def by_namespace(keys: Iterable[Key]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ns, path_lower in keys:
        out.setdefault(ns, []).append(path_lower)
    return out


def chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    """Slices of at most `size`: SQLite bounds the parameters of one statement."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
