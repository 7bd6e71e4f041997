"""Benchmarks: each prints figures; none is part of the test suite."""
