"""The batch predictor: catalog -> top-k tags with scores for every video.

CatalogIntake (read, dedup) -> RunInference (a batch of raw records through one
call of the model's ``raw`` signature: the training-time text cleaning and
vectorizing are in the graph; the model is loaded once per worker) -> ToTags ->
WriteTags, with dead letters and a report whose
counts balance: in = tagged + dead letters + duplicates. A video whose text is
empty after cleaning is tagged too: the model's scores for an empty
bag-of-words, and ``"empty_text": true`` in its row. Output is staged, and the
graph's last step (``PublishPredictions``) checks the dead-letter guard and then
publishes it: ``_SUCCESS`` appears only beside a complete, accepted result.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import typing

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from models import export
from pipelines import guards, jobs, publish, report
from pipelines.catalog_io import WriteDeadLetters
from pipelines.inference import RunInference, TaggerModelHandler
from pipelines.intake import CatalogIntake, Deduplicate
from pipelines.options import (
    CatalogOptions,
    OutputOptions,
    PredictOptions,
    record_schema,
    run_settings,
)
from pipelines.preprocess import PreprocessConfig
from pipelines.progress import Progress
from pipelines.publish import Publish, RunSettings
from pipelines.tags import RollupConfig, ToTags, WriteTags
from transforms.records import RecordSchema
from transforms.text import TextConfig

CONFIG_FILE = export.PREPROCESS_CONFIG_FILE
REPORT_FILE = "predict_report.json"
THRESHOLDS_USED_FILE = "thresholds_used.json"
PUBLISHED = ("tags", publish.DEAD_LETTERS, THRESHOLDS_USED_FILE, REPORT_FILE)  # report last


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    input: str
    model_dir: str
    output_dir: str
    input_format: str = "auto"
    schema: RecordSchema = RecordSchema()
    text: TextConfig = TextConfig()
    top_k: int = 20
    threshold: str = "tuned"
    thresholds_file: str | None = None
    rollup: RollupConfig | None = None
    av_sizes: dict | None = None  # fusion models: the records' AV vector sizes
    min_batch: int = 16
    max_batch: int = 512
    output_format: str = "jsonl"
    share_across_processes: bool = False
    tagged_at: str = ""
    run: RunSettings = RunSettings()

    @property
    def export_dir(self) -> str:
        return FileSystems.join(self.model_dir, "saved_model")

    @property
    def staging_dir(self) -> str:
        return FileSystems.join(self.output_dir, publish.STAGING)


def config_from_options(options: PipelineOptions) -> PredictConfig:
    """Resolves flags; text cleaning and (by default) the schema come from the model."""
    catalog, opts = options.view_as(CatalogOptions), options.view_as(PredictOptions)
    output_dir = options.view_as(OutputOptions).output_dir
    jobs.require(catalog.input, "--input is required")
    jobs.require(opts.model_dir and output_dir, "--model-dir and --output-dir are required")
    if opts.threshold != "tuned" and not _is_probability(opts.threshold):
        raise jobs.JobError(
            f"--threshold must be 'tuned' or a number in [0, 1], not {opts.threshold!r}"
        )
    jobs.require(
        not (opts.thresholds_file and opts.threshold != "tuned"),
        "--thresholds-file and a numeric --threshold exclude each other",
    )
    export_dir = FileSystems.join(opts.model_dir, "saved_model")
    jobs.require(FileSystems.exists(export_dir), f"no exported model in {opts.model_dir!r}")
    trained = PreprocessConfig("", "")  # audio/visual models carry no text settings
    if FileSystems.exists(FileSystems.join(export_dir, export.EXTRA_DIR, CONFIG_FILE)):
        trained = export.read_extra(export_dir, CONFIG_FILE)
        trained = jobs.from_jsonable(PreprocessConfig, trained)
    rollup = rollup_config(options, export_dir)
    mapped = catalog.field or catalog.list_separator or catalog.label_map
    try:
        return PredictConfig(
            input=catalog.input,
            model_dir=opts.model_dir,
            output_dir=output_dir,
            input_format=catalog.input_format,
            schema=record_schema(options) if mapped else trained.schema,
            text=trained.text,
            top_k=opts.top_k,
            threshold=opts.threshold,
            thresholds_file=opts.thresholds_file,
            rollup=rollup,
            av_sizes=trained.transform.av_sizes,
            min_batch=opts.min_batch_size,
            max_batch=opts.batch_size,
            output_format=opts.output_format,
            share_across_processes=opts.share_model_across_processes,
            tagged_at=opts.tagged_at or datetime.datetime.now(datetime.UTC).isoformat(),
            run=run_settings(options),
        )
    except (ValueError, OSError) as err:
        raise jobs.JobError(str(err).splitlines()[0]) from None


def rollup_config(options: PipelineOptions, export_dir: str) -> RollupConfig | None:
    """``--rollup`` settings, checked against the model's labels at launch."""
    opts = options.view_as(PredictOptions)
    if not opts.rollup:
        return None
    jobs.require_input(opts.rollup)
    config = RollupConfig(opts.rollup, opts.rollup_column, opts.rollup_method)
    try:
        config.load(export.read_extra(export_dir, export.LABELS_FILE))
    except (ValueError, KeyError) as err:
        raise jobs.JobError(f"--rollup {opts.rollup!r}: {err}".splitlines()[0]) from None
    return config


def _is_probability(text: str) -> bool:
    try:
        return 0.0 <= float(text) <= 1.0
    except ValueError:
        return False


def thresholds_for(config: PredictConfig, labels: list[str]) -> np.ndarray:
    """Per-label thresholds: the model's tuned ones, overridden by ``--thresholds-file``
    (which must name only the model's labels and, if it says so, its version), or one
    number for all."""
    if config.threshold != "tuned":
        return np.full(len(labels), float(config.threshold), np.float64)
    tuned = export.read_extra(config.export_dir, export.THRESHOLDS_FILE)
    if config.thresholds_file:
        tuned = tuned | read_thresholds_file(config.thresholds_file, config.export_dir, labels)
    return np.array([tuned[name] for name in labels], np.float64)


def read_thresholds_file(path: str, export_dir: str, labels: list[str]) -> dict:
    jobs.require_input(path)
    try:
        payload = report.read_json(path)
        thresholds = {name: float(t) for name, t in payload["thresholds"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise jobs.JobError(f"{path!r} is not a thresholds file (no 'thresholds' map)") from None
    unknown = sorted(set(thresholds) - set(labels))
    jobs.require(not unknown, f"{path!r} names categories the model lacks: {unknown[:5]}")
    version = export.read_extra(export_dir, export.CARD_FILE)["model_version"]
    tuned_for = payload.get("model_version")
    jobs.require(
        tuned_for in (None, version),
        f"{path!r} was tuned for model {tuned_for}, not for {version}",
    )
    return thresholds


class Scored(typing.NamedTuple):
    """What scoring a catalog gives: ``(record, scores)`` pairs, the records read,
    the duplicates removed, the dead letters, and extra stat pairs."""

    scores: beam.PCollection
    records: beam.PCollection
    duplicates: beam.PCollection
    dead: tuple
    stats: list


def handler(config: PredictConfig, mode: str = "text") -> TaggerModelHandler:
    return TaggerModelHandler(
        config.export_dir, mode, av_sizes=config.av_sizes, min_batch=config.min_batch,
        max_batch=config.max_batch, share_across_processes=config.share_across_processes,
    )  # fmt: skip


def _score_text(p, config: PredictConfig) -> Scored:
    intake = p | "Intake" >> CatalogIntake(config.input, config.schema, config.input_format)
    scores, failed, tokens = intake.records | "RunInference" >> RunInference(handler(config))
    dead = (intake.dead_letters, failed)
    return Scored(scores, intake.read, intake.duplicates, dead, [tokens])


def _score_av(p, config: PredictConfig, av: dict) -> Scored:
    from pipelines.av_predict import ReadYT8M

    read = p | "ReadYT8M" >> ReadYT8M(config.input, av)
    unique = read.records | "Deduplicate" >> Deduplicate()
    mode = "frames" if av["frame_level"] else "video"
    scores, failed, _ = unique.records | "RunInference" >> RunInference(handler(config, mode))
    return Scored(scores, read.records, unique.duplicates, (read.dead_letters, failed), [])


def build_pipeline(p: beam.Pipeline, config: PredictConfig) -> None:
    """Adds the predict graph to ``p``: everything is staged under ``staging_dir``,
    then published by the graph's last step (``PublishPredictions``)."""
    labels = export.read_extra(config.export_dir, export.LABELS_FILE)
    card = export.read_extra(config.export_dir, export.CARD_FILE)
    if card.get("features") == "yt8m":
        scored = _score_av(p, config, card["av"])
    else:
        scored = _score_text(p, config)
    thresholds = thresholds_for(config, labels)
    to_tags = ToTags(
        labels, thresholds, config.top_k, card["model_version"], config.tagged_at,
        rollup=config.rollup,
    )  # fmt: skip
    rows = scored.scores | "ToTags" >> beam.ParDo(to_tags)
    _ = scored.records | "ProgressRead" >> Progress("predict", "read")
    _ = rows | "ProgressTagged" >> Progress("predict", "tagged")
    dead = scored.dead | "FlattenDead" >> beam.Flatten()
    written = [
        rows | "WriteTags" >> WriteTags(config.staging_dir, config.output_format),
        dead | "WriteDeadLetters" >> WriteDeadLetters(config.staging_dir),
    ]
    stats = report.intake_stats(scored.records, scored.duplicates, dead)
    stats += report.tagged_stats(rows) + scored.stats
    used = dict(zip(labels, thresholds.tolist(), strict=True))
    action = PublishPredictions(config, card["model_version"], used)
    _ = (
        stats
        | "FlattenStats" >> beam.Flatten()
        | "SumStats" >> report.SumStats()
        | "Publish" >> Publish(action, written)
    )


class PublishPredictions:
    """Predict's publish step: the dead-letter guard, the report and the thresholds
    used, then ``_staging`` moved over the previous result, ``_SUCCESS`` last."""

    def __init__(self, config: PredictConfig, model_version: str, thresholds_used: dict):
        self._config, self._version, self._thresholds = config, model_version, thresholds_used

    def __call__(self, stats: dict) -> dict:
        config = self._config
        return publish.publish_once(
            config.staging_dir, config.output_dir, PUBLISHED, lambda: self.report(stats)
        )

    def report(self, stats: dict) -> tuple[dict, str | None]:
        config, tokens = self._config, stats.get("tokens", {})
        total, oov = tokens.get("total", 0), tokens.get("oov", 0)
        payload = {
            "records": report.record_counts(stats),
            "dead_letters": stats.get("dead_letters", {}),
            "model_version": self._version,
            "oov_token_rate": round(oov / total, 6) if total else None,
            "run_seconds": config.run.seconds(),
        }
        used = FileSystems.join(config.staging_dir, THRESHOLDS_USED_FILE)
        report.write_json(used, self._thresholds)
        dead_dir = FileSystems.join(config.staging_dir, publish.DEAD_LETTERS)
        refusal = guards.dead_letter_refusal(
            payload["records"]["in"], payload["dead_letters"], config.run.guards, dead_dir
        )
        return payload, refusal


def check_model(export_dir: str) -> None:
    """Loads the export once at launch so a broken model fails before any work."""
    from models.serving import LoadedTagger, ModelMismatchError

    try:
        LoadedTagger(export_dir)
    except KeyError as err:
        raise jobs.JobError(f"the model in {export_dir!r} lacks the {err} signature") from None
    except (ModelMismatchError, OSError, ValueError) as err:
        raise jobs.JobError(f"unusable model in {export_dir!r}: {err}".splitlines()[0]) from None


def launch_checks(config: PredictConfig) -> None:
    """Before any work: the input exists, the output is writable, the input's first
    records pass the dead-letter guard, and the model loads."""
    files = jobs.require_input(config.input)
    jobs.prepare_output_dir(config.output_dir, (publish.STAGING,))
    if export.read_extra(config.export_dir, export.CARD_FILE).get("features") != "yt8m":
        dead_dir = FileSystems.join(config.staging_dir, publish.DEAD_LETTERS)
        guards.preflight(files, config.schema, config.input_format, config.run.guards, dead_dir)
    check_model(config.export_dir)


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
