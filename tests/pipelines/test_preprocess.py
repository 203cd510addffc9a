"""The preprocess pipeline end to end on a small inline catalog: dedup, dead
letters, splits, count balance, and shards that parse back."""

from __future__ import annotations

import gzip
import json

import apache_beam as beam
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.components import preprocessing
from pipelines.components.intake import Deduplicate
from pipelines.components.publish import RunSettings
from tests.helpers import local_options
from transforms.features import TOKENS_VOCAB, TransformConfig
from transforms.splits import hash_split

pytestmark = pytest.mark.slow  # runs the preprocess job

FILLER = [
    ("Cooking", "pasta sauce recipe kitchen"),
    ("Gaming", "boss level gameplay console"),
    ("Travel", "mountain hiking trail journey"),
]


def _catalog_lines() -> list[bytes]:
    rows = [
        {"video_id": "v1", "title": "Pasta carbonara middle", "categories": ["Cooking"],
         "updated_at": "2026-01-01T00:00:00Z"},
        {"video_id": "v1", "title": "Pasta carbonara newest", "categories": ["Cooking"],
         "updated_at": "2026-02-01T00:00:00Z"},
        {"video_id": "v1", "title": "Pasta carbonara oldest", "categories": ["Cooking"],
         "updated_at": "2025-01-01T00:00:00Z"},
        {"video_id": "v2", "title": "Boss fight", "tags": "gaming|boss", "categories": ["Gaming"]},
        {"video_id": "v2", "title": "Boss fight remastered", "categories": "Gaming"},
        {"video_id": "v3", "title": "🔥🔥 http://bit.ly/xyz"},
        {"video_id": "v4", "title": "Pasta carbonara newest", "categories": ["Cooking"]},
        {"video_id": "v5", "title": "Mountain hiking", "categories": ["Travel"], "split": "test"},
        {"video_id": "v6", "title": "<b>Pasta</b> &amp; sauce", "categories": ["Cooking", "Travel"]},
    ]  # fmt: skip
    rows += [
        {"video_id": f"f{i:02d}", "title": f"{text} {i}", "categories": [cat]}
        for i in range(36)
        for cat, text in [FILLER[i % 3]]
    ]
    lines = [json.dumps(row, ensure_ascii=False).encode() for row in rows]
    lines[10:10] = [b"this is not json", b'{"title": "no id"}', b'{"video_id": "\xff\xfe"}', b""]
    return lines


READ_DEAD = {"malformed_json": 1, "missing_video_id": 1, "bad_utf8": 1}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = tmp_path_factory.mktemp("pre")
    path = root / "catalog.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(_catalog_lines()) + b"\n"))
    config = preprocessing.PreprocessConfig(
        input=str(path),
        output_dir=str(root / "out"),
        transform=TransformConfig(frequency_threshold=1, num_oov_buckets=2),
        num_shards=2,
    )
    with TestPipeline(options=local_options()) as p:
        preprocessing.build_pipeline(p, config, RunSettings())
    return config, json.loads((root / "out" / preprocessing.REPORT_FILE).read_text())


def _read_split(config, split: str) -> dict:
    output = tft.TFTransformOutput(config.output_dir)
    files = tf.io.gfile.glob(f"{config.output_dir}/data/{split}/part-*.tfrecord.gz")
    rows = {}
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        parsed = tf.io.parse_single_example(record, output.transformed_feature_spec())
        vocab = output.vocabulary_by_name(TOKENS_VOCAB)
        ids = tf.sparse.to_dense(parsed["token_ids"]).numpy().tolist()
        rows[parsed["video_id"].numpy().decode()] = {
            "words": {vocab[i].decode() if i < len(vocab) else "<oov>" for i in ids},
            "labels": tf.sparse.to_dense(parsed["label_ids"]).numpy().tolist(),
            "weights": tf.sparse.to_dense(parsed["token_weights"]).numpy().tolist(),
        }
    return rows


def test_counts_balance(result):
    _, report = result
    records = report["records"]
    # 45 JSON rows + 3 bad lines (the blank line is not a record)
    assert records["read"] == 48
    assert records["duplicates_removed"] == 3  # v1 x2, v2 x1
    assert records["dead_lettered"] == 4  # 3 at read + v3 empty after cleaning
    assert records["written"] == 41
    assert records["balanced"] is True
    assert report["dead_letters"] == {"read": READ_DEAD, "clean": {"empty_text": 1}}


def test_dead_letters_keep_the_raw_record_and_reason(result):
    config, _ = result
    files = tf.io.gfile.glob(f"{config.output_dir}/dead_letters/part-*.jsonl")
    rows = [json.loads(line) for f in files for line in tf.io.gfile.GFile(f).readlines()]
    by_reason = {row["reason"]: row for row in rows}
    assert by_reason["malformed_json"]["record"] == "this is not json"
    assert by_reason["bad_utf8"]["record"] == '{"video_id": "\\xff\\xfe"}'
    assert by_reason["empty_text"]["stage"] == "clean"
    assert json.loads(by_reason["empty_text"]["record"])["video_id"] == "v3"


def test_written_rows_parse_back_with_dedup_and_splits(result):
    config, report = result
    splits = {split: _read_split(config, split) for split in ("train", "eval", "test")}
    where = {vid: split for split, rows in splits.items() for vid in rows}
    assert sorted(where) == sorted(
        ["v1", "v2", "v4", "v5", "v6"] + [f"f{i:02d}" for i in range(36)]
    )
    assert {s: len(r) for s, r in splits.items()} == report["records"]["written_per_split"]
    v1 = splits[where["v1"]]["v1"]
    assert {"pasta", "carbonara", "newest"} <= v1["words"] and "oldest" not in v1["words"]
    assert "remastered" in splits[where["v2"]]["v2"]["words"]  # last seen wins without updated_at
    assert where["v5"] == "test"  # the record's own split wins
    assert where["v4"] == where["v1"] == hash_split("v1")  # identical text: one split
    assert all(w > 0 for row in splits["train"].values() for w in row["weights"])


def test_label_vocabulary_and_report(result):
    config, report = result
    output = tft.TFTransformOutput(config.output_dir)
    assert sorted(output.vocabulary_by_name("labels")) == [b"Cooking", b"Gaming", b"Travel"]
    assert report["labels"]["size"] == 3
    assert report["vocabulary"]["oov_buckets"] == 2
    assert report["vocabulary"]["size"] == output.vocabulary_size_by_name(TOKENS_VOCAB)
    assert report["words_per_video"]["max"] == 4  # "pasta sauce recipe kitchen"
    assert report["vocabulary"]["oov_token_rate"]["train"] == 0.0


def test_deduplicate_keeps_latest_then_last_seen():
    def rec(vid, title, updated, offset):
        return {"video_id": vid, "title": title, "updated_at": updated, "_pos": ("f", offset)}

    records = [
        rec("a", "first", None, 0),
        rec("a", "second", None, 10),
        rec("b", "new", 200.0, 0),
        rec("b", "old", 100.0, 10),
        rec("c", "dated", 5.0, 0),
        rec("c", "undated", None, 10),
        rec("d", "only", None, 0),
    ]
    with TestPipeline(options=local_options()) as p:
        out = p | beam.Create(records) | Deduplicate()
        titles = out.records | beam.Map(lambda r: (r["video_id"], r["title"]))
        assert_that(
            titles,
            equal_to([("a", "second"), ("b", "new"), ("c", "dated"), ("d", "only")]),
            label="Latest",
        )
        total = out.duplicates | beam.CombineGlobally(sum)
        assert_that(total, equal_to([3]), label="Duplicates")


def test_prepare_text_keeps_empty_text_only_when_asked_and_never_mutates_its_input():
    from pipelines.components.catalog_io import DEAD, EMPTY_TEXT
    from pipelines.components.steps import _PrepareTextFn
    from transforms.text import TextConfig

    empty = {"video_id": "e1", "title": "🔥 http://bit.ly/xyz", "_pos": ("cat.jsonl", 7)}
    worded = {"video_id": "w1", "title": "Pasta sauce", "tags": ["a|b", "Food"], "_pos": ("c", 8)}
    twin = {"video_id": "w2", "title": "PASTA, sauce!", "tags": ["a|b", "food"], "_pos": ("c", 9)}
    snapshot = json.dumps([empty, worded, twin])

    training = _PrepareTextFn(TextConfig(), None, keep_empty_text=False)
    training.setup()
    (dead, *_) = training.process([empty, worded, twin])
    assert dead.tag == DEAD
    assert (dead.value["reason"], dead.value["source"], dead.value["offset"]) == (
        EMPTY_TEXT,
        "cat.jsonl",
        7,
    )
    assert json.loads(dead.value["record"]) == {"video_id": "e1", "title": "🔥 http://bit.ly/xyz"}

    scoring = _PrepareTextFn(TextConfig(), None, keep_empty_text=True)
    scoring.setup()
    kept, text, same = scoring.process([empty, worded, twin])
    assert (kept["video_id"], kept["num_words"], kept[EMPTY_TEXT]) == ("e1", 0, True)
    assert kept["fingerprint"] == "id:e1" and "_pos" not in kept
    assert (text["title"], text["description"], text["tags"]) == ("Pasta sauce", "", "a|b|Food")
    assert text["num_words"] == 3 and EMPTY_TEXT not in text  # pasta, sauce, food ("a", "b" < 2)
    assert same["fingerprint"] == text["fingerprint"] != kept["fingerprint"]  # same cleaned text
    assert json.dumps([empty, worded, twin]) == snapshot  # the inputs are untouched
