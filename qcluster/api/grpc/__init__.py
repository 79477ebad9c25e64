"""The p2p gRPC API (proto/qcluster/v1): server, auth interceptor, servicers, status mapping."""
