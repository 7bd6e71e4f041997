"""The counters every process can read: outcome totals, per-minute counts and a latency histogram.

emit_result.lua adds each outcome to ``<prefix>:stats`` (since the deployment
began) and ``<prefix>:stats:<minute>`` (one hash per minute, kept an hour). Both
hold, per outcome:

- ``<status>``: one count per status;
- ``latency_n`` and ``latency_ms``: how many outcomes had a known submit time,
  and the sum of their submit-to-result latencies;
- ``lat:<i>``: how many of those fell in latency bucket ``i``, that is at most
  ``LATENCY_BOUNDS_MS[i]`` and above the bound before it (``i == len(bounds)``
  is everything slower than the last bound).

The buckets are log-spaced, eight per decade from 1 ms to about 2.8 hours,
so a percentile read from them is within about 15 % of the true value whatever
the load, and the whole histogram stays a few dozen hash fields.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping

STATUSES = ("unique", "duplicate", "near_duplicate", "rejected", "failed")
LATENCY_BOUNDS_MS: tuple[float, ...] = tuple(round(10 ** (k / 8), 3) for k in range(0, 8 * 7 + 1))
LATENCY_FIELD = "lat:"


def latency_bucket(ms: float) -> int:
    """Index of the bucket that ``ms`` falls in (``len(LATENCY_BOUNDS_MS)`` if above them all)."""
    return bisect_left(LATENCY_BOUNDS_MS, ms)


def latency_field(ms: float) -> str:
    return f"{LATENCY_FIELD}{latency_bucket(ms)}"


def histogram(fields: Mapping[bytes | str, bytes | str | int]) -> list[int]:
    """Per-bucket counts out of a stats hash (its other fields are ignored)."""
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    for name, value in fields.items():
        name = name.decode() if isinstance(name, bytes) else name
        if name.startswith(LATENCY_FIELD):
            index = int(name[len(LATENCY_FIELD) :])
            if 0 <= index < len(counts):
                counts[index] += int(value)
    return counts


def percentile(counts: list[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) in ms, read from bucket counts; None without data.

    Inside a bucket the value is interpolated on the log scale the buckets
    are spaced on; past the last bound the last bound is the best we know.
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index >= len(LATENCY_BOUNDS_MS):
                return LATENCY_BOUNDS_MS[-1]
            upper = LATENCY_BOUNDS_MS[index]
            lower = LATENCY_BOUNDS_MS[index - 1] if index else upper / 10 ** (1 / 8)
            within = (rank - seen) / count
            return round(math.exp(math.log(lower) + within * (math.log(upper) - math.log(lower))), 1)
        seen += count
    return LATENCY_BOUNDS_MS[-1]
