"""What scores become: the output row (top-k labels, thresholded predictions, the
rolled-up generic categories) and the tag shards, for predict and nightly."""

from __future__ import annotations

import dataclasses
import json
import typing

import apache_beam as beam
import numpy as np
import orjson
from apache_beam.io.filesystems import FileSystems

from pipelines.components.catalog_io import EMPTY_TEXT
from transforms.records import AV_FIELDS, AV_FLAG
from transforms.taxonomy import rollup_names, rollup_scores


@dataclasses.dataclass(frozen=True)
class RollupConfig:
    """Fine labels rolled up into generic categories (``transforms/taxonomy.py``)."""

    path: str
    column: str = "Vertical1"
    method: str = "max"

    def load(self, labels):
        from transforms.taxonomy import read_rollup

        opener = lambda path, mode: FileSystems.open(path)  # noqa: E731
        return read_rollup(self.path, labels, self.column, opener=opener)


class TagRows:
    """Scores to the output row: top-k labels, thresholded predictions and, with
    a roll-up, top-k generic ``categories`` (max or noisy-OR of their members).

    Plain Python, shared by the batch jobs (:class:`ToTags`) and ``serve``;
    call :meth:`setup` once before :meth:`row` when there is a roll-up."""

    def __init__(
        self, labels, thresholds, top_k: int, version: str, hashes=False,
        rollup: RollupConfig | None = None,
    ):  # fmt: skip
        self._labels, self._thresholds = list(labels), np.asarray(thresholds, np.float64)
        self._k, self._version = top_k, version
        self._hashes, self._rollup = hashes, rollup
        self._taxonomy = None

    def setup(self) -> None:
        if self._rollup is not None and self._taxonomy is None:
            self._taxonomy = self._rollup.load(self._labels)

    def row(self, record: dict, scores, tagged_at: str) -> dict:
        """The output row of one scored record: ``scores`` [num_labels], or a wide label
        space's best candidates (``indices``, ``scores``: only they can be predicted,
        and a roll-up sees the other labels at 0)."""
        if isinstance(scores, tuple):  # inference.TopScores: already ranked
            order, ranked = np.asarray(scores[0]), np.asarray(scores[1])
        else:
            order = np.argsort(-scores, kind="stable")
            ranked = scores[order]
        top = order[: self._k]
        above = order[ranked >= self._thresholds[order]]
        row = {
            "video_id": record["video_id"],
            "labels": self._listed([self._labels[i] for i in top.tolist()], ranked[: self._k]),
            "predicted": [self._labels[i] for i in above.tolist()],
            "model_version": self._version,
            "tagged_at": tagged_at,
            **({EMPTY_TEXT: True} if record.get(EMPTY_TEXT) else {}),  # scored as no words
        }
        if self._taxonomy is not None:
            dense = np.zeros(len(self._labels), np.float32)  # candidates only: others at 0
            dense[order] = ranked
            row |= self._categories(dense, row["predicted"])
        if self._hashes:
            row["content_hash"] = content_hash(record)
        return row

    @staticmethod
    def _listed(names, scores) -> list[dict]:
        rounded = np.round(np.asarray(scores).astype(float), 6).tolist()
        return [{"label": n, "score": s} for n, s in zip(names, rounded, strict=True)]

    def _categories(self, scores, predicted) -> dict:
        rolled = rollup_scores(scores[None, :], self._taxonomy, self._rollup.method)[0]
        order = np.argsort(-rolled, kind="stable")[: self._k]
        order = order[rolled[order] > 0]
        names = [self._taxonomy.categories[i] for i in order.tolist()]
        return {
            "categories": [{"category": t["label"], "score": t["score"]}
                           for t in self._listed(names, rolled[order])],
            "predicted_categories": rollup_names(predicted, self._taxonomy),
        }  # fmt: skip


class ToTags(beam.DoFn):
    """``(record, scores)`` to the output row (:class:`TagRows`), on Beam."""

    def __init__(
        self, labels, thresholds, top_k: int, version: str, tagged_at: str, *,
        hashes: bool = False, rollup: RollupConfig | None = None,
    ):  # fmt: skip
        self._rows = TagRows(labels, thresholds, top_k, version, hashes, rollup)
        self._tagged_at = tagged_at

    def setup(self):
        self._rows.setup()

    def process(self, scored: tuple[dict, dict]) -> typing.Iterator[dict]:
        record, scores = scored
        yield self._rows.row(record, scores, self._tagged_at)


def content_hash(record: dict) -> str:
    """What the nightly job compares to find changed videos: the cleaned text's
    fingerprint, plus a digest of the AV vectors when a fusion model reads them."""
    if AV_FLAG not in record:
        return record["fingerprint"]
    import hashlib

    vectors = json.dumps([record.get(name) for name in (*AV_FIELDS, AV_FLAG)]).encode()
    return f"{record['fingerprint']}+av:{hashlib.md5(vectors).hexdigest()[:16]}"


def _json_line(row: dict) -> str:
    """One JSONL row: orjson (compact, keys sorted), the hot path's fastest encoder."""
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()


def _csv_line(row: dict) -> str:
    labels = "|".join(f"{t['label']}:{t['score']}" for t in row["labels"])
    fields = [row["video_id"], labels, "|".join(row["predicted"]), row["model_version"]]
    return ",".join(json.dumps(f, ensure_ascii=False) for f in fields)


def _example(row: dict) -> bytes:
    import tensorflow as tf

    def strings(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))

    feature = {
        "video_id": strings([row["video_id"]]),
        "label": strings([t["label"] for t in row["labels"]]),
        "score": tf.train.Feature(
            float_list=tf.train.FloatList(value=[t["score"] for t in row["labels"]])
        ),
        "predicted": strings(row["predicted"]),
        "model_version": strings([row["model_version"]]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


class WriteTags(beam.PTransform):
    """Tag rows as JSONL (default), CSV or TFRecord shards."""

    def __init__(self, output_dir: str, output_format: str):
        super().__init__()
        self._prefix = FileSystems.join(output_dir, "tags", "part")
        self._format = output_format

    def expand(self, rows):
        if self._format == "tfrecord":
            encoded = rows | "ToExample" >> beam.Map(_example)
            return encoded | "Write" >> beam.io.WriteToTFRecord(self._prefix, ".tfrecord.gz")
        if self._format == "csv":
            lines = rows | "ToCsv" >> beam.Map(_csv_line)
            header = "video_id,labels,predicted,model_version"
            return lines | "Write" >> beam.io.WriteToText(self._prefix, ".csv", header=header)
        lines = rows | "ToJson" >> beam.Map(_json_line)
        return lines | "Write" >> beam.io.WriteToText(self._prefix, ".jsonl")
