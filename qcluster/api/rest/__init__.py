"""The REST API (port 6333) in Qdrant's wire shapes: the aiohttp app, one module per resource, and
the request parsing and response rendering they share; see docs/architecture.md."""
