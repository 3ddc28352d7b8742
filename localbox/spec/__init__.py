"""The Dropbox wire contract, taken from the pinned official SDK.  The only package that imports
`dropbox` or `stone`: everything else reaches wire types through here."""

from dropbox import async_, check, common, files, users, users_common
from dropbox import stone_validators as validators

from localbox.spec.codec import WireError, build_union, decode_arg, encode
from localbox.spec.routes import ROUTES, RouteSpec

__all__ = [
    "ROUTES", "RouteSpec", "WireError", "async_", "build_union", "check", "common", "decode_arg", "encode",
    "files", "users", "users_common", "validators",
]
