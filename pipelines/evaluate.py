"""The evaluate job: a predict output scored against a labelled catalog, on Beam.

ReadPredictions + (ReadCatalog -> Deduplicate -> CleanAndTokenize -> AssignSplits,
exactly as preprocess assigns splits) -> JoinVideos (by ``video_id``) ->
ComputeMetrics (mergeable ``CombineFn``s, one pass) -> WriteReport (``report.json``).
Scores of labels outside a video's listed top-k count as 0 (below every listed
score); a catalog label the predictions never list is a positive that is never
retrieved (AP 0, recall 0, still in GAP's denominator). Exact mode keeps the
scores; binned mode keeps ``num_bins`` score histograms (memory independent of
the number of videos; scores off by at most one bin width, ``1 / num_bins``).
"""

from __future__ import annotations

import dataclasses
import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import jobs, report
from pipelines import options as flags
from pipelines.catalog_io import ReadCatalog
from pipelines.eval_metrics import CategoryFn, GapFn, VideoStatsFn, headline, ratio, video_item
from pipelines.preprocess import AssignSplits, PreprocessConfig
from pipelines.steps import CleanAndTokenize, Deduplicate
from transforms.records import SPLITS, RecordSchema
from transforms.splits import SplitConfig
from transforms.text import TextConfig

REPORT_FILE = "report.json"
COUNTS = "counts"


class EvaluateOptions(PipelineOptions):
    """Scoring a predict output (with --catalog, --model-dir and --output-dir)."""

    # --catalog (NightlyOptions) and --model-dir (PredictOptions) are reused: Beam
    # parses every options class in one argparse parser, so a second definition breaks it.
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--predictions", help="A predict --output-dir (JSONL tags).")
        parser.add_argument("--split", choices=SPLITS, help="Only this split (default: all).")
        parser.add_argument(
            "--binned", action="store_true", help="Histogram scores (bounded memory)."
        )
        parser.add_argument("--num-bins", type=int, default=1000, help="Bins for --binned.")


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    predictions: str
    catalog: str
    output_dir: str
    schema: RecordSchema = RecordSchema()
    split: str | None = None
    split_config: SplitConfig = SplitConfig()
    text: TextConfig = TextConfig()
    input_format: str = "auto"
    num_bins: int = 1000
    exact: bool = True


def config_from_options(options: PipelineOptions) -> EvaluateConfig:
    opts, catalog = options.view_as(EvaluateOptions), options.view_as(flags.CatalogOptions)
    labelled = options.view_as(flags.NightlyOptions).catalog
    model_dir = options.view_as(flags.PredictOptions).model_dir
    output_dir = options.view_as(flags.OutputOptions).output_dir
    jobs.require(opts.predictions and labelled and output_dir,
                 "--predictions, --catalog and --output-dir are required")  # fmt: skip
    jobs.require(opts.num_bins >= 1, "--num-bins must be >= 1")
    try:
        text, schema = TextConfig(), flags.record_schema(options)
        if model_dir:
            from models import export

            export_dir = FileSystems.join(model_dir, "saved_model")
            trained = export.read_extra(export_dir, export.PREPROCESS_CONFIG_FILE)
            trained = jobs.from_jsonable(PreprocessConfig, trained)
            mapped = catalog.field or catalog.list_separator or catalog.label_map
            text, schema = trained.text, schema if mapped else trained.schema
        return EvaluateConfig(
            predictions=opts.predictions, catalog=labelled, output_dir=output_dir,
            schema=schema, split=opts.split, split_config=flags.split_config(options), text=text,
            input_format=catalog.input_format, num_bins=opts.num_bins, exact=not opts.binned,
        )  # fmt: skip
    except (ValueError, OSError) as err:
        raise jobs.JobError(str(err).splitlines()[0]) from None


def _report(metrics, counts: dict, config: EvaluateConfig) -> str:
    videos, gap, rows = metrics
    payload = {
        "metrics": headline(videos, gap, rows),
        "per_category": rows,
        "coverage": {"videos_with_tags": videos["covered"],
                     "fraction": ratio(videos["covered"], videos["videos"])},
        "counts": {key: counts.get(key, 0) for key in (
            "evaluated", "predictions_without_catalog", "catalog_without_prediction")},
        "split": config.split or "all",
    }  # fmt: skip
    if not config.exact:
        payload["binned"] = {"bins": config.num_bins, "max_score_error": 1 / config.num_bins}
    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False)


def _join(keyed, split: str | None):
    video_id, grouped = keyed
    catalog, predictions = list(grouped["catalog"]), list(grouped["predictions"])
    if not catalog:
        yield beam.pvalue.TaggedOutput(COUNTS, "predictions_without_catalog")
        return
    video_split, labels = catalog[0]
    if split is not None and video_split != split:
        return
    if not predictions:
        yield beam.pvalue.TaggedOutput(COUNTS, "catalog_without_prediction")
        return
    yield beam.pvalue.TaggedOutput(COUNTS, "evaluated")
    yield video_item(video_id, labels, predictions[0])


class EvaluatedVideos(beam.PTransform):
    """Applied to the pipeline: ``.videos`` (see ``video_item``) of the wanted split
    with both a catalog record and a prediction, and ``.counts`` (outcome names)."""

    def __init__(self, config: EvaluateConfig):
        super().__init__()
        self._config = config

    def expand(self, p):
        config = self._config
        pattern = FileSystems.join(config.predictions, "tags", "part-*.jsonl")
        predictions = (
            p
            | "ReadPredictions" >> beam.io.ReadFromText(pattern)
            | "ParsePredictions" >> beam.Map(json.loads)
            | "KeyPredictions" >> beam.Map(lambda row: (row["video_id"], row))
        )
        read = p | "ReadCatalog" >> ReadCatalog(config.catalog, config.schema, config.input_format)
        unique = read.records | "Deduplicate" >> Deduplicate()
        cleaned = unique.records | "CleanAndTokenize" >> CleanAndTokenize(config.text)
        catalog = (
            cleaned.records
            | "AssignSplits" >> AssignSplits(config.split_config)
            | "KeyCatalog" >> beam.Map(lambda r: (r["video_id"], (r["split"], r["labels"])))
        )
        return (
            {"catalog": catalog, "predictions": predictions}
            | "GroupByVideo" >> beam.CoGroupByKey()
            | "JoinVideos" >> beam.FlatMap(_join, config.split).with_outputs(COUNTS, main="videos")
        )


def build_pipeline(p: beam.Pipeline, config: EvaluateConfig) -> None:
    """Adds the evaluate graph to ``p``; it writes ``report.json`` into ``output_dir``."""
    joined = p | "EvaluatedVideos" >> EvaluatedVideos(config)
    counts = joined[COUNTS] | "CountOutcomes" >> beam.combiners.Count.PerElement()
    combine = beam.combiners.SingleInputTupleCombineFn(
        VideoStatsFn(),
        GapFn(config.exact, config.num_bins),
        CategoryFn(config.exact, config.num_bins),
    )
    _ = (
        joined.videos
        | "ComputeMetrics" >> beam.CombineGlobally(combine)
        | "BuildReport" >> beam.Map(_report, beam.pvalue.AsDict(counts), config)
        | "WriteReport"
        >> beam.io.WriteToText(
            FileSystems.join(config.output_dir, REPORT_FILE), shard_name_template=""
        )
    )


def run(argv: list[str] | None = None) -> dict:
    """Parses flags, runs the job, returns the report it wrote."""
    options = PipelineOptions(argv)
    config = config_from_options(options)
    jobs.require_input(FileSystems.join(config.predictions, "tags", "part-*.jsonl"))
    jobs.require_input(config.catalog)
    jobs.prepare_output_dir(config.output_dir, (REPORT_FILE,))
    with beam.Pipeline(options=options) as p:
        build_pipeline(p, config)
    return report.read_json(FileSystems.join(config.output_dir, REPORT_FILE))
