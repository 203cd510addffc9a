"""The training loss of every model kind, and the probabilities it implies.

Every head outputs logits; ``"sigmoid"`` treats each label as its own yes/no
(multi-label), ``"softmax"`` spreads one unit of probability over the labels.
``"sampled_softmax"`` trains the softmax on each step's true labels plus a
sample of the others (``models.sampled``: label spaces of 100,000+ topics); it
scores, evaluates and exports exactly as ``"softmax"`` (``output_kind``).
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

LOSSES = ("sigmoid", "softmax", "sampled_softmax")
SAMPLED_LOSSES = ("sampled_softmax",)  # computed by the model's own train_step


def is_sampled(loss: str) -> bool:
    """A loss that samples the label space (the model computes it, not Keras)."""
    return loss in SAMPLED_LOSSES


def output_kind(loss: str) -> str:
    """``"sigmoid"`` or ``"softmax"``: how the logits of a model trained with
    ``loss`` become probabilities (a sampled softmax is a softmax at inference)."""
    return "softmax" if loss in ("softmax", *SAMPLED_LOSSES) else "sigmoid"


class SoftmaxCrossEntropy(keras.losses.CategoricalCrossentropy):
    """Softmax cross-entropy from logits against targets spread evenly over each
    video's labels (multi-hot rows divided by their sum; all-zero rows stay zero).

    ``tf.nn.softmax_cross_entropy_with_logits`` differentiates as if every target
    row summed to one (``softmax - labels``): on raw multi-hot rows of 2+ labels
    that gradient has no minimum and training diverges. One-label rows are
    unchanged (divided by 1), so single-category catalogs train bit for bit as
    with ``CategoricalCrossentropy``.
    """

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, y_pred.dtype)
        y_true = y_true / tf.maximum(tf.reduce_sum(y_true, axis=-1, keepdims=True), 1.0)
        return super().call(y_true, y_pred)


def loss_fn(loss: str) -> keras.losses.Loss | None:
    """The training loss matching the output kind (logits in, as every head gives);
    ``None`` for a sampled loss, which ``models.sampled.SampledTagger.train_step``
    computes from the hidden layer and the output table itself."""
    if loss not in LOSSES:  # "auto" is resolved by the trainer first
        raise ValueError(f"loss must be one of {LOSSES}. Received: loss={loss!r}")
    if is_sampled(loss):
        return None
    if loss == "softmax":
        return SoftmaxCrossEntropy(from_logits=True)
    return keras.losses.BinaryCrossentropy(from_logits=True)


def probabilities(logits: tf.Tensor, loss: str) -> tf.Tensor:
    """Per-category scores in [0, 1] from logits, matching the loss."""
    return tf.nn.softmax(logits) if output_kind(loss) == "softmax" else tf.sigmoid(logits)


def top_probabilities(top_logits: tf.Tensor, logits: tf.Tensor, loss: str) -> tf.Tensor:
    """``probabilities`` of each row's ``top_logits`` (taken from ``logits``)
    without the activation of the whole row: a sigmoid is monotone and
    element-wise, and a softmax's entry is ``exp(logit - logsumexp(row))``."""
    if output_kind(loss) == "softmax":
        return tf.exp(top_logits - tf.reduce_logsumexp(logits, axis=1, keepdims=True))
    return tf.sigmoid(top_logits)
