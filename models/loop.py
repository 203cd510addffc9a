"""The one training loop of every model kind (text, fusion, YouTube-8M).

Adam with a fixed seed, eval GAP@20 after every epoch, early stopping that
restores the best weights (``EvalAndKeepBest``), optional per-epoch
weights-only checkpoints (for averaging), TensorBoard, and the scores of a
model over a dataset (``predict_scores``) that thresholds and metrics use.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import tensorflow as tf
import tf_keras as keras

from models import checkpoints, metrics
from models.layers import FEATURES
from models.losses import loss_fn, probabilities

CHECKPOINTS = "checkpoints"  # under the work dir: best.h5 and epoch-NNN.h5
HEADLINE = "gap@20"  # the metric that selects epochs, seeds and trials


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
    the best weights are checkpointed and restored at the end. ``on_epoch``
    (if given) is called with ``(epoch, eval_gap)`` after each epoch: Optuna's
    pruning hooks in there."""

    def __init__(self, dataset, loss: str, patience: int, checkpoint: str, on_epoch=None):
        super().__init__()
        self._dataset, self._loss, self._patience = dataset, loss, patience
        self._checkpoint, self._on_epoch = checkpoint, on_epoch
        self.best, self.best_epoch, self._wait = -1.0, -1, 0

    def on_epoch_end(self, epoch, logs=None):
        _, scores, labels = predict_scores(self.model, self._dataset, self._loss)
        result = metrics.evaluate(scores, labels)
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


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """What the loop needs besides the model and data."""

    learning_rate: float
    epochs: int
    patience: int
    loss: str  # "sigmoid" or "softmax": the model's output kind
    work_dir: str  # checkpoints/ and tensorboard/ go here
    keep_every_epoch: bool = False  # weights-only checkpoints/epoch-NNN, for averaging


def fit(model, train: tf.data.Dataset, eval_batches, config: LoopConfig, on_epoch=None):
    """Fits ``model`` on ``train``; with ``eval_batches``, keeps the best epoch by
    eval GAP@20 (else runs every epoch). Returns ``(history, best_epoch)``, the
    best epoch counted from 1."""
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
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
    history = model.fit(
        train.map(lambda f, y: (model_inputs(f), y)),
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    epochs_run = len(history.history.get("loss", []))
    return history, (keeper.best_epoch + 1 if keeper else epochs_run)
