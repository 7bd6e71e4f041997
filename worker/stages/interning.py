"""Tables that forked worker children read without copying them, laid out for the lookups they get."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import numpy as np

K = TypeVar("K")
V = TypeVar("V")


def one_object_per_value(table: dict[K, V]) -> dict[K, V]:
    """Make equal values of ``table`` one object, in place; returns ``table``.

    A worker child reads the dictionaries its parent loaded before the fork.
    Reading a value raises its reference count, a write to the memory page
    that holds it, so the child gets its own copy of that page. Values are
    what a lookup hands out (keys are only compared), and a big table keeps
    hundreds of thousands of them, one object each, spread over thousands of
    pages that a child soon copies whole: jieba's IDF table holds 270,132
    floats but only 3,328 distinct ones, posseg's tag table 349,045 tags in
    121,803 objects but only 55 distinct ones.
    """
    first: dict[V, V] = {}
    for key, value in table.items():
        table[key] = first.setdefault(value, value)
    return table


def laid_out_by_use(table: dict[str, V], rank: Iterable[float]) -> dict[str, V]:
    """The same table with its entries and key strings in memory in order of ``rank``: lowest first.

    ``rank`` gives one figure per key, in the table's order. A big table
    (jieba's dictionary, its tag table, the IDF table) is read a few words at
    a time, each lookup reading the table's slot, its entry and the key
    string. As the tables are loaded, the entries and strings of the words a
    text uses lie far apart, and every lookup is a few cache misses: inside
    the pipeline, where the other stages have just filled the caches, that was
    a third of the keyword stage's time. Inserted most used first, with each
    key string made anew in that order, the entries and strings of the common
    words lie together. The values are the same objects; the old table can be
    dropped.
    """
    words = list(table)
    order = np.argsort(np.fromiter(rank, dtype=np.float64, count=len(words)), kind="stable").tolist()
    fresh = [words[i].encode("utf-8").decode("utf-8") for i in order]
    values = list(table.values())
    return dict(zip(fresh, [values[i] for i in order], strict=True))
