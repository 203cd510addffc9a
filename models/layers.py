"""Custom Keras 2 layers for the catalog tagger.

The model input is a sparse tf-idf bag-of-words over a vocabulary of up to
200k words. A regular ``Dense`` layer on such an input would either densify
the batch or (via ``sparse_dense_matmul``) produce a dense
``[input_dim, units]`` gradient every step. :class:`SparseDense` instead goes
through ``tf.nn.embedding_lookup_sparse`` so that the kernel gradient is an
``tf.IndexedSlices`` covering only the vocabulary rows present in the batch.

NOTE: importing ``tensorflow_transform`` flips ``tf.keras`` to Keras 2
process-wide, so this module always uses ``tf_keras`` explicitly.
"""

from __future__ import annotations

import numbers

import tensorflow as tf
import tf_keras as keras

__all__ = ["MeanProbabilityLogits", "SparseDense", "sparse_input"]


def _is_positive_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) > 0


@keras.utils.register_keras_serializable(package="catalog_tagger")
class SparseDense(keras.layers.Layer):
    """Densely-connected layer that is efficient on ``tf.SparseTensor`` inputs.

    Computes ``activation(inputs @ kernel + bias)``. For a rank-2
    ``tf.SparseTensor`` input the product is computed with
    ``tf.nn.embedding_lookup_sparse`` (the same trick as tf_keras'
    ``Dense``), which never densifies the input and yields a sparse
    (``tf.IndexedSlices``) kernel gradient touching only the rows whose ids
    occur in the batch. Unlike tf_keras' ``Dense`` it does not call
    ``tf.sparse.fill_empty_rows`` (which would add a spurious id ``0`` to the
    gradient); rows without entries (including trailing rows and an entirely
    empty batch) are handled by padding the result back to the batch size.

    Dense inputs go through a regular ``tf.matmul``.

    Args:
      units: Positive integer, dimensionality of the output space.
      activation: Activation function (name, callable or serialized config).
        ``None`` means linear.
      use_bias: Whether the layer adds a bias vector.
      kernel_initializer: Initializer for the ``[input_dim, units]`` kernel.
      bias_initializer: Initializer for the ``[units]`` bias.
      kernel_regularizer: Optional regularizer applied to the kernel.
      bias_regularizer: Optional regularizer applied to the bias.
      weight_dtype: Optional storage dtype of the kernel and bias
        (``"float32"`` or ``"float16"``); ``None`` (default) stores them in the
        layer's dtype. Weights stored in another dtype are cast to the compute
        dtype in ``call`` (a "compressed" float16 model for inference).
      **kwargs: Base ``keras.layers.Layer`` keyword arguments (``name``,
        ``dtype``, ``trainable``, ...).
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        weight_dtype=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if weight_dtype not in (None, "float32", "float16"):
            raise ValueError(
                "`weight_dtype` must be None, 'float32' or 'float16'. "
                f"Received: weight_dtype={weight_dtype!r}"
            )
        if not _is_positive_int(units):
            raise ValueError(
                "`units` must be a positive integer for SparseDense. "
                f"Received: units={units!r} (of type {type(units).__name__})"
            )
        if not isinstance(use_bias, bool):
            raise ValueError(f"`use_bias` must be a bool. Received: use_bias={use_bias!r}")
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.weight_dtype = weight_dtype

        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = False

    # ------------------------------------------------------------------ build
    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        last_dim = tf.compat.dimension_value(input_shape[-1]) if input_shape.rank else None
        if last_dim is None:
            raise ValueError(
                "The last dimension of the inputs to a SparseDense layer should be "
                f"defined. Found None. Received: input_shape={input_shape}"
            )
        dtype = tf.as_dtype(self.dtype or keras.backend.floatx())
        if not (dtype.is_floating or dtype.is_complex):
            raise TypeError(
                "A SparseDense layer can only be built with a floating-point dtype. "
                f"Received: dtype={dtype}"
            )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: last_dim})
        weight_dtype = self.weight_dtype or self.dtype
        self.kernel = self.add_weight(
            name="kernel",
            shape=[last_dim, self.units],
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            dtype=weight_dtype,
            trainable=True,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=[self.units],
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                dtype=weight_dtype,
                trainable=True,
            )
        else:
            self.bias = None
        self.built = True

    # ------------------------------------------------------------------- call
    def _cast(self, weight):
        """A weight in the compute dtype (a no-op unless ``weight_dtype`` differs)."""
        dtype = self._compute_dtype_object
        return weight if weight.dtype.base_dtype == dtype.base_dtype else tf.cast(weight, dtype)

    def _sparse_matmul(self, inputs: tf.SparseTensor) -> tf.Tensor:
        """``inputs @ kernel`` for a rank-2 SparseTensor, with a sparse gradient."""
        # segment_sum inside embedding_lookup_sparse needs row-major order.
        inputs = tf.sparse.reorder(inputs)
        ids = tf.SparseTensor(
            indices=inputs.indices,
            values=inputs.indices[:, -1],
            dense_shape=inputs.dense_shape,
        )
        outputs = tf.nn.embedding_lookup_sparse(
            self._cast(self.kernel), ids, inputs, combiner="sum"
        )
        # segment_sum yields max(row id) + 1 rows: empty *trailing* rows (or an
        # entirely empty batch) are missing. Empty rows in the middle come back
        # as zeros already. Pad with zero rows up to the batch size.
        batch_size = tf.cast(inputs.dense_shape[0], tf.int32)
        missing = tf.maximum(batch_size - tf.shape(outputs)[0], 0)
        outputs = tf.pad(outputs, [[0, missing], [0, 0]])
        outputs.set_shape([inputs.shape[0], self.units])
        return outputs

    def call(self, inputs):
        compute_dtype = self._compute_dtype_object
        if inputs.dtype.base_dtype != compute_dtype.base_dtype:
            inputs = tf.cast(inputs, dtype=compute_dtype)

        if isinstance(inputs, tf.SparseTensor):
            if inputs.shape.rank not in (None, 2):
                raise ValueError(
                    "SparseDense only supports rank-2 SparseTensor inputs. "
                    f"Received: input_shape={inputs.shape}"
                )
            outputs = self._sparse_matmul(inputs)
        else:
            inputs = tf.convert_to_tensor(inputs)
            rank = inputs.shape.rank
            if rank == 2 or rank is None:
                outputs = tf.matmul(inputs, self._cast(self.kernel))
            else:
                outputs = tf.tensordot(inputs, self._cast(self.kernel), [[rank - 1], [0]])
                outputs.set_shape(inputs.shape[:-1].concatenate([self.units]))

        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self._cast(self.bias))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    # ---------------------------------------------------------------- shapes
    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        input_shape = input_shape.with_rank_at_least(2)
        if tf.compat.dimension_value(input_shape[-1]) is None:
            raise ValueError(
                "The last dimension of the input shape of a SparseDense layer should "
                f"be defined. Found None. Received: input_shape={input_shape}"
            )
        return input_shape[:-1].concatenate(self.units)

    # ---------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
                "weight_dtype": self.weight_dtype,
            }
        )
        return config


FEATURES = "bow"  # the name of every text model's sparse bag-of-words input


def sparse_input(input_dim: int, name: str = FEATURES) -> keras.Input:
    """Sparse float32 ``keras.Input`` of shape ``(batch, input_dim)``."""
    if not _is_positive_int(input_dim):
        raise ValueError(
            f"`input_dim` must be a positive integer. Received: input_dim={input_dim!r}"
        )
    return keras.Input(shape=(int(input_dim),), sparse=True, dtype=tf.float32, name=name)


@keras.utils.register_keras_serializable(package="catalog_tagger")
class MeanProbabilityLogits(keras.layers.Layer):
    """Logits whose probabilities are the mean of several models' probabilities.

    An ensemble of seeds (or checkpoints) exported as one graph that still
    outputs logits: for ``sigmoid``, ``logit(mean_i sigmoid(z_i))`` computed in
    log space (``logsumexp`` of ``log_sigmoid``), so saturated members keep
    finite outputs; for ``softmax``, ``log(mean_i softmax(z_i))``.

    Args:
      loss: ``"sigmoid"`` or ``"softmax"``, the members' output kind.
    """

    def __init__(self, loss: str = "sigmoid", **kwargs):
        super().__init__(**kwargs)
        if loss not in ("sigmoid", "softmax"):
            raise ValueError(f"`loss` must be 'sigmoid' or 'softmax'. Received: loss={loss!r}")
        self.loss = loss

    def call(self, inputs):
        logits = tf.stack(list(inputs), axis=0)
        log_n = tf.math.log(tf.cast(tf.shape(logits)[0], logits.dtype))
        if self.loss == "softmax":
            return tf.reduce_logsumexp(tf.nn.log_softmax(logits), axis=0) - log_n
        log_p = tf.reduce_logsumexp(tf.math.log_sigmoid(logits), axis=0) - log_n
        log_q = tf.reduce_logsumexp(tf.math.log_sigmoid(-logits), axis=0) - log_n
        return log_p - log_q

    def get_config(self):
        return {**super().get_config(), "loss": self.loss}
