"""Cyclic garbage collector settings for hvbot's long-running processes (worker, serve, monitor, lab).

Why: a fleet-wide call deserialises tens of thousands of small objects (XML elements, property dicts),
nearly all freed by reference counting. With CPython's default thresholds (700, 10, 10) the collector
still ran every 700 allocations and rescanned every live object on each older-generation pass: a third
of a fan-out's client CPU (bench/fanout.py, measured with and without). Cycles are still collected,
only less often.
"""

from __future__ import annotations

import gc

THRESHOLDS = (100_000, 50, 100)


def tune_gc() -> None:
    """Freeze what start-up created (modules, settings: never garbage) and collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
