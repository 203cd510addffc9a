"""The text tagger: SparseDense -> activation -> dropout -> logits (or linear).

Multi-label by default (sigmoid per category, loss from logits); ``softmax``
for catalogs with exactly one category per video. Keras 2 (``tf_keras``)
throughout: tf.Transform switches ``tf.keras`` to Keras 2 process-wide.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tf_keras as keras

from models.layers import MeanProbabilityLogits, SparseDense, sparse_input
from models.priors import PRIOR_CLIP, logit
from transforms.params import param

LOSSES = ("auto", "sigmoid", "softmax")  # auto: softmax iff every train video has one label


@dataclasses.dataclass(frozen=True)
class HParams:
    """Model and training hyperparameters (all exposed as ``train`` flags, with their help).

    The defaults were chosen on the eval splits of three catalogs (README,
    "Choosing the defaults"): a wide & deep model whose output biases start at
    the label log-prior, dropout 0.7 and Adam at 5e-3, three seeds averaged,
    refit on train + eval.
    """

    hidden_units: int = param(
        256,
        "Units of the SparseDense hidden layer; 0 makes the model linear "
        "(SparseDense straight to the logits).",
    )
    activation: str = param("relu", "Hidden activation (any Keras activation name).")
    dropout: float = param(0.7, "Dropout rate after the hidden layer.")
    l2: float = param(
        0.0,
        "L2 weight decay on both layers (a non-zero value makes the sparse "
        "layer's gradient dense: every vocabulary row decays each step).",
    )
    learning_rate: float = param(5e-3, "Adam learning rate.")
    batch_size: int = param(64, "Videos per training batch.")
    epochs: int = param(30, "Maximum epochs.")
    patience: int = param(4, "Early stopping: epochs without eval GAP@20 improvement.")
    seed: int = param(0, "Seed for weights, dropout and shuffling (the first of --seeds).")
    loss: str = param(
        "auto",
        "sigmoid (multi-label), softmax (exactly one category per video), or auto: "
        "softmax when every train video has exactly one category, else sigmoid.",
    )
    wide: bool = param(True, "Add a linear path from the bag-of-words to the logits (wide & deep).")
    seeds: int = param(
        3, "Train this many seeds and export the average of their probabilities as one graph."
    )
    refit: bool = param(
        True, "After choosing the epoch count on eval, retrain on train + eval for it."
    )
    oov_rate: float = param(
        0.0,
        "During training, replace this fraction of each video's known words by "
        "the OOV bucket they would hash to (needs preprocess --oov-buckets > 0).",
    )

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
            "seeds": self.seeds >= 1,
            "oov_rate": 0.0 <= self.oov_rate < 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"Invalid {name}. Received: {name}={getattr(self, name)!r}")


def prior_logits(label_counts, num_videos: int, loss: str) -> np.ndarray:
    """Output biases that make the untrained model predict each label's train
    frequency: ``logit(p)`` for sigmoid, ``log(p)`` for softmax."""
    prior = np.asarray(label_counts, np.float64) / max(num_videos, 1)
    if loss == "softmax":
        prior = np.clip(prior, PRIOR_CLIP, 1 - PRIOR_CLIP)
        return np.log(prior / prior.sum()).astype(np.float32)
    return logit(prior).astype(np.float32)


def build_model(
    input_dim: int,
    num_labels: int,
    hparams: HParams,
    av_sizes: tuple = (),
    output_bias: np.ndarray | None = None,
    name: str = "text_tagger",
) -> keras.Model:
    """A functional model from a sparse bag-of-words to per-category logits; with
    ``av_sizes`` (rgb, audio) the text + audio/visual fusion model instead.
    ``output_bias`` (e.g. ``prior_logits``) initialises the logits' bias."""
    if av_sizes:
        from models.av.fusion import build_fusion_model
        from models.av.zoo import AVParams

        params = AVParams(num_mixtures=0, output_context_gating=False, hidden_size=256,
                          dropout=hparams.dropout, seed=hparams.seed)  # fmt: skip
        return build_fusion_model(
            input_dim, params, num_labels, text_units=hparams.hidden_units or 256,
            rgb_size=av_sizes[0], audio_size=av_sizes[1],
        )  # fmt: skip
    regularizer = keras.regularizers.L2(hparams.l2) if hparams.l2 else None
    init = keras.initializers.GlorotUniform(seed=hparams.seed)
    bias = "zeros" if output_bias is None else keras.initializers.Constant(output_bias)
    inputs = sparse_input(input_dim, name="bow")
    if hparams.hidden_units == 0:
        logits = SparseDense(num_labels, kernel_initializer=init, bias_initializer=bias,
                             kernel_regularizer=regularizer, name="logits")(inputs)  # fmt: skip
        return keras.Model(inputs, logits, name=name)
    hidden = SparseDense(
        hparams.hidden_units, kernel_initializer=init, kernel_regularizer=regularizer,
        name="sparse_dense",
    )(inputs)  # fmt: skip
    hidden = keras.layers.Activation(hparams.activation, name="activation")(hidden)
    hidden = keras.layers.Dropout(hparams.dropout, seed=hparams.seed, name="dropout")(hidden)
    logits = keras.layers.Dense(
        num_labels,
        kernel_initializer=keras.initializers.GlorotUniform(seed=hparams.seed + 1),
        bias_initializer=bias,
        kernel_regularizer=regularizer,
        name="logits",
    )(hidden)
    if hparams.wide:  # starts at zero: the deep path and the prior lead at first
        wide = SparseDense(num_labels, use_bias=False, kernel_initializer="zeros",
                           kernel_regularizer=regularizer, name="wide")(inputs)  # fmt: skip
        logits = keras.layers.Add(name="wide_and_deep")([logits, wide])
    return keras.Model(inputs, logits, name=name)


def ensemble_model(members: list[keras.Model], loss: str) -> keras.Model:
    """One model whose logits give the mean of the members' probabilities."""
    if len(members) == 1:
        return members[0]
    inputs = sparse_input(members[0].input_shape[-1], name="bow")
    logits = MeanProbabilityLogits(loss, name="mean_probability")([m(inputs) for m in members])
    return keras.Model(inputs, logits, name="text_tagger_ensemble")
