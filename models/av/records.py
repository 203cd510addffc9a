"""YouTube-8M records one at a time, outside tf.data: decode, build, write samples.

``decode_*`` turn one serialized record (formats in ``models.av.data``) into
numpy for the Beam predictor and raise ``RecordError(reason)`` on a malformed
one, so that it can be dead-lettered (the batched ``parse_*`` cannot).
``make_*`` build records, and ``write_*_sample`` write deterministic TFRecord
files of synthetic videos with class-dependent features (tests, benchmarks).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError

from models.av.data import FRAME_FEATURES, VIDEO_FEATURES, dequantize, quantize
from transforms.records import RecordError, decode_utf8


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
