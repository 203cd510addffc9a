"""Helpers shared by test modules: catalog oracles, options, published-file readers."""

from __future__ import annotations

import hashlib
import json
import math
import pathlib

import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

from models import artifacts
from pipelines.cli import profile_args
from pipelines.components import tables

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def jsonl_bytes(rows) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)


def snapshot(root: pathlib.Path) -> dict[str, str]:
    """Every published file under ``root`` with its digest (staging and spare tables aside)."""
    current = (root / tables.CURRENT).read_text() if (root / tables.CURRENT).exists() else None
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("_staging/") or "/_staging/" in rel:
            continue
        if rel.startswith("state/tables/") and not rel.startswith(f"state/tables/{current}/"):
            continue
        out[rel] = hashlib.sha1(path.read_bytes()).hexdigest()
    return out


def catalog_rows(path) -> list[dict]:
    rows = []
    for line in path.read_bytes().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("video_id"):
            rows.append(row)
    return rows


def empty_bag_of_words_scores(model_dir) -> dict[str, float]:
    """The model's scores for an all-empty sparse row, straight from the ``sparse`` signature."""
    loaded = tf.saved_model.load(str(model_dir / "saved_model"))
    text = {name: tf.constant([value]) for name, value in zip(
        ("title", "description", "tags"), ("pasta", "", ""), strict=True)}  # fmt: skip
    width = loaded.signatures["vectorize"](**text)["dense_shape"][1]
    out = loaded.signatures["sparse"](
        indices=tf.zeros([0, 2], tf.int64),
        values=tf.zeros([0], tf.float32),
        dense_shape=tf.stack([tf.constant(1, tf.int64), width]),
    )
    labels = artifacts.read_extra(str(model_dir / "saved_model"), artifacts.LABELS_FILE)
    return dict(zip(labels, out["probabilities"].numpy()[0].tolist(), strict=True))


def catalog_labels(path) -> dict[str, list[str]]:
    """Labels of every video, deduplicated as ReadCatalog + Deduplicate do."""
    return {vid: r.get("categories", []) for vid, r in latest_records(path).items()}


def split_ids(sample_preprocessed, split: str = "test") -> set[str]:
    """The video ids preprocess wrote to ``split``."""
    files = sorted(str(f) for f in (sample_preprocessed / "data" / split).glob("*.tfrecord.gz"))
    spec = {"video_id": tf.io.FixedLenFeature([], tf.string)}
    ids = set()
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(256):
        ids |= {v.decode() for v in tf.io.parse_example(batch, spec)["video_id"].numpy()}
    return ids


def tag_rows(predictions) -> list[dict]:
    files = sorted((predictions / "tags").glob("part-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def latest_records(path) -> dict[str, dict]:
    """The sample catalog's valid records, one per video id as ReadCatalog +
    Deduplicate keep them: the latest ``updated_at``, ties to the later line."""
    from transforms.records import (
        RecordError,
        RecordSchema,
        decode_utf8,
        parse_json_object,
        to_canonical,
    )

    best: dict[str, tuple] = {}
    for line_no, line in enumerate(pathlib.Path(path).read_bytes().splitlines()):
        try:
            record = to_canonical(parse_json_object(decode_utf8(line)), RecordSchema())
        except RecordError:
            continue
        updated = record.get("updated_at")
        key = (-math.inf if updated is None else updated, line_no)
        if record["video_id"] not in best or key >= best[record["video_id"]][0]:
            best[record["video_id"]] = (key, record)
    return {video_id: record for video_id, (_, record) in best.items()}


def local_options(*flags: str) -> PipelineOptions:
    """Pipeline options from the packaged local (offline) runner profile."""
    return PipelineOptions(profile_args("local") + list(flags))
