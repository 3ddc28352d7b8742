"""Fault injection for test servers: rules (model), the per-call record and request log (calls), the
outermost ASGI layer (middleware) and the batch hooks (batches).  Dropbox semantics never depend on
this package; it only decides when to make them fail the way Dropbox sometimes does."""
