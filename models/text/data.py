"""tf.data input pipeline over the preprocess shards.

GZIP TFRecord shards are interleaved, shuffled (seeded), batched, parsed with
the transformed feature spec and mapped to ``(bag_of_words, labels)`` where the
bag-of-words is a ``tf.SparseTensor [batch, vocab + oov]`` (never densified)
and the labels a multi-hot ``float32 [batch, num_labels]``. Nothing is loaded
into memory whole.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from models.layers import FEATURES
from transforms.features import LABELS_VOCAB, TOKENS_VOCAB
from transforms.layout import shard_pattern
from transforms.records import AV_FIELDS, AV_FLAG


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Sizes read back from the transform output, never hard-coded."""

    vocab_size: int
    oov_buckets: int
    num_labels: int
    label_names: tuple[str, ...]
    av_sizes: tuple[int, ...] = ()  # (rgb, audio) when the shards carry AV features

    @property
    def fusion(self) -> bool:
        return bool(self.av_sizes)

    @property
    def input_dim(self) -> int:
        return self.vocab_size + self.oov_buckets

    @classmethod
    def from_transform_output(cls, output: tft.TFTransformOutput, oov_buckets: int) -> DataSpec:
        labels = tuple(v.decode() for v in output.vocabulary_by_name(LABELS_VOCAB))
        spec = output.transformed_feature_spec()
        av = tuple(spec[n].shape[0] for n in AV_FIELDS) if AV_FIELDS[0] in spec else ()
        return cls(
            av_sizes=av,
            vocab_size=output.vocabulary_size_by_name(TOKENS_VOCAB),
            oov_buckets=oov_buckets,
            num_labels=len(labels),
            label_names=labels,
        )


def bag_of_words(token_ids: tf.SparseTensor, token_weights: tf.SparseTensor, input_dim: int):
    """Ragged (id, weight) rows to a ``SparseTensor [batch, input_dim]``.

    The one place where the transform's output becomes the model's input:
    the trainer, the ``tokens`` signature and the predictor all go through it.
    """
    indices = tf.stack([token_ids.indices[:, 0], token_ids.values], axis=1)
    batch = tf.cast(token_ids.dense_shape[0], tf.int64)
    sparse = tf.SparseTensor(indices, token_weights.values, tf.stack([batch, input_dim]))
    return tf.sparse.reorder(sparse)


def multi_hot(label_ids: tf.SparseTensor, num_labels: int) -> tf.Tensor:
    """Ragged label ids to a ``float32 [batch, num_labels]`` multi-hot matrix."""
    dense = tf.sparse.to_dense(label_ids, default_value=-1)
    return tf.reduce_max(tf.one_hot(dense, num_labels, dtype=tf.float32), axis=1)


def label_id_matrix(label_ids: tf.SparseTensor) -> tf.Tensor:
    """Ragged label ids to ``int64 [batch, max labels]``, each row's ids first, -1 after."""
    return tf.sparse.to_dense(label_ids, default_value=-1)


LABEL_FORMATS = ("multi_hot", "ids")  # make_dataset(labels=...)


def shard_files(data_dir: str, split: str) -> list[str]:
    return sorted(tf.io.gfile.glob(shard_pattern(data_dir, split)))


def make_dataset(
    files: list[str],
    output: tft.TFTransformOutput,
    spec: DataSpec,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    labels: str = "multi_hot",
) -> tf.data.Dataset:
    """``(features, labels)`` batches; features hold ``bow`` and ``video_id``;
    ``labels`` is ``"multi_hot"`` or ``"ids"`` (see the module docstring)."""
    if labels not in LABEL_FORMATS:
        raise ValueError(f"labels must be one of {LABEL_FORMATS}. Received: labels={labels!r}")
    feature_spec = output.transformed_feature_spec()
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
        cycle_length=min(len(files), 8) or 1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if shuffle:
        dataset = dataset.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, feature_spec)
        features = {
            FEATURES: bag_of_words(parsed["token_ids"], parsed["token_weights"], spec.input_dim),
            "video_id": parsed["video_id"],
        }
        if spec.fusion:
            features |= fusion_inputs(parsed)
        if labels == "ids":
            return features, label_id_matrix(parsed["label_ids"])
        return features, multi_hot(parsed["label_ids"], spec.num_labels)

    dataset = dataset.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def fusion_inputs(parsed: dict) -> dict:
    """The fusion model's dense inputs: AV vectors and the two presence flags."""
    has_text = tf.cast(parsed["num_tokens"] > 0, tf.float32)[:, None]
    av = {name: parsed[name] for name in AV_FIELDS}
    return {**av, "has_text": has_text, AV_FLAG: tf.reshape(parsed[AV_FLAG], [-1, 1])}


def oov_bucket_ids(vocabulary: list[bytes], num_oov_buckets: int) -> np.ndarray:
    """The OOV bucket each vocabulary word would hash to if it were unseen: the
    fast string hash that tf.Transform's vocabulary lookup uses for unseen words
    (``StaticVocabularyTable``'s default), offset by the vocabulary size."""
    if not num_oov_buckets or not vocabulary:
        return np.zeros([len(vocabulary)], np.int64)
    words = tf.constant(vocabulary, tf.string)
    return (tf.strings.to_hash_bucket_fast(words, num_oov_buckets) + len(vocabulary)).numpy()


def with_oov_noise(dataset: tf.data.Dataset, bucket_of: np.ndarray, rate: float, seed: int):
    """Replaces a fraction ``rate`` of each video's known words by their OOV bucket
    (``oov_bucket_ids``), so the buckets learn what an unseen word means and rare
    words are not memorised through them. Training batches only."""
    table = tf.constant(bucket_of, tf.int64)
    vocab_size = len(bucket_of)

    def noise(features, labels):
        bow = features[FEATURES]
        column = bow.indices[:, 1]
        draw = tf.random.uniform(tf.shape(column), seed=seed) < rate
        hit = draw & (column < vocab_size)
        swapped = tf.where(hit, tf.gather(table, tf.minimum(column, vocab_size - 1)), column)
        indices = tf.stack([bow.indices[:, 0], swapped], axis=1)
        noisy = tf.sparse.reorder(tf.SparseTensor(indices, bow.values, bow.dense_shape))
        return {**features, FEATURES: noisy}, labels

    return dataset.map(noise, num_parallel_calls=tf.data.AUTOTUNE)
