"""Trainer: it learns, it exports one SavedModel whose three signatures agree,
TF2 and TF1-style loaders both load it, and bad inputs fail clearly."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from models import artifacts, metrics
from models.text.data import DataSpec, make_dataset, shard_files
from models.text.model import HParams
from models.text.train import TrainConfig, load_training_data, train
from pipelines.components.jobs import JobError
from pipelines.components.steps import raw_text
from transforms.records import RecordSchema, parse_json_object, to_canonical
from transforms.text import text_tokens


def test_training_learns_and_summarizes(sample_model):
    model_dir, summary = sample_model
    assert summary["metrics"]["eval"]["gap@20"] > 0.7
    assert summary["metrics"]["test"]["hit@1"] > 0.7
    assert 1 <= summary["best_epoch"] <= summary["epochs_run"] <= 8
    gaps = summary["history"]["val_gap@20"]
    assert max(gaps) == pytest.approx(gaps[summary["best_epoch"] - 1])
    on_disk = json.loads((model_dir / "training_summary.json").read_text())
    assert on_disk["metrics"] == summary["metrics"]
    assert summary["hparams"]["hidden_units"] == 64 and summary["examples_per_second"] > 0
    assert summary["hparams"]["loss"] == "sigmoid"  # auto: the sample has 1-3 labels a video


def test_labels_per_video_and_the_auto_loss(sample_preprocessed):
    from models.text.train import labels_per_video, resolve_loss

    data = load_training_data(str(sample_preprocessed))
    assert labels_per_video(data) == (1, 3)
    assert resolve_loss(data, HParams()).loss == "sigmoid"
    assert resolve_loss(data, HParams(loss="softmax")).loss == "softmax"


def test_export_carries_labels_thresholds_and_card(sample_model, sample_preprocessed):
    model_dir, summary = sample_model
    saved = str(model_dir / "saved_model")
    labels = artifacts.read_extra(saved, artifacts.LABELS_FILE)
    output = tft.TFTransformOutput(str(sample_preprocessed))
    assert labels == [v.decode() for v in output.vocabulary_by_name("labels")]
    assert len(labels) == 20
    thresholds = artifacts.read_extra(saved, artifacts.THRESHOLDS_FILE)
    assert list(thresholds) == sorted(labels) and all(0 < t <= 1 for t in thresholds.values())
    card = artifacts.read_extra(saved, artifacts.CARD_FILE)
    assert card["kind"] == "text" and card["metrics"] == summary["metrics"]
    assert card["vocabulary"]["size"] == output.vocabulary_size_by_name("tokens")
    assert card["vocabulary"]["oov_buckets"] == 0  # the default: no buckets
    assert card["versions"]["tensorflow"] == tf.__version__
    assert card["data"]["records"]["balanced"] is True


def _eval_rows(data_dir: str, n: int = 24):
    data = load_training_data(data_dir)
    dataset = make_dataset(shard_files(data_dir, "eval"), data.output, data.spec, batch_size=n)
    features, _ = next(iter(dataset))
    return [v.decode() for v in features["video_id"].numpy()], features["bow"], data.spec


def _records_for(catalog, video_ids: list[str]) -> list[dict]:
    latest = {}
    for line in catalog.read_bytes().splitlines():
        try:
            record = to_canonical(parse_json_object(line.decode("utf-8")), RecordSchema())
        except (ValueError, UnicodeDecodeError):
            continue
        previous = latest.get(record["video_id"])
        if previous is None or (record["updated_at"] or 0) >= (previous["updated_at"] or 0):
            latest[record["video_id"]] = record
    return [latest[v] for v in video_ids]


def _example(video_id: str, record: dict) -> bytes:
    """The ``serving_default`` input: a serialized Example with the raw fields."""

    def feature(*values: str) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))

    return tf.train.Example(features=tf.train.Features(feature={
        "video_id": feature(video_id), "title": feature(record["title"] or ""),
        "description": feature(record["description"] or ""), "tags": feature(*record["tags"]),
    })).SerializeToString()  # fmt: skip


def test_signatures_agree_with_training_time_scores(
    sample_model, sample_preprocessed, sample_catalog
):
    model_dir, _ = sample_model
    ids, bow, spec = _eval_rows(str(sample_preprocessed))
    loaded = tf.saved_model.load(str(model_dir / "saved_model"))
    assert set(loaded.signatures) == {
        "raw", "sparse", "vectorize", "serving_default", "top_k", "embed", "label_embeddings"
    }  # fmt: skip
    sparse = loaded.signatures["sparse"](
        indices=bow.indices, values=bow.values, dense_shape=bow.dense_shape
    )["probabilities"].numpy()
    assert sparse.shape == (len(ids), spec.num_labels)
    keras_model = loaded.model  # the trained Keras model, as used in training-time eval
    np.testing.assert_allclose(sparse, tf.sigmoid(keras_model(bow)).numpy(), atol=1e-6)

    # Raw text through the ``raw`` signature: the graph cleans it as preprocess did.
    records = _records_for(sample_catalog, ids)
    title, description, tags = (
        list(column) for column in zip(*map(raw_text, records), strict=True)
    )
    by_raw = loaded.signatures["raw"](
        title=tf.constant(title), description=tf.constant(description), tags=tf.constant(tags)
    )
    np.testing.assert_allclose(by_raw["probabilities"].numpy(), sparse, atol=1e-5)
    fields = [[r["title"], r["description"], *r["tags"]] for r in records]
    assert by_raw["num_tokens"].numpy().tolist() == [len(text_tokens(f)) for f in fields]

    examples = [_example(v, r) for v, r in zip(ids, records, strict=True)]
    served = loaded.signatures["serving_default"](examples=tf.constant(examples))
    np.testing.assert_allclose(served["probabilities"].numpy(), sparse, atol=1e-5)
    assert [v.decode() for v in served["video_id"].numpy()] == ids


def test_tf1_style_loader_runs_the_sparse_raw_and_example_signatures(
    sample_model, sample_preprocessed, sample_catalog
):
    model_dir, _ = sample_model
    ids, bow, _ = _eval_rows(str(sample_preprocessed), n=8)
    expected = (
        tf.saved_model.load(str(model_dir / "saved_model"))
        .signatures["sparse"](indices=bow.indices, values=bow.values, dense_shape=bow.dense_shape)[
            "probabilities"
        ]
        .numpy()
    )
    records = _records_for(sample_catalog, ids)
    text = dict(zip(("title", "description", "tags"), zip(*map(raw_text, records), strict=True),
                    strict=True))  # fmt: skip
    examples = [_example(v, r) for v, r in zip(ids, records, strict=True)]
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:  # as TF Serving loads it
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(model_dir / "saved_model"))

        def run(name: str, inputs: dict):
            signature = meta.signature_def[name]
            feeds = {signature.inputs[k].name: v for k, v in inputs.items()}
            return sess.run(signature.outputs["probabilities"].name, feed_dict=feeds)

        sparse = {"indices": bow.indices.numpy(), "values": bow.values.numpy(),
                  "dense_shape": bow.dense_shape.numpy()}  # fmt: skip
        np.testing.assert_allclose(run("sparse", sparse), expected, atol=1e-6)
        np.testing.assert_allclose(run("raw", text), expected, atol=1e-5)
        np.testing.assert_allclose(
            run("serving_default", {"examples": examples}), expected, atol=1e-5
        )


def test_exported_thresholds_reproduce_the_reported_test_f1(sample_model, sample_preprocessed):
    # eval figures come from the seeds chosen on eval; the export is their refit on
    # train + eval, so the test split is where the exported thresholds are checked
    model_dir, summary = sample_model
    assert summary["hparams"]["refit"] and len(summary["seeds"]) == 2
    data = load_training_data(str(sample_preprocessed))
    loaded = tf.saved_model.load(str(model_dir / "saved_model"))
    scores, labels = [], []
    for features, y in make_dataset(data.files["test"], data.output, data.spec, 64):
        bow = features["bow"]
        scores.append(loaded.signatures["sparse"](
            indices=bow.indices, values=bow.values, dense_shape=bow.dense_shape
        )["probabilities"].numpy())  # fmt: skip
        labels.append(y.numpy())
    thresholds = artifacts.read_extra(str(model_dir / "saved_model"), artifacts.THRESHOLDS_FILE)
    vector = np.array([thresholds[name] for name in data.spec.label_names])
    f1 = metrics.f1_scores(np.concatenate(scores), np.concatenate(labels), vector)
    assert f1["micro_f1"] == pytest.approx(summary["metrics"]["test"]["micro_f1"], abs=1e-6)


def test_missing_transform_output_fails_clearly(tmp_path):
    with pytest.raises(JobError, match="no tf.Transform output"):
        train(TrainConfig(str(tmp_path), str(tmp_path / "m")))


def test_label_vocabulary_mismatch_fails_clearly(sample_model, sample_preprocessed, tmp_path):
    model_dir, _ = sample_model
    copy = tmp_path / "model"
    shutil.copytree(model_dir / "saved_model", copy / "saved_model")
    labels = copy / "saved_model" / "assets.extra" / "labels.txt"
    labels.write_text("Music\nOther\n")
    with pytest.raises(JobError, match="different label vocabulary"):
        train(
            TrainConfig(
                str(sample_preprocessed), str(copy), HParams(epochs=1, seeds=1, refit=False)
            )
        )


def test_zero_train_records_fail_clearly(sample_preprocessed, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(sample_preprocessed, data_dir)
    report = json.loads((data_dir / "preprocess_report.json").read_text())
    report["records"]["written_per_split"]["train"] = 0
    (data_dir / "preprocess_report.json").write_text(json.dumps(report))
    with pytest.raises(JobError, match="no train records"):
        train(TrainConfig(str(data_dir), str(tmp_path / "m")))


def test_unseen_labels_are_reported_not_crashed_on():
    from models.text.train import unseen_labels

    spec = DataSpec(vocab_size=3, oov_buckets=1, num_labels=2, label_names=("a", "b"))
    report = {"labels": {"train": {"a": 3, "b": 1}, "eval": {"a": 1, "z": 2}, "test": {"y": 1}}}
    assert unseen_labels(report, spec) == {"eval": {"z": 2}, "test": {"y": 1}}
