"""Benchmark scripts (not tests): `python -m benchmarks.<name>`; results in benchmarks/results/."""
