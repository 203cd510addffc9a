"""Keras 2 layers of the YouTube-8M audio/visual model zoo.

References:
  * Miech, Laptev, Sivic 2017, "Learnable pooling with Context Gating for video
    classification" (arXiv:1706.06905): Context Gating, Gated NetVLAD and the
    gated Mixture of Experts of the winning YouTube-8M entry.
  * The YouTube-8M starter code, ``video_level_models.py`` (``MoeModel``).

Every layer with large weights takes ``weight_dtype`` ("float32" or
"float16"): its kernels are *stored* in that dtype and cast to the compute
dtype (float32) in ``call``. A "compressed" model is the same architecture
built with ``weight_dtype="float16"``; it halves the stored size and is meant
for inference (see ``models.av.zoo.transfer_weights``). Biases stay float32.

Always ``tf_keras`` (Keras 2): tf.Transform flips ``tf.keras`` process-wide.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import tensorflow as tf
import tf_keras as keras

from models.av.stored_weights import WEIGHT_DTYPES, StoredWeights, is_int, require_arg
from models.priors import moe_output_biases

__all__ = [
    "WEIGHT_DTYPES",
    "ContextGating",
    "FrameMask",
    "MixtureOfExperts",
    "NetVLAD",
    "StoredDense",
]


@keras.utils.register_keras_serializable(package="catalog_tagger")
class StoredDense(StoredWeights):
    """``activation(x @ kernel + bias)`` with the kernel stored in ``weight_dtype``."""

    def __init__(self, units, activation=None, use_bias=True, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        require_arg(is_int(units, 1), "units", units, "a positive int")
        require_arg(isinstance(use_bias, bool), "use_bias", use_bias, "a bool")
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        dim = self._last_dim(input_shape, "StoredDense")
        init = self._seeded(keras.initializers.GlorotUniform, 0)
        self.kernel = self.add_weight(
            "kernel", [dim, self.units], self.weight_dtype, init, self.kernel_regularizer
        )
        self.bias = (
            self.add_weight("bias", [self.units], "float32", "zeros") if self.use_bias else None
        )
        super().build(input_shape)

    def call(self, inputs):
        kernel = self._cast(self.kernel)
        if inputs.shape.rank == 2:
            outputs = tf.matmul(inputs, kernel)
        else:
            outputs = tf.tensordot(inputs, kernel, 1)
        if self.bias is not None:
            outputs = outputs + self._cast(self.bias)
        return outputs if self.activation is None else self.activation(outputs)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        }


@keras.utils.register_keras_serializable(package="catalog_tagger")
class ContextGating(StoredWeights):
    """Context Gating (Miech et al. 2017, eq. 2): ``y = x * sigmoid(x @ W + b)``, W [d, d].

    W is initialised N(0, 1/d) as in the authors' YouTube-8M code; the bias
    replaces their optional batch normalisation.
    """

    def __init__(self, weight_dtype="float32", use_bias=True, **kwargs):
        super().__init__(weight_dtype=weight_dtype, **kwargs)
        require_arg(isinstance(use_bias, bool), "use_bias", use_bias, "a bool")
        self.use_bias = use_bias

    def build(self, input_shape):
        dim = self._last_dim(input_shape, "ContextGating")
        init = self._seeded(keras.initializers.RandomNormal, 0, stddev=1.0 / math.sqrt(dim))
        self.kernel = self.add_weight("kernel", [dim, dim], self.weight_dtype, init)
        self.bias = self.add_weight("bias", [dim], "float32", "zeros") if self.use_bias else None
        super().build(input_shape)

    def call(self, inputs):
        gates = tf.matmul(inputs, self._cast(self.kernel))
        if self.bias is not None:
            gates = gates + self._cast(self.bias)
        return inputs * tf.sigmoid(gates)

    def get_config(self):
        return {**super().get_config(), "use_bias": self.use_bias}


@keras.utils.register_keras_serializable(package="catalog_tagger")
class MixtureOfExperts(StoredWeights):
    """YouTube-8M ``MoeModel`` head returning per-class LOGITS.

    With C classes and M mixtures (``video_level_models.py``)::

        gates   = softmax_m(reshape(x @ Wg, [C, M + 1]))      # no bias; the
                                                              # last is the dummy "no" expert
        experts = sigmoid(reshape(x @ We + be, [C, M]))
        p       = sum_m gates[:, :, :M] * experts
        p       = p * sigmoid(p @ Wo + bo)                    # output_context_gating
                                                              # (gated MoE, Miech et al. 2017)

    and returns ``log(p) - log(1 - p)``, so that ``sigmoid(output) == p`` and the
    head fits losses with ``from_logits=True``. Both logs are computed in log
    space (``logsumexp`` of log-gates plus ``log_sigmoid(+-expert)``; the dummy's
    gate counts towards 1 - p), so saturated experts keep finite, non-zero
    gradients. ``l2`` regularises Wg and We as in the starter code.
    """

    def __init__(self, num_classes, num_mixtures=2, output_context_gating=False, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        require_arg(is_int(num_classes, 1), "num_classes", num_classes, "a positive int")
        require_arg(is_int(num_mixtures, 1), "num_mixtures", num_mixtures, "a positive int")
        require_arg(
            isinstance(output_context_gating, bool),
            "output_context_gating",
            output_context_gating,
            "a bool",
        )
        ok = isinstance(l2, numbers.Real) and not isinstance(l2, bool) and 0.0 <= l2 < math.inf
        require_arg(ok, "l2", l2, "a finite float >= 0")
        self.num_classes = int(num_classes)
        self.num_mixtures = int(num_mixtures)
        self.output_context_gating = output_context_gating
        self.l2 = float(l2)

    def build(self, input_shape):
        dim = self._last_dim(input_shape, "MixtureOfExperts")
        c, m = self.num_classes, self.num_mixtures
        reg = keras.regularizers.L2(self.l2) if self.l2 else None
        glorot = keras.initializers.GlorotUniform
        self.gating_kernel = self.add_weight(
            "gating_kernel", [dim, c * (m + 1)], self.weight_dtype, self._seeded(glorot, 0), reg
        )
        self.expert_kernel = self.add_weight(
            "expert_kernel", [dim, c * m], self.weight_dtype, self._seeded(glorot, 1), reg
        )
        self.expert_bias = self.add_weight("expert_bias", [c * m], "float32", "zeros")
        if self.output_context_gating:
            init = self._seeded(keras.initializers.RandomNormal, 2, stddev=1.0 / math.sqrt(c))
            self.output_gate_kernel = self.add_weight(
                "output_gate_kernel", [c, c], self.weight_dtype, init
            )
            self.output_gate_bias = self.add_weight("output_gate_bias", [c], "float32", "zeros")
        super().build(input_shape)

    def init_prior(self, prior) -> None:
        """Biases with which the new head predicts ``prior`` [C] for zero features:
        ``moe_output_biases`` (the same bias for each of a class's experts), and the
        output-gate bias minus the gate's kernel term at that p (up to capped priors)."""
        expert, gate = moe_output_biases(prior, self.num_mixtures, self.output_context_gating)
        self.expert_bias.assign(np.repeat(expert, self.num_mixtures).astype("f4"))
        if self.output_context_gating:  # cancel the gate's kernel term at the initial p
            share = self.num_mixtures / (self.num_mixtures + 1)
            p = share / (1.0 + np.exp(-expert))
            kernel = np.asarray(self.output_gate_kernel.numpy(), np.float64)
            self.output_gate_bias.assign((gate - p @ kernel).astype("f4"))

    def call(self, inputs):
        c, m = self.num_classes, self.num_mixtures
        gates = tf.matmul(inputs, self._cast(self.gating_kernel))
        log_gates = tf.nn.log_softmax(tf.reshape(gates, [-1, c, m + 1]), axis=-1)
        experts = tf.matmul(inputs, self._cast(self.expert_kernel)) + self.expert_bias
        experts = tf.reshape(experts, [-1, c, m])
        real = log_gates[:, :, :m]  # the last gate is the dummy "no" expert's
        log_p = tf.reduce_logsumexp(real + tf.math.log_sigmoid(experts), axis=-1)
        log_q = tf.reduce_logsumexp(  # log(1 - p): the dummy's gate plus each expert's "no"
            tf.concat([real + tf.math.log_sigmoid(-experts), log_gates[:, :, m:]], -1), axis=-1
        )
        if self.output_context_gating:  # p' = p * s, 1 - p' = (1 - p) + p * (1 - s)
            gate = tf.matmul(tf.exp(log_p), self._cast(self.output_gate_kernel))
            gate = gate + self.output_gate_bias
            log_q = tf.math.reduce_logsumexp(
                tf.stack([log_q, log_p + tf.math.log_sigmoid(-gate)]), axis=0
            )
            log_p = log_p + tf.math.log_sigmoid(gate)
        return log_p - log_q

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "num_mixtures": self.num_mixtures,
            "output_context_gating": self.output_context_gating,
            "l2": self.l2,
        }


@keras.utils.register_keras_serializable(package="catalog_tagger")
class NetVLAD(StoredWeights):
    """NetVLAD pooling of frame features (Miech et al. 2017, sec. 3; Arandjelovic et al. 2016).

    ``call(x, mask=None)``: x [batch, frames, D]; ``mask`` is an optional
    boolean [batch, frames] tensor (True = real frame; see :class:`FrameMask`
    to build it from ``num_frames``). With K = ``cluster_size``::

        a_fk   = softmax_k(x_f @ W + b) * mask_f            # soft assignment
        vlad_k = sum_f a_fk * x_f - (sum_f a_fk) * c_k      # residuals to centres c_k
        vlad_k = vlad_k / ||vlad_k||                        # intra-normalisation
        out    = flatten(vlad) / ||flatten(vlad)||          # [batch, K * D]

    Masked frames contribute nothing (their features are zeroed first, so
    padding may hold anything finite); a video with 0 frames gives zeros.
    """

    def __init__(self, cluster_size, weight_dtype="float32", **kwargs):
        super().__init__(weight_dtype=weight_dtype, **kwargs)
        require_arg(is_int(cluster_size, 1), "cluster_size", cluster_size, "a positive int")
        self.cluster_size = int(cluster_size)
        self.supports_masking = True

    def build(self, input_shape):
        dim = self._last_dim(input_shape, "NetVLAD")
        k = self.cluster_size
        normal = keras.initializers.RandomNormal
        std = 1.0 / math.sqrt(dim)
        wd = self.weight_dtype
        self.cluster_kernel = self.add_weight(
            "cluster_kernel", [dim, k], wd, self._seeded(normal, 0, stddev=std)
        )
        self.cluster_bias = self.add_weight("cluster_bias", [k], "float32", "zeros")
        self.centers = self.add_weight("centers", [k, dim], wd, self._seeded(normal, 1, stddev=std))
        super().build(input_shape)

    def call(self, inputs, mask=None):
        if mask is None:
            mask = tf.ones(tf.shape(inputs)[:2], tf.bool)
        mask = tf.cast(mask, tf.bool)
        x = tf.where(mask[..., None], inputs, tf.zeros_like(inputs))
        logits = tf.einsum("bfd,dk->bfk", x, self._cast(self.cluster_kernel)) + self.cluster_bias
        assign = tf.nn.softmax(logits, axis=-1) * tf.cast(mask, x.dtype)[..., None]
        mass = tf.reduce_sum(assign, axis=1)  # [batch, K]
        vlad = tf.einsum("bfk,bfd->bkd", assign, x) - mass[..., None] * self._cast(self.centers)
        vlad = tf.math.l2_normalize(vlad, axis=-1)
        vlad = tf.reshape(vlad, [-1, self.cluster_size * inputs.shape[-1]])
        return tf.math.l2_normalize(vlad, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None  # frames are pooled away

    def get_config(self):
        return {**super().get_config(), "cluster_size": self.cluster_size}


@keras.utils.register_keras_serializable(package="catalog_tagger")
class FrameMask(keras.layers.Layer):
    """``[frames, num_frames]`` -> boolean [batch, frames] mask of the real frames."""

    def call(self, inputs):
        frames, num_frames = inputs
        return tf.sequence_mask(num_frames, maxlen=tf.shape(frames)[1])
