"""Scoring a catalog and turning scores into tags: what predict and nightly share.

``PredictConfig`` (from the predict flags, the model's text settings), the
model handler, the thresholds, ``TagVideos`` (RunInference -> ToTags, with
progress), and ``tagging_report``: the report and the dead-letter guard of
every tagging run, with the thresholds it used written beside it.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from models import artifacts
from models.card import TEXT, TEXT_KINDS, input_mode, kind_of
from pipelines.components import guards, jobs, publish, report
from pipelines.components.embeddings import EMBEDDINGS_DIR
from pipelines.components.inference import RunInference, TaggerModelHandler
from pipelines.components.intake import CatalogIntake, Deduplicate, Intake
from pipelines.components.options import (
    WRITE_EMBEDDINGS,
    CatalogOptions,
    OutputOptions,
    PredictOptions,
    record_schema,
    run_settings,
)
from pipelines.components.preprocessing import PreprocessConfig
from pipelines.components.progress import Progress
from pipelines.components.publish import RunSettings
from pipelines.components.tags import RollupConfig, ToTags
from transforms.records import RecordSchema
from transforms.text import TextConfig

CONFIG_FILE = artifacts.PREPROCESS_CONFIG_FILE
REPORT_FILE = "predict_report.json"
THRESHOLDS_USED_FILE = "thresholds_used.json"
# Above this many labels a text model's scores leave the graph as each video's
# TOP_K_CANDIDATES best (or --top-k, if more): the export's top_k signature.
TOP_K_ABOVE, TOP_K_CANDIDATES = 4096, 100
PUBLISHED = ("tags", publish.DEAD_LETTERS, THRESHOLDS_USED_FILE, REPORT_FILE)  # report last


def published(config: PredictConfig) -> tuple[str, ...]:
    """What a tagging run publishes, the report last: ``PUBLISHED``, and the
    embeddings with ``config.embeddings``."""
    return (EMBEDDINGS_DIR, *PUBLISHED) if config.embeddings else PUBLISHED


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
    embeddings: bool = False  # also the videos' embeddings (predict --embeddings)
    run: RunSettings = RunSettings()

    @property
    def export_dir(self) -> str:
        return FileSystems.join(self.model_dir, artifacts.SAVED_MODEL_DIR)

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
    jobs.require(
        opts.embeddings in (None, WRITE_EMBEDDINGS), "predict's --embeddings takes no value"
    )
    export_dir = FileSystems.join(opts.model_dir, artifacts.SAVED_MODEL_DIR)
    jobs.require(FileSystems.exists(export_dir), f"no exported model in {opts.model_dir!r}")
    trained = PreprocessConfig("", "")  # audio/visual models carry no text settings
    if FileSystems.exists(FileSystems.join(export_dir, artifacts.EXTRA_DIR, CONFIG_FILE)):
        trained = artifacts.read_extra(export_dir, CONFIG_FILE)
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
            embeddings=opts.embeddings is not None,
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
        config.load(artifacts.read_extra(export_dir, artifacts.LABELS_FILE))
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
    tuned = artifacts.read_extra(config.export_dir, artifacts.THRESHOLDS_FILE)
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
    version = artifacts.read_extra(export_dir, artifacts.CARD_FILE)["model_version"]
    tuned_for = payload.get("model_version")
    jobs.require(
        tuned_for in (None, version),
        f"{path!r} was tuned for model {tuned_for}, not for {version}",
    )
    return thresholds


def candidates(config: PredictConfig, mode: str) -> int | None:
    """How many best labels per video leave the graph, for a text model with more
    than ``TOP_K_ABOVE`` labels (else None: the full row). Only they can be tagged."""
    card = artifacts.read_extra(config.export_dir, artifacts.CARD_FILE)
    labels = artifacts.read_extra(config.export_dir, artifacts.LABELS_FILE)
    if mode != "text" or kind_of(card) != TEXT or len(labels) <= TOP_K_ABOVE:
        return None
    return max(config.top_k, TOP_K_CANDIDATES)


def handler(config: PredictConfig, mode: str = "text") -> TaggerModelHandler:
    return TaggerModelHandler(
        config.export_dir, mode, av_sizes=config.av_sizes, min_batch=config.min_batch,
        max_batch=config.max_batch, share_across_processes=config.share_across_processes,
        embeddings=config.embeddings, candidates=candidates(config, mode),
    )  # fmt: skip


def read_catalog(p, config: PredictConfig, card: dict) -> tuple[Intake, str]:
    """The videos to tag, one record per video, and the model's input mode: a text
    catalog through ``CatalogIntake``, or YouTube-8M shards for a YouTube-8M model."""
    mode = input_mode(kind_of(card))
    if mode == "text":
        intake = CatalogIntake(config.input, config.schema, config.input_format)
        return p | "Intake" >> intake, mode
    from pipelines.components.yt8m_io import ReadYT8M

    read = p | "ReadYT8M" >> ReadYT8M(config.input, card["av"])
    unique = read.records | "Deduplicate" >> Deduplicate()
    intake = Intake(unique.records, unique.duplicates, read.dead_letters, read.records)
    return intake, mode


def check_model(export_dir: str, embeddings: bool = False) -> None:
    """Loads the export once at launch so a broken model fails before any work (and
    one that cannot embed, when ``embeddings`` are asked for)."""
    from models.serving import LoadedTagger, ModelMismatchError

    try:
        loaded = LoadedTagger(export_dir)
    except KeyError as err:
        raise jobs.JobError(f"the model in {export_dir!r} lacks the {err} signature") from None
    except (ModelMismatchError, OSError, ValueError) as err:
        raise jobs.JobError(f"unusable model in {export_dir!r}: {err}".splitlines()[0]) from None
    jobs.require(
        not embeddings or loaded.has_embeddings(),
        f"--embeddings: the model in {export_dir!r} has no embed signature (a text model "
        "with a hidden layer, exported by this version, has one)",
    )


def launch_checks(config: PredictConfig) -> None:
    """Before any work: the input exists, the output is writable, the input's first
    records pass the dead-letter guard, and the model loads."""
    files = jobs.require_input(config.input)
    jobs.prepare_output_dir(config.output_dir, (publish.STAGING,))
    card = artifacts.read_extra(config.export_dir, artifacts.CARD_FILE)
    if kind_of(card) in TEXT_KINDS:
        dead_dir = FileSystems.join(config.staging_dir, publish.DEAD_LETTERS)
        guards.preflight(files, config.schema, config.input_format, config.run.guards, dead_dir)
    check_model(config.export_dir, config.embeddings)


class Tagged(typing.NamedTuple):
    rows: beam.PCollection  # one output row per video
    failed: beam.PCollection  # dead letters of the inference stage
    stats: list  # (key, count) PCollections for the report
    embeddings: beam.PCollection  # (video_id, vector) with config.embeddings, else empty


class TagVideos(beam.PTransform):
    """Records -> tag rows: one batched ``RunInference`` (the ``mode`` of the model:
    "text", or "video"/"frames" for YouTube-8M), then ``ToTags``."""

    def __init__(self, config: PredictConfig, to_tags: ToTags, job: str, mode: str = "text"):
        super().__init__()
        self._config, self._to_tags, self._job, self._mode = config, to_tags, job, mode

    def expand(self, records):
        inference = RunInference(handler(self._config, self._mode))
        inferred = records | "RunInference" >> inference
        rows = inferred.scores | "ToTags" >> beam.ParDo(self._to_tags)
        _ = rows | "ProgressTagged" >> Progress(self._job, "tagged")
        tokens = [inferred.stats] if self._mode == "text" else []
        return Tagged(rows, inferred.dead, report.tagged_stats(rows) + tokens, inferred.embeddings)


def tagging_report(config: PredictConfig, stats: dict, version: str, thresholds_used: dict,
                   **sections) -> tuple[dict, str | None]:  # fmt: skip
    """The report of a tagging run (``sections`` added) and the dead-letter guard's
    refusal, if any; ``thresholds_used.json`` is staged beside it."""
    tokens = stats.get("tokens", {})
    total, oov = tokens.get("total", 0), tokens.get("oov", 0)
    payload = {
        "records": report.record_counts(stats, unchanged=sections.pop("unchanged", None)),
        "dead_letters": stats.get("dead_letters", {}),
        "model_version": version,
        "oov_token_rate": round(oov / total, 6) if total else None,
        **sections,
        "run_seconds": config.run.seconds(),
    }
    used = FileSystems.join(config.staging_dir, THRESHOLDS_USED_FILE)
    report.write_json(used, thresholds_used)
    dead_dir = FileSystems.join(config.staging_dir, publish.DEAD_LETTERS)
    refusal = guards.dead_letter_refusal(
        payload["records"]["in"], payload["dead_letters"], config.run.guards, dead_dir
    )
    return payload, refusal
