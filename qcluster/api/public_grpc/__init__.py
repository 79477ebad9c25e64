"""Qdrant's public gRPC API (port 6334) over the same actions as the REST API.

- ``server.py``: the ``grpc.aio`` server, its options, TLS; ``auth.py``: API keys;
  ``edge.py``: what every RPC shares (errors -> status codes, time, metrics);
- one module per service: ``qdrant.py``, ``collections.py``, ``points.py``, ``snapshots.py``;
- the translation layer, protobuf -> REST request bodies (validated into the shared request
  models): ``requests.py`` (reads), ``updates.py`` (writes), ``collection_config.py``,
  ``filters.py``, ``vectors.py`` (packed floats <-> numpy), ``values.py`` (payloads, ids, time);
  results -> protobuf: ``responses.py``.
"""
