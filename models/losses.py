"""The training loss of every model kind, and the probabilities it implies.

Every head outputs logits; ``"sigmoid"`` treats each label as its own yes/no
(multi-label), ``"softmax"`` spreads one unit of probability over the labels.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

LOSSES = ("sigmoid", "softmax")


def loss_fn(loss: str) -> keras.losses.Loss:
    """The training loss matching the output kind (logits in, as every head gives)."""
    if loss not in LOSSES:  # "auto" is resolved by the trainer first
        raise ValueError(f"loss must be 'sigmoid' or 'softmax'. Received: loss={loss!r}")
    if loss == "softmax":
        return keras.losses.CategoricalCrossentropy(from_logits=True)
    return keras.losses.BinaryCrossentropy(from_logits=True)


def probabilities(logits: tf.Tensor, loss: str) -> tf.Tensor:
    """Per-category scores in [0, 1] from logits, matching the loss."""
    return tf.nn.softmax(logits) if loss == "softmax" else tf.sigmoid(logits)
