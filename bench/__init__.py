"""Benchmarks: each prints its figures (``python -m bench.<name>``); none is part of the tests."""
