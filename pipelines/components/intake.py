"""Catalog intake shared by every catalog job: read, then one record per video.

``CatalogIntake`` = ReadCatalog -> Deduplicate. Deduplicate never shuffles a
whole record: each record is keyed by ``video_id`` with only its order key
(``updated_at``, file, offset); the latest key per video wins, and the losers'
positions come back as a side input that drops them from the records where
they were read. Duplicates are usually a small fraction of a catalog, so the
side input (one entry per losing copy) is small; it is built once per worker
process and window, not per bundle, and shared by the process's threads.

The records wait for that side input: a runner stores them once between the
read and DropLosers (written and read back, not grouped or sorted by key).
"""

from __future__ import annotations

import math
import sys
import typing

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from pipelines.components.catalog_io import DEAD, RECORDS, ReadCatalog
from transforms.records import RecordSchema

DUPLICATES = "duplicates"
_COPIES = "copies"  # byte-identical copies of a winner, at the winner's own position


def _order_key(record: dict) -> tuple:
    """Latest ``updated_at`` wins; without one (or on ties), the last seen by
    ``(file, offset)``: ``(updated_at or -inf, file, offset)``."""
    updated = record.get("updated_at")
    return (-math.inf if updated is None else updated, *record["_pos"])


def latest_versions(records: typing.Iterable[dict]) -> dict[str, dict]:
    """``Deduplicate``'s rule outside Beam, for a small set of parsed records (with
    ``_pos``): ``{video_id: the version Deduplicate keeps}``."""
    latest: dict[str, dict] = {}
    for record in records:
        best = latest.get(record["video_id"])
        if best is None or _order_key(record) >= _order_key(best):
            latest[record["video_id"]] = record
    return latest


def _keyed_order(record: dict) -> tuple:
    """``(video_id, order key)``: all of a record that goes through the shuffle."""
    return record["video_id"], _order_key(record)


class LatestVersionFn(beam.CombineFn):
    """Order keys of one video -> ``(winner's position, versions, losers' positions)``.

    The accumulator is ``[best order key, count, [losing (file, offset), ...]]``.
    """

    def create_accumulator(self):
        return [None, 0, []]

    def add_input(self, accumulator, order_key):
        best = accumulator[0]
        if best is None or order_key >= best:
            accumulator[0], order_key = order_key, best
        if order_key is not None:
            accumulator[2].append(order_key[1:])
        accumulator[1] += 1
        return accumulator

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for best, count, losers in accumulators:
            merged[2].extend(losers)
            if best is not None:
                self.add_input(merged, best)
                merged[1] += count - 1
        return merged

    def extract_output(self, accumulator):
        best, count, losers = accumulator
        return best[1:], count, losers


class _MarkLosersFn(beam.DoFn):
    """``(video_id, (winner, count, losers))`` -> one side-input mark per losing
    position, ``((video_id, file, offset), keep_one)``, and ``count - 1`` as a
    ``DUPLICATES`` output. ``keep_one`` marks copies at the winner's own position
    (identical records, as YouTube-8M's ``(file, md5)`` can give): one is kept."""

    def __init__(self):
        self._dropped = Metrics.counter("catalog", "duplicates_removed")

    def process(self, keyed: tuple) -> typing.Iterator:
        video_id, (winner, count, losers) = keyed
        if count > 1:
            self._dropped.inc(count - 1)
            yield beam.pvalue.TaggedOutput(DUPLICATES, count - 1)
            for position in set(losers):
                yield (video_id, *position), position == winner


class _Marks(dict):
    """``{(video_id, file, offset): keep_one}``, a dict that ``shared`` can weakly hold."""


def _build_marks(marks) -> _Marks:
    built = _Marks()
    for (video_id, path, offset), keep_one in marks:
        built[video_id, sys.intern(path), offset] = keep_one
    return built


class _DropLosersFn(beam.DoFn):
    """Drops the losing versions; passes a winner's identical copies on (``_COPIES``),
    or, where positions are known to be unique, fails on one."""

    def __init__(self, unique_positions: bool):
        self._unique = unique_positions
        self._shared = shared.Shared()  # one dict per worker process, not per thread

    def setup(self):
        self._window, self._marks = None, None

    def process(self, record: dict, marks, window=beam.DoFn.WindowParam) -> typing.Iterator[dict]:
        if window is not self._window and (self._window is None or window != self._window):
            self._marks = self._shared.acquire(lambda: _build_marks(marks), tag=window)
            self._window = window
        mark = self._marks.get((record["video_id"], *record["_pos"]))
        if mark is None:
            yield record
        elif mark and self._unique:
            raise ValueError(f"two records of {record['video_id']!r} at {record['_pos']!r}")
        elif mark:
            yield beam.pvalue.TaggedOutput(_COPIES, ((record["video_id"], *record["_pos"]), record))


class _AnyCopyFn(beam.CombineFn):
    """Identical copies -> one of them (combined before the shuffle, per bundle)."""

    def create_accumulator(self):
        return None

    def add_input(self, accumulator, record):
        return record if accumulator is None else accumulator

    def merge_accumulators(self, accumulators):
        return next((record for record in accumulators if record is not None), None)

    def extract_output(self, accumulator):
        return accumulator


class Deduplicated(typing.NamedTuple):
    """``Deduplicate``'s output: one record per video, and the duplicate counts."""

    records: beam.PCollection
    duplicates: beam.PCollection


class Deduplicate(beam.PTransform):
    """One record per ``video_id``: the latest ``updated_at`` (``None`` lowest),
    ties to the last seen by ``(file, offset)``. Only ``(video_id, order key)``
    pairs are shuffled; records flow on unshuffled past a side input of the
    losers' positions.

    ``unique_positions=True`` (ReadCatalog's ``(file, offset)``) leaves out the step
    that keeps one of several byte-identical copies at one position (YouTube-8M's
    ``(file, md5)``): a Flatten that some runners (FnApiRunner) materialize.

    Returns ``.records`` and ``.duplicates`` (per video with copies removed, how many).
    """

    def __init__(self, unique_positions: bool = False):
        super().__init__()
        self._unique = unique_positions

    def expand(self, records):
        marked = (
            records
            | "KeyByVideoId" >> beam.Map(_keyed_order)
            | "KeepLatest" >> beam.CombinePerKey(LatestVersionFn())
            | "MarkLosers" >> beam.ParDo(_MarkLosersFn()).with_outputs(DUPLICATES, main="marks")
        )
        kept = records | "DropLosers" >> beam.ParDo(
            _DropLosersFn(self._unique), beam.pvalue.AsIter(marked.marks)
        ).with_outputs(_COPIES, main=RECORDS)
        if self._unique:
            return Deduplicated(kept.records, marked[DUPLICATES])
        one_copy = (
            kept[_COPIES]
            | "KeepOneCopy" >> beam.CombinePerKey(_AnyCopyFn())
            | "CopyRecords" >> beam.Values()
        )
        unique = (kept.records, one_copy) | "Unique" >> beam.Flatten()
        return Deduplicated(unique, marked[DUPLICATES])


class Intake(typing.NamedTuple):
    """What ``CatalogIntake`` gives a job: the unique ``records``, ``duplicates``
    (one count per video with copies removed), the read ``dead_letters``, and
    ``read``, every parsed record before deduplication (the report's "in" side)."""

    records: beam.PCollection
    duplicates: beam.PCollection
    dead_letters: beam.PCollection
    read: beam.PCollection


class CatalogIntake(beam.PTransform):
    """Catalog files -> ``Intake``: ReadCatalog, then Deduplicate.

    Apply it to the pipeline: ``p | "Intake" >> CatalogIntake(pattern, schema)``.
    """

    def __init__(self, file_pattern: str, schema: RecordSchema, input_format: str = "auto"):
        super().__init__()
        self._read = ReadCatalog(file_pattern, schema, input_format)

    def expand(self, pbegin):
        read = pbegin | "ReadCatalog" >> self._read
        unique = read.records | "Deduplicate" >> Deduplicate(unique_positions=True)
        return Intake(unique.records, unique.duplicates, read[DEAD], read.records)
