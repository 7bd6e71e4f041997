"""The MinHash sketch against rensa's R-MinHash fed the distinct 3-grams one by one,
and the letters against NFKC, case folding and dropping non-letters of the whole text.

``fingerprint.sketch`` packs each 3-gram into one integer with array operations
and hands rensa the whole array, repeats and all; the reference builds the set
of grams in plain Python and packs each gram by hand. The inputs hit the edges
of the packing: no letters, fewer letters than a gram, ASCII and Latin letters,
characters beyond the BMP and at the end of Unicode, repeats, and long texts.
"""

from __future__ import annotations

import random
import re
import unicodedata

import numpy as np
import pytest
import rensa
import xxhash

from tests.support import sample_articles
from worker.dedupe import index
from worker.stages import fingerprint as fp
from worker.stages import segment

pytestmark = pytest.mark.unit


def reference_sketch(letters: str) -> tuple[bytes, int]:
    """rensa's R-MinHash of the set of distinct 3-grams, each gram's code points packed 21 bits apart."""
    if not letters:
        return b"", 0
    if len(letters) < fp.GRAM:
        grams = {(1 << 63) | sum(ord(ch) << (21 * i) for i, ch in enumerate(letters))}
    else:
        grams = {
            (ord(letters[i]) << 42) | (ord(letters[i + 1]) << 21) | ord(letters[i + 2])
            for i in range(len(letters) - fp.GRAM + 1)
        }
    matrix = rensa.RMinHash.digest_matrix_from_token_hash_sets([sorted(grams)], fp.NUM_PERM, fp.SEED)
    (values,) = matrix.to_rows()
    return np.array(values, dtype="<u4").tobytes(), len(grams)


TRICKY_LETTERS = [
    "",
    "a",
    "中",
    "𠀀",
    "ab",
    "中文",
    "a中",
    "abc",
    "中文字",
    "ab中",
    "中ab",
    "aaaa",
    "中中中中中中",
    "中文中文中文中文",
    "𠀀𠀁𪚥𠀀𠀁",
    "中𠀀文字ab12",
    "éß中文ǅ",
    # the limits of three-byte UTF-8: U+07FF is two bytes, U+0800 and U+FFFF three, U+10000 four
    "\u07ff\u0800\u0800\u0800\uffff\uffff\U00010000\u0800\u0800\u0800",
    "\u0800\u0800\u0800",
    "\uffff\uffff\uffff\uffff",
    "\U0010ffff\U0010ffff\U0010ffff\U0010fffe",  # the last code points: all 21 bits of each set
    "\x01\x01\x01",
    "english only no han at all 20051001",
    "台湾的经济在二〇二四年增长了35ibm與臺積電的ai晶片",
    "重复的段落" * 300,
]


def _corpus(seed: int = 16, n: int = 60) -> list[str]:
    """Letters of pieces of the test articles, cut and joined at random, some longer than a block."""
    texts = sample_articles()
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = rng.choice(texts)
        a = rng.randrange(len(text))
        piece = text[a : a + rng.choice([rng.randint(1, 40), rng.randint(40, 900), rng.randint(900, 3000)])]
        if rng.random() < 0.5:
            piece = segment.to_simplified(piece)
        if rng.random() < 0.2:
            piece += rng.choice(texts)[:300]  # a repeated or borrowed stretch
        out.append(fp.letters(piece))
    out.append(fp.letters("".join(texts)))  # thousands of grams, several blocks
    return out


CASES = TRICKY_LETTERS + _corpus()


@pytest.mark.parametrize("letters", CASES)
def test_sketch_is_rensas_of_the_distinct_grams(letters: str) -> None:
    assert fp.sketch(letters) == reference_sketch(letters)


def test_sketch_of_random_code_points_is_rensas() -> None:
    """Letters drawn from every UTF-8 length, mixed in one text and in runs."""
    rng = random.Random(7)
    ranges = [(0x30, 0x7A), (0xC0, 0x7FF), (0x800, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]
    for _ in range(40):
        picks = [rng.choice(ranges) for _ in range(rng.randint(1, 3))]
        text = "".join(chr(rng.randint(*rng.choice(picks))) for _ in range(rng.randint(1, 700)))
        assert fp.sketch(text) == reference_sketch(text)


def test_the_sketch_keeps_its_family() -> None:
    """A sketch pinned from the deployed code: a rensa release that changes its sketches shows here."""
    letters = "台湾的经济在二〇二四年增长了35ibm與臺積電的ai晶片𠀀𠀁"
    sketch, count = fp.sketch(letters)
    assert fp.FAMILY == "rensa-rminhash-2"
    assert (xxhash.xxh3_64_hexdigest(sketch), count) == ("7a6211d7bf19821a", 28)


def test_no_gram_is_the_tag_of_a_short_text() -> None:
    """A text of one or two letters is one shingle, never equal to a 3-gram's."""
    assert fp.sketch("中文")[0] != fp.sketch("\x00中文")[0]
    assert len({fp.sketch(t)[0] for t in ["中", "中文", "文中", "中中", "中中中"]}) == 5


def test_minhash_is_the_sketch() -> None:
    for letters in TRICKY_LETTERS:
        assert fp.minhash(letters) == reference_sketch(letters)[0]


# -- what the index derives from a sketch ----------------------------------------------------


def reference_band_fields(sketch: bytes) -> list[tuple[bytes, int]]:
    if not sketch:
        return []
    width = index.ROWS * 4
    out = []
    for band in range(index.BANDS):
        digest = xxhash.xxh3_64_digest(sketch[band * width : (band + 1) * width])
        out.append((bytes([band]) + digest[: index.BAND_FIELD_BYTES], int.from_bytes(digest[4:], "little")))
    return out


@pytest.mark.parametrize("letters", CASES[:30])
def test_band_fields_match_the_reference(letters: str) -> None:
    sketch = fp.sketch(letters)[0]
    assert index.band_fields(sketch) == reference_band_fields(sketch)


def test_registration_of_matches_its_parts() -> None:
    for letters in CASES:
        entry = index.Registration.of("id-1", letters)
        sketch, size = reference_sketch(letters)
        lead = letters[: index.LEAD] if len(letters) >= index.LEAD else ""
        assert entry == index.Registration("id-1", fp.fingerprint(letters), sketch, size, lead)


# -- letters -----------------------------------------------------------------------------------


def reference_letters(text: str) -> str:
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).casefold())


def _composes_after_another() -> set[str]:
    """Every character that canonical composition can join to the character before it."""
    found = {chr(cp) for cp in range(0x1161, 0x1176)} | {
        chr(cp) for cp in range(0x11A8, 0x11C3)
    }  # Hangul V, T
    for cp in range(0x110000):
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<"):
            found.update(chr(int(part, 16)) for part in decomposition.split()[1:])
    return found


def test_plain_characters_map_on_their_own() -> None:
    """The premise of letters' fast path, for every character it takes (fingerprint._PLAIN)."""
    joiners = _composes_after_another()
    for lo, hi in fp._PLAIN:
        for cp in range(lo, hi + 1):
            char = chr(cp)
            # It starts with a character that neither attaches nor composes to what comes
            # before; so NFKC of what follows it cannot reach into it, nor it into what precedes.
            first = unicodedata.normalize("NFKD", char)[0]
            assert unicodedata.combining(first) == 0, hex(cp)
            assert first not in joiners, hex(cp)
            if re.fullmatch(r"[\W_]", char):
                assert reference_letters(char) == "", hex(cp)
            else:
                assert reference_letters(char) == fp._FOLDED.get(cp, char), hex(cp)


def _texts_for_letters() -> list[str]:
    texts = sample_articles()
    rng = random.Random(3)
    out = [
        "",
        "ＩＢＭ與臺積電的ＡＩ晶片，３．５％，½，Ⅻ，㈱",
        "e\u0301 и\u0306 ｶﾞ 〪 ﬁ ǅ 𠀀",  # combining marks and their kin: the contextual path
        "ÀÉÎÕÜ àéîõü ß ª º ¹²³ µ",
        "\u3000全角空格\u3000和\t製表符\r\n換行……——“引号”《书名》",
    ]
    for _ in range(60):
        text = rng.choice(texts)
        a = rng.randrange(len(text))
        piece = text[a : a + rng.randint(1, 900)]
        out.append(piece if rng.random() < 0.5 else segment.to_simplified(piece))
    plain = [cp for lo, hi in fp._PLAIN for cp in range(lo, hi + 1)]
    marks = [0x0301, 0x0306, 0x0308, 0x302A, 0x3099, 0xFF9E, 0x1161, 0x0338]
    for _ in range(200):
        chars = [chr(rng.choice(plain)) for _ in range(rng.randint(1, 60))]
        if rng.random() < 0.3:
            chars.insert(rng.randrange(len(chars) + 1), chr(rng.choice(marks)))
        out.append("".join(chars))
    return out


def test_letters_match_the_reference() -> None:
    for text in _texts_for_letters():
        assert fp.letters(text) == reference_letters(text), text
