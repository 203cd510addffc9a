"""``catalog-tagger train --features yt8m``: the audio/visual models on YouTube-8M shards.

The text trainer's loop, reused: Adam with a fixed seed, eval GAP@20 after
every epoch with early stopping that restores the best weights
(``models.text.train.EvalAndKeepBest``), thresholds tuned on eval, the same metrics
(``models.metrics``) on eval and test, and one SavedModel with a model card.
Splits come from a hash of the video id (``transforms.splits``), so a video
keeps its split across runs, readers and the Beam predictor. Every epoch's
weights (not the optimizer state) are kept as ``checkpoints/epoch-NNN.h5`` for
checkpoint averaging. The output biases start at the train split's label prior.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time

import tensorflow as tf
import tf_keras as keras

from models import artifacts, card, metrics
from models.av import data as yt8m_data
from models.av import export as av_export
from models.av.vocabulary import read_vocabulary
from models.av.zoo import MODELS, AVParams, build_av_model
from models.loop import LoopConfig, predict_scores
from models.loop import fit as loop_fit
from models.priors import label_prior
from transforms.errors import JobError, require
from transforms.params import param
from transforms.splits import SplitConfig


@dataclasses.dataclass(frozen=True)
class AVTrainParams:
    """Optimisation settings, with their flags' help (the model's own are ``AVParams``)."""

    # learning rate 0.005 with batch 128: see the README's YouTube-8M sweep
    learning_rate: float = param(0.005, "Adam learning rate.")
    batch_size: int = param(128, "Videos per training batch.")
    epochs: int = param(8, "Maximum epochs (every epoch's weights are kept for averaging).")
    patience: int = param(3, "Early stopping: epochs without eval GAP@20 improvement.")
    max_frames: int = param(300, "Frame-level models: frames read per video (YouTube-8M: 300).")

    def __post_init__(self) -> None:
        checks = {
            "learning_rate": self.learning_rate > 0,
            "batch_size": self.batch_size >= 1,
            "epochs": self.epochs >= 1,
            "patience": self.patience >= 0,
            "max_frames": self.max_frames >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"Invalid {name}. Received: {name}={getattr(self, name)!r}")


@dataclasses.dataclass(frozen=True)
class AVTrainConfig:
    data: str  # a glob, a file or a directory of TFRecord shards
    model_dir: str
    vocabulary: str | None = None  # YouTube-8M vocabulary.csv (label names)
    num_classes: int | None = None  # without a vocabulary: class_0 .. class_{n-1}
    model: AVParams = AVParams()
    train: AVTrainParams = AVTrainParams()
    split: SplitConfig = SplitConfig()
    max_model_mb: float | None = None

    @property
    def frame_level(self) -> bool:
        return MODELS[self.model.model].frame_level


def shard_paths(data: str) -> list[str]:
    """The TFRecord files named by a glob, a file or a directory."""
    pattern = os.path.join(data, "*.tfrecord*") if tf.io.gfile.isdir(data) else data
    files = sorted(tf.io.gfile.glob(pattern))
    require(files, f"no TFRecord shards match {data!r}")
    return files


def label_names(config: AVTrainConfig) -> tuple[str, ...]:
    if config.vocabulary:
        require(tf.io.gfile.exists(config.vocabulary), f"no vocabulary {config.vocabulary!r}")
        return read_vocabulary(config.vocabulary).names
    require(config.num_classes, "give --vocabulary or --num-classes")
    return tuple(f"class_{i}" for i in range(config.num_classes))


def feature_sizes(frame_level: bool) -> dict:
    return dict(yt8m_data.FRAME_FEATURES if frame_level else yt8m_data.VIDEO_FEATURES)


def make_datasets(config: AVTrainConfig, num_classes: int, files: list[str]) -> dict:
    """``train`` (shuffled), ``eval`` and ``test`` datasets of ``(features, labels)``."""
    compression = "GZIP" if files[0].endswith(".gz") else None
    common = {"split_config": config.split, "compression": compression}
    if config.frame_level:
        make = lambda split, shuffle=False: yt8m_data.frame_level_dataset(  # noqa: E731
            files, num_classes, config.train.batch_size, config.train.max_frames,
            shuffle=shuffle, seed=config.model.seed, split=split, **common)  # fmt: skip
    else:
        make = lambda split, shuffle=False: yt8m_data.video_level_dataset(  # noqa: E731
            files, num_classes, config.train.batch_size,
            shuffle=shuffle, seed=config.model.seed, split=split, **common)  # fmt: skip
    return {"train": make("train", True), "eval": make("eval"), "test": make("test")}


def _fit(model, config: AVTrainConfig, datasets: dict):
    """The shared loop (``models.loop``), keeping every epoch's weights for averaging."""
    hp = config.train
    loop = LoopConfig(hp.learning_rate, hp.epochs, hp.patience, "sigmoid", config.model_dir,
                      keep_every_epoch=True)  # fmt: skip
    return loop_fit(model, datasets["train"], datasets["eval"], loop)


def build(config: AVTrainConfig, num_classes: int, weight_dtype: str | None = None, prior=None):
    """The configured model; ``prior`` (per class) sets its initial output biases."""
    params = config.model
    if weight_dtype:
        params = dataclasses.replace(params, weight_dtype=weight_dtype)
    sizes = list(feature_sizes(config.frame_level).values())
    return build_av_model(
        params, num_classes, rgb_size=sizes[0], audio_size=sizes[1], label_prior=prior
    )


def train_prior(config: AVTrainConfig, num_classes: int, files: list[str]):
    """The train split's label prior (labels only: no features are parsed)."""
    compression = "GZIP" if files[0].endswith(".gz") else None
    labels = yt8m_data.labels_dataset(
        files, num_classes, frame_level=config.frame_level, split="train",
        split_config=config.split, compression=compression)  # fmt: skip
    try:
        return label_prior(labels, num_classes)
    except ValueError:
        raise JobError(f"no train videos in {config.data!r}") from None


def evaluate_split(model, dataset, thresholds) -> dict:
    """Metrics of one split at ``thresholds`` (an empty split: ``{}``)."""
    _, scores, labels = predict_scores(model, dataset, "sigmoid")
    return metrics.evaluate(scores, labels, thresholds) if len(scores) else {}


def train_av(config: AVTrainConfig) -> dict:
    """Trains, evaluates, exports; returns the training summary."""
    files, labels = shard_paths(config.data), label_names(config)
    datasets = make_datasets(config, len(labels), files)
    keras.utils.set_random_seed(config.model.seed)
    model = build(config, len(labels), prior=train_prior(config, len(labels), files))
    av_export.check_size(model, config.max_model_mb)
    start = time.monotonic()
    history, best_epoch = _fit(model, config, datasets)
    seconds = time.monotonic() - start
    require(best_epoch >= 1, f"no eval videos in {config.data!r}: cannot select a model")
    _, eval_scores, eval_labels = predict_scores(model, datasets["eval"], "sigmoid")
    thresholds = metrics.tune_thresholds(eval_scores, eval_labels)
    results = {"eval": metrics.evaluate(eval_scores, eval_labels, thresholds)}
    results["test"] = evaluate_split(model, datasets["test"], thresholds)
    card = model_card(config, labels, results)
    export_dir = os.path.join(config.model_dir, artifacts.SAVED_MODEL_DIR)
    av_export.export_av_model(export_dir, model, labels, thresholds, card, config.max_model_mb)
    from models.artifacts import CARD_FILE, read_extra

    summary = {
        "model": read_extra(export_dir, CARD_FILE)[av_export.CARD_AV],
        "epochs_run": len(history.history.get("loss", [])),
        "best_epoch": best_epoch,
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
        "wall_seconds": round(seconds, 3),
        "metrics": results,
        "saved_model_mb": round(av_export.saved_model_mb(export_dir), 4),
    }
    with tf.io.gfile.GFile(os.path.join(config.model_dir, artifacts.SUMMARY_FILE), "w") as handle:
        handle.write(json.dumps(summary, indent=2, sort_keys=True))
    logging.info("trained: %s", json.dumps(results))
    return summary


def model_card(config: AVTrainConfig, labels, results: dict) -> dict:
    return card.model_card(
        results,
        kind=card.YT8M_FRAMES if config.frame_level else card.YT8M_VIDEO,
        features="yt8m",
        **{av_export.CARD_AV: {
            "params": dataclasses.asdict(config.model),
            "train": dataclasses.asdict(config.train),
            "frame_level": config.frame_level,
            "feature_sizes": feature_sizes(config.frame_level),
            "max_frames": config.train.max_frames,
            "num_classes": len(labels),
            "data": config.data,
            "split": dataclasses.asdict(config.split),
            "vocabulary": config.vocabulary,
        }},
    )  # fmt: skip


def config_from_card(card: dict, model_dir: str, **overrides) -> AVTrainConfig:
    """The training config recorded in a model card (for compress/averaging)."""
    av = card.get(av_export.CARD_AV)
    if av is None:
        raise JobError("not an audio/visual model (its model card has no 'av' section)")
    return AVTrainConfig(
        data=overrides.pop("data", None) or av["data"],
        model_dir=model_dir,
        vocabulary=av["vocabulary"],
        num_classes=av["num_classes"],
        model=AVParams(**av["params"]),
        train=AVTrainParams(**av["train"]),
        split=SplitConfig(**av["split"]),
        **overrides,
    )
