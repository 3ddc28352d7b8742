"""The Dropbox wire contract, taken from the pinned official SDK.  The only package that imports
`dropbox` or `stone`: everything else reaches wire types through here."""

from dropbox import async_, auth, check, common, files, team, team_common, team_policies, users, users_common
from dropbox import stone_validators as validators

from localbox.spec.codec import WireError, build_union, decode_arg, encode
from localbox.spec.routes import DATA_TRANSPORT, ROUTES, RouteSpec

__all__ = [
    "DATA_TRANSPORT", "ROUTES", "RouteSpec", "WireError", "async_", "auth", "build_union", "check", "common",
    "decode_arg", "encode", "files", "team", "team_common", "team_policies", "users", "users_common", "validators",
]
