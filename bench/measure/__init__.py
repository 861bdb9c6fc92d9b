"""Helpers the benchmark scripts share (not a benchmark: `./dev bench` runs only `bench/*.py`)."""
