"""Performance: model complexity (profile) and throughput (bench)."""
