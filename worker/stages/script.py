"""Which script an article is written in: ``hant``, ``hans``, ``mixed`` or ``other``."""

from __future__ import annotations

from worker.stages.normalise import is_han, is_letter
from worker.stages.segment import convert, to_simplified

# Below this share of Han characters among the letters, the text is not Chinese.
MIN_HAN_SHARE = 0.2
# The minority script must reach this share of the script-specific characters
# for the text to count as mixed; less is taken as stray characters or quotes.
MIXED_SHARE = 0.1


def detect_script(text: str, simplified: str | None = None) -> str:
    """Classify by the characters that differ between the two scripts.

    A character that OpenCC's t2s changes is Traditional-only; one that s2t
    changes is Simplified-only. Characters common to both decide nothing, so a
    text made only of them is reported as ``hans``.
    """
    simplified = to_simplified(text) if simplified is None else simplified
    traditional_back = convert(text, "s2t")
    han = letters = trad = simp = 0
    for original, to_s, to_t in zip(text, simplified, traditional_back, strict=True):
        if is_han(original):
            han += 1
            if to_s != original:
                trad += 1
            elif to_t != original:
                simp += 1
        if is_letter(original):
            letters += 1
    if not han or han < MIN_HAN_SHARE * letters:
        return "other"
    specific = trad + simp
    if specific and min(trad, simp) >= MIXED_SHARE * specific:
        return "mixed"
    return "hant" if trad > simp else "hans"
