"""CatalogIntake and its Deduplicate: which version wins, the counts, and what is shuffled."""

from __future__ import annotations

import copy
import itertools
import json
import pickle

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.pipeline import PipelineVisitor
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.components.catalog_io import iter_rows, parse_row
from pipelines.components.intake import (
    CatalogIntake,
    Deduplicate,
    LatestVersionFn,
    _DropLosersFn,
    latest_versions,
)
from tests.helpers import latest_records, local_options
from transforms.records import RecordSchema

pytestmark = pytest.mark.slow  # runs Beam pipelines

# (video_id, updated_at, title) per line; "bad" lines are dead letters at read
FILE_A = [
    ("dated", 100, "a-newest"),
    ("tie", 10, "a-tie"),
    ("undated", None, "a-undated-1"),
    "bad",
    ("same_file", None, "a-first"),
    ("none_vs_dated", 5, "a-dated"),
    ("undated", None, "a-undated-2"),
    ("same_file", None, "a-last"),
    ("single", None, "a-single"),
    ("triple", 7, "a-triple-7"),
]
FILE_B = [
    ("dated", 50, "b-older"),
    ("tie", 10, "b-tie"),
    ("none_vs_dated", None, "b-undated"),
    "no_id",
    ("undated", None, "b-undated"),
    ("triple", 9, "b-triple-9"),
    ("triple", 9.0, "b-triple-9-later"),
]
WINNERS = {
    "dated": "a-newest",  # latest updated_at, though file b is read later
    "tie": "b-tie",  # same updated_at: the later file
    "undated": "b-undated",  # no updated_at: the later file
    "same_file": "a-last",  # no updated_at, one file: the later offset
    "none_vs_dated": "a-dated",  # None sorts lowest
    "single": "a-single",
    "triple": "b-triple-9-later",  # tie on 9 == 9.0: the later offset
}
DUPLICATES = [1, 1, 2, 1, 1, 2]  # dated, tie, undated, same_file, none_vs_dated, triple


def _write(path, lines, description: str = "") -> None:
    rows = []
    for line in lines:
        if line == "bad":
            rows.append('{"oops"')
        elif line == "no_id":
            rows.append(json.dumps({"title": "no id"}))
        else:
            video_id, updated, title = line
            row = {"video_id": video_id, "title": title, "description": description}
            rows.append(json.dumps(row | ({} if updated is None else {"updated_at": updated})))
    path.write_text("\n".join(rows) + "\n")


def _parsed(path) -> list[dict]:
    """The records ReadCatalog gives for ``path``, parsed outside Beam."""
    path = str(path)
    rows = (parse_row(row, raw, RecordSchema(), path, off) for off, row, raw in iter_rows(path))
    return [record for record, dead in rows if dead is None]


def _catalog(tmp_path, description: str = "") -> str:
    _write(tmp_path / "a.jsonl", FILE_A, description)
    _write(tmp_path / "b.jsonl", FILE_B, description)
    return str(tmp_path / "*.jsonl")


def test_intake_keeps_the_latest_version_counts_duplicates_and_passes_dead_letters(tmp_path):
    pattern = _catalog(tmp_path)
    parsed = _parsed(tmp_path / "a.jsonl") + _parsed(tmp_path / "b.jsonl")
    expected = [r for r in parsed if WINNERS[r["video_id"]] == r["title"]]
    assert len(expected) == len(WINNERS)

    p = TestPipeline(options=local_options())
    intake = p | "Intake" >> CatalogIntake(pattern, RecordSchema())
    assert_that(intake.records, equal_to(expected), label="Winners")  # whole, unchanged dicts
    assert_that(intake.read, equal_to(parsed), label="Read")
    assert_that(intake.duplicates, equal_to(DUPLICATES), label="Duplicates")
    reasons = intake.dead_letters | beam.Map(lambda d: (d["reason"], d["source"][-7:]))
    assert_that(
        reasons,
        equal_to([("malformed_json", "a.jsonl"), ("missing_video_id", "b.jsonl")]),
        label="Dead",
    )
    totals = (
        intake.read | "CountRead" >> beam.combiners.Count.Globally(),
        intake.records | "CountUnique" >> beam.combiners.Count.Globally(),
        intake.duplicates | "SumDuplicates" >> beam.CombineGlobally(sum),
    ) | beam.Flatten()
    assert_that(totals, equal_to([len(parsed), len(WINNERS), len(parsed) - len(WINNERS)]))
    result = p.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_name("duplicates_removed"))["counters"]
    assert sum(c.committed for c in counters) == sum(DUPLICATES)


def test_latest_versions_outside_beam_keeps_the_same_winners(tmp_path):
    _catalog(tmp_path)
    parsed = _parsed(tmp_path / "a.jsonl") + _parsed(tmp_path / "b.jsonl")
    kept = latest_versions(parsed)  # what retraining's held-out set uses
    assert {video_id: r["title"] for video_id, r in kept.items()} == WINNERS
    assert {video_id: r["title"] for video_id, r in latest_versions(parsed[::-1]).items()} == (
        WINNERS
    )  # the order key decides, not the order read


def test_intake_agrees_with_the_reference_on_the_sample_catalog(sample_catalog):
    expected = latest_records(sample_catalog)  # the sample has duplicates and bad lines
    with TestPipeline(options=local_options()) as p:
        intake = p | "Intake" >> CatalogIntake(str(sample_catalog), RecordSchema())
        records = intake.records | beam.Map(lambda r: {k: v for k, v in r.items() if k != "_pos"})
        assert_that(records, equal_to(list(expected.values())))


def test_identical_copies_keep_one_and_positions_are_per_video():
    """YouTube-8M records sit at ``(file, md5)``: identical copies share a position,
    and one of them is kept; a position shared by two videos drops neither."""

    def rec(video_id, digest, title):
        return {"video_id": video_id, "title": title, "updated_at": None, "_pos": ("s", digest)}

    records = [
        *[rec("v1", "d1", "copy")] * 3,
        rec("v2", "d2", "older"),
        rec("v2", "d3", "newer"),
        *[rec("v3", "d9", "winner copy")] * 2,
        rec("v3", "d4", "loser"),
        rec("v4", "d1", "other video, same position as v1"),
    ]
    with TestPipeline(options=local_options()) as p:
        out = p | beam.Create(records) | Deduplicate()
        titles = out.records | beam.Map(lambda r: (r["video_id"], r["title"]))
        expected = [("v1", "copy"), ("v2", "newer"), ("v3", "winner copy")]
        assert_that(titles, equal_to([*expected, ("v4", records[-1]["title"])]), label="Kept")
        assert_that(out.duplicates, equal_to([2, 1, 2]), label="Duplicates")


class _Shuffles(PipelineVisitor):
    """The input PCollection of every GroupByKey (CombinePerKey's too) under ``prefix``."""

    def __init__(self, prefix: str):
        self.prefix, self.inputs = prefix, {}

    def visit_transform(self, node):
        if isinstance(node.transform, beam.GroupByKey) and node.full_label.startswith(self.prefix):
            self.inputs[node.full_label] = node.inputs[0]


def _has_dict(value) -> bool:
    if isinstance(value, dict):
        return True
    return isinstance(value, tuple | list) and any(_has_dict(v) for v in value)


def _all_small(elements) -> None:
    for element in elements:
        size = len(pickle.dumps(element))
        assert not _has_dict(element) and size < 300, f"{size} bytes shuffled: {element!r:.200}"


def test_no_record_goes_through_a_shuffle(tmp_path):
    """Every element entering a shuffle inside the intake is a small tuple, never a
    record (each record carries a 2 KB description here)."""
    pattern = _catalog(tmp_path, description="word " * 400)
    p = TestPipeline(options=local_options())
    intake = p | "Intake" >> CatalogIntake(pattern, RecordSchema())
    shuffles = _Shuffles("Intake/")
    p.visit(shuffles)
    assert any("Deduplicate/KeepLatest" in label for label in shuffles.inputs), shuffles.inputs
    for i, pcoll in enumerate(shuffles.inputs.values()):
        assert_that(pcoll, _all_small, label=f"Small{i}")
    big = intake.records | beam.Map(lambda record: len(pickle.dumps(record)) > 2000)
    assert_that(big, equal_to([True] * len(WINNERS)), label="BigRecords")
    assert_that(intake.duplicates | beam.CombineGlobally(sum), equal_to([sum(DUPLICATES)]))
    p.run().wait_until_finish()


def test_latest_version_fn_is_order_and_merge_independent():
    keys = [(-float("inf"), "a", 3), (5.0, "a", 1), (5.0, "b", 0), (5.0, "a", 9), (2.0, "c", 0)]
    fn = LatestVersionFn()
    outputs = set()
    for order in itertools.permutations(keys):
        halves = [fn.create_accumulator(), fn.create_accumulator()]
        for i, key in enumerate(order):
            fn.add_input(halves[i % 2], key)
        winner, count, losers = fn.extract_output(fn.merge_accumulators(halves))
        outputs.add((winner, count, tuple(sorted(losers))))
    assert outputs == {(("b", 0), 5, (("a", 1), ("a", 3), ("a", 9), ("c", 0)))}


def test_drop_losers_never_mutates_its_input():
    fn = _DropLosersFn(unique_positions=True)
    fn.setup()
    record = {"video_id": "v", "title": "t", "tags": ["x"], "_pos": ("f", 3)}
    loser = {"video_id": "v", "title": "old", "tags": ["y"], "_pos": ("f", 1)}
    snapshot = copy.deepcopy([record, loser])
    marks = [(("v", "f", 1), False)]
    assert list(fn.process(record, marks)) == [record]
    assert list(fn.process(loser, marks)) == []
    assert [record, loser] == snapshot
    fn = _DropLosersFn(unique_positions=True)  # a byte-identical copy where none can be
    fn.setup()
    with pytest.raises(ValueError, match="two records of 'v'"):
        list(fn.process(record, [(("v", "f", 3), True)]))
