"""The tf.Transform graph: token vocabulary, tf-idf bag-of-words, label ids.

``preprocessing_fn`` is traced once by tf.Transform during analysis (on the
train split only, so eval/test never leak into the vocabulary or the idf) and
embedded in the ``transform_fn`` SavedModel that the trainer and the batch
predictor apply, so training and serving vectorize identically.

Output features, all ragged per video:
  ``token_ids`` int64 and ``token_weights`` float32: one entry per distinct
  term (ids ``[0, V)`` are vocabulary words, ``[V, V + oov_buckets)`` hash
  buckets of unseen words); ``label_ids`` int64; and the scalars
  ``num_tokens`` / ``num_oov_tokens`` used for the OOV-rate report.
"""

from __future__ import annotations

import dataclasses
import functools

import tensorflow as tf
import tensorflow_transform as tft

from transforms.records import AV_FLAG

TOKENS_VOCAB = "tokens"
LABELS_VOCAB = "labels"
WEIGHTINGS = ("sublinear_tfidf", "tfidf", "count", "binary")

RAW_FEATURE_SPEC = {
    "video_id": tf.io.FixedLenFeature([], tf.string),
    "tokens": tf.io.VarLenFeature(tf.string),
    "labels": tf.io.VarLenFeature(tf.string),
}


@dataclasses.dataclass(frozen=True)
class TransformConfig:
    """Vocabulary and weighting hyperparameters of the transform."""

    top_k: int = 200_000
    frequency_threshold: int = 2
    # No OOV buckets by default: on every catalog measured, words seen too rarely to
    # enter the vocabulary let the model memorise training videos through the shared
    # buckets (benchmarks/quality.py; README "Choosing the defaults").
    num_oov_buckets: int = 0
    # (1 + log count) * idf, rows scaled to unit L2 norm: scikit-learn's
    # TfidfVectorizer(sublinear_tf=True), the strongest weighting on short texts.
    weighting: str = "sublinear_tfidf"
    l2_normalize: bool = True
    min_label_count: int = 1
    av_features: bool = False  # pass mean_rgb/mean_audio/has_av through (fusion models)
    rgb_size: int = 1024
    audio_size: int = 128

    @property
    def av_sizes(self) -> dict | None:
        """``{"mean_rgb": n, "mean_audio": m}`` when AV features are on, else ``None``."""
        if not self.av_features:
            return None
        return {"mean_rgb": self.rgb_size, "mean_audio": self.audio_size}

    def raw_feature_spec(self) -> dict:
        """The transform's input spec: text, labels and (if on) AV features."""
        spec = dict(RAW_FEATURE_SPEC)
        for name, size in (self.av_sizes or {}).items():
            spec[name] = tf.io.FixedLenFeature([size], tf.float32)
        if self.av_features:
            spec[AV_FLAG] = tf.io.FixedLenFeature([], tf.float32)
        return spec

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1. Received: top_k={self.top_k}")
        if self.frequency_threshold < 0:
            raise ValueError(
                f"frequency_threshold must be >= 0. Received: {self.frequency_threshold}"
            )
        if self.num_oov_buckets < 0:
            raise ValueError(f"num_oov_buckets must be >= 0. Received: {self.num_oov_buckets}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}. Received: {self.weighting!r}")
        if self.min_label_count < 1:
            raise ValueError(f"min_label_count must be >= 1. Received: {self.min_label_count}")
        if self.rgb_size < 1 or self.audio_size < 1:
            raise ValueError(
                f"AV feature sizes must be >= 1. Received: {self.rgb_size}, {self.audio_size}"
            )


def preprocessing_fn(inputs: dict, config: TransformConfig = TransformConfig()) -> dict:
    """Maps raw ``video_id``/``tokens``/``labels`` to the model's features."""
    ids, num_buckets = token_ids(inputs["tokens"], config)
    known = tf.sparse.retain(ids, ids.values >= 0)
    term_ids, term_weights = bag_of_words(known, num_buckets, config.weighting)
    if config.l2_normalize:
        term_weights = _l2_normalize_rows(term_weights)
    in_vocabulary = (ids.values >= 0) & (ids.values < num_buckets - config.num_oov_buckets)
    passed = {name: inputs[name] for name in (*(config.av_sizes or {}), AV_FLAG) if name in inputs}
    return {
        **passed,
        "video_id": inputs["video_id"],
        "token_ids": term_ids,
        "token_weights": term_weights,
        "label_ids": label_ids(inputs["labels"], config),
        "num_tokens": _row_count(ids, tf.ones_like(ids.values)),
        "num_oov_tokens": _row_count(ids, tf.cast(~in_vocabulary, tf.int64)),
    }


def make_preprocessing_fn(config: TransformConfig):
    """``preprocessing_fn`` bound to ``config``, as tf.Transform expects."""
    return functools.partial(preprocessing_fn, config=config)


def token_ids(
    tokens: tf.SparseTensor, config: TransformConfig
) -> tuple[tf.SparseTensor, tf.Tensor]:
    """Token strings to ids, and the id space size (vocabulary + OOV buckets).

    Unseen words hash into the OOV buckets, or are -1 without buckets. The
    caller drops the -1s before ``tft.tfidf``, which takes ids modulo the
    vocabulary size and would fold -1 onto the last real word.
    """
    ids = tft.compute_and_apply_vocabulary(
        tokens,
        top_k=config.top_k,
        frequency_threshold=config.frequency_threshold,
        num_oov_buckets=config.num_oov_buckets,
        vocab_filename=TOKENS_VOCAB,
    )
    return ids, tft.get_num_buckets_for_transformed_feature(ids)


def bag_of_words(
    ids: tf.SparseTensor, num_buckets: tf.Tensor, weighting: str
) -> tuple[tf.SparseTensor, tf.SparseTensor]:
    """One (id, weight) per distinct term of each video.

    ``num_buckets`` counts the OOV buckets too, so no id is ever taken modulo
    a size smaller than itself.
    """
    if weighting == "tfidf":
        return tft.tfidf(ids, num_buckets)
    if weighting == "sublinear_tfidf":
        return _sublinear_tfidf(ids, num_buckets)
    counts = tf.sparse.bincount(ids, axis=-1, binary_output=weighting == "binary")
    weights = tf.cast(counts.values, tf.float32)
    return (
        _compact(tf.SparseTensor(counts.indices, counts.indices[:, 1], counts.dense_shape)),
        _compact(tf.SparseTensor(counts.indices, weights, counts.dense_shape)),
    )


def _sublinear_tfidf(
    ids: tf.SparseTensor, num_buckets: tf.Tensor
) -> tuple[tf.SparseTensor, tf.SparseTensor]:
    """``(1 + ln count) * idf`` per distinct term, with tft.tfidf's smoothed idf.

    ``tft.tfidf`` gives ``count / length * idf`` per term, in (video, id) order,
    the order of ``tf.sparse.bincount`` too; the idf is recovered from it, so the
    document frequencies are tft's own, counted over the analysed (train) videos.
    """
    term_ids, tfidf = tft.tfidf(ids, num_buckets)
    counts = tf.cast(tf.sparse.bincount(ids, axis=-1).values, tf.float32)
    lengths = tf.math.unsorted_segment_sum(
        tf.ones_like(ids.values, tf.float32), ids.indices[:, 0], tf.shape(ids)[0]
    )
    idf = tfidf.values * tf.gather(lengths, tfidf.indices[:, 0]) / counts
    weights = (1.0 + tf.math.log(counts)) * idf
    return term_ids, tf.SparseTensor(tfidf.indices, weights, tfidf.dense_shape)


def label_ids(labels: tf.SparseTensor, config: TransformConfig) -> tf.SparseTensor:
    """Category names to ids; labels rarer than ``min_label_count`` are dropped."""
    ids = tft.compute_and_apply_vocabulary(
        labels,
        frequency_threshold=config.min_label_count if config.min_label_count > 1 else None,
        vocab_filename=LABELS_VOCAB,
    )
    return _compact(tf.sparse.retain(ids, ids.values >= 0))


def _compact(sparse: tf.SparseTensor) -> tf.SparseTensor:
    """Renumbers each row's entries 0..n-1, as a ragged (VarLen) output needs."""
    ragged = tf.RaggedTensor.from_value_rowids(
        sparse.values, sparse.indices[:, 0], nrows=sparse.dense_shape[0]
    )
    return ragged.to_sparse()


def _l2_normalize_rows(weights: tf.SparseTensor) -> tf.SparseTensor:
    """Scales each video's weights to unit L2 norm (as scikit-learn's tf-idf does)."""
    rows = weights.indices[:, 0]
    squares = tf.math.unsorted_segment_sum(
        tf.square(weights.values), rows, num_segments=weights.dense_shape[0]
    )
    norms = tf.gather(tf.sqrt(squares), rows)
    return tf.SparseTensor(weights.indices, weights.values / norms, weights.dense_shape)


def _row_count(ids: tf.SparseTensor, values: tf.Tensor) -> tf.Tensor:
    """Per-video sum of ``values`` laid out like ``ids``: an int64 [batch]."""
    return tf.math.unsorted_segment_sum(
        values, ids.indices[:, 0], num_segments=tf.shape(ids, out_type=tf.int64)[0]
    )
