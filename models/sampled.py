"""Sampled softmax training for label spaces of 100,000+ topics.

A full softmax or sigmoid computes ``hidden @ W`` for every label at every
step, and Adam then moves every row of ``W``: at 100,000 labels that is most
of the training time. Here the output layer is a :class:`LabelEmbedding`, a
``[num_labels, hidden]`` table whose ``call`` still gives the full logits
``h @ table^T + bias`` (evaluation, export, serving are unchanged), while
:class:`SampledTagger`'s ``train_step`` reads the table directly and computes
``tf.nn.sampled_softmax_loss`` over each example's positive and
``num_sampled`` labels drawn for the whole batch. The gradients of the table
and of its bias are then row-sparse (``tf.IndexedSlices`` on the sampled and
true rows), which ``models.optimizers.LazyAdam`` applies to those rows only.

Choices:

* **Candidates**: ``tf.random.fixed_unigram_candidate_sampler`` on the train
  label counts plus one (every label can be drawn, and the sampler can always
  find ``num_sampled`` distinct labels), flattened by ``DISTORTION`` = 0.75
  (word2vec's exponent: frequent labels are drawn less than their share, rare
  ones more), ``unique=True``; the loss subtracts ``log Q`` (the sampled
  softmax correction) and removes accidental hits of the positive.
* **Multi-label videos**: each step picks ONE positive per video, uniformly
  among the video's labels (:func:`one_positive`). The target of the
  multi-label softmax spreads evenly over a video's ``n`` labels,
  ``loss = -(1/n) sum_j log p(j | video)``, and the expected loss of a
  uniformly drawn single positive is exactly that: the estimate is unbiased
  (up to the sampled-softmax approximation of the partition function). The
  video's other labels may be drawn as negatives in that step, as they sit in
  the full softmax's denominator too. Videos without a label add nothing
  (the mean is still over the whole batch, like Keras' losses).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

DISTORTION = 0.75  # unigram counts ** 0.75: how the sampler flattens label frequencies


@keras.utils.register_keras_serializable(package="catalog_tagger")
class LabelEmbedding(keras.layers.Layer):
    """Logits ``inputs @ table^T + bias`` from a ``[num_labels, units]`` table.

    Like ``Dense(num_labels)`` with its kernel stored transposed: one row per
    label, so a sampled loss can gather the rows it needs (row-sparse
    gradients) and the rows double as label embeddings.

    Args:
      num_labels: Positive integer, the number of output labels (rows).
      table_initializer: Initializer of the ``[num_labels, units]`` table.
      bias_initializer: Initializer of the ``[num_labels]`` bias.
      table_regularizer: Optional regularizer of the table (a non-zero L2
        makes its gradient dense).
      **kwargs: Base ``keras.layers.Layer`` keyword arguments.
    """

    def __init__(self, num_labels, table_initializer="glorot_uniform", bias_initializer="zeros",
                 table_regularizer=None, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
            raise ValueError(
                f"`num_labels` must be a positive integer. Received: num_labels={num_labels!r}"
            )
        self.num_labels = num_labels
        self.table_initializer = keras.initializers.get(table_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.table_regularizer = keras.regularizers.get(table_regularizer)

    def build(self, input_shape):
        units = tf.TensorShape(input_shape)[-1]
        if units is None:
            raise ValueError(f"LabelEmbedding needs a defined last input dimension. "
                             f"Received: input_shape={input_shape}")  # fmt: skip
        self.table = self.add_weight(name="table", shape=[self.num_labels, units],
                                     initializer=self.table_initializer,
                                     regularizer=self.table_regularizer)  # fmt: skip
        self.bias = self.add_weight(name="bias", shape=[self.num_labels],
                                    initializer=self.bias_initializer)  # fmt: skip
        self.built = True

    def call(self, inputs):
        return tf.nn.bias_add(tf.matmul(inputs, self.table, transpose_b=True), self.bias)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([self.num_labels])

    def get_config(self):
        return {
            **super().get_config(),
            "num_labels": self.num_labels,
            "table_initializer": keras.initializers.serialize(self.table_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "table_regularizer": keras.regularizers.serialize(self.table_regularizer),
        }


def sampling_unigrams(label_counts, num_labels: int) -> list[float]:
    """The candidate sampler's unigrams: train label counts plus one (``None``:
    uniform)."""
    counts = np.zeros([num_labels]) if label_counts is None else np.asarray(label_counts, float)
    if counts.shape != (num_labels,) or (counts < 0).any():
        raise ValueError(f"Expected {num_labels} non-negative label counts. "
                         f"Received: shape={counts.shape}")  # fmt: skip
    return [float(c) + 1.0 for c in counts]


def one_positive(label_ids: tf.Tensor, seed: int | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """One label per video, uniformly among its labels.

    ``label_ids``: int ``[batch, max_labels]``, padded with ``-1`` (anywhere).
    Returns ``(positives int64 [batch, 1], has_label float32 [batch])``; a video
    without labels gets label 0 with ``has_label`` 0.
    """
    ids = tf.pad(tf.cast(label_ids, tf.int64), [[0, 0], [0, 1]], constant_values=-1)
    valid = ids >= 0
    count = tf.reduce_sum(tf.cast(valid, tf.int32), axis=1)
    draw = tf.random.uniform(tf.shape(count), seed=seed)
    pick = tf.minimum(tf.cast(draw * tf.cast(count, tf.float32), tf.int32),
                      tf.maximum(count - 1, 0))  # fmt: skip
    rank = tf.cumsum(tf.cast(valid, tf.int32), axis=1) - 1  # the k-th valid id has rank k
    column = tf.argmax(tf.cast(valid & (rank == pick[:, None]), tf.int32), axis=1)
    chosen = tf.gather(ids, column, batch_dims=1)
    has_label = count > 0
    positives = tf.where(has_label, chosen, tf.zeros_like(chosen))[:, None]
    return positives, tf.cast(has_label, tf.float32)


def sampled_softmax(hidden, layer: LabelEmbedding, positives, unigrams, num_sampled: int,
                    seed: int | None = None) -> tf.Tensor:  # fmt: skip
    """Per-example sampled softmax cross-entropy ``[batch]`` of ``positives``
    (int64 ``[batch, 1]``) against ``num_sampled`` labels drawn from ``unigrams``."""
    sampled = tf.random.fixed_unigram_candidate_sampler(
        true_classes=positives, num_true=1, num_sampled=num_sampled, unique=True,
        range_max=layer.num_labels, distortion=DISTORTION, unigrams=unigrams, seed=seed,
    )  # fmt: skip
    return tf.nn.sampled_softmax_loss(
        weights=layer.table, biases=layer.bias, labels=positives, inputs=hidden,
        num_sampled=num_sampled, num_classes=layer.num_labels, sampled_values=sampled,
        remove_accidental_hits=True, seed=seed,
    )  # fmt: skip


class SampledTagger(keras.Model):
    """A functional model whose ``fit`` trains with a sampled softmax.

    Built like ``keras.Model(inputs, outputs)`` where ``outputs`` come from a
    :class:`LabelEmbedding` applied to ``hidden``; ``model(x)`` gives the full
    logits. ``fit`` takes ``(inputs, label_ids)`` batches, ``label_ids`` int
    ``[batch, max_labels]`` padded with ``-1`` (``models.text.data``, ``labels="ids"``),
    and ignores any compiled loss.

    Args:
      inputs, outputs: As ``keras.Model``.
      hidden: The symbolic tensor the output layer reads (after dropout).
      num_sampled: Labels drawn per step (at most ``num_labels``).
      unigrams: Sampling weight per label (``sampling_unigrams``).
      seed: Seed of the positive and negative draws.
    """

    def __init__(self, inputs, outputs, *, hidden, num_sampled: int, unigrams, seed: int = 0,
                 **kwargs):  # fmt: skip
        super().__init__(inputs, outputs, **kwargs)
        layer = outputs._keras_history.layer
        if not isinstance(layer, LabelEmbedding):
            raise ValueError(f"SampledTagger outputs must come from a LabelEmbedding. "
                             f"Received: {type(layer).__name__}")  # fmt: skip
        if len(unigrams) != layer.num_labels or num_sampled < 1:
            raise ValueError(f"Expected num_sampled >= 1 and {layer.num_labels} unigrams. "
                             f"Received: num_sampled={num_sampled}, {len(unigrams)} unigrams")  # fmt: skip
        self._untracked(encoder=keras.Model(inputs, hidden), output_layer=layer,
                        num_sampled=min(int(num_sampled), layer.num_labels),
                        unigrams=[float(u) for u in unigrams], seed=seed,
                        loss_tracker=keras.metrics.Mean(name="loss"))  # fmt: skip

    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def _untracked(self, **attributes):
        """Plain attributes: the encoder view and the layer are already in the graph."""
        for name, value in attributes.items():
            setattr(self, name, value)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        x, label_ids = data[0], data[1]
        if label_ids.dtype.is_floating:
            raise ValueError("SampledTagger trains on label ids padded with -1, not multi-hot "
                             f"labels. Received: dtype={label_ids.dtype.name}")  # fmt: skip
        positives, has_label = one_positive(label_ids, self.seed)
        with tf.GradientTape() as tape:
            hidden = self.encoder(x, training=True)
            per_example = sampled_softmax(hidden, self.output_layer, positives, self.unigrams,
                                          self.num_sampled, self.seed)  # fmt: skip
            loss = tf.reduce_sum(per_example * has_label) / tf.cast(
                tf.shape(per_example)[0], per_example.dtype
            )
            total = tf.add_n([loss, *self.losses])
        self.optimizer.minimize(total, self.trainable_variables, tape=tape)
        self.loss_tracker.update_state(total)
        return {"loss": self.loss_tracker.result()}

    def inference_model(self) -> keras.Model:
        """The same layers and weights as a plain functional model (for export)."""
        return keras.Model(self.inputs, self.outputs, name=self.name)
