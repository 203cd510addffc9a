"""The evaluate job: a predict output scored against a labelled catalog, on Beam.

ReadPredictions + (CatalogIntake -> PrepareText -> AssignSplits,
exactly as preprocess assigns splits, but keeping the videos with empty text,
which predict tags) -> JoinVideos (by ``video_id``) ->
ComputeMetrics + ComputeCurves (mergeable ``CombineFn``s, one pass) -> WriteReport
(``report.json``), then ``report.html`` with PNG plots (``pipelines/evaluation/report.py``).
With ``--baseline`` a second predict output is joined too, both are scored on
the videos they share, and the report adds per-metric and per-category deltas.
Scores of labels outside a video's listed top-k count as 0 (below every listed
score); a catalog label the predictions never list is a positive that is never
retrieved (AP 0, recall 0, still in GAP's denominator). Exact mode keeps the
scores; binned mode keeps ``num_bins`` score histograms (memory independent of
the number of videos; scores off by at most one bin width, ``1 / num_bins``).
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.components import guards, jobs, publish, report
from pipelines.components import options as flags
from pipelines.components.catalog_io import WriteDeadLetters
from pipelines.components.publish import Publish, RunSettings
from pipelines.evaluation import report as eval_report
from pipelines.evaluation.config import (
    EvaluateConfig,
    config_from_options,
    used_thresholds,
)
from pipelines.evaluation.curves import CurvesFn
from pipelines.evaluation.join import COUNTS, EvaluatedVideos, tags_pattern
from pipelines.evaluation.metrics import (
    CategoryFn,
    GapFn,
    VideoStatsFn,
    headline,
    ratio,
    rollup_item,
)

REPORT_FILE = "report.json"
COUNT_KEYS = (
    "evaluated",
    "empty_text",  # evaluated videos predict scored with no words (their rows' flag)
    "predictions_without_catalog",
    "catalog_without_prediction",
    "catalog_without_baseline",
)
PUBLISHED = (publish.DEAD_LETTERS, *eval_report.OUTPUT_FILES, REPORT_FILE)  # report last


def _scores(metrics, thresholds: dict) -> dict:
    videos, gap, rows = metrics
    rows = [{**row, "threshold": thresholds.get(row["name"])} for row in rows]  # inputs stay intact
    return {
        "metrics": headline(videos, gap, rows),
        "per_category": rows,
        "coverage": {"videos_with_tags": videos["covered"],
                     "fraction": ratio(videos["covered"], videos["videos"])},
    }  # fmt: skip


def deltas(candidate: dict, baseline: dict) -> dict:
    """Candidate minus baseline, per headline metric and per shared category."""
    base_rows = {row["name"]: row for row in baseline["per_category"]}
    per_category = {}
    for row in candidate["per_category"]:
        base = base_rows.get(row["name"])
        if base is None:
            continue
        per_category[row["name"]] = {
            key: None if row[key] is None or base[key] is None else row[key] - base[key]
            for key in ("ap", "f1", "precision", "recall")
        }
    return {
        "metrics": {key: value - baseline["metrics"][key]
                    for key, value in candidate["metrics"].items()},
        "per_category": per_category,
    }  # fmt: skip


def _report(metrics, counts: dict, curves: dict, intake: list, baseline, levels, config):
    payload = _scores(metrics, config.thresholds)
    stats = report.nest(intake)
    payload |= {
        "curves": curves,
        "counts": {key: counts.get(key, 0) for key in COUNT_KEYS},
        "catalog": report.intake_counts(stats),
        "dead_letters": stats.get("dead_letters", {}),
        "split": config.split or "all",
    }
    if baseline is not None:
        payload["baseline"] = _scores(baseline, config.baseline_thresholds)
        payload["deltas"] = deltas(payload, payload["baseline"])
    if levels is not None:
        payload["levels"] = {"category": _scores(levels, {}), "method": config.rollup[1]}
    if not config.exact:
        payload["binned"] = {"bins": config.num_bins, "max_score_error": 1 / config.num_bins}
    return payload


def _metrics_combine(config: EvaluateConfig):
    return beam.combiners.SingleInputTupleCombineFn(
        VideoStatsFn(),
        GapFn(config.exact, config.num_bins),
        CategoryFn(config.exact, config.num_bins),
    )


def build_pipeline(p: beam.Pipeline, config: EvaluateConfig, run: RunSettings) -> None:
    """Adds the evaluate graph to ``p``; its last step publishes ``report.json`` and
    ``report.html`` (with plots) into ``output_dir``."""
    joined = p | "EvaluatedVideos" >> EvaluatedVideos(config)
    counts = joined[COUNTS] | "CountOutcomes" >> beam.combiners.Count.PerElement()
    intake = joined["intake"] | "SumIntake" >> beam.CombinePerKey(sum)
    videos = joined["predictions"]
    curves = videos | "ComputeCurves" >> beam.CombineGlobally(CurvesFn())
    baseline = None
    if config.baseline:
        baseline = beam.pvalue.AsSingleton(
            joined["baseline"] | "ComputeBaseline" >> beam.CombineGlobally(_metrics_combine(config))
        )
    levels = None
    if config.rollup:
        levels = beam.pvalue.AsSingleton(
            videos
            | "RollUp" >> beam.Map(rollup_item, *config.rollup)
            | "ComputeCategoryMetrics" >> beam.CombineGlobally(_metrics_combine(config))
        )
    written = [joined["dead_letters"] | "WriteDeadLetters" >> WriteDeadLetters(staging(config))]
    side = (beam.pvalue.AsSingleton(curves), beam.pvalue.AsList(intake), baseline, levels)
    _ = (
        videos
        | "ComputeMetrics" >> beam.CombineGlobally(_metrics_combine(config))
        | "BuildReport" >> beam.Map(_report, beam.pvalue.AsDict(counts), *side, config)
        | "Publish" >> Publish(PublishEvaluation(config, run), written)
    )


def staging(config: EvaluateConfig) -> str:
    return FileSystems.join(config.output_dir, publish.STAGING)


class PublishEvaluation:
    """Evaluate's publish step: the catalog's dead-letter guard, the HTML report and
    its plots, then ``report.json`` and the rest moved into ``output_dir``."""

    def __init__(self, config: EvaluateConfig, run: RunSettings):
        self._config, self._run = config, run

    def __call__(self, payload: dict) -> dict:
        config = self._config
        return publish.publish_once(
            staging(config), config.output_dir, PUBLISHED, lambda: self.report(payload)
        )

    def report(self, payload: dict) -> tuple[dict, str | None]:
        eval_report.write_html_report(payload, staging(self._config))
        dead_dir = FileSystems.join(staging(self._config), publish.DEAD_LETTERS)
        refusal = guards.dead_letter_refusal(
            payload["catalog"]["in"], payload["dead_letters"], self._run.guards, dead_dir,
            "catalog records read",
        )  # fmt: skip
        return payload, refusal


def run(argv: list[str] | None = None) -> dict:
    """Parses flags, runs the job; returns the published ``report.json``."""
    options = PipelineOptions(argv)
    config = config_from_options(options)
    settings = flags.run_settings(options)
    for path in config.sources().values():
        jobs.require_input(tags_pattern(path))
    files = jobs.require_input(config.catalog)
    config = dataclasses.replace(
        config,
        thresholds=used_thresholds(config.predictions),
        baseline_thresholds=used_thresholds(config.baseline) if config.baseline else {},
    )
    jobs.prepare_output_dir(config.output_dir, (publish.STAGING,))
    if config.input_format != "yt8m":
        dead_dir = FileSystems.join(staging(config), publish.DEAD_LETTERS)
        guards.preflight(files, config.schema, config.input_format, settings.guards, dead_dir)
    p = beam.Pipeline(options=options)
    build_pipeline(p, config, settings)
    if publish.run_pipeline(p, staging(config), settings.wait, "evaluate") is None:
        return {"submitted": config.output_dir}
    return report.read_json(FileSystems.join(config.output_dir, REPORT_FILE))
