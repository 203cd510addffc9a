"""The token vocabulary, its document frequencies and the bag-of-words weights.

Both vocabularies are counted over each video's *distinct* terms, so a word's
frequency is its document frequency (scikit-learn's ``min_df``/``max_features``
sense) and one analysis phase yields the ids and the idf together:

* ``tokens``: the top-k terms, one per line, as every consumer reads it;
* ``tokens_df``: the same terms in the same order, ``"<documents> <term>"``.

The idf is tft's smoothed one, ``ln((1 + N) / (1 + df)) + 1`` over the N analysed
(train) videos. Keeping this in one phase after the stem table matters: the Beam
FnApiRunner stalls ("watermark-pending bundles") on a custom analyzer followed by
``tft.tfidf``'s extra phase.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import tf_utils

TOKENS_VOCAB = "tokens"
DOC_FREQ_VOCAB = "tokens_df"
WEIGHTINGS = ("sublinear_tfidf", "tfidf", "count", "binary")


def distinct_per_video(tokens: tf.SparseTensor) -> tf.Tensor:
    """Every video's distinct terms, all videos together, as one string vector."""
    rows = tf.strings.as_string(tokens.indices[:, 0])
    keyed, _ = tf.unique(tf.strings.join([rows, tokens.values], "\x1f"))
    return tf.strings.regex_replace(keyed, "^[0-9]+\x1f", "")


def token_ids(tokens: tf.SparseTensor, config) -> tuple[tf.SparseTensor, tf.Tensor, tf.Tensor]:
    """Token strings to ids, the id space size (vocabulary + OOV buckets), and the
    document-frequency file. Unseen words hash into the OOV buckets, or are -1."""
    terms = distinct_per_video(tokens)
    threshold = config.frequency_threshold if config.frequency_threshold > 1 else None
    limits = {"top_k": config.top_k, "frequency_threshold": threshold}  # None: tft's no-op
    vocabulary = tft.vocabulary(terms, vocab_filename=TOKENS_VOCAB, **limits)
    frequencies = tft.vocabulary(
        terms, vocab_filename=DOC_FREQ_VOCAB, store_frequency=True, **limits
    )
    ids = tft.apply_vocabulary(tokens, vocabulary, num_oov_buckets=config.num_oov_buckets)
    return ids, tft.get_num_buckets_for_transformed_feature(ids), frequencies


def _document_frequencies(term_ids: tf.Tensor, frequencies: tf.Tensor) -> tf.Tensor:
    """Each id's document frequency: line ``id`` of ``tokens_df`` (0 for a bucket).

    ``construct_and_lookup_table`` (what ``tft.apply_vocabulary`` uses) lifts the
    table out of the traced function, so it is initialized once, not per batch."""

    def table(asset: tf.Tensor) -> tf.lookup.StaticHashTable:
        init = tf.lookup.TextFileInitializer(
            asset, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, tf.int64, 0, delimiter=" "
        )
        return tf.lookup.StaticHashTable(init, default_value=0)

    return tf_utils.construct_and_lookup_table(table, frequencies, term_ids)[0]


def bag_of_words(
    ids: tf.SparseTensor, frequencies: tf.Tensor, num_videos: tf.Tensor, weighting: str
) -> tuple[tf.SparseTensor, tf.SparseTensor]:
    """One (id, weight) per distinct term of each video (ids >= 0 only).

    ``tfidf`` is ``count / length * idf`` (``tft.tfidf``'s), ``sublinear_tfidf``
    ``(1 + ln count) * idf`` (scikit-learn's ``sublinear_tf``).
    """
    counts = tf.sparse.bincount(ids, axis=-1, binary_output=weighting == "binary")
    values = tf.cast(counts.values, tf.float32)
    if weighting in ("tfidf", "sublinear_tfidf"):
        df = tf.cast(_document_frequencies(counts.indices[:, 1], frequencies), tf.float32)
        corpus = tf.cast(num_videos, tf.float32)
        idf = tf.math.log((1.0 + corpus) / (1.0 + df)) + 1.0
        if weighting == "tfidf":
            rows = counts.indices[:, 0]
            lengths = tf.math.unsorted_segment_sum(values, rows, counts.dense_shape[0])
            values = values / tf.gather(lengths, rows) * idf
        else:
            values = (1.0 + tf.math.log(values)) * idf
    return (
        compact(tf.SparseTensor(counts.indices, counts.indices[:, 1], counts.dense_shape)),
        compact(tf.SparseTensor(counts.indices, values, counts.dense_shape)),
    )


def compact(sparse: tf.SparseTensor) -> tf.SparseTensor:
    """Renumbers each row's entries 0..n-1, as a ragged (VarLen) output needs."""
    ragged = tf.RaggedTensor.from_value_rowids(
        sparse.values, sparse.indices[:, 0], nrows=sparse.dense_shape[0]
    )
    return ragged.to_sparse()
