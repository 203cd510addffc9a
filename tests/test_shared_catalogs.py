"""Integration: preprocess the real catalogs in ../shared/data through the CLI's
own entry point and check the counts and that the shards parse back."""

from __future__ import annotations

import pytest
import tensorflow as tf
import tensorflow_transform as tft

from pipelines import cli, preprocess


def _run(args: list[str]) -> dict:
    return preprocess.run(cli.profile_args("local") + args)


def _count_records(output_dir: str) -> dict:
    output = tft.TFTransformOutput(output_dir)
    spec = output.transformed_feature_spec()
    counts = {}
    for split in ("train", "eval", "test"):
        files = tf.io.gfile.glob(f"{output_dir}/data/{split}/*.tfrecord.gz")
        n = 0
        for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(512):
            parsed = tf.io.parse_example(batch, spec)
            assert parsed["token_ids"].values.shape == parsed["token_weights"].values.shape
            assert int(tf.reduce_min(parsed["label_ids"].values)) >= 0
            n += int(tf.shape(parsed["video_id"])[0])
        counts[split] = n
    return counts


@pytest.fixture(scope="module")
def netflix(shared_data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("netflix"))
    report = _run([
        "--input", str(shared_data / "netflix_titles" / "netflix_titles.csv"),
        "--output-dir", out,
        "--field", "video_id=show_id",
        "--field", "categories=listed_in",
        "--list-separator", "categories=,",
    ])  # fmt: skip
    return out, report


@pytest.fixture(scope="module")
def youtube(shared_data, tmp_path_factory):
    data = shared_data / "youtube_trending_us"
    out = str(tmp_path_factory.mktemp("youtube"))
    report = _run([
        "--input", str(data / "USvideos.csv"),
        "--output-dir", out,
        "--field", "categories=category_id",
        "--field", "updated_at=trending_date",
        "--updated-at-format", "%y.%d.%m",
        "--label-map", str(data / "US_category_id.json"),
        "--split-key", "channel_title",
    ])  # fmt: skip
    return out, report


def test_netflix_counts(netflix):
    out, report = netflix
    records = report["records"]
    assert (records["read"], records["duplicates_removed"], records["dead_lettered"]) == (
        8807,
        0,
        0,
    )
    assert records["written"] == 8807 and records["balanced"]
    assert _count_records(out) == records["written_per_split"]
    assert report["labels"]["size"] == 42
    assert report["labels"]["train"]["International Movies"] > 2000
    assert 0.75 < records["written_per_split"]["train"] / 8807 < 0.85


def test_youtube_counts_and_category_names(youtube):
    out, report = youtube
    records = report["records"]
    assert records["read"] == 3000
    assert records["duplicates_removed"] == 2209
    assert records["written"] + records["dead_lettered"] == 791
    assert records["balanced"]
    assert _count_records(out) == records["written_per_split"]
    labels = set(tft.TFTransformOutput(out).vocabulary_by_name("labels"))
    assert {b"Entertainment", b"Music", b"People & Blogs", b"Howto & Style"} <= labels
    assert report["tokens_per_video"]["p50"] > 20  # descriptions survive cleaning
