"""The batch predictor: catalog -> top-k tags with scores for every video.

CatalogIntake (read, dedup) -> RunInference (a batch of raw records through one
call of the model's ``raw`` signature: the training-time text cleaning and
vectorizing are in the graph; the model is loaded once per worker) -> ToTags ->
WriteTags (with ``--embeddings``, also WriteEmbeddings: Parquet), with dead
letters and a report whose
counts balance: in = tagged + dead letters + duplicates. A video whose text is
empty after cleaning is tagged too: the model's scores for an empty
bag-of-words, and ``"empty_text": true`` in its row. Output is staged, and the
graph's last step (``PublishPredictions``) checks the dead-letter guard and then
publishes it: ``_SUCCESS`` appears only beside a complete, accepted result.
"""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from models import artifacts
from pipelines.components import publish, report
from pipelines.components.catalog_io import WriteDeadLetters
from pipelines.components.embeddings import WriteEmbeddings
from pipelines.components.progress import Progress
from pipelines.components.scoring import (
    REPORT_FILE,
    PredictConfig,
    TagVideos,
    config_from_options,
    launch_checks,
    published,
    read_catalog,
    tagging_report,
    thresholds_for,
)
from pipelines.components.tags import ToTags, WriteTags


def build_pipeline(p: beam.Pipeline, config: PredictConfig) -> None:
    """Adds the predict graph to ``p``: everything is staged under ``staging_dir``,
    then published by the graph's last step (``PublishPredictions``)."""
    labels = artifacts.read_extra(config.export_dir, artifacts.LABELS_FILE)
    card = artifacts.read_extra(config.export_dir, artifacts.CARD_FILE)
    intake, mode = read_catalog(p, config, card)
    thresholds = thresholds_for(config, labels)
    to_tags = ToTags(
        labels, thresholds, config.top_k, card["model_version"], config.tagged_at,
        rollup=config.rollup,
    )  # fmt: skip
    tagged = intake.records | "Tag" >> TagVideos(config, to_tags, "predict", mode)
    _ = intake.read | "ProgressRead" >> Progress("predict", "read")
    dead = (intake.dead_letters, tagged.failed) | "FlattenDead" >> beam.Flatten()
    written = [
        tagged.rows | "WriteTags" >> WriteTags(config.staging_dir, config.output_format),
        dead | "WriteDeadLetters" >> WriteDeadLetters(config.staging_dir),
    ]
    if config.embeddings:
        written.append(tagged.embeddings | "WriteEmbeddings" >> WriteEmbeddings(config.staging_dir))
    stats = report.intake_stats(intake.read, intake.duplicates, dead) + tagged.stats
    used = dict(zip(labels, thresholds.tolist(), strict=True))
    action = PublishPredictions(config, card["model_version"], used)
    publish.publish_stats(stats, action, written)


class PublishPredictions:
    """Predict's publish step: the dead-letter guard, the report and the thresholds
    used, then ``_staging`` moved over the previous result, ``_SUCCESS`` last."""

    def __init__(self, config: PredictConfig, model_version: str, thresholds_used: dict):
        self._config, self._version, self._thresholds = config, model_version, thresholds_used

    def __call__(self, stats: dict) -> dict:
        config = self._config
        return publish.publish_once(
            config.staging_dir, config.output_dir, published(config), lambda: self.report(stats)
        )

    def report(self, stats: dict) -> tuple[dict, str | None]:
        return tagging_report(self._config, stats, self._version, self._thresholds)


def run(argv: list[str] | None = None) -> dict:
    """Parses flags, runs the job; returns the published report (with the run's Beam
    metrics), or ``{"submitted": ...}`` when it did not wait for the job."""
    options = PipelineOptions(argv)
    config = config_from_options(options)
    launch_checks(config)
    p = beam.Pipeline(options=options)
    build_pipeline(p, config)
    result = publish.run_pipeline(p, config.staging_dir, config.run.wait, "predict")
    if result is None:
        return {"submitted": config.output_dir}
    payload = report.read_json(FileSystems.join(config.output_dir, REPORT_FILE))
    payload["beam_metrics"] = publish.beam_metrics(result)
    logging.info("predict done: %s", payload["records"])
    return payload
