"""The batch predictor: catalog -> top-k tags with scores for every video.

ReadCatalog -> Deduplicate -> CleanAndTokenize (the training-time text config,
read from the model) -> RunInference (batched sparse inference, model loaded
once per worker) -> ToTags -> WriteTags, with dead letters and a report whose
counts balance: in = tagged + dead letters + duplicates. A video whose text is
empty after cleaning is tagged too: the model's scores for an empty
bag-of-words, and ``"empty_text": true`` in its row. Output is staged and
published atomically: ``_SUCCESS`` appears only beside a complete result.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import time

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from models import export
from pipelines import jobs, report
from pipelines.catalog_io import EMPTY_TEXT, ReadCatalog, WriteDeadLetters
from pipelines.inference import ModelHandle, RunInference
from pipelines.options import CatalogOptions, OutputOptions, PredictOptions, record_schema
from pipelines.preprocess import PreprocessConfig
from pipelines.steps import CleanAndTokenize, Deduplicate
from transforms.records import AV_FIELDS, AV_FLAG, RecordSchema
from transforms.taxonomy import rollup_names, rollup_scores
from transforms.text import TextConfig

CONFIG_FILE = export.PREPROCESS_CONFIG_FILE
REPORT_FILE = "predict_report.json"
THRESHOLDS_USED_FILE = "thresholds_used.json"
SUCCESS = "_SUCCESS"
PUBLISHED = ("tags", "dead_letters", REPORT_FILE, THRESHOLDS_USED_FILE)


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

    @property
    def export_dir(self) -> str:
        return FileSystems.join(self.model_dir, "saved_model")

    @property
    def staging_dir(self) -> str:
        return FileSystems.join(self.output_dir, "_staging")


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
        )
    except (ValueError, OSError) as err:
        raise jobs.JobError(str(err).splitlines()[0]) from None


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


class ToTags(beam.DoFn):
    """Scores to the output row: top-k labels, thresholded predictions and, with
    a roll-up, top-k generic ``categories`` (max or noisy-OR of their members)."""

    def __init__(
        self, labels, thresholds, top_k: int, version: str, tagged_at: str, hashes=False,
        rollup: RollupConfig | None = None,
    ):  # fmt: skip
        self._labels, self._thresholds = list(labels), np.asarray(thresholds, np.float64)
        self._k, self._version, self._tagged_at = top_k, version, tagged_at
        self._hashes, self._rollup = hashes, rollup
        self._taxonomy = None

    def setup(self):
        if self._rollup is not None:
            self._taxonomy = self._rollup.load(self._labels)

    def process(self, scored):
        record, scores = scored
        order = np.argsort(-scores, kind="stable")
        top = order[: self._k]
        above = order[scores[order] >= self._thresholds[order]]
        row = {
            "video_id": record["video_id"],
            "labels": self._listed([self._labels[i] for i in top.tolist()], scores[top]),
            "predicted": [self._labels[i] for i in above.tolist()],
            "model_version": self._version,
            "tagged_at": self._tagged_at,
            **({EMPTY_TEXT: True} if record.get(EMPTY_TEXT) else {}),  # scored as no words
        }
        if self._taxonomy is not None:
            row |= self._categories(scores, row["predicted"])
        if self._hashes:
            row["content_hash"] = content_hash(record)
        yield row

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


def content_hash(record: dict) -> str:
    """What the nightly job compares to find changed videos: the cleaned text's
    fingerprint, plus a digest of the AV vectors when a fusion model reads them."""
    if AV_FLAG not in record:
        return record["fingerprint"]
    import hashlib

    vectors = json.dumps([record.get(name) for name in (*AV_FIELDS, AV_FLAG)]).encode()
    return f"{record['fingerprint']}+av:{hashlib.md5(vectors).hexdigest()[:16]}"


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
        lines = rows | "ToJson" >> beam.Map(json.dumps, ensure_ascii=False, sort_keys=True)
        return lines | "Write" >> beam.io.WriteToText(self._prefix, ".jsonl")


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


def _score_text(p, config: PredictConfig, handle: ModelHandle):
    """Catalog -> ``(record, scores)``; also the read records, duplicates and dead letters."""
    read = p | "ReadCatalog" >> ReadCatalog(config.input, config.schema, config.input_format)
    unique = read.records | "Deduplicate" >> Deduplicate()
    clean = CleanAndTokenize(config.text, config.av_sizes, keep_empty_text=True)
    cleaned = unique.records | "CleanAndTokenize" >> clean
    scores, failed = cleaned.records | "RunInference" >> RunInference(
        handle, config.min_batch, config.max_batch
    )
    return (
        scores,
        read.records,
        unique.duplicates,
        (read.dead_letters, cleaned.dead_letters, failed),
    )


def _score_av(p, config: PredictConfig, handle: ModelHandle, av: dict):
    """YouTube-8M shards -> ``(record, scores)``, as ``_score_text``."""
    from pipelines.av_predict import ReadYT8M, RunDenseInference

    read = p | "ReadYT8M" >> ReadYT8M(config.input, av)
    unique = read.records | "Deduplicate" >> Deduplicate()
    scores, failed = unique.records | "RunInference" >> RunDenseInference(
        handle, av["frame_level"], config.min_batch, config.max_batch
    )
    return scores, read.records, unique.duplicates, (read.dead_letters, failed)


def build_pipeline(p: beam.Pipeline, config: PredictConfig) -> None:
    """Adds the predict graph to ``p``; everything lands under ``staging_dir``."""
    labels = export.read_extra(config.export_dir, export.LABELS_FILE)
    card = export.read_extra(config.export_dir, export.CARD_FILE)
    handle = ModelHandle(config.export_dir, config.share_across_processes)
    if card.get("features") == "yt8m":
        scores, records, duplicates, dead = _score_av(p, config, handle, card["av"])
    else:
        scores, records, duplicates, dead = _score_text(p, config, handle)
    thresholds = thresholds_for(config, labels)
    to_tags = ToTags(
        labels, thresholds, config.top_k, card["model_version"], config.tagged_at,
        rollup=config.rollup,
    )  # fmt: skip
    rows = scores | "ToTags" >> beam.ParDo(to_tags)
    _ = rows | "WriteTags" >> WriteTags(config.staging_dir, config.output_format)
    dead = dead | "FlattenDead" >> beam.Flatten()
    _ = dead | "WriteDeadLetters" >> WriteDeadLetters(config.staging_dir)
    stats = report.intake_stats(records, duplicates, dead) + report.tagged_stats(rows)
    _ = (
        stats
        | "FlattenStats" >> beam.Flatten()
        | "WriteStats" >> report.WriteStats(config.staging_dir)
    )


def _beam_metrics(result) -> dict:
    try:
        queried = result.metrics().query()
    except Exception:  # noqa: BLE001 - some runners cannot report metrics
        return {}
    out = {m.key.metric.name: m.committed for m in queried["counters"]}
    for m in queried["distributions"]:
        d = m.committed
        if d is not None and d.count:
            out[m.key.metric.name] = {"count": d.count, "mean": d.mean, "min": d.min, "max": d.max}
    return out


def finalize(config: PredictConfig, result, seconds: float) -> dict:
    """Writes the report into staging, then publishes staging atomically."""
    stats = report.read_json(FileSystems.join(config.staging_dir, report.STATS_FILE))
    metrics = _beam_metrics(result)
    tokens = metrics.get("tokens", 0)
    payload = {
        "records": report.record_counts(stats),
        "dead_letters": stats.get("dead_letters", {}),
        "model_version": export.read_extra(config.export_dir, export.CARD_FILE)["model_version"],
        "oov_token_rate": round(metrics.get("oov_tokens", 0) / tokens, 6) if tokens else None,
        "beam_metrics": metrics,
        "run_seconds": round(seconds, 3),
    }  # fmt: skip
    report.write_json(FileSystems.join(config.staging_dir, REPORT_FILE), payload)
    labels = export.read_extra(config.export_dir, export.LABELS_FILE)
    used = dict(zip(labels, thresholds_for(config, labels).tolist(), strict=True))
    report.write_json(FileSystems.join(config.staging_dir, THRESHOLDS_USED_FILE), used)
    publish(config.staging_dir, config.output_dir)
    return payload


def publish(staging: str, output_dir: str) -> None:
    """Replaces the published result with the staged one; ``_SUCCESS`` last."""
    jobs.remove(FileSystems.join(output_dir, SUCCESS))
    for name in PUBLISHED:
        jobs.remove(FileSystems.join(output_dir, name))
    for name in PUBLISHED:
        source = FileSystems.join(staging, name)
        if FileSystems.exists(source):
            FileSystems.rename([source], [FileSystems.join(output_dir, name)])
    jobs.remove(staging)
    with FileSystems.create(FileSystems.join(output_dir, SUCCESS)) as handle:
        handle.write(b"")


def check_model(export_dir: str) -> None:
    """Loads the export once at launch so a broken model fails before any work."""
    from models.serving import LoadedTagger, ModelMismatchError

    try:
        LoadedTagger(export_dir)
    except KeyError as err:
        raise jobs.JobError(f"the model in {export_dir!r} lacks the {err} signature") from None
    except (ModelMismatchError, OSError, ValueError) as err:
        raise jobs.JobError(f"unusable model in {export_dir!r}: {err}".splitlines()[0]) from None


def run(argv: list[str] | None = None) -> dict:
    options = PipelineOptions(argv)
    config = config_from_options(options)
    jobs.require_input(config.input)
    check_model(config.export_dir)
    jobs.prepare_output_dir(config.output_dir, ("_staging",))
    start = time.monotonic()
    p = beam.Pipeline(options=options)
    build_pipeline(p, config)
    result = p.run()
    result.wait_until_finish()
    payload = finalize(config, result, time.monotonic() - start)
    logging.info("predict done: %s", payload["records"])
    return payload
