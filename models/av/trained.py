"""Trained audio/visual model dirs as the post-training tools use them.

A model dir holds ``saved_model/`` (with the extras of ``models.artifacts``)
and the ``checkpoints/`` of ``models.av.train``. :func:`read_export` reads the
export; the other helpers rebuild a model from a checkpoint, evaluate it on the
eval split of its data, and write a tool's output dir: the servable SavedModel,
``checkpoints/best.h5`` and the tool's JSON report (``REPORTS``).

User errors raise ``pipelines.components.jobs.JobError`` with a one-line message.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from models import artifacts, metrics
from models import checkpoints as weight_files
from models.av import export as av_export
from models.av import train as av_train
from models.loop import CHECKPOINTS, predict_scores
from transforms.errors import JobError, require

CARD_AV = av_export.CARD_AV
HEADLINE = "gap@20"
REPORTS = {
    "compress": "compress_report.json",
    "average": "average_report.json",
    "ensemble": "ensemble_report.json",
}
OWNED = (artifacts.SAVED_MODEL_DIR, CHECKPOINTS, *REPORTS.values())


class Export(NamedTuple):
    """One trained model dir: its export's path, labels, thresholds and card."""

    model_dir: str
    export_dir: str
    labels: list[str]
    thresholds: np.ndarray
    card: dict


def read_export(model_dir: str) -> Export:
    """The exported audio/visual model of ``model_dir`` (a clear error if none)."""
    export_dir = os.path.join(model_dir, artifacts.SAVED_MODEL_DIR)
    card_path = os.path.join(export_dir, artifacts.EXTRA_DIR, artifacts.CARD_FILE)
    require(tf.io.gfile.exists(card_path), f"no exported model in {model_dir!r} ({card_path})")
    card = artifacts.read_extra(export_dir, artifacts.CARD_FILE)
    require(CARD_AV in card, f"{model_dir!r} is not an audio/visual (--features yt8m) model")
    labels = artifacts.read_extra(export_dir, artifacts.LABELS_FILE)
    by_label = artifacts.read_extra(export_dir, artifacts.THRESHOLDS_FILE)
    require(sorted(by_label) == sorted(labels), f"thresholds and labels disagree in {model_dir!r}")
    return Export(model_dir, export_dir, labels, np.array([by_label[x] for x in labels]), card)


def read_trained(model_dir: str, data: str | None) -> tuple[Export, av_train.AVTrainConfig]:
    """The export of a single (not ensemble) model dir and its training config."""
    source = read_export(model_dir)
    require(
        "ensemble" not in source.card[CARD_AV],
        f"{model_dir!r} holds an ensemble: compress or average its members instead",
    )
    return source, av_train.config_from_card(source.card, model_dir, data=data)


def load_checkpoint(config, num_labels: int, checkpoint: str):
    """The model of ``config`` with the weights of ``checkpoint``."""
    require(tf.io.gfile.exists(checkpoint), f"no checkpoint {checkpoint!r}")
    model = av_train.build(config, num_labels)
    weight_files.load_weights(model, checkpoint)
    return model


def eval_dataset(config, num_labels: int) -> tf.data.Dataset:
    """The eval split of ``config.data``, read as training read it."""
    try:
        files = av_train.shard_paths(config.data)
    except JobError as err:
        raise JobError(f"{err}; --data-dir names the data to evaluate on") from None
    return av_train.make_datasets(config, num_labels, files)["eval"]


def eval_scores(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, labels)`` of ``model`` on ``dataset`` (a clear error if empty)."""
    _, scores, labels = predict_scores(model, dataset, "sigmoid")
    require(len(scores), "no eval videos in the data (give --data-dir with the model's data)")
    return scores, labels


def score_metrics(scores, labels, thresholds=None) -> tuple[dict, np.ndarray]:
    """Metrics at ``thresholds`` (tuned on these scores when None), and the thresholds."""
    if thresholds is None:
        thresholds = metrics.tune_thresholds(scores, labels)
    return metrics.evaluate(scores, labels, thresholds), thresholds


def new_card(card: dict, eval_metrics: dict, **av_updates) -> dict:
    """``card`` with a new version, ``eval_metrics`` and ``av_updates`` (``weights_mb`` dropped)."""
    av = {k: v for k, v in card[CARD_AV].items() if k != "weights_mb"}
    version = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return {
        **card,
        "model_version": version,
        "metrics": {"eval": eval_metrics},
        CARD_AV: {**av, **av_updates},
    }


def check_output(output_dir: str, kind: str, model_dirs) -> None:
    """Refuses to write over an input, or over a model this tool did not write."""
    out = os.path.abspath(output_dir)
    for model_dir in model_dirs:
        require(out != os.path.abspath(model_dir), "--output-dir must differ from --model-dir")
    ours = tf.io.gfile.exists(os.path.join(output_dir, REPORTS[kind]))
    model = tf.io.gfile.exists(os.path.join(output_dir, artifacts.SAVED_MODEL_DIR))
    require(ours or not model, f"--output-dir {output_dir!r} holds another model; use a new one")


def export_result(output_dir: str, model, source: Export, thresholds, card, max_mb) -> str:
    """Exports ``model`` and saves its weights as ``checkpoints/best.h5`` (for further tools)."""
    export_dir = os.path.join(output_dir, artifacts.SAVED_MODEL_DIR)
    av_export.export_av_model(export_dir, model, source.labels, thresholds, card, max_mb)
    weight_files.save_weights(model, weight_files.best_path(os.path.join(output_dir, CHECKPOINTS)))
    return export_dir


def write_report(output_dir: str, kind: str, report: dict) -> dict:
    """Writes the ``kind`` tool's JSON report into ``output_dir``; returns ``report``."""
    with tf.io.gfile.GFile(os.path.join(output_dir, REPORTS[kind]), "w") as handle:
        handle.write(json.dumps(report, indent=2, sort_keys=True))
    return report
