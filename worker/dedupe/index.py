"""The dedupe interface and the decision both indexes share.

An article presents an :class:`Entry`; the index answers with a
:class:`Decision` and, when the article is new, registers it, in one atomic
step. Rules, in order:

1. An article is never a duplicate of itself: the same id is ``unique``
   (it was registered by an earlier attempt or an earlier revision).
2. The same exact fingerprint under another id is ``duplicate`` of the
   first id that registered it.
3. Otherwise the article is ``unique`` and is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Entry:
    id: str
    fingerprint: str


@dataclass(frozen=True)
class Decision:
    status: str  # "unique", "duplicate" or "near_duplicate"
    duplicate_of: str | None = None
    similarity: float | None = None

    @classmethod
    def unique(cls) -> Decision:
        return cls("unique")


class DedupeIndex(Protocol):
    def decide(self, entry: Entry) -> Decision:
        """Judge ``entry`` and register it if it is new, atomically."""

    def forget(self, article_id: str, fingerprint: str) -> None:
        """Remove what ``decide`` registered for this article."""


class MemoryIndex:
    """The index for one process, with no services: ``newsflow process``."""

    def __init__(self) -> None:
        self._exact: dict[str, str] = {}

    def decide(self, entry: Entry) -> Decision:
        owner = self._exact.setdefault(entry.fingerprint, entry.id)
        if owner == entry.id:
            return Decision.unique()
        return Decision("duplicate", owner, 1.0)

    def forget(self, article_id: str, fingerprint: str) -> None:
        if self._exact.get(fingerprint) == article_id:
            del self._exact[fingerprint]
