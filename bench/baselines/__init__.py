"""Reference engines the benchmarks compare qcluster with (benchmark-only dependencies)."""
