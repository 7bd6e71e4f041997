"""Stage 5: segmentation and POS tagging in the article's own script.

Traditional text is converted to Simplified with OpenCC, segmented, and the
tokens are mapped back to the original characters by offset. jieba's
dictionary and HMM are trained on Simplified text, so this is both better
(SIGHAN AS F1 0.74 -> 0.82) and about 100x faster for ``jieba.posseg``.

The conversion must keep every character at its offset. OpenCC's phrase
tables almost always map n characters to n characters; where a conversion
changes length, that stretch is converted character by character instead.

Before the engine sees the text, full-width letters, digits and the symbols
jieba keeps inside words (``+#&._%-``) are folded to ASCII, one character for
one, so ``２００５年`` and ``ＩＢＭ`` segment like ``2005年`` and ``IBM`` instead of
falling apart into single characters. Tokens are always sliced from the
original text, so full-width characters come out exactly as they went in.

jieba's HMM reads every run of characters that its dictionary leaves as single
characters. Its POS-tagging HMM costs 0.3-3 ms a character (more for characters
it never saw in training), against 0.02 ms for dictionary words, so text that is
mostly such runs (random characters, noise) took minutes per article. The
:class:`HmmBudget` keeps the HMM to text where those runs are as sparse as in
language: natural text is segmented exactly as before (SIGHAN F1 unchanged),
noise in linear time, with the runs left as single characters and the count
reported.
"""

from __future__ import annotations

import importlib.util
import re
import string
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from functools import cache
from operator import itemgetter
from pathlib import Path

import opencc

from worker.config import ConfigError
from worker.stages.interning import laid_out_by_use, one_object_per_value

Token = tuple[str, str, int]  # (word in original script, POS, start offset)

DATA = Path(__file__).resolve().parent.parent / "data"
PROJECT_DICT = DATA / "userdict.txt"


def jieba_file(name: str) -> Path:
    """A data file jieba ships (``dict.txt``, ``analyse/idf.txt``), found without importing jieba."""
    spec = importlib.util.find_spec("jieba")
    if spec is None or spec.origin is None:  # pragma: no cover - jieba is a dependency
        raise ImportError("jieba is not installed")
    return Path(spec.origin).parent / name


# OpenCC configuration used to reach Simplified. t2s, tw2s, hk2s and tw2sp were
# measured on SIGHAN 2005 (README, "Segmentation and tagging"): they differ by
# under 0.001 F1, and t2s is the one that takes no side between Taiwan and Hong
# Kong usage.
CONVERSION = "t2s"

_FOLD = str.maketrans({chr(ord(ch) + 0xFEE0): ch for ch in string.ascii_letters + string.digits + "+#&._%-"})
# Runs of characters to fold: a C-speed search, and the table looked up only for
# them (a translate of the whole text costs a dictionary lookup per character).
_FOLDABLE = re.compile("[" + re.escape("".join(chr(o) for o in _FOLD)) + "]+")

# Runs that jieba would tear apart: URLs, e-mail addresses, numbers with
# separators, Latin words with inner dots, hyphens or digits (COVID-19, U.S).
# A URL ends on a character that cannot close a sentence, so "見 https://a.b/c."
# keeps its full stop.
_PROTECTED = re.compile(
    r"(?:https?|ftp)://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*[A-Za-z0-9\-_~/#=&+%]"
    r"|(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
    r"|\d+(?:[.,:/-]\d+)+%?"
    r"|(?<![A-Za-z0-9])[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*(?:[.'_-][A-Za-z0-9]+)+",
    re.ASCII,
)
_CHUNK = re.compile(r"[^\s，。、；：！？「」『』（）,.;:!?()]+|[\s，。、；：！？「」『』（）,.;:!?()]+")
# jieba's own user-dictionary line format: word, optional frequency, optional tag.
_DICT_LINE = re.compile(r"^(.+?)( [0-9]+)?( [a-z]+)?$")


@cache
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    """Convert to Simplified Chinese, keeping every character at its offset."""
    return convert(text, CONVERSION)


def convert(text: str, config: str) -> str:
    """Convert with an OpenCC ``config``, keeping every character at its offset."""
    converter = _converter(config)
    converted = converter.convert(text)
    if len(converted) == len(text):
        return converted
    out = []
    for chunk in _CHUNK.findall(text):
        piece = converter.convert(chunk)
        if len(piece) != len(chunk):
            piece = "".join(_one_char(converter, ch) for ch in chunk)
        out.append(piece)
    return "".join(out)


def _one_char(converter: opencc.OpenCC, ch: str) -> str:
    piece = converter.convert(ch)
    return piece if len(piece) == 1 else ch


def analysis_form(simplified: str) -> str:
    """What the engine segments: the Simplified form with full-width ASCII folded.

    Same length as its input, so offsets carry over unchanged. The stages after
    segmentation (tag, entity spans, entities, keywords) each ask for the form
    of the same article, so the last one made is kept: asked again for the
    very same string object, it is handed back instead of made again.
    """
    global _last_form
    last = _last_form
    if last[0] is simplified:
        return last[1]
    form = _FOLDABLE.sub(_fold_run, simplified)
    _last_form = (simplified, form)
    return form


# (the string, its analysis form): one tuple, swapped whole, so a reader never sees half of it.
_last_form: tuple[str | None, str] = (None, "")


def _fold_run(run: re.Match[str]) -> str:
    return run.group().translate(_FOLD)


# The HMM reads an out-of-dictionary run only while such runs make up at most
# this share of the text read so far (natural text: 5-10%; random characters
# drawn from news: 80%), plus HMM_SLACK characters, so that a short line that
# is mostly one foreign name keeps it.
HMM_DENSITY = 0.35
HMM_SLACK = 24
# "So far" fades: past this many characters the counts are halved, so a long
# article is judged on its last few thousand characters, not its whole length.
HMM_WINDOW = 2000
# A character the HMM has no emission figures for costs it several times more
# (it tries every state); it counts this many times.
UNKNOWN_WEIGHT = 5
# What jieba's HMM reads of a run (jieba.finalseg.re_han, jieba.posseg.re_han_detail).
_HAN_RUN = re.compile("[\u4e00-\u9fd5]")


class HmmBudget:
    """Whether jieba's HMM may read the next out-of-dictionary run of one text.

    Deterministic: the same text is segmented the same way on every machine and
    under any load, unlike a time budget. The HMM's cost is bounded by
    ``HMM_DENSITY`` (weighted) characters per character of text, plus the slack.
    """

    def __init__(self, known: Container[str]) -> None:
        self.known = known
        self.reset()

    def reset(self) -> None:
        self.seen = 0.0
        self.runs = 0.0
        self.skipped = 0  # characters of runs left to single characters

    def read(self, chars: int) -> None:
        """``chars`` characters segmented by the dictionary alone."""
        self.seen += chars
        if self.seen > HMM_WINDOW:  # the test of _fade, here: this runs once per word
            self._fade()

    def allow(self, run: str) -> bool:
        """Whether the HMM may read ``run``; counted as read either way.

        Only Han characters cost: jieba reads Latin letters and digits in a run
        with a regular expression, not the HMM.
        """
        self.seen += len(run)
        han = _HAN_RUN.findall(run)
        self.runs += len(han) + (UNKNOWN_WEIGHT - 1) * sum(c not in self.known for c in han)
        allowed = self.runs <= HMM_DENSITY * self.seen + HMM_SLACK
        if not allowed:
            self.skipped += len(run)
        self._fade()
        return allowed

    def _fade(self) -> None:
        if self.seen > HMM_WINDOW:
            self.seen /= 2
            self.runs /= 2


@dataclass(frozen=True)
class Engine:
    """One segmentation engine: ``cut`` words and ``tag`` (word, POS) pairs."""

    name: str
    cut: Callable[[str], list[str]]
    tag: Callable[[str], list[tuple[str, str]]]
    # jieba's HMM budget, reset for each text; None for engines whose HMM is cheap.
    budget: HmmBudget | None = field(default=None, compare=False)
    # Lays the engine's tables out for the lookups they get (see _lay_out): worth its
    # time in a long-lived process (a worker, before it forks), not in a short command.
    lay_out: Callable[[], None] = field(default=lambda: None, compare=False)

    def begin(self) -> None:
        """A new text starts: the HMM budget starts afresh."""
        if self.budget is not None:
            self.budget.reset()

    @property
    def hmm_skipped(self) -> int:
        """Characters of the last text whose runs the HMM did not read."""
        return self.budget.skipped if self.budget is not None else 0


DictEntry = tuple[str, int | None, str | None]


def read_dictionary(path: Path) -> list[DictEntry]:
    """Entries of a user dictionary in jieba's format, words made Simplified.

    ``word [freq] [tag]`` per line, as jieba's ``load_userdict`` reads it
    (a word may contain spaces); ``#`` starts a comment line. Words may be
    written in either script: the engines segment the Simplified form.
    """
    entries: list[DictEntry] = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _DICT_LINE.match(line)
        assert match is not None  # the pattern matches any non-empty line
        word, freq, tag = match.groups()
        entries.append(
            (
                analysis_form(to_simplified(word.strip())),
                int(freq) if freq else None,
                tag.strip() if tag else None,
            )
        )
    return entries


def read_words(path: Path) -> set[str]:
    """A word list (stopwords, deny list, titles): one word per line, ``#`` starts a comment line.

    Words may be written in either script; they come back in the form they are
    looked up under: Simplified, ASCII folded.
    """
    return {
        analysis_form(to_simplified(line.strip()))
        for line in path.read_text(encoding="utf-8-sig").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }


def dictionary_paths(user_dict: str = "") -> list[Path]:
    """The project dictionary, then the user's (``NEWSFLOW_USER_DICT``) if any."""
    return [PROJECT_DICT] + ([Path(user_dict)] if user_dict else [])


ENGINES = ("jieba", "jieba-rs")


def has_engine(name: str) -> bool:
    """Whether ``name`` can be loaded here (jieba-rs is the optional ``fast`` extra)."""
    if name == "jieba-rs":
        import importlib.util

        return importlib.util.find_spec("rjieba") is not None
    return name in ENGINES


def engine(name: str = "jieba", user_dict: str = "", hmm: bool = True) -> Engine:
    """Load an engine once per process, with the project and user dictionaries.

    Both engines get the same entries through ``add_word(word, freq, tag)``.
    A tag given in a dictionary overrides the engine's own tag for that word:
    jieba's posseg does this itself; jieba-rs keeps the tag of a word it already
    knows, so the override is applied to its output here.
    """
    return _load(name, user_dict, hmm)  # one cache key however it is called


# Up to this many words with a dictionary tag, jieba-rs's tagger finds out
# whether a text holds one by a regex search of the text: 0.0035 ms an article
# with the project's 20 words, against 0.015-0.02 for the set check, which
# costs the same for any number of words. The search costs about 0.00024 ms
# more for each word (0.24 ms with 1,000).
_FEW_TAGGED = 50


@cache
def _load(name: str, user_dict: str, hmm: bool) -> Engine:
    entries = [e for path in dictionary_paths(user_dict) for e in read_dictionary(path)]
    if name == "jieba":
        import jieba
        import jieba.posseg

        jieba.setLogLevel(60)
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        for word, freq, tag in entries:
            tokenizer.add_word(word, freq, tag)
        pos = _pos_tokenizer(tokenizer)
        pos.makesure_userdict_loaded()
        one_object_per_value(tokenizer.FREQ)
        one_object_per_value(pos.word_tag_tab)
        budget = HmmBudget(frozenset(jieba.posseg.char_state_tab_P))
        bounded_tag = _bound_hmm(tokenizer, pos, budget)
        return Engine(
            name,
            cut=lambda s: tokenizer.lcut(s, HMM=hmm),
            tag=bounded_tag if hmm else lambda s: [(p.word, p.flag) for p in pos.cut(s, HMM=False)],
            budget=budget,
            lay_out=lambda: _lay_out(tokenizer, pos),
        )
    if name == "jieba-rs":
        try:
            import rjieba
        except ImportError:  # pragma: no cover - depends on the install
            raise ConfigError("the jieba-rs engine needs: pip install 'newsflow[fast]'") from None
        rs = rjieba.Jieba()
        user_tags: dict[str, str] = {}
        for word, freq, tag in entries:
            rs.add_word(word, freq, tag)
            if tag:
                user_tags[word] = tag

        # Few texts hold a word with a dictionary tag: only their pairs are
        # rebuilt. A token equal to such a word means the word is in the text,
        # so with a few such words (the project's own) one search of the text
        # finds out, before any pair is read. Python's regex tries the words
        # one by one, so with more of them a set check over the pairs is cheaper.
        if len(user_tags) <= _FEW_TAGGED:
            tagged = re.compile("|".join(map(re.escape, user_tags)) or "(?!)")

            def holds_tagged(s: str, pairs: list[tuple[str, str]]) -> bool:
                return tagged.search(s) is not None

        else:

            def holds_tagged(s: str, pairs: list[tuple[str, str]]) -> bool:
                return not user_tags.keys().isdisjoint(map(itemgetter(0), pairs))

        def rs_tag(s: str) -> list[tuple[str, str]]:
            pairs = rs.tag(s, hmm)
            if holds_tagged(s, pairs):  # the pairs of other words are kept as they are
                pairs = [(p[0], user_tags[p[0]]) if p[0] in user_tags else p for p in pairs]
            return pairs

        return Engine(name, cut=lambda s: rs.cut(s, hmm), tag=rs_tag)
    raise ValueError(f"unknown engine {name!r}")


def _pos_tokenizer(tokenizer):  # noqa: ANN001, ANN202 - jieba's own classes
    """jieba's POS tokenizer over ``tokenizer``, with a copy of the tag table jieba.posseg already read.

    ``POSTokenizer(tokenizer)`` reads the tag of every word from the
    tokenizer's main dictionary, which importing jieba.posseg has just done
    for its own tokenizer (``jieba.posseg.dt``) from the same file: again,
    that is 0.3 s and 43 MB. A copy of that table shares its strings. The
    user dictionary's tags go into the copy alone (``makesure_userdict_loaded``).
    """
    import jieba
    import jieba.posseg

    if tokenizer.dictionary != jieba.dt.dictionary:  # another main dictionary: its own tags
        return jieba.posseg.POSTokenizer(tokenizer)
    # What POSTokenizer.__init__ sets, less the reading (jieba is pinned, see pyproject.toml).
    pos = jieba.posseg.POSTokenizer.__new__(jieba.posseg.POSTokenizer)
    pos.tokenizer = tokenizer
    pos.word_tag_tab = dict(jieba.posseg.dt.word_tag_tab)
    return pos


def _lay_out(tokenizer, pos) -> None:  # noqa: ANN001 - jieba's own classes
    """jieba's dictionary and tag table, common words first (interning.laid_out_by_use), values shared.

    jieba looks words up a few times per character; laid out as it loads them,
    a lookup often misses the caches. Laid out, jieba tags 2-3% faster inside
    the pipeline; it takes about 0.6 s, once.
    """
    counts: dict[str, int] = tokenizer.FREQ
    tags: dict[str, str] = pos.word_tag_tab
    # The values stay the objects one_object_per_value made them at load.
    tokenizer.FREQ = laid_out_by_use(counts, rank=(-n for n in counts.values()))
    pos.word_tag_tab = laid_out_by_use(tags, rank=(-counts.get(w, 0) for w in tags))


def _bound_hmm(  # noqa: ANN001 - jieba's own classes
    tokenizer, pos, budget: HmmBudget
) -> Callable[[str], list[tuple[str, str]]]:
    """Put :class:`HmmBudget` in front of jieba's HMM: in its cutter, and in a tagger returned.

    jieba 0.42.1's ``__cut_DAG`` (pinned in pyproject.toml), the same steps with
    the budget asked before a run goes to the HMM; an instance attribute takes
    the place of the name-mangled method for the cutter only.

    The tagger is ``pos.cut(sentence)`` as ``(word, tag)`` tuples: posseg's own
    steps (``__cut_internal`` and ``__cut_DAG``) in one function that appends
    tuples, where posseg makes a ``pair`` object per word and passes it through
    three generators. jieba's DAG, route and HMM do the work either way; this
    wrapping cost a tenth of the tagging (docs/performance.md).
    """
    import jieba.finalseg
    import jieba.posseg

    detail = pos._POSTokenizer__cut_detail

    def pieces(sentence: str) -> Iterator[tuple[str, str]]:
        """``(text, kind)``: a dictionary ``word``, single ``chars``, or an out-of-dictionary ``run``."""
        dag = tokenizer.get_DAG(sentence)
        route: dict[int, tuple[float, int]] = {}
        tokenizer.calc(sentence, dag, route)
        x, n, buf = 0, len(sentence), ""
        while x < n:
            y = route[x][1] + 1
            if y - x == 1:
                buf += sentence[x]
            else:
                if buf:
                    yield buf, _kind(buf)
                    buf = ""
                yield sentence[x:y], "word"
            x = y
        if buf:
            yield buf, _kind(buf)

    def _kind(buf: str) -> str:
        # Looked up at call time: jieba replaces its tables when it initialises.
        return "run" if len(buf) > 1 and not tokenizer.FREQ.get(buf) else "chars"

    def cut_dag(sentence: str) -> Iterator[str]:
        for piece, kind in pieces(sentence):
            if kind == "run":
                yield from jieba.finalseg.cut(piece) if budget.allow(piece) else _cut_run(piece)
                continue
            budget.read(len(piece))
            yield from (piece,) if kind == "word" else piece

    def _cut_run(run: str) -> Iterator[str]:
        """``jieba.finalseg.cut`` with its HMM left out: Han characters one by one."""
        for block in jieba.finalseg.re_han.split(run):
            if jieba.finalseg.re_han.match(block):
                yield from block
            else:
                yield from (x for x in jieba.finalseg.re_skip.split(block) if x)

    han, skip = jieba.posseg.re_han_internal, jieba.posseg.re_skip_internal
    han_detail, skip_detail = jieba.posseg.re_han_detail, jieba.posseg.re_skip_detail
    num, eng = jieba.posseg.re_num, jieba.posseg.re_eng

    def tag(sentence: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        tags = pos.word_tag_tab  # looked up per call, as jieba replaces its tables when it initialises
        for block in han.split(sentence):
            if han.match(block):
                _tag_block(block, tags, out)
                continue
            for x in skip.split(block):
                if skip.match(x):
                    out.append((x, "x"))
                    continue
                for ch in x:  # posseg tests the whole of x for "eng", as here
                    out.append((ch, "m" if num.match(ch) else "eng" if eng.match(x) else "x"))
        return out

    def _tag_block(block: str, tags: dict[str, str], out: list[tuple[str, str]]) -> None:
        dag = tokenizer.get_DAG(block)
        route: dict[int, tuple[float, int]] = {}
        tokenizer.calc(block, dag, route)
        x, n, buf = 0, len(block), ""
        while x < n:
            y = route[x][1] + 1
            if y - x == 1:
                buf += block[x]
            else:
                if buf:
                    _tag_buffer(buf, tags, out)
                    buf = ""
                word = block[x:y]
                budget.read(y - x)
                out.append((word, tags.get(word, "x")))
            x = y
        if buf:
            _tag_buffer(buf, tags, out)

    def _tag_buffer(buf: str, tags: dict[str, str], out: list[tuple[str, str]]) -> None:
        """Characters the dictionary left single: one word each, or an out-of-dictionary run."""
        if len(buf) > 1 and not tokenizer.FREQ.get(buf):
            if budget.allow(buf):
                out += [(p.word, p.flag) for p in detail(buf)]
            else:
                _tag_run(buf, tags, out)
            return
        budget.read(len(buf))
        out += [(ch, tags.get(ch, "x")) for ch in buf]

    def _tag_run(run: str, tags: dict[str, str], out: list[tuple[str, str]]) -> None:
        """posseg's ``__cut_detail`` with its HMM left out: Han characters one by one."""
        for block in han_detail.split(run):
            if han_detail.match(block):
                out += [(ch, tags.get(ch, "x")) for ch in block]
                continue
            for x in skip_detail.split(block):
                if num.match(x):
                    out.append((x, "m"))
                elif eng.match(x):
                    out.append((x, "eng"))
                elif x:
                    out.append((x, "x"))

    tokenizer._Tokenizer__cut_DAG = cut_dag
    return tag


def tag(text: str, simplified: str, eng: Engine) -> list[Token]:
    """POS-tag ``text`` via its offset-aligned ``simplified`` form.

    Returns ``(word, pos, start)`` with ``text[start:start+len(word)] == word``.
    White space is not a token.
    """
    tokens: list[Token] = []
    append = tokens.append
    eng.begin()
    form = _aligned_form(text, simplified)
    same = form == text
    for start, end, protected in _spans(form):
        if protected:
            append((text[start:end], "eng" if form[start].isalpha() else "m", start))
            continue
        pairs = eng.tag(form[start:end])
        # One pass, each word's offset the running sum of the lengths before it
        # (a plain loop: faster here than a comprehension over accumulate).
        at = start
        if _SPACE.search(form, start, end):  # white space is no token; rare after dewrap
            for w, pos in pairs:
                if not w.isspace():
                    append((text[at : at + len(w)], pos, at))
                at += len(w)
        elif same:  # the engine's words are the text's own
            for w, pos in pairs:
                append((w, pos, at))
                at += len(w)
        else:
            for w, pos in pairs:
                end_of_word = at + len(w)
                append((text[at:end_of_word], pos, at))
                at = end_of_word
    return tokens


_SPACE = re.compile(r"\s")


def cut(text: str, simplified: str, eng: Engine, *, fold: bool = True) -> list[str]:
    """Words of ``text`` in its own script, white space dropped.

    ``fold=False`` leaves full-width ASCII as it is for the engine; it exists
    so the benchmark can show what folding is worth.
    """
    words: list[str] = []
    eng.begin()
    form = _aligned_form(text, simplified, fold)
    for start, end, protected in _spans(form):
        if protected:
            words.append(text[start:end])
            continue
        offset = start
        for word in eng.cut(form[start:end]):
            if not word.isspace():
                words.append(text[offset : offset + len(word)])
            offset += len(word)
    return words


def _aligned_form(text: str, simplified: str, fold: bool = True) -> str:
    if len(simplified) != len(text):
        raise ValueError("the simplified form must be aligned with the text, character for character")
    return analysis_form(simplified) if fold else simplified


# A protected run is printable ASCII throughout, and the character before it
# decides nothing its lookbehinds would not (it is no printable ASCII): so the
# runs are looked for only inside such stretches, which a C-speed scan finds.
# Searching the whole text tried every alternative at every Han character.
_ASCII_RUN = re.compile(r"[!-~]+")
# Every alternative holds one of these; most articles hold none of them.
_SEPARATOR = re.compile(r"[-.,:/'_@]")


def _protected(text: str) -> Iterator[re.Match[str]]:
    """``_PROTECTED.finditer(text)``, searched only where it can match."""
    if _SEPARATOR.search(text) is None:
        return
    for run in _ASCII_RUN.finditer(text):
        yield from _PROTECTED.finditer(text, run.start(), run.end())


def _spans(text: str) -> list[tuple[int, int, bool]]:
    """Split ``text`` into plain stretches and protected runs (URLs, numbers)."""
    spans: list[tuple[int, int, bool]] = []
    cursor = 0
    for match in _protected(text):
        if match.start() > cursor:
            spans.append((cursor, match.start(), False))
        spans.append((match.start(), match.end(), True))
        cursor = match.end()
    if cursor < len(text):
        spans.append((cursor, len(text), False))
    return spans
