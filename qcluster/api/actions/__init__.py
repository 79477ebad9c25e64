"""What a request does, whichever surface it came in on.

The REST handlers (``api/rest``) and the public gRPC servicers (``api/public_grpc``) both turn a
request into the same request models (``qcluster.models``), validate them here
(:mod:`.validate`), and call the same functions (:mod:`.collections`, :mod:`.points`,
:mod:`.query`, :mod:`.batches`), which call the table of contents, a ``Collection`` and the query
engine. Only the decoding of a request and the rendering of a result differ between the two.
"""
