"""The text tagger: SparseDense -> activation -> dropout -> logits (or linear).

Multi-label by default (sigmoid per category, loss from logits); ``softmax``
for catalogs with exactly one category per video. Keras 2 (``tf_keras``)
throughout: tf.Transform switches ``tf.keras`` to Keras 2 process-wide.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf
import tf_keras as keras

from models.layers import SparseDense, sparse_input

LOSSES = ("sigmoid", "softmax")


@dataclasses.dataclass(frozen=True)
class HParams:
    """Model and training hyperparameters (all exposed as ``train`` flags)."""

    hidden_units: int = 256
    activation: str = "relu"
    dropout: float = 0.5
    l2: float = 0.0
    learning_rate: float = 2e-3
    batch_size: int = 64
    epochs: int = 30
    patience: int = 4
    seed: int = 0
    loss: str = "sigmoid"

    def __post_init__(self) -> None:
        checks = {
            "hidden_units": self.hidden_units >= 0,
            "dropout": 0.0 <= self.dropout < 1.0,
            "l2": self.l2 >= 0.0,
            "learning_rate": self.learning_rate > 0.0,
            "batch_size": self.batch_size >= 1,
            "epochs": self.epochs >= 1,
            "patience": self.patience >= 0,
            "loss": self.loss in LOSSES,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"Invalid {name}. Received: {name}={getattr(self, name)!r}")


HELP = {
    "hidden_units": "Units of the SparseDense hidden layer; 0 makes the model linear "
    "(SparseDense straight to the logits), often best on small catalogs.",
    "activation": "Hidden activation (any Keras activation name).",
    "dropout": "Dropout rate after the hidden layer.",
    "l2": "L2 weight decay on both layers (a non-zero value makes the sparse "
    "layer's gradient dense: every vocabulary row decays each step).",
    "learning_rate": "Adam learning rate.",
    "batch_size": "Videos per training batch.",
    "epochs": "Maximum epochs.",
    "patience": "Early stopping: epochs without eval GAP@20 improvement.",
    "seed": "Seed for weights, dropout and shuffling.",
    "loss": "sigmoid (multi-label) or softmax (exactly one category per video).",
}


def build_model(
    input_dim: int, num_labels: int, hparams: HParams, av_sizes: tuple = ()
) -> keras.Model:
    """A functional model from a sparse bag-of-words to per-category logits; with
    ``av_sizes`` (rgb, audio) the text + audio/visual fusion model instead."""
    if av_sizes:
        from models.av_models import AVParams, build_fusion_model

        params = AVParams(num_mixtures=0, output_context_gating=False, hidden_size=256,
                          dropout=hparams.dropout, seed=hparams.seed)  # fmt: skip
        return build_fusion_model(
            input_dim, params, num_labels, text_units=hparams.hidden_units or 256,
            rgb_size=av_sizes[0], audio_size=av_sizes[1],
        )  # fmt: skip
    regularizer = keras.regularizers.L2(hparams.l2) if hparams.l2 else None
    init = keras.initializers.GlorotUniform(seed=hparams.seed)
    inputs = sparse_input(input_dim, name="bow")
    if hparams.hidden_units == 0:
        logits = SparseDense(
            num_labels, kernel_initializer=init, kernel_regularizer=regularizer, name="logits"
        )(inputs)
        return keras.Model(inputs, logits, name="text_tagger")
    hidden = SparseDense(
        hparams.hidden_units,
        kernel_initializer=init,
        kernel_regularizer=regularizer,
        name="sparse_dense",
    )(inputs)
    hidden = keras.layers.Activation(hparams.activation, name="activation")(hidden)
    hidden = keras.layers.Dropout(hparams.dropout, seed=hparams.seed, name="dropout")(hidden)
    logits = keras.layers.Dense(
        num_labels,
        kernel_initializer=keras.initializers.GlorotUniform(seed=hparams.seed + 1),
        kernel_regularizer=regularizer,
        name="logits",
    )(hidden)
    return keras.Model(inputs, logits, name="text_tagger")


def loss_fn(hparams: HParams) -> keras.losses.Loss:
    if hparams.loss == "softmax":
        return keras.losses.CategoricalCrossentropy(from_logits=True)
    return keras.losses.BinaryCrossentropy(from_logits=True)


def probabilities(logits: tf.Tensor, loss: str) -> tf.Tensor:
    """Per-category scores in [0, 1] from logits, matching the loss."""
    return tf.nn.softmax(logits) if loss == "softmax" else tf.sigmoid(logits)
