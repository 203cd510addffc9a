"""Steps shared by every catalog job (preprocess, predict, nightly).

Each is a named ``PTransform``; the DoFns keep only picklable config in
``__init__`` and count what they do with Beam metrics.
"""

from __future__ import annotations

import math

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines.catalog_io import DEAD, EMPTY_TEXT, RECORDS, dead_letter
from transforms.records import AV_FLAG, RecordError
from transforms.splits import text_fingerprint
from transforms.text import TextConfig, text_tokens

DUPLICATES = "duplicates"


def _order_key(record: dict) -> tuple:
    """Latest ``updated_at`` wins; without one (or on ties), the last seen."""
    updated = record.get("updated_at")
    return (-math.inf if updated is None else updated, *record["_pos"])


class LatestRecordFn(beam.CombineFn):
    """Keeps the latest version of a video and how many versions there were."""

    def create_accumulator(self):
        return None, 0

    def add_input(self, accumulator, record):
        best, count = accumulator
        if best is None or _order_key(record) >= _order_key(best):
            best = record
        return best, count + 1

    def merge_accumulators(self, accumulators):
        best, total = None, 0
        for record, count in accumulators:
            total += count
            if record is not None and (best is None or _order_key(record) >= _order_key(best)):
                best = record
        return best, total

    def extract_output(self, accumulator):
        return accumulator


class _EmitLatestFn(beam.DoFn):
    def __init__(self):
        self._dropped = Metrics.counter("catalog", "duplicates_removed")

    def process(self, keyed):
        _, (record, count) = keyed
        if count > 1:
            self._dropped.inc(count - 1)
            yield beam.pvalue.TaggedOutput(DUPLICATES, count - 1)
        yield record


class Deduplicate(beam.PTransform):
    """One record per ``video_id``; ``.duplicates`` carries how many were removed."""

    def expand(self, records):
        return (
            records
            | "KeyByVideoId" >> beam.Map(lambda record: (record["video_id"], record))
            | "KeepLatest" >> beam.CombinePerKey(LatestRecordFn())
            | "Emit" >> beam.ParDo(_EmitLatestFn()).with_outputs(DUPLICATES, main=RECORDS)
        )


def record_fields(record: dict) -> list[str | None]:
    """The text fields a video is described by, in tokenizing order."""
    return [record.get("title"), record.get("description"), *record.get("tags", [])]


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


class _CleanFn(beam.DoFn):
    def __init__(self, config: TextConfig, av_sizes: dict | None, keep_empty_text: bool):
        self._config, self._av_sizes, self._keep_empty = config, av_sizes, keep_empty_text
        self._cleaned = Metrics.counter("catalog", "records_cleaned")
        self._empty = Metrics.counter("catalog", "records_empty_text")
        self._tokens = Metrics.distribution("catalog", "tokens_per_video")

    def process(self, record):
        tokens = text_tokens(record_fields(record), self._config)
        source, offset = record.get("_pos", ("", -1))
        record = {key: value for key, value in record.items() if key != "_pos"}
        try:
            av = av_inputs(record, self._av_sizes) if self._av_sizes else {}
        except RecordError as err:
            yield beam.pvalue.TaggedOutput(
                DEAD, dead_letter("clean", err.reason, record, source, offset, err.detail)
            )
            return
        empty = not tokens and not av.get(AV_FLAG)  # with AV features, text may be empty
        if empty:
            self._empty.inc()
            if not self._keep_empty:
                yield beam.pvalue.TaggedOutput(
                    DEAD, dead_letter("clean", EMPTY_TEXT, record, source, offset)
                )
                return
        self._cleaned.inc()
        self._tokens.update(len(tokens))
        yield {
            "video_id": record["video_id"],
            "tokens": tokens,
            "labels": record.get("categories", []),
            "split": record.get("split"),
            "group_key": record.get("group_key", record["video_id"]),
            # an AV-only (or empty) video has no text to share a split with: its id stands in
            "fingerprint": text_fingerprint(tokens) if tokens else f"id:{record['video_id']}",
            **av,
            **({EMPTY_TEXT: True} if empty else {}),
        }


class CleanAndTokenize(beam.PTransform):
    """Canonical records to token lists (``transforms.text``).

    A video with no token left is dead-lettered (``empty_text``): training has
    nothing to learn from it. The scoring jobs pass ``keep_empty_text=True``:
    such a video is kept with ``tokens == []`` and ``empty_text: True``, and the
    model scores it with an empty bag-of-words (its learnt prior).

    With ``av_sizes`` (fusion models) the records also carry their audio/visual
    inputs (``av_inputs``), and a video with AV features may have no text (it is
    not an empty-text video).

    Returns ``.records`` and ``.dead_letters``.
    """

    def __init__(
        self, config: TextConfig, av_sizes: dict | None = None, *, keep_empty_text: bool = False
    ):
        super().__init__()
        self._config, self._av_sizes, self._keep_empty = config, av_sizes, keep_empty_text

    def expand(self, records):
        clean = _CleanFn(self._config, self._av_sizes, self._keep_empty)
        return records | "Tokenize" >> beam.ParDo(clean).with_outputs(DEAD, main=RECORDS)
