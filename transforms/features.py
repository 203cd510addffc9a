"""The tf.Transform graph: token vocabulary, tf-idf bag-of-words, label ids.

``preprocessing_fn`` is traced once by tf.Transform during analysis (on the
train split only, so eval/test never leak into the vocabulary or the idf) and
embedded in the ``transform_fn`` SavedModel that the trainer and the batch
predictor apply, so training and serving vectorize identically.

The text work happens here too (``transforms.text``: cleaning, tokenizing,
stopwords, stems, bigrams), so the graph takes raw ``title``, ``description`` and
``|``-joined ``tags`` strings, and every consumer of the graph tokenizes alike.

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

from transforms import text as text_graph
from transforms.records import AV_FLAG
from transforms.text import DEFAULT_CONFIG, TextConfig
from transforms.tfidf import TOKENS_VOCAB, WEIGHTINGS, bag_of_words, compact, token_ids

__all__ = ["TOKENS_VOCAB", "WEIGHTINGS", "TransformConfig", "make_preprocessing_fn"]

LABELS_VOCAB = "labels"

TEXT_FIELDS = ("title", "description", "tags")  # tags: one string, joined by "|"
RAW_FEATURE_SPEC = {
    "video_id": tf.io.FixedLenFeature([], tf.string),
    **{name: tf.io.FixedLenFeature([], tf.string) for name in TEXT_FIELDS},
    "labels": tf.io.VarLenFeature(tf.string),
}


@dataclasses.dataclass(frozen=True)
class TransformConfig:
    """Vocabulary and weighting hyperparameters of the transform."""

    top_k: int = 200_000  # terms kept, by document frequency
    # A term must be in at least this many train videos (min_df). 1 keeps every
    # train word: on all three measured catalogs a threshold of 2 (by documents)
    # cut the vocabulary ~5x and lost eval GAP@20 (README "Choosing the defaults").
    frequency_threshold: int = 1
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


def preprocessing_fn(
    inputs: dict, config: TransformConfig = TransformConfig(), text: TextConfig = DEFAULT_CONFIG
) -> dict:
    """Maps raw ``video_id``, text fields and ``labels`` to the model's features."""
    ids, num_buckets, frequencies = token_ids(video_tokens(inputs, text), config)
    known = tf.sparse.retain(ids, ids.values >= 0)
    num_videos = tft.size(inputs["video_id"])
    term_ids, term_weights = bag_of_words(known, frequencies, num_videos, config.weighting)
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


def make_preprocessing_fn(config: TransformConfig, text: TextConfig = DEFAULT_CONFIG):
    """``preprocessing_fn`` bound to its configs, as tf.Transform expects."""
    return functools.partial(preprocessing_fn, config=config, text=text)


def video_tokens(inputs: dict, config: TextConfig) -> tf.SparseTensor:
    """The raw text fields to each video's tokens (``transforms.text``); with
    ``stem``, the word -> stem table is built from the analysed (train) words."""
    fields = text_graph.video_fields(*(inputs[name] for name in TEXT_FIELDS))
    unigrams = text_graph.video_unigrams(fields, config)
    stem = None
    if config.stem:
        from transforms.stems import analyzed_stemmer

        stem = analyzed_stemmer(unigrams.flat_values)
    return text_graph.video_tokens(unigrams, config, stem).to_sparse()


def label_ids(labels: tf.SparseTensor, config: TransformConfig) -> tf.SparseTensor:
    """Category names to ids; labels rarer than ``min_label_count`` are dropped."""
    ids = tft.compute_and_apply_vocabulary(
        labels,
        frequency_threshold=config.min_label_count if config.min_label_count > 1 else None,
        vocab_filename=LABELS_VOCAB,
    )
    return compact(tf.sparse.retain(ids, ids.values >= 0))


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
