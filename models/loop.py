"""The one training loop of every model kind (text, fusion, YouTube-8M).

Adam with a fixed seed (lazy Adam for sampled losses: ``models.optimizers``),
eval GAP@20 after every epoch, early stopping that restores the best weights
(``EvalAndKeepBest``), optional per-epoch weights-only checkpoints (for
averaging), TensorBoard, and the scores of a model over a dataset that
thresholds and metrics use (``score_dataset``): the full score matrix
(``predict_scores``, ``FullScores``) up to ``TOP_K_EVAL_ABOVE`` labels, above
it each video's top ``TOP_K`` labels only, taken in the graph batch by batch
(``predict_top_k``, ``models.topk``), so that evaluating 100,000 labels needs
``videos x 20`` scores, not ``videos x 100,000``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

import numpy as np
import tensorflow as tf
import tf_keras as keras

from models import checkpoints, metrics, topk
from models.layers import FEATURES
from models.losses import loss_fn, probabilities
from models.optimizers import make_optimizer

CHECKPOINTS = "checkpoints"  # under the work dir: best.h5 and epoch-NNN.h5
HEADLINE = "gap@20"  # the metric that selects epochs, seeds and trials
TOP_K = 20  # GAP@20 and recall@20
# Above this many labels evaluation keeps each video's top-k only (models.topk: no
# mAP; thresholds from the top-k candidates). YouTube-8M's 3,862 stay exact; at
# 4,096 labels the full matrices of 10,000 eval videos are 330 MB (scores + labels).
TOP_K_EVAL_ABOVE = 4096


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


@dataclasses.dataclass(frozen=True)
class FullScores:
    """Every video's score of every label, and its multi-hot labels (``predict_scores``)."""

    ids: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def evaluate(self, thresholds=None) -> dict[str, float]:
        """``models.metrics.evaluate`` plus ``recall@20``."""
        result = metrics.evaluate(self.scores, self.labels, thresholds, TOP_K)
        return result | {f"recall@{TOP_K}": metrics.recall_at_k(self.scores, self.labels, TOP_K)}

    def tune_thresholds(self) -> np.ndarray:
        return metrics.tune_thresholds(self.scores, self.labels)

    def gap(self) -> float:
        return metrics.gap_at_k(self.scores, self.labels, TOP_K)


def score_dataset(model, dataset: tf.data.Dataset, loss: str):
    """``FullScores`` up to ``TOP_K_EVAL_ABOVE`` labels, else ``models.topk.TopK``;
    both have ``evaluate(thresholds=None)``, ``tune_thresholds()`` and ``gap()``."""
    if model.output_shape[-1] <= TOP_K_EVAL_ABOVE:
        return FullScores(*predict_scores(model, dataset, loss))
    return predict_top_k(model, dataset, loss)


def top_k_batch(scores: tf.Tensor, labels: tf.Tensor, k: int = TOP_K) -> tuple:
    """One batch's ``(indices, scores, hits, num_positives, class_positives)`` of its
    top ``k`` labels (ties: lower label id). ``labels``: multi-hot float, or int ids
    padded with -1 (``models.text.data``), unique per video."""
    num_labels = tf.shape(scores)[1]
    values, indices = topk.top_k(scores, tf.minimum(k, num_labels))
    if labels.dtype.is_floating:
        positive = labels > 0
        hits = tf.gather(positive, indices, batch_dims=1)
        counts = tf.reduce_sum(tf.cast(positive, tf.int64), axis=0)
        return indices, values, hits, tf.math.count_nonzero(positive, axis=1), counts
    ids = tf.cast(labels, tf.int32)
    valid = ids >= 0
    hits = tf.reduce_any(indices[:, :, None] == ids[:, None, :], axis=2)
    counts = tf.math.bincount(tf.boolean_mask(ids, valid), minlength=num_labels,
                              maxlength=num_labels, dtype=tf.int64)  # fmt: skip
    return indices, values, hits, tf.math.count_nonzero(valid, axis=1), counts


def predict_top_k(model, dataset: tf.data.Dataset, loss: str, k: int = TOP_K) -> topk.TopK:
    """Each video's top ``k`` labels over a dataset, in ``O(videos x k)`` memory."""

    @tf.function(reduce_retracing=True)
    def batch(inputs, labels):
        return top_k_batch(probabilities(model(inputs, training=False), loss), labels, k)

    ids, parts = [], []
    for features, y in dataset:
        parts.append(tuple(t.numpy() for t in batch(model_inputs(features), y)))
        ids.append(features["video_id"].numpy())
    return topk.concatenate(k, ids, parts, model.output_shape[-1])


class EvalAndKeepBest(keras.callbacks.Callback):
    """Eval GAP@20 (and Hit@1, mAP) each epoch; early stopping on GAP@20;
    the best weights are checkpointed and restored at the end. ``on_epoch``
    (if given) is called with ``(epoch, eval_gap)`` after each epoch: Optuna's
    pruning hooks in there."""

    def __init__(self, dataset, loss: str, patience: int, checkpoint: str, on_epoch=None):
        super().__init__()
        self._dataset, self._loss, self._patience = dataset, loss, patience
        self._checkpoint, self._on_epoch = checkpoint, on_epoch
        self.best, self.best_epoch, self._wait = -1.0, -1, 0

    def on_epoch_end(self, epoch, logs=None):
        result = score_dataset(self.model, self._dataset, self._loss).evaluate()
        for name, value in result.items():
            logs[f"val_{name}"] = value
        if result[HEADLINE] > self.best:
            self.best, self.best_epoch, self._wait = result[HEADLINE], epoch, 0
            checkpoints.save_weights(self.model, self._checkpoint)
        else:
            self._wait += 1
            self.model.stop_training = self._wait > self._patience
        if self._on_epoch is not None:
            self._on_epoch(epoch, result[HEADLINE])

    def on_train_end(self, logs=None):
        if self.best_epoch >= 0:
            checkpoints.load_weights(self.model, self._checkpoint)


class EpochTimer(keras.callbacks.Callback):
    """Logs ``epoch_seconds``: the epoch's training time (first callback: before eval)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_seconds"] = time.monotonic() - self._start


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """What the loop needs besides the model and data."""

    learning_rate: float
    epochs: int
    patience: int
    loss: str  # "sigmoid", "softmax" or "sampled_softmax" (models.losses)
    work_dir: str  # checkpoints/ and tensorboard/ go here
    keep_every_epoch: bool = False  # weights-only checkpoints/epoch-NNN, for averaging


def fit(model, train: tf.data.Dataset, eval_batches, config: LoopConfig, on_epoch=None):
    """Fits ``model`` on ``train``; with ``eval_batches``, keeps the best epoch by
    eval GAP@20 (else runs every epoch). Returns ``(history, best_epoch)``, the
    best epoch counted from 1."""
    model.compile(optimizer=make_optimizer(config.loss, config.learning_rate),
                  loss=loss_fn(config.loss))  # fmt: skip
    directory = os.path.join(config.work_dir, CHECKPOINTS)
    if tf.io.gfile.exists(directory):  # a previous run's epochs must not be averaged
        tf.io.gfile.rmtree(directory)
    callbacks = [keras.callbacks.TensorBoard(os.path.join(config.work_dir, "tensorboard"))]
    keeper = None
    if eval_batches is not None:
        best = checkpoints.best_path(directory)
        keeper = EvalAndKeepBest(eval_batches, config.loss, config.patience, best, on_epoch)
        callbacks.insert(0, keeper)
    if config.keep_every_epoch:  # weights only, no optimizer state
        callbacks.insert(0, checkpoints.WeightsOnlyCheckpoint(directory))
    callbacks.insert(0, EpochTimer())
    history = model.fit(
        train.map(lambda f, y: (model_inputs(f), y)),
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    epochs_run = len(history.history.get("loss", []))
    return history, (keeper.best_epoch + 1 if keeper else epochs_run)
