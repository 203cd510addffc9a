"""The audio/visual path end to end on generated YouTube-8M records: train via the
CLI, the Beam predictor (counts balance, dead letters, parity with training-time
scores), evaluate on the TFRecord catalog, taxonomy roll-up, frame-level models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from models.av import data as yt8m_data
from models.av import records as yt8m_records
from models.av import train as av_train
from models.text.train import predict_scores
from pipelines import cli, evaluate, nightly, predict

pytestmark = pytest.mark.slow  # trains and runs YouTube-8M models through every job

CLASSES = 12


def _rows(out) -> list[dict]:
    files = sorted((out / "tags").glob("part-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def _write_bad_and_duplicate(path) -> None:
    """Three bad records and one duplicate of the first video (same features)."""
    first = next(iter(tf.data.TFRecordDataset(str(path)))).numpy()
    short = yt8m_records.make_video_example("short", [1], {"mean_rgb": np.zeros(5, np.float32),
                                                       "mean_audio": np.zeros(128, np.float32)})  # fmt: skip
    no_id = yt8m_records.make_video_example("", [1], {"mean_rgb": np.zeros(1024, np.float32),
                                                  "mean_audio": np.zeros(128, np.float32)})  # fmt: skip
    with tf.io.TFRecordWriter(str(path.with_name("extra.tfrecord"))) as writer:
        for record in (b"not a proto \xff", short.SerializeToString(),
                       no_id.SerializeToString(), first):  # fmt: skip
            writer.write(record)


@pytest.fixture(scope="module")
def av_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("av")
    data = root / "data" / "videos.tfrecord"
    data.parent.mkdir()
    yt8m_records.write_video_level_sample(str(data), 500, CLASSES, seed=3)
    model_dir = root / "model"
    code = cli.main([
        "train", "--features", "yt8m", "--data-dir", str(data), "--num-classes", str(CLASSES),
        "--model-dir", str(model_dir), "--epochs", "4", "--batch-size", "64",
        "--num-mixtures", "2", "--learning-rate", "0.005",
    ])  # fmt: skip
    assert code == 0
    _write_bad_and_duplicate(data)
    return root, data, model_dir


@pytest.fixture(scope="module")
def av_predictions(av_model):
    root, data, model_dir = av_model
    out = root / "pred"
    args = ["--input", str(data.parent / "*.tfrecord"), "--model-dir", str(model_dir)]
    report = predict.run(cli.profile_args("local") + args + ["--output-dir", str(out)])
    return out, report


def test_training_summary_checkpoints_and_card(av_model):
    _, _, model_dir = av_model
    summary = json.loads((model_dir / "training_summary.json").read_text())
    assert summary["metrics"]["test"]["gap@20"] > 0.9
    epochs = sorted(p.name for p in (model_dir / "checkpoints").glob("epoch-*"))
    assert epochs == [f"epoch-{i:03d}.h5" for i in range(1, summary["epochs_run"] + 1)]
    card = json.loads((model_dir / "saved_model/assets.extra/model_card.json").read_text())
    assert card["kind"] == "yt8m-video" and card["features"] == "yt8m"
    assert card["av"]["frame_level"] is False
    assert card["av"]["feature_sizes"] == {"mean_rgb": 1024, "mean_audio": 128}
    assert card["av"]["weights_mb"] == pytest.approx(summary["model"]["weights_mb"])


def test_predict_balances_with_dead_letters_and_duplicates(av_predictions):
    out, report = av_predictions
    assert report["records"] == {"in": 504, "tagged": 500, "empty_text": 0, "dead_lettered": 3,
                                 "duplicates_removed": 1, "balanced": True}  # fmt: skip
    assert report["dead_letters"] == {
        "read": {"malformed_example": 1, "bad_feature_size": 1, "missing_video_id": 1}
    }
    rows = _rows(out)
    assert len({row["video_id"] for row in rows}) == 500
    assert all(len(row["labels"]) == CLASSES for row in rows)


def _scores(rows) -> dict:
    return {r["video_id"]: {t["label"]: t["score"] for t in r["labels"]} for r in rows}


def test_nightly_tags_youtube8m_shards_incrementally(av_model, av_predictions, tmp_path):
    """Nightly reads the shards as predict does: same rows, then nothing to retag."""
    _, data, model_dir = av_model
    args = cli.profile_args("local") + [
        "--catalog", str(data.parent / "*.tfrecord"), "--model-dir", str(model_dir),
        "--state-dir", str(tmp_path / "state"), "--output-dir", str(tmp_path / "out"),
    ]  # fmt: skip
    first = nightly.run(args)
    assert first["records"] == {"in": 504, "tagged": 500, "empty_text": 0, "unchanged": 0,
                                "dead_lettered": 3, "duplicates_removed": 1, "balanced": True}  # fmt: skip
    assert first["videos"]["new"] == first["videos"]["in_table"] == 500
    expected, got = _scores(_rows(av_predictions[0])), _scores(_rows(tmp_path / "out"))
    assert sorted(got) == sorted(expected)
    for video_id, labels in expected.items():  # batches differ: float32 rounding may too
        assert got[video_id] == pytest.approx(labels, abs=2e-6)
    used = json.loads((tmp_path / "out" / "thresholds_used.json").read_text())
    assert used == json.loads((av_predictions[0] / "thresholds_used.json").read_text())
    second = nightly.run(args)
    assert second["records"]["tagged"] == 0 and second["videos"]["unchanged"] == 500


def test_predictor_scores_equal_training_time_scores(av_model, av_predictions):
    _, _, model_dir = av_model
    card = json.loads((model_dir / "saved_model/assets.extra/model_card.json").read_text())
    config = av_train.config_from_card(card, str(model_dir))
    labels = (model_dir / "saved_model/assets.extra/labels.txt").read_text().splitlines()
    model = av_train.build(config, len(labels))
    model.load_weights(str(model_dir / "checkpoints/best.h5"))
    datasets = av_train.make_datasets(config, len(labels), av_train.shard_paths(config.data))
    ids, scores, _ = predict_scores(model, datasets["eval"], "sigmoid")
    by_id = {row["video_id"]: row for row in _rows(av_predictions[0])}
    assert len(ids) > 20
    for video_id, expected in zip(ids, scores, strict=True):
        got = {t["label"]: t["score"] for t in by_id[video_id.decode()]["labels"]}
        assert [got[name] for name in labels] == pytest.approx(expected.tolist(), abs=2e-6)


def test_evaluate_on_the_tfrecord_catalog_with_rollup(av_model, av_predictions, tmp_path):
    root, data, model_dir = av_model
    rollup = tmp_path / "rollup.csv"
    rollup.write_text("label,category\nclass_0,A\nclass_1,A\nclass_2,B\nclass_3,B\n")
    args = ["--predictions", str(av_predictions[0]), "--catalog", str(data)]
    args += ["--model-dir", str(model_dir), "--split", "test", "--output-dir", str(tmp_path / "e")]
    report = evaluate.run(cli.profile_args("local") + args + ["--rollup", str(rollup)])
    summary = json.loads((model_dir / "training_summary.json").read_text())
    for key in ("gap@20", "hit@1", "map"):
        assert report["metrics"][key] == pytest.approx(summary["metrics"]["test"][key], abs=1e-5)
    labels = {}
    for record in tf.data.TFRecordDataset(str(data)):
        video = yt8m_records.decode_video_example(record.numpy())
        if yt8m_data.split_of(video["video_id"]) == "test":
            labels[video["video_id"]] = {f"class_{i}" for i in video["labels"]}
    support = {"A": 0, "B": 0}
    for names in labels.values():
        for category, members in (("A", {"class_0", "class_1"}), ("B", {"class_2", "class_3"})):
            support[category] += bool(names & members)
    level = report["levels"]["category"]
    assert {row["name"]: row["support"] for row in level["per_category"]} == support
    assert report["counts"]["evaluated"] == len(labels)


def test_predict_rollup_scores_are_the_max_of_members(av_model, tmp_path):
    root, data, model_dir = av_model
    rollup = tmp_path / "rollup.csv"
    rollup.write_text("label,category\nclass_0,A\nclass_1,A\nclass_2,B\nclass_5,B\n")
    args = ["--input", str(data), "--model-dir", str(model_dir), "--output-dir", str(tmp_path)]
    predict.run(cli.profile_args("local") + args + ["--rollup", str(rollup)])
    for row in _rows(tmp_path)[:50]:
        scores = {t["label"]: t["score"] for t in row["labels"]}
        expected = {"A": max(scores["class_0"], scores["class_1"]),
                    "B": max(scores["class_2"], scores["class_5"])}  # fmt: skip
        got = {c["category"]: c["score"] for c in row["categories"]}
        assert got == pytest.approx(expected, abs=1e-6)
        members = {"class_0": "A", "class_1": "A", "class_2": "B", "class_5": "B"}
        assert row["predicted_categories"] == sorted(
            {members[name] for name in row["predicted"] if name in members}
        )


def test_model_over_the_size_budget_is_refused(av_model, tmp_path, capsys):
    _, data, _ = av_model
    argv = ["train", "--features", "yt8m", "--data-dir", str(data), "--num-classes", "12",
            "--model-dir", str(tmp_path), "--max-model-mb", "0.01"]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "--max-model-mb 0.01" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "flags",
    [
        ["--model", "netvlad", "--cluster-size", "4", "--hidden-size", "16"],
        ["--model", "bilstm", "--lstm-units", "8", "--num-mixtures", "0"],
    ],
    ids=["netvlad", "bilstm"],
)
def test_frame_level_models_train_and_predict(flags, tmp_path):
    data = tmp_path / "frames.tfrecord"
    yt8m_records.write_frame_level_sample(str(data), 160, 6, seed=2, max_frames=8)
    model_dir = tmp_path / "model"
    argv = ["train", "--features", "yt8m", "--data-dir", str(data), "--num-classes", "6",
            "--model-dir", str(model_dir), "--epochs", "2", "--batch-size", "32",
            "--max-frames", "8", *flags]  # fmt: skip
    assert cli.main(argv) == 0
    out = tmp_path / "pred"
    args = ["--input", str(data), "--model-dir", str(model_dir), "--output-dir", str(out)]
    report = predict.run(cli.profile_args("local") + args)
    assert report["records"]["tagged"] == 160 and report["records"]["balanced"]
    loaded = tf.saved_model.load(str(model_dir / "saved_model"))
    record = next(iter(tf.data.TFRecordDataset(str(data)))).numpy()
    video = yt8m_records.decode_frame_example(record, 8)
    n = video["num_frames"]
    probs = loaded.signatures["frames"](
        rgb=tf.constant(video["rgb"][None, :n], tf.float32),
        audio=tf.constant(video["audio"][None, :n], tf.float32),
        num_frames=tf.constant([n], tf.int32),
    )["probabilities"].numpy()[0]
    row = {r["video_id"]: r for r in _rows(out)}[video["video_id"]]
    got = {t["label"]: t["score"] for t in row["labels"]}
    assert [got[f"class_{i}"] for i in range(6)] == pytest.approx(probs.tolist(), abs=2e-6)
    served = loaded.signatures["serving_default"](examples=tf.constant([record]))
    assert served["probabilities"].numpy()[0] == pytest.approx(probs, abs=1e-5)
