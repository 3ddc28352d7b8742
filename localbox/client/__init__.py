"""`localbox upload | download | ls`: a Dropbox API v2 client for localbox and for real Dropbox.

Layering: this package talks HTTP only.  It never imports the server (app, api, services, stores,
spec, faults); the one piece it shares is the pure content-hash helper of localbox.domain.  Its
third-party needs (httpx, rich) come with the `client` extra: `pip install 'localbox[client]'`.
"""

from __future__ import annotations

MISSING_EXTRA = "the localbox client needs httpx and rich: pip install 'localbox[client]'"
