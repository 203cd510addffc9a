"""Run statistics computed inside the pipeline, and the run report.

Each step contributes ``(key_tuple, number)`` pairs; they are summed into one
nested dict, which the job's publish step (``pipelines/components/publish.py``) turns into
the report and checks the guards on, inside the pipeline.
"""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.components.catalog_io import EMPTY_TEXT

_QUANTILES = 21  # 0, 5, ..., 100 percent


def count_as(key: tuple):
    """A PTransform counting a PCollection into one ``(key, n)`` stat."""
    return beam.combiners.Count.Globally() | beam.Map(lambda n: (key, n))


class WordQuantiles(beam.PTransform):
    """p50/p95/max words per video (``num_words``, from ``PrepareText``) as stats
    under ``(prefix, ...)``."""

    def __init__(self, prefix: tuple):
        super().__init__()
        self._prefix = prefix

    def expand(self, records):
        return (
            records
            | "Lengths" >> beam.Map(lambda record: record["num_words"])
            | "Quantiles" >> beam.ApproximateQuantiles.Globally(_QUANTILES)
            | "Pick" >> beam.FlatMap(self._pick)
        )

    def _pick(self, quantiles):
        if quantiles:
            yield (*self._prefix, "p50"), quantiles[10]
            yield (*self._prefix, "p95"), quantiles[19]
            yield (*self._prefix, "max"), quantiles[20]


def intake_stats(records, duplicates, dead) -> list:
    """The stats every catalog job keeps: parsed records, duplicates removed,
    dead letters by stage and reason (to be flattened with the job's own)."""
    return [
        records | "CountParsed" >> count_as(("records", "parsed")),
        duplicates | "DuplicateStats" >> beam.Map(lambda n: (("records", "duplicates"), n)),
        dead
        | "DeadLetterStats" >> beam.Map(lambda d: (("dead_letters", d["stage"], d["reason"]), 1)),
    ]


def intake_counts(stats: dict) -> dict:
    """``in`` (parsed + dead at read), ``dead_lettered`` and ``duplicates_removed``."""
    dead = stats.get("dead_letters", {})
    records = stats.get("records", {})
    return {
        "in": records.get("parsed", 0) + sum(dead.get("read", {}).values()),
        "dead_lettered": sum(sum(reasons.values()) for reasons in dead.values()),
        "duplicates_removed": records.get("duplicates", 0),
    }


def tagged_stats(rows) -> list:
    """Counts the tagged rows and, among them, the empty-text ones (``"empty_text": true``)."""
    return [
        rows | "CountTagged" >> count_as(("records", "tagged")),
        rows
        | "EmptyTextRows" >> beam.Filter(lambda row: row.get(EMPTY_TEXT, False))
        | "CountEmptyText" >> count_as(("records", EMPTY_TEXT)),
    ]


def record_counts(stats: dict, unchanged: int | None = None) -> dict:
    """The report's ``records``: in = tagged (empty-text rows among them)
    [+ ``unchanged``, nightly's kept rows] + dead letters + duplicates removed."""
    intake, records = intake_counts(stats), stats.get("records", {})
    counts = {
        "in": intake["in"],
        "tagged": records.get("tagged", 0),
        EMPTY_TEXT: records.get(EMPTY_TEXT, 0),
        **({} if unchanged is None else {"unchanged": unchanged}),
        "dead_lettered": intake["dead_lettered"],
        "duplicates_removed": intake["duplicates_removed"],
    }
    out = counts["tagged"] + (unchanged or 0) + intake["dead_lettered"]
    return counts | {"balanced": counts["in"] == out + intake["duplicates_removed"]}


def nest(pairs) -> dict:
    """``[(("a", "b"), 1)]`` to ``{"a": {"b": 1}}``."""
    root: dict = {}
    for key, value in sorted(pairs, key=lambda pair: tuple(map(str, pair[0]))):
        node = root
        for part in key[:-1]:
            node = node.setdefault(str(part), {})
        node[str(key[-1])] = value
    return root


class SumStats(beam.PTransform):
    """Stat pairs -> one nested dict of their sums (``{}`` when there are none)."""

    def expand(self, pairs):
        return (
            pairs
            | "Sum" >> beam.CombinePerKey(sum)
            | "Collect" >> beam.combiners.ToList()
            | "Nest" >> beam.Map(nest)
        )


def read_json(path: str) -> dict:
    with FileSystems.open(path) as handle:
        return json.loads(handle.read().decode("utf-8"))


def write_json(path: str, payload: dict) -> None:
    with FileSystems.create(path) as handle:
        handle.write(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False).encode())
