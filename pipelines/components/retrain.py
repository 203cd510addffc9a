"""Retraining with a quality gate, for the nightly job.

The labelled part of the catalog is preprocessed and a candidate trained under
``state-dir/candidates/<run_id>/``. Both the candidate and the current model
score the same held-out videos (the candidate's test split), each with its
own cleaning settings and vocabulary, through their exported signatures. The
candidate is promoted only if its GAP@20 is at least the current model's minus
``tolerance``: the current export moves to ``model-dir/previous/<version>``
(for rollback) and the candidate becomes ``model-dir/saved_model``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import numpy as np
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

from models import artifacts, metrics
from models.artifacts import SAVED_MODEL_DIR
from models.serving import LoadedTagger
from models.text.model import HParams
from models.text.train import TrainConfig, train
from pipelines.components import intake, jobs, preprocessing
from pipelines.components.catalog_io import iter_rows, parse_row
from pipelines.components.steps import raw_text
from transforms.layout import PREPROCESS_CONFIG_FILE, shard_pattern


def _test_ids(data_dir: str) -> set[str]:
    spec = {"video_id": tf.io.FixedLenFeature([], tf.string)}
    files = tf.io.gfile.glob(shard_pattern(data_dir, "test"))
    ids: set[str] = set()
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024):
        ids.update(v.decode() for v in tf.io.parse_example(batch, spec)["video_id"].numpy())
    return ids


def held_out_records(catalog: str, data_dir: str) -> list[dict]:
    """The candidate's test videos, as canonical records: the catalog parsed by the
    intake's ``parse_row`` and deduplicated by its rule (``intake.latest_versions``)."""
    config = jobs.from_jsonable(
        preprocessing.PreprocessConfig,
        json.load(tf.io.gfile.GFile(os.path.join(data_dir, PREPROCESS_CONFIG_FILE))),
    )
    wanted = _test_ids(data_dir)
    parsed = (
        parse_row(row, raw, config.schema, path, offset)[0]
        for path in jobs.require_input(catalog)
        for offset, row, raw in iter_rows(path, config.input_format)
    )
    held_out = (r for r in parsed if r is not None and r["video_id"] in wanted)
    return list(intake.latest_versions(held_out).values())


def gap_on(export_dir: str, records: list[dict], k: int = 20) -> float:
    """GAP@k of one export on labelled records, through its ``raw`` signature (its
    own text settings are in the graph); videos with no token left are skipped."""
    tagger = LoadedTagger(export_dir)
    index = {name: i for i, name in enumerate(tagger.labels)}
    if not records:
        return 0.0
    out = tagger.score_raw(*zip(*(raw_text(r) for r in records), strict=True))
    keep = np.flatnonzero(out["num_tokens"] > 0)
    if not keep.size:
        return 0.0
    scores = out["probabilities"][keep]
    labels = np.zeros_like(scores)
    for row, i in enumerate(keep.tolist()):
        for name in records[i]["categories"]:
            if name in index:
                labels[row, index[name]] = 1.0
    return metrics.gap_at_k(scores, labels, k)


def current_hparams(current_export: str) -> HParams:
    """The settings the current model was trained with (its model card), so the
    candidate differs by its data only; the defaults when there is no model yet."""
    if not tf.io.gfile.exists(current_export):
        return HParams()
    card = artifacts.read_extra(current_export, artifacts.CARD_FILE)
    known = {f.name for f in dataclasses.fields(HParams)}
    return HParams(**{k: v for k, v in card.get("hparams", {}).items() if k in known})


def retrain(catalog_args: list[str], catalog: str, model_dir: str, work_dir: str,
            tolerance: float) -> dict:  # fmt: skip
    """Trains a candidate and promotes it if it passes the gate; returns the decision."""
    data_dir, candidate = os.path.join(work_dir, "data"), os.path.join(work_dir, "model")
    current = os.path.join(model_dir, SAVED_MODEL_DIR)
    args = [*catalog_args, "--input", catalog, "--output-dir", data_dir]
    preprocessing.launch(PipelineOptions(args))
    train(TrainConfig(data_dir, candidate, current_hparams(current)))
    records = held_out_records(catalog, data_dir)
    new_gap = gap_on(os.path.join(candidate, SAVED_MODEL_DIR), records)
    old_gap = gap_on(current, records) if tf.io.gfile.exists(current) else None
    promoted = old_gap is None or new_gap >= old_gap - tolerance
    decision = {"held_out_videos": len(records), "candidate_gap@20": new_gap,
                "current_gap@20": old_gap, "tolerance": tolerance, "promoted": promoted}  # fmt: skip
    if promoted:
        decision["replaced_version"] = _promote(os.path.join(candidate, SAVED_MODEL_DIR), model_dir)
    logging.info("retrain: %s", decision)
    return decision


def _promote(candidate_export: str, model_dir: str) -> str | None:
    """Moves the current export to ``previous/<version>``; returns that version."""
    current, version = os.path.join(model_dir, SAVED_MODEL_DIR), None
    if tf.io.gfile.exists(current):
        card = artifacts.read_extra(current, artifacts.CARD_FILE)
        version = card["model_version"]
        previous = os.path.join(model_dir, "previous", version)
        tf.io.gfile.makedirs(os.path.dirname(previous))
        tf.io.gfile.rename(current, previous, overwrite=True)
    tf.io.gfile.makedirs(model_dir)
    tf.io.gfile.rename(candidate_export, current)
    return version
