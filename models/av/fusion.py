"""The text + video-level audio/visual fusion model (``preprocess --av-features``).

Inputs: ``bow`` sparse [batch, text_dim] (tf-idf bag of words), the zoo's
video-level inputs ``mean_rgb``/``mean_audio``, and presence flags
``has_text``/``has_av`` float32 [batch, 1]. Like every zoo model it maps them
to per-category LOGITS [batch, num_classes].
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from models.av.blocks import (
    AUDIO_SIZE,
    RGB_SIZE,
    dense,
    gate,
    head,
    layer_seeds,
    video_inputs,
)
from models.av.stored_weights import is_int
from models.av.zoo import AVParams
from models.layers import SparseDense, sparse_input
from models.priors import init_output_bias


def build_fusion_model(
    text_dim: int,
    params: AVParams,
    num_classes: int,
    *,
    text_units: int = 256,
    rgb_size: int = RGB_SIZE,
    audio_size: int = AUDIO_SIZE,
    label_prior=None,
) -> keras.Model:
    """Text + video-level AV fusion that accepts any subset of the two modalities.

    text tower: ``relu(SparseDense(bow))`` (unregularised, so its gradient stays
    sparse); AV tower: concat(mean_rgb, mean_audio) -> [Context Gating] ->
    ``relu(StoredDense(hidden_size))``. Each tower is multiplied by its
    presence flag and ``[text * has_text, av * has_av, has_text, has_av]``
    goes to the MoE head (logistic if ``num_mixtures == 0``); a missing
    modality therefore contributes exactly nothing. ``params.model`` is unused;
    ``label_prior`` as in :func:`models.av.zoo.build_av_model`.
    """
    if not is_int(text_units, 1):
        raise ValueError(f"Invalid text_units. Received: text_units={text_units!r}")
    seeds = layer_seeds(params)
    inputs = {"bow": sparse_input(text_dim, name="bow"), **video_inputs(rgb_size, audio_size)}
    for flag in ("has_text", "has_av"):
        inputs[flag] = keras.Input((1,), dtype=tf.float32, name=flag)
    text = SparseDense(
        text_units,
        activation="relu",
        kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
        weight_dtype=params.weight_dtype,
        name="text_dense",
    )(inputs["bow"])
    av = keras.layers.Concatenate(name="av_features")([inputs["mean_rgb"], inputs["mean_audio"]])
    av = gate(av, params, seeds, "av_gating")
    av = dense(av, params, seeds, params.hidden_size, "av_dense", activation="relu")
    text = keras.layers.Multiply(name="text_present")([text, inputs["has_text"]])
    av = keras.layers.Multiply(name="av_present")([av, inputs["has_av"]])
    x = keras.layers.Concatenate(name="fused")([text, av, inputs["has_text"], inputs["has_av"]])
    model = keras.Model(inputs, head(x, params, num_classes, seeds), name="fusion")
    return init_output_bias(model, label_prior)
