"""Stemming without Python at serving time: a word -> stem table built at analysis.

tf.Transform's analysis pass collects every distinct ASCII-letter word of the train
split, NLTK's Snowball English stemmer (no downloaded data) stems each one, and the
pairs that differ are written as a TSV asset of the transform graph. The graph looks
each word up in that table; a word the analysis never saw keeps its spelling (it
would be out of the vocabulary anyway, unless its exact form is in it).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterable

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam

from transforms.text import is_stemmable

STEMS_FILE_PREFIX = "stems"


@functools.lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer("english")


def stem_map(words: Iterable[str]) -> dict[str, str]:
    """``{word: stem}`` for the stemmable words whose stem differs from the word."""
    stem = _stemmer().stem
    pairs = ((word, stem(word)) for word in set(words) if is_stemmable(word))
    return {word: stemmed for word, stemmed in pairs if stemmed != word}


def _lookup(table: tf.lookup.StaticHashTable) -> Callable[[tf.Tensor], tf.Tensor]:
    def stem(words: tf.Tensor) -> tf.Tensor:
        found = table.lookup(words)
        return tf.where(tf.strings.length(found) > 0, found, words)

    return stem


def stem_lookup(words: np.ndarray) -> Callable[[tf.Tensor], tf.Tensor]:
    """Eagerly, the lookup the graph would build after analysing ``words`` (bytes)."""
    mapping = stem_map(word.decode() for word in words)
    keys = tf.constant(list(mapping) or [""], tf.string)
    values = tf.constant(list(mapping.values()) or [""], tf.string)
    init = tf.lookup.KeyValueTensorInitializer(keys, values)
    return _lookup(tf.lookup.StaticHashTable(init, default_value=""))


class _WriteStemMap(tft_beam.experimental.PTransformAnalyzer):
    """Batches of words -> the path of a ``word<TAB>stem`` file, in one element."""

    def expand(self, batches):
        return (
            batches
            | "Words" >> beam.Map(lambda batch: {word.decode() for word in batch[0].tolist()})
            | "Union" >> beam.CombineGlobally(lambda sets: set().union(*sets))
            | "StemAndWrite" >> beam.Map(_write_tsv, self.base_temp_dir)
        )


def _write_tsv(words: set[str], directory: str) -> np.ndarray:
    path = os.path.join(directory, f"{STEMS_FILE_PREFIX}-{uuid.uuid4().hex}.tsv")
    tf.io.gfile.makedirs(directory)
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write("".join(f"{w}\t{s}\n" for w, s in sorted(stem_map(words).items())))
    return np.array(path.encode(), dtype=object)


def analyzed_stemmer(words: tf.Tensor) -> Callable[[tf.Tensor], tf.Tensor]:
    """Inside ``preprocessing_fn``: the stem lookup built from the analysed ``words``.

    The TSV is an analyzer output asset; ``tf_utils.construct_and_lookup_table`` (what
    ``tft.apply_vocabulary`` uses, pinned with tft 1.21) ties the table to it, so the
    file is copied into the transform graph's assets and found again after a load,
    and lifts the table out of the traced function (initialized once).
    """
    from tensorflow_transform import tf_utils

    (path,) = tft.experimental.ptransform_analyzer(
        [words], _WriteStemMap(), [tf.string], [[]], output_asset_default_values=[b"-\t-\n"],
        name="stem_map",
    )  # fmt: skip

    def table(asset: tf.Tensor) -> tf.lookup.StaticHashTable:
        init = tf.lookup.TextFileInitializer(asset, tf.string, 0, tf.string, 1, delimiter="\t")
        return tf.lookup.StaticHashTable(init, default_value="")

    def stem(words: tf.Tensor) -> tf.Tensor:  # the table is built once, outside the trace
        found = tf_utils.construct_and_lookup_table(table, path, words)[0]
        return tf.where(tf.strings.length(found) > 0, found, words)

    return stem
