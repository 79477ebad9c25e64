"""Shard transfers: a replica is copied to another peer (move, replicate, recovery of a Dead
replica) while writes go on.

::

    driver.py         runs one transfer on its source peer: method, progress, retries, finish/abort
    methods.py        fill the target (stream_records / snapshot / wal_delta) and catch it up
    proxy.py          the source replica's forward proxy (live writes reach the target in order)
    target_client.py  the source's calls to the target (PrepareTarget, ApplyRecords, ...)
    progress.py       progress of the transfers this peer sends (API comment, logs, metrics)
    recovery.py       watchdog: Dead replicas recovered automatically, stuck states cleared
"""
