"""Console sessions: a signed cookie after a login with the admin token; CSRF tokens for every form.

The cookie holds `<expiry>.<nonce>.<mac>` where mac = HMAC-SHA256(admin token, expiry.nonce): nothing is
stored server-side, the token itself never leaves the login form, and changing the admin token (a restart
with another --admin-token) ends every session.  The cookie is HttpOnly, SameSite=Strict and scoped to
/console (Secure over HTTPS).  Each form and htmx request carries the session's CSRF token,
HMAC(admin token, "csrf." + nonce); state-changing requests without it are refused even with the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

COOKIE = "localbox_console"
SESSION_SECONDS = 12 * 3600


def _mac(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


class ConsoleAuth:
    def __init__(self, admin_token: str) -> None:
        self.admin_token = admin_token

    def token_matches(self, given: str) -> bool:
        # Constant time: the comparison must not tell how much of a guess was right.
        return hmac.compare_digest(given.strip().encode(), self.admin_token.encode())

    def new_session(self, now: float | None = None) -> str:
        expires = int((now or time.time()) + SESSION_SECONDS)
        body = f"{expires}.{secrets.token_urlsafe(18)}"
        return f"{body}.{_mac(self.admin_token, body)}"

    def session_nonce(self, cookie: str | None, now: float | None = None) -> str | None:
        """The nonce of a valid, unexpired session cookie; None otherwise."""
        if not cookie or cookie.count(".") != 2:
            return None
        expires, nonce, mac = cookie.split(".")
        if not hmac.compare_digest(mac, _mac(self.admin_token, f"{expires}.{nonce}")):
            return None
        try:
            if int(expires) < (now or time.time()):
                return None
        except ValueError:
            return None
        return nonce

    def csrf_token(self, nonce: str) -> str:
        return _mac(self.admin_token, f"csrf.{nonce}")

    def csrf_ok(self, nonce: str, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given, self.csrf_token(nonce))
