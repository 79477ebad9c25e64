"""Shards: the local engine (WAL, segments, FAISS index, optimizer) and, later, remote replicas."""
