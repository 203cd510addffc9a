"""The batch predictor's audio/visual path: YouTube-8M TFRecords -> top-k tags.

ReadYT8M (every shard, with its file name) -> DecodeYT8M (video-level
``Example`` or frame-level ``SequenceExample``; malformed ones are dead
letters at the ``read`` stage) -> Deduplicate (one record per video id, as the
catalog readers do) -> RunInference (``pipelines/components/inference.py``, in ``video`` or
``frames`` mode: one dense batch per call of the export's ``features`` or
``frames`` signature, failed batches split down to the bad video) -> the text path's
ToTags, WriteTags, dead letters and balanced report (``pipelines/predict.py``).
"""

from __future__ import annotations

import functools
import hashlib
import typing

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from pipelines.components.catalog_io import DEAD, RECORDS, dead_letter
from transforms.records import RecordError


class DecodeYT8MFn(beam.DoFn):
    """``(file, bytes)`` to a record dict, or a ``read`` dead letter with its reason."""

    def __init__(self, av: dict):
        self._frame_level = av["frame_level"]
        self._sizes, self._max_frames = av["feature_sizes"], av["max_frames"]
        self._decoded = Metrics.counter("predict", "records_decoded")

    def setup(self):
        from models.av import records as yt8m_records

        if self._frame_level:
            self._decode = functools.partial(
                yt8m_records.decode_frame_example,
                max_frames=self._max_frames,
                feature_sizes=self._sizes,
            )
        else:
            self._decode = functools.partial(
                yt8m_records.decode_video_example, feature_sizes=self._sizes
            )

    def process(self, item: tuple[str, bytes]) -> typing.Iterator:
        source, data = item
        digest = hashlib.md5(data).hexdigest()
        try:
            record = self._decode(data)
        except RecordError as err:
            raw = {"bytes": len(data), "md5": digest}
            yield beam.pvalue.TaggedOutput(
                DEAD, dead_letter("read", err.reason, raw, source, detail=str(err)[:300])
            )
            return
        self._decoded.inc()
        record["_pos"], record["fingerprint"] = (source, digest), digest
        yield record


class ReadYT8M(beam.PTransform):
    """Records of every TFRecord shard matching ``pattern`` (plain or GZIP)."""

    def __init__(self, pattern: str, av: dict):
        super().__init__()
        self._pattern, self._av = pattern, av

    def expand(self, pbegin):
        return (
            pbegin
            | "Pattern" >> beam.Create([self._pattern])
            | "ReadShards" >> beam.io.ReadAllFromTFRecord(with_filename=True)
            | "Decode" >> beam.ParDo(DecodeYT8MFn(self._av)).with_outputs(DEAD, main=RECORDS)
        )


def stack(records: list[dict], frame_level: bool) -> dict:
    """One batch of model inputs; frame-level videos are zero-padded to the longest."""
    if not frame_level:
        return {
            "mean_rgb": np.stack([r["mean_rgb"] for r in records]).astype(np.float32),
            "mean_audio": np.stack([r["mean_audio"] for r in records]).astype(np.float32),
        }
    frames = max(max((r["num_frames"] for r in records), default=0), 1)
    out = {}
    for name in ("rgb", "audio"):
        width = records[0][name].shape[1]
        batch = np.zeros((len(records), frames, width), np.float32)
        for i, r in enumerate(records):
            batch[i, : r["num_frames"]] = r[name][: r["num_frames"]]
        out[name] = batch
    out["num_frames"] = np.array([r["num_frames"] for r in records], np.int32)
    return out


def _labelled(item, label_names: tuple, split_config):
    """``(file, bytes)`` of a YouTube-8M record to ``(video_id, (split, label names))``;
    its context (``Example`` features or ``SequenceExample`` context) holds both."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    from models.av.data import split_of

    _, data = item
    try:
        features = tf.train.Example.FromString(data).features.feature
        video_id = features["id"].bytes_list.value[0].decode("utf-8")
    except (DecodeError, IndexError, UnicodeDecodeError):  # a malformed record, which
        return  # predict dead-letters: it has no prediction to score
    ids = features["labels"].int64_list.value if "labels" in features else []
    names = sorted({label_names[i] for i in ids if 0 <= i < len(label_names)})
    yield video_id, (split_of(video_id, split_config), names)


class LabelledYT8M(beam.PTransform):
    """A labelled YouTube-8M catalog for ``evaluate``: ``(video_id, (split, labels))``,
    one per video id (the first in shard order), split by the id's hash as in training."""

    def __init__(self, pattern: str, label_names: tuple, split_config):
        super().__init__()
        self._pattern, self._names, self._split = pattern, tuple(label_names), split_config

    def expand(self, pbegin):
        return (
            pbegin
            | "Pattern" >> beam.Create([self._pattern])
            | "ReadShards" >> beam.io.ReadAllFromTFRecord(with_filename=True)
            | "Labels" >> beam.FlatMap(_labelled, self._names, self._split)
            | "OnePerVideo" >> beam.CombinePerKey(lambda values: min(values))
        )
