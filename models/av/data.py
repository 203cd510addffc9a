"""YouTube-8M readers: vocabulary, video- and frame-level tf.data, record decoding.

Video-level records are ``tf.train.Example`` (``id`` bytes, ``labels`` int64s,
``mean_rgb`` float[1024], ``mean_audio`` float[128]); frame-level records are
``tf.train.SequenceExample`` with that context and feature lists ``rgb``/``audio``
of one uint8-quantized bytes feature per frame (see :func:`dequantize`).

``parse_*`` are batched graph functions for training: they cannot dead-letter,
so label ids outside ``[0, num_classes)`` are masked out of the multi-hot and a
frame of the wrong byte length fails the batch. ``decode_*`` are per-record
Python functions for the Beam predictor that raise ``RecordError(reason)``.

Splits are ``transforms.splits.hash_split`` of the video id (md5; no TF op), so
tf.data hashes ids with one ``tf.py_function`` call per chunk of
``_SPLIT_CHUNK`` records, then filters and re-batches: well under a second for
the 11,790 validation videos.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError

from transforms.records import SPLITS, RecordError, decode_utf8
from transforms.splits import SplitConfig, hash_split

VIDEO_FEATURES = {"mean_rgb": 1024, "mean_audio": 128}
FRAME_FEATURES = {"rgb": 1024, "audio": 128}
_SPLIT_CHUNK = 1024


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Class names (unique) and first verticals, indexed by class index."""

    names: tuple[str, ...]
    verticals: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.names)


def read_vocabulary(path: str) -> Vocabulary:
    """Reads a YT-8M ``vocabulary.csv`` (local or GCS).

    Missing indexes and empty names become ``class_{i}``; a name shared by
    several classes becomes ``"Name (index)"`` for each of them.
    """
    with tf.io.gfile.GFile(path, "r") as f:
        reader = csv.DictReader(io.StringIO(f.read()))
        missing = {"Index", "Name"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"{path} is not a YT-8M vocabulary: no column(s) {sorted(missing)}. "
                f"Received columns: {reader.fieldnames}"
            )
        rows = {}
        for line, row in enumerate(reader, start=2):
            try:
                index = int(row["Index"])
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{line}: bad Index {row['Index']!r}") from None
            if index < 0 or index in rows:
                raise ValueError(f"{path}:{line}: negative or repeated Index {index}")
            rows[index] = ((row["Name"] or "").strip(), (row.get("Vertical1") or "").strip())
    size = max(rows, default=-1) + 1
    names = [rows.get(i, ("", ""))[0] or f"class_{i}" for i in range(size)]
    verticals = tuple(rows.get(i, ("", ""))[1] for i in range(size))
    return Vocabulary(_unique_names(names), verticals)


def _unique_names(names: list[str]) -> tuple[str, ...]:
    counts = collections.Counter(names)
    out, taken = [], set()
    for i, name in enumerate(names):
        name = f"{name} ({i})" if counts[name] > 1 else name
        while name in taken:  # "A (3)" may itself be a real name
            name = f"{name} ({i})"
        taken.add(name)
        out.append(name)
    return tuple(out)


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


def _parse_proto(message_class, data: bytes):
    try:
        return message_class.FromString(data)
    except (DecodeError, TypeError) as err:
        raise RecordError("malformed_example", str(err)[:200]) from None


def _context(features) -> dict:
    """``video_id`` and ``labels`` of an Example's features or a SequenceExample's context."""
    ids = features.feature["id"].bytes_list.value if "id" in features.feature else []
    video_id = decode_utf8(ids[0]).strip() if ids else ""
    if not video_id:
        raise RecordError("missing_video_id")
    labels = features.feature["labels"].int64_list.value if "labels" in features.feature else []
    return {"video_id": video_id, "labels": list(labels)}


def decode_video_example(data: bytes, feature_sizes=VIDEO_FEATURES) -> dict:
    """One serialized video-level Example to numpy; :class:`RecordError` if malformed."""
    features = _parse_proto(tf.train.Example, data).features
    record = _context(features)
    for name, size in feature_sizes.items():
        feature = features.feature.get(name)
        if feature is None or feature.WhichOneof("kind") != "float_list":
            raise RecordError("missing_feature", f"{name} is not a float list")
        values = np.asarray(feature.float_list.value, np.float32)
        if values.shape != (size,):
            raise RecordError("bad_feature_size", f"{name} has {values.size} values, not {size}")
        if not np.isfinite(values).all():
            raise RecordError("non_finite", name)
        record[name] = values
    return record


def decode_frame_example(data: bytes, max_frames: int = 300, feature_sizes=FRAME_FEATURES) -> dict:
    """One serialized frame-level SequenceExample to dequantized numpy.

    Each feature is ``float32 [num_frames, size]`` with ``num_frames`` capped at
    ``max_frames``; every frame (kept or not) must hold exactly ``size`` bytes and
    all feature lists the same number of frames. No frames at all is allowed.
    """
    sequence = _parse_proto(tf.train.SequenceExample, data)
    record = _context(sequence.context)
    lists = sequence.feature_lists.feature_list
    counts = {}
    for name, size in feature_sizes.items():
        frames = lists[name].feature if name in lists else []
        counts[name] = len(frames)
        for i, frame in enumerate(frames):
            if [len(raw) for raw in frame.bytes_list.value] != [size]:
                raise RecordError(
                    "bad_frame_size", f"{name} frame {i} is not one {size}-byte value"
                )
        codes = b"".join(frame.bytes_list.value[0] for frame in frames[:max_frames])
        codes = np.frombuffer(codes, np.uint8).reshape(-1, size)
        record[name] = dequantize(codes).astype(np.float32)
    if len(set(counts.values())) > 1:
        raise RecordError("frame_count_mismatch", str(counts))
    record["num_frames"] = min(min(counts.values(), default=0), max_frames)
    return record


def make_video_example(video_id: str, labels, features: Mapping[str, np.ndarray]):
    """A video-level ``tf.train.Example``."""
    feature = {
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[video_id.encode()])),
        "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=list(labels))),
    }
    for name, values in features.items():
        feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def make_frame_example(video_id: str, labels, frames: Mapping[str, np.ndarray]):
    """A frame-level ``tf.train.SequenceExample``; ``frames`` maps name to uint8 [n, size]."""
    example = tf.train.SequenceExample(context=make_video_example(video_id, labels, {}).features)
    for name, codes in frames.items():
        feature_list = example.feature_lists.feature_list[name]  # created even with no frames
        for row in np.asarray(codes, np.uint8):
            feature_list.feature.add().bytes_list.value.append(row.tobytes())
    return example


def _sample_videos(videos: int, num_classes: int, seed: int, feature_sizes):
    """Yields ``(video_id, labels, class-dependent means, rng)``: 1-3 Zipf-ish labels each."""
    rng = np.random.default_rng(seed)
    centroids = {n: rng.normal(0.0, 0.6, (num_classes, s)) for n, s in feature_sizes.items()}
    weights = 1.0 / np.sqrt(np.arange(1, num_classes + 1))
    for i in range(videos):
        k = int(rng.integers(1, min(3, num_classes) + 1))
        labels = sorted(rng.choice(num_classes, k, replace=False, p=weights / weights.sum()))
        means = {
            n: c[labels].sum(axis=0) + rng.normal(0.0, 0.3, c.shape[1])
            for n, c in centroids.items()
        }
        yield f"s{seed}v{i:05d}", [int(x) for x in labels], means, rng


def _write_sample(path, videos, num_classes, seed, feature_sizes, to_example) -> dict:
    counts, frames = np.zeros(num_classes, np.int64), 0
    with tf.io.TFRecordWriter(path) as writer:
        for video_id, labels, means, rng in _sample_videos(
            videos, num_classes, seed, feature_sizes
        ):
            example, n = to_example(video_id, labels, means, rng)
            writer.write(example.SerializeToString(deterministic=True))
            counts[labels] += 1
            frames += n
    return {"path": path, "videos": videos, "frames": frames, "label_counts": counts.tolist()}


def write_video_level_sample(
    path: str, videos: int, num_classes: int, seed: int = 0, feature_sizes=VIDEO_FEATURES
) -> dict:
    """Writes a deterministic video-level TFRecord; returns a small manifest."""

    def to_example(video_id, labels, means, _):
        values = {k: np.clip(m, -2.0, 2.0).astype(np.float32) for k, m in means.items()}
        return make_video_example(video_id, labels, values), 0

    return _write_sample(path, videos, num_classes, seed, feature_sizes, to_example)


def write_frame_level_sample(
    path: str,
    videos: int,
    num_classes: int,
    seed: int = 0,
    max_frames: int = 20,
    min_frames: int = 1,
    feature_sizes=FRAME_FEATURES,
) -> dict:
    """Writes a deterministic frame-level TFRecord of ``min_frames..max_frames``
    quantized frames per video, scattered around class-dependent means."""

    def to_example(video_id, labels, means, rng):
        n = int(rng.integers(min_frames, max_frames + 1))
        frames = {k: quantize(m + rng.normal(0.0, 0.3, (n, m.size))) for k, m in means.items()}
        return make_frame_example(video_id, labels, frames), n

    return _write_sample(path, videos, num_classes, seed, feature_sizes, to_example)
