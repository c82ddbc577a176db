"""CodeSphere: a self-hosted, server-authoritative real-time code collaboration server."""

__version__ = "0.1.0"
