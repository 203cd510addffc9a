"""Deterministic synthetic multi-label video catalog written as JSON Lines.

Third-party datasets cannot ship with the project, so the demo, the tests and the
benchmarks use this generator instead. Each category owns a pool of distinctive
keywords (a few with accented or non-Latin synonyms) and every video mixes the
keywords of its 1-3 categories with generic filler words, plus ~10% confusing
keywords from another category, so a linear bag-of-words model learns a useful
but imperfect tagger. The file also carries the noise of real exports: HTML, URLs,
literal ``\\n`` sequences, emoji, other scripts, ``|``-joined tags, missing
descriptions, re-published duplicates, text-less videos and malformed lines. The
returned :class:`SampleManifest` states how many of each a reader should find.

This module plans the line order (duplicates, malformed lines) and writes the file;
the word lists live in :mod:`pipelines.tools.sample_vocabulary` and the records'
labels and text come from :mod:`pipelines.tools.sample_text`.

Only the standard library is used and output depends on ``(videos, seed)`` alone::

    python -m pipelines.tools.sample_catalog --out demo-out/catalog.jsonl.gz --videos 3000
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import itertools
import json
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pipelines.tools.sample_text import TextGenerator
from pipelines.tools.sample_vocabulary import CATEGORIES, DUP_SUFFIXES, KEYWORDS

__all__ = [
    "CATEGORIES",
    "KEYWORDS",
    "OVERSIZED_FIELD_CHARS",
    "SampleManifest",
    "generate_lines",
    "write_sample_catalog",
]

_NOT_JSON = (
    "<html><body><h1>502 Bad Gateway</h1></body></html>", "video_id,title,description,tags",
    "Traceback (most recent call last):", "-- export truncated --", "undefined",
    "{{video_id: {vid}, title: 'unquoted keys'}}",
)  # fmt: skip
_INVALID_UTF8 = (b"\xff\xfe", b"\xc3\x28", b"\xe2\x82 ", b"\x80bad\xbf")
_MALFORMED_KINDS = (
    "not_json", "truncated_json", "json_array", "missing_video_id", "empty_video_id",
    "invalid_utf8",
)  # fmt: skip
OVERSIZED_FIELD_CHARS = 250_000
_OVERSIZED_TEXT = ("lorem ipsum dolor sit amet " * (OVERSIZED_FIELD_CHARS // 27 + 1))[
    :OVERSIZED_FIELD_CHARS
]
_BASE_TS = 1_704_067_200  # 2024-01-01T00:00:00Z
_SPAN_S = 2 * 365 * 86_400
_MAX_ID = 9_999_999  # malformed lines take ids from the top; valid videos from 0


@dataclasses.dataclass(frozen=True)
class SampleManifest:
    """What a correct reader should find in a generated catalog."""

    lines: int
    unique_videos: int
    duplicates: int
    malformed: int
    empty_text: int
    categories: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (categories as a list)."""
        return {**dataclasses.asdict(self), "categories": list(self.categories)}


_DAYS: dict[int, str] = {}
_CLOCK = [f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
_SECONDS = [f"{s:02d}Z" for s in range(60)]
_JSON = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(..., ensure_ascii=False)


def _iso(ts: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` for a UTC epoch second (dates cached: strftime is slow)."""
    day, sec = divmod(ts, 86_400)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))
    return f"{date}T{_CLOCK[sec // 60]}{_SECONDS[sec % 60]}"


def _encode(obj: Any) -> bytes:
    return _JSON(obj).encode("utf-8")


class _CatalogGenerator:
    """Plans the line order up front, then renders the lines lazily with one RNG.

    Records come from :class:`TextGenerator`, which shares ``self.rng``: the order of
    every draw, here and there, is what keeps a catalog byte-identical per seed.
    """

    def __init__(self, videos: int, seed: int) -> None:
        if not 1 <= videos <= 9_000_000:
            raise ValueError(f"videos must be in [1, 9000000], got {videos}")
        self.rng = random.Random(seed)
        self.videos = videos
        self.text = TextGenerator(self.rng)
        self._originals: dict[int, tuple[dict[str, Any], int]] = {}
        rng = self.rng
        n_empty = max(1, round(videos * 0.005))
        n_dup = min(max(1, round(videos * 0.03)), videos - n_empty)
        picked = rng.sample(range(videos), n_empty + n_dup)
        self.empty = set(picked[:n_empty])
        n_earlier = max(1, round(n_dup * 0.1))
        self.dup_later = {v: i >= n_earlier for i, v in enumerate(picked[n_empty:])}
        n_mal = max(len(_MALFORMED_KINDS) + 1, round(0.003 * (videos + n_dup)))
        kinds = [_MALFORMED_KINDS[i % len(_MALFORMED_KINDS)] for i in range(n_mal - 1)]
        self.malformed = [("oversized", 0)] + [
            (k, i // len(_MALFORMED_KINDS)) for i, k in enumerate(kinds)
        ]
        self.order = list(range(videos + n_mal))
        rng.shuffle(self.order)
        pos_of = {item: pos for pos, item in enumerate(self.order) if item in self.dup_later}
        self.inserts: dict[int, list[int]] = {}
        for video in self.dup_later:  # a duplicate goes anywhere after its original
            where = rng.randrange(pos_of[video] + 1, len(self.order) + 1)
            self.inserts.setdefault(where, []).append(video)
        self.manifest = SampleManifest(
            videos + n_dup + n_mal, videos, n_dup, n_mal, n_empty, CATEGORIES
        )

    def lines(self) -> Iterator[bytes]:
        """Yield every line (without the trailing newline) in file order."""
        inserts, videos = self.inserts, self.videos
        for pos, item in enumerate(self.order):
            for video in inserts.get(pos, ()):
                yield self._duplicate(video)
            yield self._video(item) if item < videos else self._malformed(item - videos)
        for video in inserts.get(len(self.order), ()):
            yield self._duplicate(video)

    def _video(self, index: int) -> bytes:
        video_id, key = f"v{index:07d}", self.text.labels()
        if index in self.empty:
            record = self.text.empty_record(video_id, key)
        else:
            record = self.text.record(video_id, key)
        ts = _BASE_TS + int(self.rng.random() * _SPAN_S)
        record["updated_at"] = _iso(ts)
        if index in self.dup_later:
            self._originals[index] = (record, ts)
        return _encode(record)

    def _duplicate(self, index: int) -> bytes:
        """Re-publication of an earlier line: changed title, later (or earlier) updated_at."""
        rng = self.rng
        record, ts = self._originals.pop(index)
        shift = rng.randrange(3600, 90 * 86_400)
        dup = dict(record, title=record["title"] + rng.choice(DUP_SUFFIXES))
        dup["updated_at"] = _iso(ts + shift if self.dup_later[index] else ts - shift)
        return _encode(dup)

    def _malformed(self, index: int) -> bytes:
        """A line that a reader must dead-letter; ids never collide with valid ones."""
        rng = self.rng
        kind, nth = self.malformed[index]
        video_id = f"v{_MAX_ID - index:07d}"
        record = self.text.record(video_id, self.text.labels())
        record["updated_at"] = _iso(_BASE_TS + rng.randrange(_SPAN_S))
        if kind == "not_json":
            return _NOT_JSON[nth % len(_NOT_JSON)].format(vid=video_id).encode("utf-8")
        if kind == "truncated_json":
            text = json.dumps(record, ensure_ascii=False)
            return text[: rng.randrange(1, len(text) - 1)].encode("utf-8")
        if kind == "json_array":
            return _encode([record] if nth % 2 == 0 else [video_id, record["title"]])
        if kind == "missing_video_id":  # no key, an "id" key instead, or "video_id": null
            del record["video_id"]
            if nth % 3 == 1:
                record = {"id": video_id, **record}
            elif nth % 3 == 2:
                record = {"video_id": None, **record}
        elif kind == "empty_video_id":
            record["video_id"] = ""
        elif kind == "invalid_utf8":
            record["title"] += " @@BAD@@"
            bad = _INVALID_UTF8[nth % len(_INVALID_UTF8)]
            return _encode(record).replace(b"@@BAD@@", bad)
        elif kind == "oversized":
            record["description"] = _OVERSIZED_TEXT
        return _encode(record)


def generate_lines(videos: int = 3000, seed: int = 0) -> tuple[list[bytes], SampleManifest]:
    """All lines of a catalog with ``videos`` unique valid videos (no trailing newlines)."""
    generator = _CatalogGenerator(videos, seed)
    return list(generator.lines()), generator.manifest


def _write_lines(write: Callable[[bytes], object], lines: Iterable[bytes]) -> None:
    it = iter(lines)
    while chunk := list(itertools.islice(it, 4096)):
        write(b"\n".join(chunk) + b"\n")


def write_sample_catalog(
    path: str | os.PathLike[str], videos: int = 3000, seed: int = 0
) -> SampleManifest:
    """Write the catalog as JSONL (gzip when ``path`` ends with ``.gz``) and return its manifest.

    Output is byte-identical for the same ``(videos, seed)``, gzip included (no name or
    mtime in the gzip header). Parent directories are created.
    """
    path = os.fspath(path)
    generator = _CatalogGenerator(videos, seed)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as raw:
        if path.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
                _write_lines(gz.write, generator.lines())
        else:
            _write_lines(raw.write, generator.lines())
    return generator.manifest


def main(argv: list[str] | None = None) -> None:
    """CLI: write a sample catalog and print its manifest as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output path (.jsonl or .jsonl.gz)")
    parser.add_argument("--videos", type=int, default=3000, help="unique valid videos")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    manifest = write_sample_catalog(args.out, args.videos, args.seed)
    print(json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
