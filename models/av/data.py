"""YouTube-8M tf.data readers: record formats, dequantization, splits, batched parsing.

Video-level records are ``tf.train.Example`` (``id`` bytes, ``labels`` int64s,
``mean_rgb`` float[1024], ``mean_audio`` float[128]); frame-level records are
``tf.train.SequenceExample`` with that context and feature lists ``rgb``/``audio``
of one uint8-quantized bytes feature per frame (see :func:`dequantize`).

``parse_*`` are batched graph functions for training: they cannot dead-letter,
so label ids outside ``[0, num_classes)`` are masked out of the multi-hot and a
frame of the wrong byte length fails the batch. The per-record decoders of the
Beam predictor, which raise ``RecordError(reason)``, are in ``models.av.records``;
the class vocabulary is read by ``models.av.vocabulary``.

Splits are ``transforms.splits.hash_split`` of the video id (md5; no TF op), so
tf.data hashes ids with one ``tf.py_function`` call per chunk of
``_SPLIT_CHUNK`` records, then filters and re-batches: well under a second for
the 11,790 validation videos.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from transforms.records import SPLITS
from transforms.splits import SplitConfig, hash_split

VIDEO_FEATURES = {"mean_rgb": 1024, "mean_audio": 128}
FRAME_FEATURES = {"rgb": 1024, "audio": 128}
_SPLIT_CHUNK = 1024


def dequantize(feat, max_quantized_value=2.0, min_quantized_value=-2.0):
    """YT-8M's ``utils.Dequantize``: uint8 codes (array or tensor) to floats."""
    if isinstance(feat, tf.Tensor | np.ndarray):  # uint8 codes would overflow
        feat = tf.cast(feat, tf.float32) if isinstance(feat, tf.Tensor) else feat.astype(np.float32)
    quantized_range = max_quantized_value - min_quantized_value
    scalar = quantized_range / 255.0
    bias = (quantized_range / 512.0) + min_quantized_value
    return feat * scalar + bias


def quantize(values, max_quantized_value=2.0, min_quantized_value=-2.0) -> np.ndarray:
    """The inverse of :func:`dequantize`: nearest uint8 code, clipped to 0..255."""
    quantized_range = max_quantized_value - min_quantized_value
    bias = (quantized_range / 512.0) + min_quantized_value
    codes = np.rint((np.asarray(values, np.float64) - bias) * 255.0 / quantized_range)
    return np.clip(codes, 0, 255).astype(np.uint8)


def split_of(video_id: str, config: SplitConfig | None = None) -> str:
    """The split of a video: ``transforms.splits.hash_split`` of its id."""
    return hash_split(video_id, config or SplitConfig())


def _multi_hot(labels: tf.SparseTensor, num_classes: int) -> tf.Tensor:
    """Sparse label ids to ``float32 [batch, num_classes]``; out-of-range ids dropped."""
    keep = (labels.values >= 0) & (labels.values < num_classes)
    rows = tf.boolean_mask(labels.indices[:, 0], keep)
    cols = tf.boolean_mask(labels.values, keep)
    batch = tf.cast(labels.dense_shape[0], tf.int64)
    hot = tf.scatter_nd(
        tf.stack([rows, cols], axis=1), tf.ones_like(cols, tf.float32), [batch, num_classes]
    )
    return tf.minimum(hot, 1.0)  # a repeated label id counts once


def parse_video_level(serialized, num_classes: int, feature_sizes=VIDEO_FEATURES):
    """A batch of serialized Examples to ``(features, multi-hot labels)``."""
    spec = {"id": tf.io.FixedLenFeature([], tf.string), "labels": tf.io.VarLenFeature(tf.int64)}
    spec.update({k: tf.io.FixedLenFeature([n], tf.float32) for k, n in feature_sizes.items()})
    parsed = tf.io.parse_example(serialized, spec)
    features = {"video_id": parsed["id"]}
    features.update({k: parsed[k] for k in feature_sizes})
    return features, _multi_hot(parsed["labels"], num_classes)


def parse_frame_level(
    serialized_batch, num_classes: int, max_frames: int = 300, feature_sizes=FRAME_FEATURES
):
    """A batch of serialized SequenceExamples to ``(features, multi-hot labels)``.

    Each feature is dequantized to ``float32 [batch, max_frames, size]``,
    truncated or zero-padded; ``num_frames`` is the smaller of the feature
    lists' lengths (as YT-8M's reader), capped at ``max_frames``.
    """
    context = {"id": tf.io.FixedLenFeature([], tf.string), "labels": tf.io.VarLenFeature(tf.int64)}
    sequence = {
        k: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True) for k in feature_sizes
    }
    ctx, seqs, lengths = tf.io.parse_sequence_example(
        serialized_batch, context_features=context, sequence_features=sequence
    )
    lengths = {k: tf.minimum(tf.cast(v, tf.int32), max_frames) for k, v in lengths.items()}
    num_frames = tf.reduce_min(tf.stack(list(lengths.values())), axis=0)
    features = {"video_id": ctx["id"], "num_frames": num_frames}
    for name, size in feature_sizes.items():
        frames = seqs[name][:, :max_frames]
        own = tf.sequence_mask(lengths[name], tf.shape(frames)[1])
        sizes_ok = tf.reduce_all(tf.equal(tf.strings.length(frames), size) | ~own)
        check = tf.debugging.Assert(sizes_ok, [f"a {name} frame is not {size} bytes"])
        with tf.control_dependencies([check]):
            codes = tf.io.decode_raw(frames, tf.uint8, fixed_length=size)
        valid = tf.sequence_mask(num_frames, tf.shape(frames)[1], dtype=tf.float32)
        values = dequantize(codes) * valid[:, :, None]
        values = tf.pad(values, [[0, 0], [0, max_frames - tf.shape(values)[1]], [0, 0]])
        features[name] = tf.ensure_shape(values, [None, max_frames, size])
    return features, _multi_hot(ctx["labels"], num_classes)


def _ids_video(serialized):
    return tf.io.parse_example(serialized, {"id": tf.io.FixedLenFeature([], tf.string)})["id"]


def _ids_frame(serialized):
    context = {"id": tf.io.FixedLenFeature([], tf.string)}
    return tf.io.parse_sequence_example(serialized, context_features=context)[0]["id"]


def _split_mask(ids: np.ndarray, split: str, config: SplitConfig) -> np.ndarray:
    # Undecodable ids cannot raise inside tf.data: hash them with U+FFFD replacements.
    return np.array([split_of(i.decode("utf-8", "replace"), config) == split for i in ids])


def _records(files, shuffle, seed, split, split_config, compression, ids_fn) -> tf.data.Dataset:
    files = sorted(tf.io.gfile.glob(files)) if isinstance(files, str) else list(files)
    if not files:
        raise ValueError("No input files.")
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=compression or ""),
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}. Received: {split!r}")
        config = split_config or SplitConfig()

        def keep(chunk):
            mask = tf.py_function(
                lambda ids: _split_mask(ids.numpy(), split, config), [ids_fn(chunk)], tf.bool
            )
            return tf.boolean_mask(chunk, tf.ensure_shape(mask, [None]))

        dataset = dataset.batch(_SPLIT_CHUNK).map(keep).unbatch()
    if shuffle:
        dataset = dataset.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return dataset


def _batched(dataset: tf.data.Dataset, batch_size: int, parse) -> tf.data.Dataset:
    dataset = dataset.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def video_level_dataset(
    files: str | Sequence[str],
    num_classes: int,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    split: str | None = None,
    split_config: SplitConfig | None = None,
    compression: str | None = None,
    feature_sizes: Mapping[str, int] = VIDEO_FEATURES,
) -> tf.data.Dataset:
    """``(features, labels)`` batches of video-level records (files: list or glob)."""
    dataset = _records(files, shuffle, seed, split, split_config, compression, _ids_video)
    return _batched(dataset, batch_size, lambda s: parse_video_level(s, num_classes, feature_sizes))


def frame_level_dataset(
    files: str | Sequence[str],
    num_classes: int,
    batch_size: int,
    max_frames: int = 300,
    shuffle: bool = False,
    seed: int = 0,
    split: str | None = None,
    split_config: SplitConfig | None = None,
    compression: str | None = None,
    feature_sizes: Mapping[str, int] = FRAME_FEATURES,
) -> tf.data.Dataset:
    """``(features, labels)`` batches of frame-level records (files: list or glob)."""
    dataset = _records(files, shuffle, seed, split, split_config, compression, _ids_frame)
    parse = lambda s: parse_frame_level(s, num_classes, max_frames, feature_sizes)  # noqa: E731
    return _batched(dataset, batch_size, parse)


def labels_dataset(
    files: str | Sequence[str],
    num_classes: int,
    batch_size: int = 1024,
    frame_level: bool = False,
    split: str | None = None,
    split_config: SplitConfig | None = None,
    compression: str | None = None,
) -> tf.data.Dataset:
    """``({"video_id"}, multi-hot labels)`` batches, parsing no features (cheap label counts)."""
    context = {"id": tf.io.FixedLenFeature([], tf.string), "labels": tf.io.VarLenFeature(tf.int64)}

    def parse(serialized):
        if frame_level:
            parsed = tf.io.parse_sequence_example(serialized, context_features=context)[0]
        else:
            parsed = tf.io.parse_example(serialized, context)
        return {"video_id": parsed["id"]}, _multi_hot(parsed["labels"], num_classes)

    ids_fn = _ids_frame if frame_level else _ids_video
    dataset = _records(files, False, 0, split, split_config, compression, ids_fn)
    return _batched(dataset, batch_size, parse)
