"""``catalog-tagger tune-thresholds``: per-category thresholds from a predict output.

The predictions of the eval split are joined with the labelled catalog exactly
as ``evaluate`` joins them (same readers, dedup and split logic), grouped per
category, and each category's threshold is chosen by the trainer's own rule
(``models.metrics.tune_thresholds``): the highest-F1 threshold, or with
``--min-precision P`` the lowest one reaching precision ``P`` (maximum recall).
A category listed below a video's top-k has score 0 there, so it can never be
predicted for that video, as in ``predict``. Categories without a positive on
the split keep the model's thresholds; a precision target no threshold reaches
gives a threshold above 1 (the category is never predicted) and ``reached:
false``. The output ``thresholds.json`` is what ``predict --thresholds-file`` reads.
"""

from __future__ import annotations

import dataclasses
import json

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from models import metrics
from pipelines.components import jobs, report
from pipelines.components.options import TuneOptions
from pipelines.evaluation.config import EvaluateConfig, config_from_options
from pipelines.evaluation.join import EvaluatedVideos, tags_pattern

THRESHOLDS_FILE = "thresholds.json"


def _label_scores(video):
    """``(label, score or None, positive)``: listed scores, then unlisted positives."""
    _, positives, ranked, _ = video
    listed = set()
    for label, score in ranked:
        listed.add(label)
        yield label, (score, label in positives)
    for label in set(positives) - listed:
        yield label, (None, True)


def tune_category(keyed, videos: int, min_precision: float | None) -> dict:
    """One category's threshold and its precision/recall/F1 on the split."""
    label, values = keyed
    listed = [(s, p) for s, p in values if s is not None]
    unlisted_positive = len(values) - len(listed)
    zeros = unlisted_positive + max(videos - len(values), 0)
    scores = np.array([s for s, _ in listed] + [0.0] * zeros, np.float64)
    truth = np.array([p for _, p in listed] + [True] * unlisted_positive, bool)
    truth = np.concatenate([truth, np.zeros(len(scores) - len(truth), bool)])
    threshold = float(metrics.tune_thresholds(scores[:, None], truth[:, None], min_precision)[0])
    predicted = scores >= threshold
    tp, n_pred, support = int((predicted & truth).sum()), int(predicted.sum()), int(truth.sum())
    precision = tp / n_pred if n_pred else 0.0
    return {
        "name": label, "threshold": threshold, "support": support,
        "precision": precision, "recall": tp / support if support else 0.0,
        "f1": 2 * tp / (n_pred + support) if n_pred + support else 0.0,
        "reached": min_precision is None or (n_pred > 0 and precision >= min_precision),
    }  # fmt: skip


def _payload(rows: list[dict], videos: int, settings: dict) -> str:
    rows = sorted(rows, key=lambda row: row["name"])
    tuned = [row for row in rows if row["support"]]
    payload = {
        "thresholds": {row["name"]: row["threshold"] for row in tuned},
        "per_category": tuned,
        "without_positives": [row["name"] for row in rows if not row["support"]],
        "videos": videos,
        **settings,
    }
    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False)


def build_pipeline(p, config: EvaluateConfig, settings: dict) -> None:
    """Adds the tuning graph to ``p``; writes ``thresholds.json`` into ``output_dir``."""
    joined = p | "EvaluatedVideos" >> EvaluatedVideos(config)
    videos = beam.pvalue.AsSingleton(
        joined["predictions"] | "CountVideos" >> beam.combiners.Count.Globally()
    )
    _ = (
        joined["predictions"]
        | "LabelScores" >> beam.FlatMap(_label_scores)
        | "GroupByCategory" >> beam.GroupByKey()
        | "TuneCategory" >> beam.Map(tune_category, videos, settings["min_precision"])
        | "Collect" >> beam.combiners.ToList()
        | "BuildThresholds" >> beam.Map(_payload, videos, settings)
        | "WriteThresholds"
        >> beam.io.WriteToText(
            FileSystems.join(config.output_dir, THRESHOLDS_FILE), shard_name_template=""
        )
    )


def run(argv: list[str] | None = None) -> dict:
    """Parses flags, tunes, returns the thresholds file's content."""
    options = PipelineOptions(argv)
    config = config_from_options(options)
    min_precision = options.view_as(TuneOptions).min_precision
    jobs.require(
        min_precision is None or 0.0 < min_precision <= 1.0,
        f"--min-precision must be in (0, 1], not {min_precision}",
    )
    jobs.require(not config.baseline, "tune-thresholds takes no --baseline")
    config = dataclasses.replace(config, split=config.split or "eval")
    jobs.require_input(tags_pattern(config.predictions))
    jobs.require_input(config.catalog)
    from pipelines.components.scoring import REPORT_FILE

    predict_report = FileSystems.join(config.predictions, REPORT_FILE)
    found = FileSystems.exists(predict_report)
    version = report.read_json(predict_report).get("model_version") if found else None
    settings = {
        "objective": "max_f1" if min_precision is None else "min_precision",
        "min_precision": min_precision,
        "split": config.split,
        "model_version": version,
        "predictions": config.predictions,
    }
    jobs.prepare_output_dir(config.output_dir, (THRESHOLDS_FILE,))
    with beam.Pipeline(options=options) as p:
        build_pipeline(p, config, settings)
    return report.read_json(FileSystems.join(config.output_dir, THRESHOLDS_FILE))
