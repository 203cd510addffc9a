"""The base of the audio/visual layers with large weights: weights stored in ``weight_dtype``.

:class:`StoredWeights` takes ``weight_dtype`` (one of ``WEIGHT_DTYPES``): a
subclass creates its kernels in that dtype and casts them to the compute dtype
(float32) in ``call`` with ``_cast``; biases stay float32. It also takes an
optional ``seed``, from which each weight's initializer gets ``seed + offset``.
``is_int`` and ``require_arg`` check constructor arguments (``ValueError``).

Always ``tf_keras`` (Keras 2): tf.Transform flips ``tf.keras`` process-wide.
"""

from __future__ import annotations

import numbers

import tensorflow as tf
import tf_keras as keras

WEIGHT_DTYPES = ("float32", "float16")


def is_int(value, minimum: int) -> bool:
    """An integer (not a bool) of at least ``minimum``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum


def require_arg(ok: bool, name: str, value, what: str) -> None:
    if not ok:
        raise ValueError(f"`{name}` must be {what}. Received: {name}={value!r}")


class StoredWeights(keras.layers.Layer):
    """Base: validates ``weight_dtype``/``seed``; ``_cast`` weights to the compute dtype."""

    def __init__(self, weight_dtype="float32", seed=None, **kwargs):
        super().__init__(**kwargs)
        require_arg(
            weight_dtype in WEIGHT_DTYPES, "weight_dtype", weight_dtype, f"one of {WEIGHT_DTYPES}"
        )
        require_arg(seed is None or is_int(seed, 0), "seed", seed, "None or an int >= 0")
        self.weight_dtype = weight_dtype
        self.seed = seed

    def _seeded(self, initializer: type, offset: int, **kwargs):
        """``initializer`` seeded with ``seed + offset`` (one seed per weight)."""
        seed = None if self.seed is None else self.seed + offset
        return initializer(seed=seed, **kwargs)

    def _cast(self, weight):
        dtype = self._compute_dtype_object
        return weight if weight.dtype.base_dtype == dtype.base_dtype else tf.cast(weight, dtype)

    @staticmethod
    def _last_dim(input_shape, layer: str) -> int:
        dim = tf.TensorShape(input_shape)[-1]
        if dim is None:
            raise ValueError(f"{layer} needs a defined last input dimension. Received: {dim}")
        return int(dim)

    def get_config(self):
        return {**super().get_config(), "weight_dtype": self.weight_dtype, "seed": self.seed}
