"""What the text trainer reads from a preprocess output, and its datasets.

``load_training_data`` opens and checks a preprocess output directory;
``resolve_loss`` turns ``--loss auto`` into a loss (and switches the wide path
off for sampled losses); ``make_datasets`` gives the train, refit, eval and
test batches, with the label format each needs: label ids for sampled
training and for evaluating label spaces above ``models.loop.TOP_K_EVAL_ABOVE``
(top-k metrics), multi-hot rows otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models import artifacts
from models.loop import TOP_K_EVAL_ABOVE
from models.losses import is_sampled
from models.text.data import DataSpec, make_dataset, oov_bucket_ids, shard_files, with_oov_noise
from models.text.model import HParams, prior_logits
from transforms.errors import JobError, require
from transforms.features import TOKENS_VOCAB
from transforms.layout import PREPROCESS_CONFIG_FILE, PREPROCESS_REPORT_FILE


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
    transform_dir = os.path.join(data_dir, tft.TFTransformOutput.TRANSFORM_FN_DIR)
    require(tf.io.gfile.exists(transform_dir), f"no tf.Transform output in {data_dir!r}")
    output = tft.TFTransformOutput(data_dir)
    config, report = (
        _read_json(os.path.join(data_dir, n))
        for n in (PREPROCESS_CONFIG_FILE, PREPROCESS_REPORT_FILE)
    )
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


def check_model_dir(model_dir: str, spec: DataSpec) -> None:
    """A model dir that already holds an export must have the same labels."""
    labels_path = os.path.join(
        model_dir, artifacts.SAVED_MODEL_DIR, artifacts.EXTRA_DIR, artifacts.LABELS_FILE
    )
    if tf.io.gfile.exists(labels_path):
        previous = artifacts.read_extra(
            os.path.join(model_dir, artifacts.SAVED_MODEL_DIR), artifacts.LABELS_FILE
        )
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


def labels_per_video(data: TrainingData) -> tuple[int, int]:
    """The fewest and most categories a train video has (one pass over the labels)."""
    spec = {"label_ids": data.output.transformed_feature_spec()["label_ids"]}
    records = tf.data.TFRecordDataset(data.files["train"], compression_type="GZIP")
    low, high = None, 0
    for batch in records.batch(4096).map(lambda b: tf.io.parse_example(b, spec)["label_ids"]):
        lengths = tf.RaggedTensor.from_sparse(batch).row_lengths().numpy()
        low = int(lengths.min()) if low is None else min(low, int(lengths.min()))
        high = max(high, int(lengths.max()))
    return low or 0, high


def resolve_loss(data: TrainingData, hp: HParams) -> HParams:
    """``--loss auto``: softmax when every train video has exactly one category.
    A sampled loss has no wide path (``wide`` resolves to False, so the summary
    and the model card say so) and no fusion model."""
    if is_sampled(hp.loss):
        require(not data.spec.fusion, f"--loss {hp.loss} is for text-only preprocess outputs")
        if hp.wide:
            logging.info("--loss %s: no wide path (vocabulary x labels weights)", hp.loss)
        return dataclasses.replace(hp, wide=False)
    if hp.loss != "auto":
        return hp
    single = not data.spec.fusion and labels_per_video(data) == (1, 1)
    return dataclasses.replace(hp, loss="softmax" if single else "sigmoid")


def label_counts(data: TrainingData) -> list[int]:
    """Train videos per label, in label id order (the preprocess report's counts)."""
    counts = data.preprocess_report.get("labels", {}).get("train", {})
    return [counts.get(n, 0) for n in data.spec.label_names]


def label_prior_bias(data: TrainingData, loss: str):
    """Output biases at the train split's label log-prior (``models.text.model.prior_logits``)."""
    train_videos = data.preprocess_report["records"]["written_per_split"]["train"]
    return prior_logits(label_counts(data), train_videos, loss)


def eval_label_format(spec: DataSpec) -> str:
    """Multi-hot rows for the full score matrix, label ids for top-k metrics."""
    return "ids" if spec.num_labels > TOP_K_EVAL_ABOVE else "multi_hot"


def make_datasets(data: TrainingData, hp: HParams) -> dict:
    """train (shuffled, with OOV noise if asked), eval, train+eval (for the refit), test."""
    keras.utils.set_random_seed(hp.seed)  # shuffles hang on the global seed too
    fit_labels = "ids" if is_sampled(hp.loss) else "multi_hot"

    def make(splits, shuffle=False, labels=None):
        labels = labels or eval_label_format(data.spec)
        files = [f for s in splits for f in data.files[s]]
        return make_dataset(files, data.output, data.spec, hp.batch_size, shuffle, hp.seed, labels)

    train, refit = make(["train"], True, fit_labels), make(["train", "eval"], True, fit_labels)
    if hp.oov_rate:
        require(data.spec.oov_buckets > 0, "--oov-rate needs preprocess --oov-buckets > 0")
        buckets = oov_bucket_ids(
            data.output.vocabulary_by_name(TOKENS_VOCAB), data.spec.oov_buckets
        )
        train, refit = (with_oov_noise(d, buckets, hp.oov_rate, hp.seed) for d in (train, refit))
    return {
        "train": train,
        "refit": refit,
        "eval": make(["eval"]) if data.files["eval"] else None,
        "test": make(["test"]) if data.files["test"] else None,
        "train_eval": make(["train"]),  # thresholds when there is no eval split
    }
