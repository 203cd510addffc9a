"""The optimizer of the training loop: Adam, or lazy Adam for sampled losses.

tf_keras' ``Adam`` turns a sparse (``tf.IndexedSlices``) gradient into a dense
update: every row's moments decay and every row moves, each step. With a
100,000-label output table that is the cost of a full softmax again, whatever
the loss sampled. :class:`LazyAdam` updates only the rows a step's gradient
touches (as TF Addons' ``LazyAdam``): their moments and values follow Adam, the
other rows (values and moments) stay bit-identical. Dense gradients take
Adam's own update. Rows seen rarely thus keep their momentum until they are
seen again instead of drifting with it, the usual trade of sparse training.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from models.losses import is_sampled


@keras.utils.register_keras_serializable(package="catalog_tagger")
class LazyAdam(keras.optimizers.Adam):
    """Adam whose sparse updates touch only the gradient's rows.

    Args:
      learning_rate, beta_1, beta_2, epsilon, **kwargs: as ``keras.optimizers.Adam``
        (``amsgrad`` is not supported: its running maximum is dense).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, name="LazyAdam", **kwargs):  # fmt: skip
        if amsgrad:
            raise ValueError(f"LazyAdam does not support amsgrad. Received: amsgrad={amsgrad!r}")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, name=name, **kwargs)

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = (tf.cast(self.learning_rate, dtype) * tf.sqrt(1 - tf.pow(beta_2, step))
                 / (1 - tf.pow(beta_1, step)))  # fmt: skip
        index = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[index], self._velocities[index]
        rows, values = gradient.indices, gradient.values  # rows are unique (deduplicated)
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        step_rows = alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon)
        variable.scatter_sub(tf.IndexedSlices(step_rows, rows))
        return None


def make_optimizer(loss: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """Adam for the full losses (unchanged); :class:`LazyAdam` for sampled ones."""
    if is_sampled(loss):
        return LazyAdam(learning_rate)
    return keras.optimizers.Adam(learning_rate)
