"""YouTube-8M style audio/visual model zoo: video- and frame-level taggers.

Every model maps its inputs to per-category LOGITS [batch, num_classes]
(losses use ``from_logits=True``; probabilities are ``sigmoid(logits)``).
Input names are fixed conventions:

  video-level  ``mean_rgb`` float32 [batch, rgb_size], ``mean_audio`` float32
               [batch, audio_size] (YouTube-8M: 1024 and 128).
  frame-level  ``rgb`` float32 [batch, frames, rgb_size], ``audio`` float32
               [batch, frames, audio_size], ``num_frames`` int32 (int64 is
               cast) [batch]; frames past ``num_frames`` are padding.

``MODELS`` maps a name to its builder ``fn(params, num_classes, *, rgb_size,
audio_size)``; ``MODELS[name].frame_level`` tells the trainer which reader to
use. References: Miech et al. 2017, "Learnable pooling with Context Gating for
video classification"; the YouTube-8M starter code (``video_level_models.py``
``LogisticModel``/``MoeModel``). The shared layers are in ``models.av.blocks``;
the text + audio/visual fusion model is ``models.av.fusion``.
"""

from __future__ import annotations

import dataclasses
import itertools
import numbers
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tf_keras as keras

from models.av.blocks import (
    AUDIO_SIZE,
    RGB_SIZE,
    dense,
    frame_inputs,
    gate,
    head,
    layer_seeds,
    stored,
    video_inputs,
)
from models.av.layers import WEIGHT_DTYPES, FrameMask, NetVLAD
from models.av.stored_weights import is_int
from models.priors import init_output_bias
from transforms.params import param

MODELS: dict[str, Callable[..., keras.Model]] = {}


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class AVParams:
    """Hyperparameters of the audio/visual models (``train --features yt8m`` flags)."""

    model: str = param(
        "moe", "Audio/visual model: logistic, moe (video-level), netvlad, bilstm (frame-level)."
    )
    num_mixtures: int = param(
        2, "Experts per class in the MoE head; 0 uses a logistic head instead."
    )
    input_context_gating: bool = param(
        True,
        "Context Gating before the head (moe, bilstm, fusion) or on "
        "the NetVLAD hidden layer (netvlad).",
    )
    output_context_gating: bool = param(
        True, "Context Gating on the MoE output probabilities (gated MoE)."
    )
    hidden_size: int = param(
        1024, "Units of the hidden layer (netvlad; the fusion model's AV tower)."
    )
    cluster_size: int = param(
        64, "NetVLAD clusters for rgb (audio uses cluster_size // 2, as in YT8M)."
    )
    lstm_units: int = param(256, "LSTM units per direction (bilstm).")
    dropout: float = param(0.0, "Dropout rate before the head.")
    l2: float = param(1e-8, "L2 penalty on the dense and MoE kernels (not the sparse text tower).")
    weight_dtype: str = param(
        "float32",
        "Storage dtype of the large weights: float32, or float16 (compressed, "
        "inference only; weights are cast to float32 in the graph).",
    )
    seed: int = param(0, "Seed for weight initialisation and dropout.")

    def __post_init__(self) -> None:
        checks = {
            "model": self.model in MODELS,
            "num_mixtures": is_int(self.num_mixtures, 0),
            "input_context_gating": isinstance(self.input_context_gating, bool),
            "output_context_gating": isinstance(self.output_context_gating, bool),
            "hidden_size": is_int(self.hidden_size, 1),
            "cluster_size": is_int(self.cluster_size, 2),
            "lstm_units": is_int(self.lstm_units, 1),
            "dropout": _is_real(self.dropout) and 0.0 <= self.dropout < 1.0,
            "l2": _is_real(self.l2) and 0.0 <= self.l2 < float("inf"),
            "weight_dtype": self.weight_dtype in WEIGHT_DTYPES,
            "seed": is_int(self.seed, 0),
        }
        for name, ok in checks.items():
            if not ok:
                known = f" (known models: {sorted(MODELS)})" if name == "model" else ""
                raise ValueError(f"Invalid {name}. Received: {name}={getattr(self, name)!r}{known}")


def _register(name: str, frame_level: bool):
    def decorate(fn):
        fn.frame_level = frame_level
        MODELS[name] = fn
        return fn

    return decorate


@_register("logistic", frame_level=False)
def build_logistic(params, num_classes, *, rgb_size=RGB_SIZE, audio_size=AUDIO_SIZE):
    """YT8M ``LogisticModel``: one dense layer on concat(mean_rgb, mean_audio)."""
    inputs = video_inputs(rgb_size, audio_size)
    x = keras.layers.Concatenate(name="features")([inputs["mean_rgb"], inputs["mean_audio"]])
    logits = dense(x, params, layer_seeds(params), num_classes, "logits")
    return keras.Model(inputs, logits, name="logistic")


@_register("moe", frame_level=False)
def build_moe(params, num_classes, *, rgb_size=RGB_SIZE, audio_size=AUDIO_SIZE):
    """YT8M ``MoeModel`` with optional input and output Context Gating (Miech et al.)."""
    inputs = video_inputs(rgb_size, audio_size)
    x = keras.layers.Concatenate(name="features")([inputs["mean_rgb"], inputs["mean_audio"]])
    seeds = layer_seeds(params)
    x = gate(x, params, seeds, "input_gating")
    return keras.Model(inputs, head(x, params, num_classes, seeds), name="moe")


@_register("netvlad", frame_level=True)
def build_netvlad(params, num_classes, *, rgb_size=RGB_SIZE, audio_size=AUDIO_SIZE):
    """Gated NetVLAD (Miech et al. 2017): NetVLAD per modality -> hidden -> CG -> MoE.

    rgb uses ``cluster_size`` clusters and audio ``cluster_size // 2``; the
    hidden layer has ``hidden_size`` relu6 units, as in the authors' code.
    """
    inputs = frame_inputs(rgb_size, audio_size)
    mask = FrameMask(name="frame_mask")([inputs["rgb"], inputs["num_frames"]])
    seeds = layer_seeds(params)
    k = params.cluster_size
    rgb = NetVLAD(k, name="rgb_vlad", **stored(params, seeds))(inputs["rgb"], mask=mask)
    audio = NetVLAD(k // 2, name="audio_vlad", **stored(params, seeds))(inputs["audio"], mask=mask)
    x = keras.layers.Concatenate(name="vlad")([rgb, audio])
    x = dense(x, params, seeds, params.hidden_size, "hidden", activation=tf.nn.relu6)
    x = gate(x, params, seeds, "hidden_gating")
    return keras.Model(inputs, head(x, params, num_classes, seeds), name="netvlad")


@_register("bilstm", frame_level=True)
def build_bilstm(params, num_classes, *, rgb_size=RGB_SIZE, audio_size=AUDIO_SIZE):
    """Bidirectional LSTM over concat(rgb, audio) frames (masked by ``num_frames``) -> head.

    The LSTM weights are Keras' own and stay float32 whatever ``weight_dtype``.
    """
    inputs = frame_inputs(rgb_size, audio_size)
    mask = FrameMask(name="frame_mask")([inputs["rgb"], inputs["num_frames"]])
    x = keras.layers.Concatenate(name="frames")([inputs["rgb"], inputs["audio"]])
    seeds = layer_seeds(params)

    def lstm(direction: str, go_backwards: bool):
        seed = next(seeds)
        return keras.layers.LSTM(
            params.lstm_units,
            go_backwards=go_backwards,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
            recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 1),
            kernel_regularizer=keras.regularizers.L2(params.l2) if params.l2 else None,
            name=f"{direction}_lstm",
        )

    x = keras.layers.Bidirectional(
        lstm("forward", False), backward_layer=lstm("backward", True), name="bilstm"
    )(x, mask=mask)
    x = gate(x, params, seeds, "input_gating")
    return keras.Model(inputs, head(x, params, num_classes, seeds), name="bilstm")


def build_av_model(
    params: AVParams,
    num_classes: int,
    frame_level: bool | None = None,
    *,
    rgb_size: int = RGB_SIZE,
    audio_size: int = AUDIO_SIZE,
    label_prior=None,
) -> keras.Model:
    """The registry model ``params.model``; ``frame_level`` (if given) must match it.

    ``label_prior`` (float [num_classes], e.g. train positives / train videos)
    sets the output biases so that the new model predicts about the prior
    (see :func:`init_output_bias`); None leaves them at 0 (p = 0.5 or below).
    """
    builder = MODELS.get(params.model)
    if builder is None:
        raise ValueError(
            f"Unknown model (known: {sorted(MODELS)}). Received: model={params.model!r}"
        )
    if not is_int(num_classes, 1):
        raise ValueError(f"Invalid num_classes. Received: num_classes={num_classes!r}")
    if frame_level is not None and bool(frame_level) != builder.frame_level:
        level = "frame" if builder.frame_level else "video"
        raise ValueError(
            f"Model {params.model!r} is {level}-level. Received: frame_level={frame_level!r}"
        )
    model = builder(params, num_classes, rgb_size=rgb_size, audio_size=audio_size)
    return init_output_bias(model, label_prior)


def model_weights_mb(model: keras.Model) -> float:
    """Stored size of all weights in MiB (2**20 bytes), by each weight's own dtype."""
    nbytes = sum(w.shape.num_elements() * w.dtype.size for w in model.weights)
    return nbytes / 2**20


def _signature(layer) -> tuple:
    return (type(layer).__name__, layer.name, [tuple(w.shape) for w in layer.weights])


def transfer_weights(src_model: keras.Model, dst_model: keras.Model) -> None:
    """Copy ``src_model``'s weights into an identically built ``dst_model``, casting.

    Used to compress a trained float32 model into its ``weight_dtype="float16"``
    twin. Raises ``ValueError`` if the layers (class, name, weight shapes) differ
    or a value does not fit the destination dtype (|w| > 65504 for float16).
    """
    pairs = itertools.zip_longest(
        map(_signature, src_model.layers), map(_signature, dst_model.layers)
    )
    for src, dst in pairs:
        if src != dst:
            raise ValueError(
                "Cannot transfer weights: models have different structures. Received: "
                f"source layer {src}, destination layer {dst}"
            )
    for s_var, d_var in zip(src_model.weights, dst_model.weights, strict=True):
        value = s_var.numpy()
        dtype = d_var.dtype.as_numpy_dtype
        if np.issubdtype(dtype, np.floating) and np.any(np.abs(value) > np.finfo(dtype).max):
            raise ValueError(
                f"Cannot transfer weights: {s_var.name} does not fit {d_var.dtype.name}. "
                f"Received: max |w| = {np.abs(value).max()}"
            )
        d_var.assign(value.astype(dtype))
