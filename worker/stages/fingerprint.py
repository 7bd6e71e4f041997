"""Stage 2: what dedupe compares.

The exact fingerprint ignores everything a re-send changes without changing
the story: wrapping, spacing, punctuation, full/half width (NFKC), case, and
Traditional versus Simplified script (the input is already Simplified).
"""

from __future__ import annotations

import unicodedata

import xxhash

from worker.stages.normalise import is_letter


def letters(simplified: str) -> str:
    """The letters of the text: NFKC, case-folded, no spaces or punctuation."""
    folded = unicodedata.normalize("NFKC", simplified).casefold()
    return "".join(ch for ch in folded if is_letter(ch))


def fingerprint(letters_only: str) -> str:
    """The exact-duplicate fingerprint of :func:`letters` output."""
    return xxhash.xxh3_128_hexdigest(letters_only.encode("utf-8"))
