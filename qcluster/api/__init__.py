"""The API edges of a peer: REST for clients (``rest/``, port 6333) and the internal p2p gRPC
services (``grpc/``, port 6335). Errors from lower layers are translated to status codes here only;
see docs/architecture.md."""
