"""The text tagger: SparseDense -> activation -> dropout -> logits (or linear).

Multi-label by default (sigmoid per category, loss from logits); ``softmax``
for catalogs with exactly one category per video; ``sampled_softmax`` for
label spaces of 100,000+ topics (``models.sampled``: the logits come from a
``LabelEmbedding`` table, trained on sampled labels; no wide path). Keras 2
(``tf_keras``) throughout: tf.Transform switches ``tf.keras`` to Keras 2
process-wide. ``label_table`` and ``embedding_model`` read any of these models
as label embeddings and a video encoder.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tf_keras as keras

from models.layers import MeanProbabilityLogits, SparseDense, sparse_input
from models.losses import is_sampled, output_kind
from models.priors import PRIOR_CLIP, logit
from models.sampled import LabelEmbedding, SampledTagger, sampling_unigrams
from transforms.params import param

# auto: softmax iff every train video has one label; sampled_softmax: see models.sampled
LOSSES = ("auto", "sigmoid", "softmax", "sampled_softmax")


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
        "sigmoid (multi-label), softmax (exactly one category per video), "
        "sampled_softmax (huge label spaces: a softmax trained on each video's "
        "labels plus --num-sampled labels drawn by frequency), or auto: "
        "softmax when every train video has exactly one category, else sigmoid.",
    )
    num_sampled: int = param(
        1024,
        "--loss sampled_softmax: negative labels drawn per training step for the "
        "whole batch (by train label count ** 0.75); each video's positive is one "
        "of its labels, picked at random each step.",
    )
    wide: bool = param(
        True,
        "Add a linear path from the bag-of-words to the logits (wide & deep); "
        "always off with --loss sampled_softmax (vocabulary x labels weights).",
    )
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
            "num_sampled": self.num_sampled >= 1,
            "seeds": self.seeds >= 1,
            "oov_rate": 0.0 <= self.oov_rate < 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"Invalid {name}. Received: {name}={getattr(self, name)!r}")
        if is_sampled(self.loss) and self.hidden_units == 0:
            raise ValueError(
                "--loss sampled_softmax needs a hidden layer (its label table is "
                "[labels, hidden_units]). Received: hidden_units=0"
            )

    @property
    def uses_wide(self) -> bool:
        """The wide path is built: asked for, and the loss is not sampled."""
        return self.wide and not is_sampled(self.loss)


def prior_logits(label_counts, num_videos: int, loss: str) -> np.ndarray:
    """Output biases that make the untrained model predict each label's train
    frequency: ``logit(p)`` for sigmoid, ``log(p)`` for softmax."""
    prior = np.asarray(label_counts, np.float64) / max(num_videos, 1)
    if output_kind(loss) == "softmax":
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
    label_counts=None,
) -> keras.Model:
    """A functional model from a sparse bag-of-words to per-category logits; with
    ``av_sizes`` (rgb, audio) the text + audio/visual fusion model instead.
    ``output_bias`` (e.g. ``prior_logits``) initialises the logits' bias;
    ``label_counts`` (train count per label) weight the labels a sampled loss
    draws (``models.sampled``; ``None``: uniform)."""
    if av_sizes:
        return _fusion_model(input_dim, num_labels, hparams, av_sizes)
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
    output_init = keras.initializers.GlorotUniform(seed=hparams.seed + 1)
    if is_sampled(hparams.loss):  # a [labels, hidden] table; never a wide path
        logits = LabelEmbedding(num_labels, table_initializer=output_init, bias_initializer=bias,
                                table_regularizer=regularizer, name="logits")(hidden)  # fmt: skip
        return SampledTagger(inputs, logits, hidden=hidden, num_sampled=hparams.num_sampled,
                             unigrams=sampling_unigrams(label_counts, num_labels),
                             seed=hparams.seed, name=name)  # fmt: skip
    logits = keras.layers.Dense(num_labels, kernel_initializer=output_init, bias_initializer=bias,
                                kernel_regularizer=regularizer, name="logits")(hidden)  # fmt: skip
    if hparams.uses_wide:  # starts at zero: the deep path and the prior lead at first
        wide = SparseDense(num_labels, use_bias=False, kernel_initializer="zeros",
                           kernel_regularizer=regularizer, name="wide")(inputs)  # fmt: skip
        logits = keras.layers.Add(name="wide_and_deep")([logits, wide])
    return keras.Model(inputs, logits, name=name)


def _fusion_model(input_dim: int, num_labels: int, hparams: HParams, av_sizes: tuple):
    """The text + audio/visual fusion model (``models.av.fusion``)."""
    from models.av.fusion import build_fusion_model
    from models.av.zoo import AVParams

    if is_sampled(hparams.loss):
        raise ValueError(f"The fusion model has no sampled loss. Received: loss={hparams.loss!r}")
    params = AVParams(num_mixtures=0, output_context_gating=False, hidden_size=256,
                      dropout=hparams.dropout, seed=hparams.seed)  # fmt: skip
    return build_fusion_model(
        input_dim, params, num_labels, text_units=hparams.hidden_units or 256,
        rgb_size=av_sizes[0], audio_size=av_sizes[1],
    )  # fmt: skip


def ensemble_model(members: list[keras.Model], loss: str) -> keras.Model:
    """One model whose logits give the mean of the members' probabilities."""
    if len(members) == 1:
        return members[0]
    # called as layers, members must clone as plain functional models
    members = [m.inference_model() if isinstance(m, SampledTagger) else m for m in members]
    inputs = sparse_input(members[0].input_shape[-1], name="bow")
    logits = MeanProbabilityLogits(output_kind(loss), name="mean_probability")(
        [m(inputs) for m in members]
    )
    return keras.Model(inputs, logits, name="text_tagger_ensemble")


def _members(model: keras.Model) -> list[keras.Model]:
    """An ensemble's member models (``ensemble_model``), else ``[model]``."""
    if any(layer.name == "mean_probability" for layer in model.layers):
        return [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return [model]


def _table_and_bias(member: keras.Model) -> tuple[np.ndarray, np.ndarray]:
    layer = member.get_layer("logits")
    if isinstance(layer, LabelEmbedding):
        return layer.table.numpy(), layer.bias.numpy()
    if isinstance(layer, keras.layers.Dense):
        return layer.kernel.numpy().T, layer.bias.numpy()
    raise ValueError(
        "Only a model with a hidden layer has label embeddings. "
        f"Received: a {type(layer).__name__} output layer in {member.name!r}"
    )


def label_table(model: keras.Model) -> np.ndarray:
    """Label embeddings ``float32 [num_labels, hidden]``: the output layer's rows
    (``Dense`` kernel transposed, or the ``LabelEmbedding`` table), so that
    ``embedding_model(model)(bow) @ label_table(model).T + label_bias(model)`` is the
    deep path's logits. An ensemble's members are concatenated along ``hidden``
    (the product is then the sum of the members' deep logits); a wide & deep
    model's wide path (per-word, not per-hidden-unit) is not in the table."""
    return np.concatenate([_table_and_bias(m)[0] for m in _members(model)], axis=1)


def label_bias(model: keras.Model) -> np.ndarray:
    """The output biases ``[num_labels]`` matching ``label_table`` (summed over members)."""
    return np.sum([_table_and_bias(m)[1] for m in _members(model)], axis=0)


def has_hidden_layer(model: keras.Model) -> bool:
    """Whether ``model`` (or each ensemble member) has a hidden layer: the video
    embedding and the label table exist (``embedding_model``, ``label_table``)."""
    try:
        return all(_table_and_bias(member) is not None for member in _members(model))
    except (ValueError, KeyError):
        return False


def embedding_model(model: keras.Model) -> keras.Model:
    """The video encoder: ``bow`` -> the hidden layer after its activation (before
    dropout), ``float32 [batch, hidden]``, sharing ``model``'s weights; an
    ensemble's members' encodings concatenated (the columns of ``label_table``)."""
    members = _members(model)
    for member in members:
        _table_and_bias(member)  # a clear error for a model without a hidden layer
    if len(members) == 1:
        return keras.Model(model.input, _hidden(model), name="embedding")
    inputs = sparse_input(model.input_shape[-1], name="bow")
    parts = [keras.Model(m.input, _hidden(m))(inputs) for m in members]
    return keras.Model(inputs, keras.layers.Concatenate()(parts), name="embedding")


def _hidden(member: keras.Model):
    """The member's own activation output (node 0: an ensemble calls it again)."""
    return member.get_layer("activation").get_output_at(0)
