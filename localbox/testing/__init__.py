"""localbox for testing Dropbox integrations: an in-memory server in your test process.

    from localbox.testing import serve

    with serve() as server:                     # a fresh in-memory localbox on a free port
        dbx = server.client()                   # the official SDK, pointed at it
        server.add_fault("too_many_requests", route="files/upload", times=1, retry_after=1)
        ...

Under pytest the plugin (localbox.testing.pytest_plugin, registered by `pip install localbox`) gives
the fixtures `localbox_server` and `dropbox_client`.
"""

from localbox.testing.server import AdminClient, AdminError, LocalboxServer, serve

__all__ = ["AdminClient", "AdminError", "LocalboxServer", "serve"]
