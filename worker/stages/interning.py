"""Tables that forked worker children read without copying them."""

from __future__ import annotations

from typing import TypeVar

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
