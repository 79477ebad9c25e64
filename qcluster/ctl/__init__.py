"""``qcluster ctl``: operate a running cluster through the REST API of any of its peers.

It reads only the public API shapes (Qdrant's ``ClusterStatus`` from ``GET /cluster``,
``CollectionClusterInfo`` from ``GET /collections/{name}/cluster``) and changes the cluster only
with Qdrant's requests (``POST /collections/{name}/cluster``, ``DELETE /cluster/peer/{id}``), so it
works against any peer, of qcluster or of Qdrant. Modules: ``client`` (HTTP), ``views`` (the API
shapes), ``comment`` (transfer progress from its comment), ``readiness``, ``shard_ops`` (moves,
drain), ``render`` (the terminal), ``cli`` (the commands).
"""
