"""Peer-to-peer plumbing shared by every internal gRPC client: channels, auth metadata, URIs."""
