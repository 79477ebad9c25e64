"""Cluster mode on this peer: the consensus listener that applies agreed collections, aliases and
replica placements locally, and the data plane's view of the other peers."""
