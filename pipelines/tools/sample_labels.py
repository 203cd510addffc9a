"""Deterministic synthetic catalog with a large label space, written as JSON Lines.

For training and benchmarking sampled-softmax training on 1,000 to 1,000,000 labels
(``catalog-tagger sample --labels N``). Label ``topic_<r>`` (``r`` zero-padded to the
width of N) has Zipf rank ``r``: P(rank r) is proportional to ``1 / r**zipf_s``. Every
video carries 1-3 distinct labels (55% one, 35% two, 10% three). Each label owns 2-3
pseudo-words (lowercase ASCII, 5-10 letters, from syllables): no stopwords, Snowball
English stems unique across labels and unlike any filler word's, so they survive the
text graph with or without stemming. A video's text shows a non-empty random subset of
its labels' words among 10-20 filler words shared by all labels; 10% of videos also
show a word of a random other label: learnable, but not perfectly.

Records have the keys of :mod:`pipelines.tools.sample_catalog` (``video_id``, ``title``,
``description``, ``tags`` list, ``categories`` list of label names, ``updated_at``)
without its noise (no duplicates or malformed lines). Output depends only on ``(labels,
videos, seed, zipf_s)``; lines are drawn and written in chunks of 4,096 videos.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import time
from collections.abc import Callable, Iterator
from importlib.resources import files
from typing import Any, NamedTuple

import numpy as np

from pipelines.tools.sample_vocabulary import FILLER

__all__ = [
    "LabelCatalogManifest",
    "default_videos",
    "label_names",
    "topic_words",
    "write_label_catalog",
]

MAX_LABELS = 1_000_000
_ONSETS = "b d f g h j k l m n p r s t v z br dr fl gr kr pl sk st tr sh ch th"
_CODAS = ("", "", "n", "r", "l")  # open syllables twice as likely
_SYLLABLES = tuple(o + v + c for o in _ONSETS.split() for v in "aeiou" for c in _CODAS)
_LABEL_COUNTS = (0.55, 0.90)  # cumulative: P(1 label), P(<= 2 labels)
_SHOW_WORD = 0.6  # chance each of a label's words shows in a video's text
_CONFUSION = 0.1  # chance a video also shows one word of a random other label
_CHUNK = 4096  # videos drawn and written per batch
_BASE_TS, _SPAN_S = 1_704_067_200, 2 * 365 * 86_400  # 2024-01-01Z, two years
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


@dataclasses.dataclass(frozen=True)
class LabelCatalogManifest:
    """What a generated label catalog holds (one record per line, all valid)."""

    videos: int
    labels: int
    labels_used: int  # labels carried by at least one video
    label_assignments: int  # (video, label) pairs
    topic_words: int
    zipf_s: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of the fields."""
        return dataclasses.asdict(self)


def default_videos(labels: int) -> int:
    """Videos written when none are asked for: 20 per label, within [1,000, 200,000].

    Enough for the head of the Zipf distribution to be learnable while 100k labels
    still write in seconds; benchmarks pass their own ``videos``.
    """
    return min(max(20 * labels, 1_000), 200_000)


def label_names(labels: int) -> list[str]:
    """``topic_<rank>`` names, rank 1 first, zero-padded to the width of ``labels``."""
    width = len(str(labels))
    return [f"topic_{rank:0{width}d}" for rank in range(1, labels + 1)]


def _stopwords() -> frozenset[str]:
    """The text graph's stopwords, read from its resource file without importing TF
    (the rules of :func:`transforms.text.load_stopwords`)."""
    text = (files("transforms") / "data" / "stopwords_en.txt").read_text("utf-8")
    words = (line.strip() for line in text.splitlines())
    return frozenset(word.casefold() for word in words if word and not word.startswith("#"))


def _candidates(rng: np.random.Generator) -> Iterator[str]:
    """An endless stream of 5-10 letter words of 2-3 syllables."""
    while True:
        n_syllables = rng.integers(2, 4, size=_CHUNK).tolist()
        picks = rng.integers(0, len(_SYLLABLES), size=(_CHUNK, 3)).tolist()
        for n, row in zip(n_syllables, picks, strict=True):
            word = "".join(_SYLLABLES[i] for i in row[:n])
            if 5 <= len(word) <= 10:
                yield word


def _topic_words(rng: np.random.Generator, labels: int) -> list[tuple[str, ...]]:
    """2-3 words per label, rank order; every stem unique and no filler word's stem."""
    from nltk.stem.snowball import SnowballStemmer

    stem = SnowballStemmer("english").stem
    stopwords = _stopwords()
    taken = {stem(word) for word in FILLER}
    sizes = rng.integers(2, 4, size=labels).tolist()
    stream = _candidates(rng)
    table = []
    for size in sizes:
        words = []
        while len(words) < size:
            word = next(stream)
            stemmed = stem(word)
            if stemmed not in taken and word not in stopwords:
                taken.add(stemmed)
                words.append(word)
        table.append(tuple(words))
    return table


def topic_words(labels: int, seed: int = 0) -> list[tuple[str, ...]]:
    """Each label's topic words (rank order) in the catalog written with this seed."""
    _check(labels, 1, 0.0)
    return _topic_words(np.random.default_rng(seed), labels)


def _check(labels: int, videos: int, zipf_s: float) -> None:
    if not 1 <= labels <= MAX_LABELS:
        raise ValueError(f"labels must be in [1, {MAX_LABELS}], got {labels}")
    if not 1 <= videos <= 9_999_999:
        raise ValueError(f"videos must be in [1, 9999999], got {videos}")
    if not 0.0 <= zipf_s <= 10.0:
        raise ValueError(f"zipf_s must be in [0, 10], got {zipf_s}")


def _distinct(ranks: list[int], want: int, draw: Callable[[], int]) -> list[int]:
    """The first ``want`` distinct ``ranks``, completed by ``draw()`` if too few."""
    chosen = list(dict.fromkeys(ranks))[:want]
    while len(chosen) < want:
        rank = draw()
        if rank not in chosen:
            chosen.append(rank)
    return chosen


class _Video(NamedTuple):
    """One video's random draws (taken a chunk at a time: numpy is fast in bulk)."""

    want: int  # how many labels
    ranks: list[int]  # Zipf draws (0-based ranks); the first distinct ones are its labels
    shown: list[float]  # per (label, word) slot: shown when < _SHOW_WORD
    fill: list[int]  # filler word indices
    n_fill: int  # how many of them
    keys: list[float]  # sort keys that shuffle the description
    tag_draws: list[float]  # per topic word: also a tag when < 0.5
    other: int  # a label whose word confuses the text, or -1
    pick: float  # which of its words
    stamp: int  # seconds after _BASE_TS


def _draw_chunk(rng: np.random.Generator, size: int, cdf: np.ndarray) -> Iterator[_Video]:
    """The draws of ``size`` videos; the order of the draws fixes the output per seed."""
    n_labels = len(cdf)
    u = rng.random(size)
    wants = np.minimum(1 + (u >= _LABEL_COUNTS[0]) + (u >= _LABEL_COUNTS[1]), n_labels)
    ranks = np.searchsorted(cdf, rng.random((size, 6)) * cdf[-1], side="right")
    shown, fills = rng.random((size, 9)), rng.integers(0, len(FILLER), size=(size, 20))
    n_fills, keys = rng.integers(10, 21, size=size), rng.random((size, 32))
    tag_draws, confused = rng.random((size, 9)), rng.random(size) < _CONFUSION
    others = np.where(confused, rng.integers(0, n_labels, size=size), -1)
    picks, stamps = rng.random(size), rng.integers(0, _SPAN_S, size=size)
    columns = (wants, ranks, shown, fills, n_fills, keys, tag_draws, others, picks, stamps)
    return map(_Video._make, zip(*(c.tolist() for c in columns), strict=True))


def _text(words: list[tuple[str, ...]], video: _Video, confusing: str | None) -> dict[str, Any]:
    """Title, description and tags of a video that shows some of its labels' ``words``.

    Each label shows each of its words with chance _SHOW_WORD, at least one. The
    title holds the first label's first shown word among 3 filler words; the other
    topic words, and ``confusing``, are shuffled into the description's filler words.
    """
    topic = []
    for j, label_words in enumerate(words):
        shown = video.shown[3 * j : 3 * j + 3]
        picked = [w for w, u in zip(label_words, shown, strict=False) if u < _SHOW_WORD]
        if not picked:  # given word 0 hidden, (shown[0] - p) / (1 - p) is uniform in [0, 1)
            u = (shown[0] - _SHOW_WORD) / (1 - _SHOW_WORD)
            picked = [label_words[int(u * len(label_words))]]
        topic += picked
    filler = [FILLER[i] for i in video.fill[: video.n_fill]]
    body = filler[3:] + topic[1:] + ([confusing] if confusing else [])
    body = [body[i] for i in sorted(range(len(body)), key=video.keys.__getitem__)]
    title = " ".join(filler[:2] + [topic[0]] + filler[2:3])
    tags = [w for w, u in zip(topic, video.tag_draws, strict=False) if u < 0.5] + [filler[-1]]
    return {"title": title[:1].upper() + title[1:], "description": " ".join(body), "tags": tags}


def _blocks(
    rng: np.random.Generator, table: list[tuple[str, ...]], cdf: np.ndarray, videos: int
) -> Iterator[tuple[bytes, list[int]]]:
    """(JSON lines, ranks assigned) of ``_CHUNK`` videos at a time, in file order."""
    names, width = label_names(len(table)), max(7, len(str(videos - 1)))

    def draw() -> int:  # rarely needed: six Zipf draws held fewer distinct labels
        return int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))

    for start in range(0, videos, _CHUNK):
        assigned: list[int] = []
        lines = []
        for index, video in enumerate(_draw_chunk(rng, min(_CHUNK, videos - start), cdf), start):
            chosen = _distinct(video.ranks, video.want, draw)
            assigned += chosen
            other = None if video.other < 0 or video.other in chosen else table[video.other]
            confusing = other[int(video.pick * len(other))] if other else None
            record = {"video_id": f"v{index:0{width}d}"}
            record.update(_text([table[rank] for rank in chosen], video, confusing))
            record["categories"] = [names[rank] for rank in sorted(chosen)]
            stamp = time.gmtime(_BASE_TS + video.stamp)
            record["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", stamp)
            lines.append(_ENCODE(record))
        yield ("\n".join(lines) + "\n").encode("utf-8"), assigned


def write_label_catalog(
    path: str | os.PathLike[str],
    *,
    labels: int,
    videos: int | None = None,
    seed: int = 0,
    zipf_s: float = 1.0,
) -> LabelCatalogManifest:
    """Write the catalog as JSONL (gzip when ``path`` ends with ``.gz``); return its manifest.

    ``videos`` defaults to :func:`default_videos`. Output is byte-identical for the
    same arguments, gzip included (no name or mtime in its header). Parent
    directories are created.
    """
    videos = default_videos(labels) if videos is None else videos
    _check(labels, videos, zipf_s)
    rng = np.random.default_rng(seed)
    table = _topic_words(rng, labels)
    cdf = np.cumsum(np.arange(1, labels + 1, dtype=np.float64) ** -zipf_s)
    counts = np.zeros(labels, dtype=np.int64)
    path = os.fspath(path)
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as raw:
        out = raw
        if path.endswith(".gz"):
            out = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
        with out:
            for block, assigned in _blocks(rng, table, cdf, videos):
                out.write(block)
                counts += np.bincount(assigned, minlength=labels)
    n_words = sum(map(len, table))
    used, assigned = int(np.count_nonzero(counts)), int(counts.sum())
    return LabelCatalogManifest(videos, labels, used, assigned, n_words, float(zipf_s), seed)
