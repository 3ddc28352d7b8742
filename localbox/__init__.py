"""localbox: a self-hosted server that speaks the Dropbox API v2."""

__version__ = "0.1.0"
