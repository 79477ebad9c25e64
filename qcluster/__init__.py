"""qcluster: a distributed vector database that speaks Qdrant's REST API."""

__version__ = "0.1.0"
# The Qdrant API version whose wire contract we implement (reported by `GET /`).
QDRANT_COMPAT_VERSION = "1.19.0"
