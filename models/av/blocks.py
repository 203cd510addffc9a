"""Building blocks shared by the audio/visual zoo and the fusion model.

Inputs with the fixed names of ``models.av.zoo``, and the layers every model
ends with: optional Context Gating, dense layers that store their large
weights in ``params.weight_dtype``, and the MoE (or logistic) head. ``params``
is an ``AVParams``; each layer takes its seed from one ``layer_seeds`` stream,
so a model built twice from the same params has the same initial weights.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import tensorflow as tf
import tf_keras as keras

from models.av.layers import ContextGating, MixtureOfExperts, StoredDense

RGB_SIZE = 1024
AUDIO_SIZE = 128


def layer_seeds(params) -> Iterator[int]:
    """Distinct per-layer seeds (each layer uses seed, seed + 1, seed + 2)."""
    return itertools.count(params.seed * 1000, 10)


def stored(params, seeds: Iterator[int]) -> dict:
    """Keyword arguments of a layer that stores its weights in ``weight_dtype``."""
    return {"weight_dtype": params.weight_dtype, "seed": next(seeds)}


def dense(x, params, seeds: Iterator[int], units: int, name: str, activation=None):
    l2 = keras.regularizers.L2(params.l2) if params.l2 else None
    kwargs = {"activation": activation, "kernel_regularizer": l2, "name": name}
    return StoredDense(units, **kwargs, **stored(params, seeds))(x)


def video_inputs(rgb_size: int = RGB_SIZE, audio_size: int = AUDIO_SIZE) -> dict:
    return {
        "mean_rgb": keras.Input((rgb_size,), dtype=tf.float32, name="mean_rgb"),
        "mean_audio": keras.Input((audio_size,), dtype=tf.float32, name="mean_audio"),
    }


def frame_inputs(rgb_size: int = RGB_SIZE, audio_size: int = AUDIO_SIZE) -> dict:
    return {
        "rgb": keras.Input((None, rgb_size), dtype=tf.float32, name="rgb"),
        "audio": keras.Input((None, audio_size), dtype=tf.float32, name="audio"),
        "num_frames": keras.Input((), dtype=tf.int32, name="num_frames"),
    }


def head(x, params, num_classes: int, seeds: Iterator[int]):
    """Dropout, then the MoE head (gated if ``output_context_gating``) or a logistic one."""
    if params.dropout:
        x = keras.layers.Dropout(params.dropout, seed=next(seeds), name="head_dropout")(x)
    if params.num_mixtures == 0:
        return dense(x, params, seeds, num_classes, "logits")
    return MixtureOfExperts(
        num_classes,
        params.num_mixtures,
        params.output_context_gating,
        params.l2,
        name="logits",
        **stored(params, seeds),
    )(x)


def gate(x, params, seeds: Iterator[int], name: str):
    """Context Gating on ``x`` if ``params.input_context_gating``, else ``x``."""
    if not params.input_context_gating:
        return x
    return ContextGating(name=name, **stored(params, seeds))(x)
