"""Dedupe: one decision, two indexes (in memory for ``newsflow process``, Redis + Lua for workers)."""

from worker.dedupe.index import Decision, DedupeIndex, Entry

__all__ = ["Decision", "DedupeIndex", "Entry"]
