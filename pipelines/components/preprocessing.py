"""The preprocess graph and its settings, shared by the preprocess job and retraining.

``PreprocessConfig`` (everything the graph depends on, saved beside its output
and inside every text model, so predict, evaluate and serve read catalogs the
way training did), ``AssignSplits``, and ``launch``, which runs the whole job.
"""

from __future__ import annotations

import dataclasses
import logging

import apache_beam as beam
import tensorflow_transform as tft
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.components import guards, jobs, publish, report
from pipelines.components.analyze import AnalyzeAndTransform, WriteExamples
from pipelines.components.catalog_io import WriteDeadLetters
from pipelines.components.intake import CatalogIntake
from pipelines.components.options import (
    CatalogOptions,
    OutputOptions,
    PreprocessOptions,
    record_schema,
    run_settings,
    split_config,
    text_config,
    transform_config,
)
from pipelines.components.progress import Progress
from pipelines.components.publish import RunSettings
from pipelines.components.steps import PrepareText
from transforms.features import (
    LABELS_VOCAB,
    TOKENS_VOCAB,
    TransformConfig,
)
from transforms.layout import PREPROCESS_CONFIG_FILE, PREPROCESS_REPORT_FILE, shard_prefix
from transforms.records import SPLITS, RecordSchema
from transforms.splits import SplitConfig, group_split
from transforms.text import TextConfig

CONFIG_FILE = PREPROCESS_CONFIG_FILE
REPORT_FILE = PREPROCESS_REPORT_FILE
PUBLISHED = (  # moved from _staging into --output-dir by the publish step, the report last
    "data",
    publish.DEAD_LETTERS,
    tft.TFTransformOutput.TRANSFORM_FN_DIR,
    tft.TFTransformOutput.TRANSFORMED_METADATA_DIR,
    CONFIG_FILE,
    REPORT_FILE,
)


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """Everything the preprocess graph depends on, resolved from the flags."""

    input: str
    output_dir: str
    input_format: str = "auto"
    schema: RecordSchema = RecordSchema()
    text: TextConfig = TextConfig()
    split: SplitConfig = SplitConfig()
    transform: TransformConfig = TransformConfig()
    num_shards: int = 0

    @classmethod
    def from_options(cls, options: PipelineOptions) -> PreprocessConfig:
        catalog = options.view_as(CatalogOptions)
        out = options.view_as(PreprocessOptions)
        output_dir = options.view_as(OutputOptions).output_dir
        jobs.require(catalog.input, "--input is required")
        jobs.require(output_dir, "--output-dir is required")
        try:
            return cls(
                input=catalog.input,
                output_dir=output_dir,
                input_format=catalog.input_format,
                schema=record_schema(options),
                text=text_config(options),
                split=split_config(options),
                transform=transform_config(options),
                num_shards=out.num_shards,
            )
        except (ValueError, OSError) as err:
            raise jobs.JobError(str(err).splitlines()[0]) from None

    @property
    def temp_dir(self) -> str:
        return FileSystems.join(self.output_dir, "tmp")

    @property
    def staging_dir(self) -> str:
        return FileSystems.join(self.output_dir, publish.STAGING)


def _assign_group_split(keyed, config: SplitConfig):
    _, records = keyed
    records = list(records)
    shared = group_split([(r["group_key"], r["split"]) for r in records], config)
    for record in records:
        yield {**record, "split": record["split"] or shared}


class AssignSplits(beam.PTransform):
    """Own split wins; identical texts share one hash split (no leakage)."""

    def __init__(self, config: SplitConfig):
        super().__init__()
        self._config = config

    def expand(self, records):
        return (
            records
            | "KeyByText" >> beam.Map(lambda record: (record["fingerprint"], record))
            | "GroupIdenticalTexts" >> beam.GroupByKey()
            | "ChooseSplit" >> beam.FlatMap(_assign_group_split, self._config)
        )


def _split_stats(split: str, rows):
    yield ("records", "written", split), 1
    yield ("tokens", split, "total"), int(rows["num_tokens"])
    yield ("tokens", split, "oov"), int(rows["num_oov_tokens"])


def _label_stats(record: dict):
    for label in record["labels"]:
        yield ("labels", record["split"], label), 1
    if not record["labels"]:
        yield ("records", "unlabelled", record["split"]), 1


def build_pipeline(p: beam.Pipeline, config: PreprocessConfig, run: RunSettings) -> None:
    """Adds the whole preprocess graph to ``p``: everything is staged, then published
    by the graph's last step (``PublishPreprocessed``)."""
    staging = config.staging_dir
    intake = p | "Intake" >> CatalogIntake(config.input, config.schema, config.input_format)
    cleaned = intake.records | "PrepareText" >> PrepareText(config.text, config.transform.av_sizes)
    _ = intake.read | "ProgressRead" >> Progress("preprocess", "read")
    _ = cleaned.records | "ProgressCleaned" >> Progress("preprocess", "cleaned")
    records = cleaned.records | "AssignSplits" >> AssignSplits(config.split)
    dead = (intake.dead_letters, cleaned.dead_letters) | "FlattenDeadLetters" >> beam.Flatten()
    written = [dead | "WriteDeadLetters" >> WriteDeadLetters(staging)]
    analyze = AnalyzeAndTransform(config.transform, config.text, staging, config.temp_dir)
    splits, metadata, transform_fn = records | "AnalyzeAndTransform" >> analyze
    written.append(transform_fn)
    stats = report.intake_stats(intake.read, intake.duplicates, dead) + [
        records | "LabelStats" >> beam.FlatMap(_label_stats),
        records | "WordQuantiles" >> report.WordQuantiles(("words", "per_video")),
    ]
    for split, rows in splits.items():
        prefix = shard_prefix(staging, split)
        written.append(
            rows
            | f"Write{split.title()}" >> WriteExamples(prefix, metadata.schema, config.num_shards)
        )
        stats.append(
            rows | f"Stats{split.title()}" >> beam.FlatMap(lambda r, s=split: _split_stats(s, r))
        )
    action = PublishPreprocessed(config, run)
    publish.publish_stats(stats, action, written)


class PublishPreprocessed:
    """Preprocess's publish step: the dead-letter guard (and a train split that is not
    empty), the config and report, then the staged output moved into place."""

    def __init__(self, config: PreprocessConfig, run: RunSettings):
        self._config, self._run = config, run

    def __call__(self, stats: dict) -> dict:
        config = self._config
        result = publish.publish_once(
            config.staging_dir, config.output_dir, PUBLISHED, lambda: self.report(stats)
        )
        jobs.remove(config.temp_dir)
        return result

    def report(self, stats: dict) -> tuple[dict, str | None]:
        config, staging = self._config, self._config.staging_dir
        result = preprocess_report(config, stats, staging, self._run.seconds())
        records = result["records"]
        dead_dir = FileSystems.join(staging, publish.DEAD_LETTERS)
        refusal = guards.dead_letter_refusal(
            records["read"], result["dead_letters"], self._run.guards, dead_dir
        )
        if refusal is None and not records["written_per_split"]["train"]:
            refusal = "refusing to publish: no record landed in the train split"
        report.write_json(FileSystems.join(staging, CONFIG_FILE), jobs.to_jsonable(config))
        return result, refusal


def preprocess_report(config: PreprocessConfig, stats: dict, staging: str, seconds: float):
    """The run report: the pipeline's counts and the staged vocabulary's sizes."""
    output = tft.TFTransformOutput(staging)
    records = stats.get("records", {})
    intake = report.intake_counts(stats)
    records_in, dead = intake["in"], intake["dead_lettered"]
    duplicates = intake["duplicates_removed"]
    written = sum(records.get("written", {}).values())
    tokens = stats.get("tokens", {})
    return {
        "records": {
            "read": records_in,
            "duplicates_removed": duplicates,
            "dead_lettered": dead,
            "written": written,
            "written_per_split": {s: records.get("written", {}).get(s, 0) for s in SPLITS},
            "unlabelled_per_split": records.get("unlabelled", {}),
            "balanced": records_in == written + dead + duplicates,
        },
        "dead_letters": stats.get("dead_letters", {}),
        "vocabulary": {
            "size": output.vocabulary_size_by_name(TOKENS_VOCAB),
            "oov_buckets": config.transform.num_oov_buckets,
            "oov_token_rate": {
                s: round(t.get("oov", 0) / t["total"], 6)
                for s, t in tokens.items()
                if s in SPLITS and t.get("total")
            },
        },
        "labels": {"size": output.vocabulary_size_by_name(LABELS_VOCAB), **stats.get("labels", {})},
        "words_per_video": stats.get("words", {}).get("per_video", {}),
        "run_seconds": seconds,
    }


def launch(options: PipelineOptions) -> dict:
    """Runs the preprocess job that ``options`` describe; returns the published
    report, or ``{"submitted": ...}`` when it did not wait for the job."""
    config = PreprocessConfig.from_options(options)
    settings = run_settings(options)
    files = jobs.require_input(config.input)
    jobs.prepare_output_dir(config.output_dir, (publish.STAGING, "tmp"))
    dead_dir = FileSystems.join(config.staging_dir, publish.DEAD_LETTERS)
    guards.preflight(files, config.schema, config.input_format, settings.guards, dead_dir)
    p = beam.Pipeline(options=options)
    build_pipeline(p, config, settings)
    if publish.run_pipeline(p, config.staging_dir, settings.wait, "preprocess") is None:
        return {"submitted": config.output_dir}
    result = report.read_json(FileSystems.join(config.output_dir, REPORT_FILE))
    logging.info("preprocess done: %s", result["records"])
    return result
