"""Test harnesses shipped with the package: real ``qcluster serve`` subprocesses and clusters of them,
in-process consensus peers, crash workloads and throw-away certificates."""
