"""``catalog-tagger train``: fit the text tagger on the preprocess shards.

Adam with a fixed seed, eval GAP@20 after every epoch, early stopping that
keeps the best weights, per-category thresholds tuned on eval, metrics on
eval and test, and one exported SavedModel with a model card.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import sys
import time

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models import export, metrics
from models.data import FEATURES, DataSpec, make_dataset, shard_files
from models.model import HParams, build_model, loss_fn, probabilities
from pipelines.jobs import JobError, require

SUMMARY_FILE = "training_summary.json"
SAVED_MODEL_DIR = "saved_model"
HEADLINE = "gap@20"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    data_dir: str
    model_dir: str
    hparams: HParams = HParams()


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What the trainer reads from a preprocess output directory."""

    output: tft.TFTransformOutput
    spec: DataSpec
    files: dict
    preprocess_config: dict
    preprocess_report: dict


def load_training_data(data_dir: str) -> TrainingData:
    """Checks and opens a preprocess output; clear errors for what is missing."""
    from pipelines.preprocess import CONFIG_FILE, REPORT_FILE

    transform_dir = os.path.join(data_dir, tft.TFTransformOutput.TRANSFORM_FN_DIR)
    require(tf.io.gfile.exists(transform_dir), f"no tf.Transform output in {data_dir!r}")
    output = tft.TFTransformOutput(data_dir)
    config, report = (_read_json(os.path.join(data_dir, n)) for n in (CONFIG_FILE, REPORT_FILE))
    spec = DataSpec.from_transform_output(output, config["transform"]["num_oov_buckets"])
    require(spec.num_labels > 0, f"the label vocabulary in {data_dir!r} is empty")
    files = {split: shard_files(data_dir, split) for split in ("train", "eval", "test")}
    written = report["records"]["written_per_split"]
    require(written.get("train", 0) > 0 and files["train"], f"no train records in {data_dir!r}")
    return TrainingData(output, spec, files, config, report)


def _read_json(path: str) -> dict:
    require(tf.io.gfile.exists(path), f"missing {path!r}: is this a preprocess output?")
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def model_inputs(features: dict):
    """What the model takes from a batch's features: the text ``bow``, or every
    feature but ``video_id`` (fusion and audio/visual models' named inputs)."""
    if FEATURES in features and len(features) <= 2:  # bow (+ video_id): the text model
        return features[FEATURES]
    return {name: value for name, value in features.items() if name != "video_id"}


def predict_scores(model, dataset: tf.data.Dataset, loss: str):
    """``(video_ids, probabilities, labels)`` as numpy arrays over a dataset."""
    ids, scores, labels = [], [], []
    for features, y in dataset:
        inputs = model_inputs(features)
        scores.append(probabilities(model(inputs, training=False), loss).numpy())
        ids.append(features["video_id"].numpy())
        labels.append(y.numpy())
    if not scores:
        return np.zeros([0], object), np.zeros([0, 0], np.float32), np.zeros([0, 0], np.float32)
    return np.concatenate(ids), np.concatenate(scores), np.concatenate(labels)


class EvalAndKeepBest(keras.callbacks.Callback):
    """Eval GAP@20 (and Hit@1, mAP) each epoch; early stopping on GAP@20;
    the best weights are checkpointed and restored at the end."""

    def __init__(self, dataset, loss: str, patience: int, checkpoint: str):
        super().__init__()
        self._dataset, self._loss, self._patience = dataset, loss, patience
        self._checkpoint = checkpoint
        self.best, self.best_epoch, self._wait = -1.0, -1, 0

    def on_epoch_end(self, epoch, logs=None):
        _, scores, labels = predict_scores(self.model, self._dataset, self._loss)
        result = metrics.evaluate(scores, labels)
        for name, value in result.items():
            logs[f"val_{name}"] = value
        if result[HEADLINE] > self.best:
            self.best, self.best_epoch, self._wait = result[HEADLINE], epoch, 0
            self.model.save_weights(self._checkpoint)
        else:
            self._wait += 1
            self.model.stop_training = self._wait > self._patience

    def on_train_end(self, logs=None):
        if self.best_epoch >= 0:
            self.model.load_weights(self._checkpoint)


def _check_model_dir(model_dir: str, spec: DataSpec) -> None:
    labels_path = os.path.join(model_dir, SAVED_MODEL_DIR, export.EXTRA_DIR, export.LABELS_FILE)
    if tf.io.gfile.exists(labels_path):
        previous = export.read_extra(os.path.join(model_dir, SAVED_MODEL_DIR), export.LABELS_FILE)
        if tuple(previous) != spec.label_names:
            raise JobError(
                f"{model_dir!r} holds a model with a different label vocabulary "
                f"({len(previous)} vs {spec.num_labels} labels); use a new --model-dir"
            )


def unseen_labels(report: dict, spec: DataSpec) -> dict:
    """Eval/test categories absent from the train label vocabulary, with counts."""
    known = set(spec.label_names)
    return {
        split: {name: n for name, n in report.get("labels", {}).get(split, {}).items()
                if name not in known}
        for split in ("eval", "test")
    }  # fmt: skip


def _fit(data: TrainingData, config: TrainConfig, datasets: dict):
    hp = config.hparams
    keras.utils.set_random_seed(hp.seed)
    model = build_model(data.spec.input_dim, data.spec.num_labels, hp, data.spec.av_sizes)
    model.compile(optimizer=keras.optimizers.Adam(hp.learning_rate), loss=loss_fn(hp))
    checkpoint = os.path.join(config.model_dir, "checkpoints", "best")
    keeper = EvalAndKeepBest(datasets["eval_batches"], hp.loss, hp.patience, checkpoint)
    board = keras.callbacks.TensorBoard(os.path.join(config.model_dir, "tensorboard"))
    history = model.fit(
        datasets["train"].map(lambda f, y: (model_inputs(f), y)),
        epochs=hp.epochs,
        callbacks=[keeper, board],
        verbose=1 if sys.stdout.isatty() else 2,
    )
    return model, keeper, history


def train(config: TrainConfig) -> dict:
    """Trains, evaluates, exports; returns the training summary."""
    data = load_training_data(config.data_dir)
    _check_model_dir(config.model_dir, data.spec)
    hp = config.hparams
    make = lambda split, shuffle=False: make_dataset(  # noqa: E731
        data.files[split], data.output, data.spec, hp.batch_size, shuffle, hp.seed
    )
    has_eval = bool(data.files["eval"])
    datasets = {"train": make("train", True), "eval_batches": make("eval" if has_eval else "train")}
    start = time.monotonic()
    model, keeper, history = _fit(data, config, datasets)
    seconds = time.monotonic() - start
    _, eval_scores, eval_labels = predict_scores(model, datasets["eval_batches"], hp.loss)
    thresholds = metrics.tune_thresholds(eval_scores, eval_labels)
    results = {"eval": metrics.evaluate(eval_scores, eval_labels, thresholds)}
    if data.files["test"]:
        _, scores, labels = predict_scores(model, make("test"), hp.loss)
        results["test"] = metrics.evaluate(scores, labels, thresholds)
    summary = _summary(data, config, history, keeper, results, seconds)
    card = _model_card(data, hp, results)
    extras = {
        export.THRESHOLDS_FILE: dict(
            zip(data.spec.label_names, map(float, thresholds), strict=True)
        ),
        export.CARD_FILE: card,
        export.PREPROCESS_CONFIG_FILE: data.preprocess_config,
    }
    export_dir = os.path.join(config.model_dir, SAVED_MODEL_DIR)
    export.export_model(export_dir, model, data.output, data.spec, hp.loss, extras)
    with tf.io.gfile.GFile(os.path.join(config.model_dir, SUMMARY_FILE), "w") as handle:
        handle.write(json.dumps(summary, indent=2, sort_keys=True))
    logging.info("trained: %s", json.dumps(results))
    return summary


def _summary(data, config, history, keeper, results, seconds) -> dict:
    epochs = len(history.history.get("loss", []))
    train_examples = data.preprocess_report["records"]["written_per_split"]["train"]
    return {
        "hparams": dataclasses.asdict(config.hparams),
        "epochs_run": epochs,
        "best_epoch": keeper.best_epoch + 1,
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
        "wall_seconds": round(seconds, 3),
        "examples_per_second": round(train_examples * epochs / max(seconds, 1e-9), 1),
        "metrics": results,
        "labels_unseen_in_train": unseen_labels(data.preprocess_report, data.spec),
    }


def _model_card(data: TrainingData, hp: HParams, results: dict) -> dict:
    import apache_beam

    now = datetime.datetime.now(datetime.UTC)
    return {
        "model_version": now.strftime("%Y%m%dT%H%M%SZ"),
        "data": {
            "records": data.preprocess_report["records"],
            "labels": list(data.spec.label_names),
        },
        "metrics": results,
        "vocabulary": {"size": data.spec.vocab_size, "oov_buckets": data.spec.oov_buckets},
        "hparams": dataclasses.asdict(hp),
        "versions": {
            "tensorflow": tf.__version__,
            "tensorflow_transform": tft.__version__,
            "apache_beam": apache_beam.__version__,
            "tf_keras": keras.__version__,
        },
    }
