"""Steps shared by every catalog job (preprocess, predict, nightly).

Each is a named ``PTransform``; the DoFns keep only picklable config in
``__init__`` and count what they do with Beam metrics.
"""

from __future__ import annotations

import typing

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines.components.catalog_io import DEAD, EMPTY_TEXT, RECORDS, dead_letter
from transforms.features import TEXT_FIELDS
from transforms.records import AV_FLAG, RecordError
from transforms.text import TAG_SEPARATOR, TextConfig


def av_inputs(record: dict, sizes: dict) -> dict:
    """The record's audio/visual inputs: its vectors (zeros when absent) and ``has_av``;
    a vector of the wrong length raises ``RecordError("bad_feature_size")``."""
    present = [name for name in sizes if record.get(name) is not None]
    out = {AV_FLAG: 1.0 if present else 0.0}
    for name, size in sizes.items():
        vector = record.get(name) or [0.0] * size
        if len(vector) != size:
            raise RecordError("bad_feature_size", f"{name} has {len(vector)} values, not {size}")
        out[name] = vector
    return out


def raw_text(record: dict) -> tuple[str, str, str]:
    """A record's text as the transform graph takes it: title, description, and its
    tags joined by ``|`` (``transforms.text.TAG_SEPARATOR``)."""
    tags = TAG_SEPARATOR.join(tag for tag in record.get("tags") or () if tag)
    return record.get("title") or "", record.get("description") or "", tags


class _PrepareTextFn(beam.DoFn):
    """A batch of records -> graph-ready rows; the text graph runs once per batch."""

    def __init__(self, config: TextConfig, av_sizes: dict | None, keep_empty_text: bool):
        self._config, self._av_sizes, self._keep_empty = config, av_sizes, keep_empty_text
        self._cleaned = Metrics.counter("catalog", "records_cleaned")
        self._empty = Metrics.counter("catalog", "records_empty_text")
        self._words = Metrics.distribution("catalog", "words_per_video")

    def setup(self):
        import tensorflow as tf

        from transforms.text import video_words

        spec = [tf.TensorSpec([None], tf.string)] * 3
        self._graph = tf.function(lambda *fields: video_words(*fields, self._config), spec)

    def process(self, records: list[dict]) -> typing.Iterator:
        texts = [raw_text(record) for record in records]
        counts, prints = (t.numpy().tolist() for t in self._graph(*zip(*texts, strict=True)))
        for record, text, words, fingerprint in zip(records, texts, counts, prints, strict=True):
            yield from self._row(record, text, words, fingerprint)

    def _row(self, record: dict, text: tuple, words: int, fingerprint: int):
        source, offset = record.get("_pos", ("", -1))
        try:
            av = av_inputs(record, self._av_sizes) if self._av_sizes else {}
        except RecordError as err:
            dead = dead_letter("clean", err.reason, _public(record), source, offset, err.detail)
            yield beam.pvalue.TaggedOutput(DEAD, dead)
            return
        empty = not words and not av.get(AV_FLAG)  # with AV features, text may be empty
        if empty:
            self._empty.inc()
            if not self._keep_empty:
                dead = dead_letter("clean", EMPTY_TEXT, _public(record), source, offset)
                yield beam.pvalue.TaggedOutput(DEAD, dead)
                return
        self._cleaned.inc()
        self._words.update(words)
        yield {
            "video_id": record["video_id"],
            **dict(zip(TEXT_FIELDS, text, strict=True)),
            "labels": record.get("categories", []),
            "split": record.get("split"),
            "group_key": record.get("group_key", record["video_id"]),
            "num_words": words,
            # an AV-only (or empty) video has no text to share a split with: its id stands in
            "fingerprint": f"{fingerprint:016x}" if words else f"id:{record['video_id']}",
            **av,
            **({EMPTY_TEXT: True} if empty else {}),
        }


def _public(record: dict) -> dict:
    return {key: value for key, value in record.items() if key != "_pos"}


class PrepareText(beam.PTransform):
    """Canonical records to the transform graph's raw inputs (``title``,
    ``description``, ``tags``) with their word count and text fingerprint, computed
    by the same graph (``transforms.text``), one call per batch.

    A video with no word left is dead-lettered (``empty_text``): training has
    nothing to learn from it. ``keep_empty_text=True`` keeps it with
    ``empty_text: True``. With ``av_sizes`` (fusion models) the rows also carry
    their audio/visual inputs (``av_inputs``), and a video with AV features may have
    no text. Returns ``.records`` and ``.dead_letters``.
    """

    def __init__(
        self, config: TextConfig, av_sizes: dict | None = None, *, keep_empty_text: bool = False
    ):
        super().__init__()
        self._config, self._av_sizes, self._keep_empty = config, av_sizes, keep_empty_text

    def expand(self, records):
        prepare = _PrepareTextFn(self._config, self._av_sizes, self._keep_empty)
        return (
            records
            | "Batch" >> beam.BatchElements(min_batch_size=64, max_batch_size=512)
            | "CleanBatch" >> beam.ParDo(prepare).with_outputs(DEAD, main=RECORDS)
        )
