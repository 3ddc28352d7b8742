"""The Alembic revision a database must be at for this localbox (checked without importing Alembic)."""

HEAD = "0005"
BASELINE = "0001"  # the schema of releases before Alembic (SQLite meta.schema_version 3)
# oldest first; a database at a revision not listed is newer than this localbox
REVISIONS = ("0001", "0002", "0003", "0004", "0005")


class SchemaOutdated(Exception):
    """The database is not at HEAD: `localbox migrate` brings it there (or it is newer than this localbox)."""


def outdated_message(current: str | None, url: str) -> str:
    if current is not None and current not in REVISIONS:
        return (f"the metadata database is at schema revision {current}, newer than this localbox "
                f"(which knows up to {HEAD}): upgrade localbox")
    at = "has no localbox schema" if current is None else f"is at schema revision {current}"
    return (f"the metadata database {at}; this localbox needs revision {HEAD}. "
            f"Run: localbox migrate --database-url '{url}'")


def redact(url: str) -> str:
    """A database URL without its password (for messages and logs)."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"
