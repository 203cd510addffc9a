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


def _netflix_flags(shared_data) -> list[str]:
    return [
        "--input", str(shared_data / "netflix_titles" / "netflix_titles.csv"),
        "--field", "video_id=show_id",
        "--field", "categories=listed_in",
        "--list-separator", "categories=,",
    ]  # fmt: skip


def _youtube_flags(shared_data) -> list[str]:
    data = shared_data / "youtube_trending_us"
    return [
        "--input", str(data / "USvideos.csv"),
        "--field", "categories=category_id",
        "--field", "updated_at=trending_date",
        "--updated-at-format", "%y.%d.%m",
        "--label-map", str(data / "US_category_id.json"),
        "--split-key", "channel_title",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def netflix(shared_data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("netflix"))
    return out, _run(_netflix_flags(shared_data) + ["--output-dir", out])


@pytest.fixture(scope="module")
def youtube(shared_data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("youtube"))
    return out, _run(_youtube_flags(shared_data) + ["--output-dir", out])


@pytest.mark.parametrize("name", ["netflix", "youtube"])
def test_evaluate_job_reproduces_the_trainer_test_metrics(name, request, shared_data, tmp_path):
    """The quality benchmark's figures (trainer, numpy metrics on the test shards)
    come out again from the product path: predict on the raw CSV, evaluate on Beam."""
    from models.text.model import HParams
    from models.text.train import TrainConfig, train
    from pipelines import evaluate, predict

    data_dir, written = request.getfixturevalue(name)
    model_dir = str(tmp_path / "model")
    hparams = HParams(
        hidden_units=0, epochs=3, patience=1, learning_rate=0.02, seeds=1, refit=False
    )
    summary = train(TrainConfig(data_dir, model_dir, hparams))
    flags = {"netflix": _netflix_flags, "youtube": _youtube_flags}[name](shared_data)
    labels = (tmp_path / "model/saved_model/assets.extra/labels.txt").read_text().splitlines()
    local, pred = cli.profile_args("local"), str(tmp_path / "pred")
    top_k = ["--top-k", str(len(labels))]
    predict.run(local + flags + ["--model-dir", model_dir, "--output-dir", pred, *top_k])
    catalog = ["--catalog" if flag == "--input" else flag for flag in flags]
    report = evaluate.run(local + catalog + [
        "--predictions", pred, "--model-dir", model_dir, "--split", "test",
        "--output-dir", str(tmp_path / "eval"),
    ])  # fmt: skip
    # --loss auto: YouTube has one category per video, Netflix several
    assert summary["hparams"]["loss"] == {"netflix": "sigmoid", "youtube": "softmax"}[name]
    test = summary["metrics"]["test"]
    assert report["counts"]["evaluated"] == written["records"]["written_per_split"]["test"]
    for key in ("gap@20", "hit@1", "map"):
        assert report["metrics"][key] == pytest.approx(test[key], abs=2e-4), key


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
    assert report["words_per_video"]["p50"] > 10  # descriptions survive cleaning
