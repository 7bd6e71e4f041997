"""Dedupe: one decision, two indexes (in memory for ``newsflow process``, Redis + Lua for workers)."""

from worker.dedupe.index import Decision, DedupeIndex, Registration

__all__ = ["Decision", "DedupeIndex", "Registration"]
