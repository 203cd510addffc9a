"""The evaluate job's inputs: predict outputs joined with the labelled catalog.

The catalog is read, deduplicated, cleaned and split exactly as preprocess
does (or, for a YouTube-8M TFRecord catalog, split by the video id's hash as
the audio/visual trainer does), then joined by ``video_id`` with one or two
predict outputs (``predictions`` and ``baseline``). Unlike preprocess, it keeps
the videos whose text is empty after cleaning, since predict tags them (with the
model's prior): such a video gets its split as any other would (its own
``split``, or its group's hash), and counts as ``empty_text`` when its row says so.
"""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.components import report
from pipelines.components.catalog_io import EMPTY_TEXT
from pipelines.components.intake import CatalogIntake
from pipelines.components.preprocessing import AssignSplits
from pipelines.components.steps import PrepareText
from pipelines.evaluation.metrics import video_item

COUNTS = "counts"


def _join(keyed, split: str | None, sources: tuple[str, ...]):
    video_id, grouped = keyed
    catalog = list(grouped["catalog"])
    if not catalog:
        yield beam.pvalue.TaggedOutput(COUNTS, "predictions_without_catalog")
        return
    video_split, labels = catalog[0]
    if split is not None and video_split != split:
        return
    rows = {name: list(grouped[name]) for name in sources}
    if not rows["predictions"]:
        yield beam.pvalue.TaggedOutput(COUNTS, "catalog_without_prediction")
        return
    if "baseline" in rows and not rows["baseline"]:
        yield beam.pvalue.TaggedOutput(COUNTS, "catalog_without_baseline")
        return
    yield beam.pvalue.TaggedOutput(COUNTS, "evaluated")
    if rows["predictions"][0].get(EMPTY_TEXT, False):
        yield beam.pvalue.TaggedOutput(COUNTS, EMPTY_TEXT)
    for name, found in rows.items():
        yield beam.pvalue.TaggedOutput(name, video_item(video_id, labels, found[0]))


def tags_pattern(predictions: str) -> str:
    return FileSystems.join(predictions, "tags", "part-*.jsonl")


class EvaluatedVideos(beam.PTransform):
    """Applied to the pipeline, a dict of PCollections: ``predictions`` (and
    ``baseline``) video items (see ``video_item``) of the wanted split with a
    catalog record and every prediction, ``counts`` (outcome names), and the
    catalog's ``intake`` stat pairs and ``dead_letters``."""

    def __init__(self, config):
        super().__init__()
        self._config = config

    def expand(self, p):
        config = self._config
        catalog, intake, dead = p | "Catalog" >> LabelledCatalog(config)
        keyed = {"catalog": catalog}
        for name, path in config.sources().items():
            keyed[name] = (
                p
                | f"Read{name.title()}" >> beam.io.ReadFromText(tags_pattern(path))
                | f"Parse{name.title()}" >> beam.Map(json.loads)
                | f"Key{name.title()}" >> beam.Map(lambda row: (row["video_id"], row))
            )
        sources = tuple(config.sources())
        joined = (
            keyed
            | "GroupByVideo" >> beam.CoGroupByKey()
            | "JoinVideos"
            >> beam.FlatMap(_join, config.split, sources).with_outputs(COUNTS, *sources)
        )
        outputs = {name: joined[name] for name in (COUNTS, *sources)}
        return outputs | {"intake": intake, "dead_letters": dead}


class LabelledCatalog(beam.PTransform):
    """``(video_id, (split, labels))`` read, deduplicated and split as preprocess does;
    returns them with the intake's stat pairs (``report.intake_stats``) and dead letters."""

    def __init__(self, config):
        super().__init__()
        self._config = config

    def expand(self, p):
        config = self._config
        if config.input_format == "yt8m":
            from pipelines.components.yt8m_io import LabelledYT8M

            keyed = p | "ReadYT8M" >> LabelledYT8M(
                config.catalog, config.label_names, config.split_config
            )
            counted = keyed | "CountParsed" >> report.count_as(("records", "parsed"))
            return keyed, counted, p | "NoDeadLetters" >> beam.Create([])
        intake = p | "Intake" >> CatalogIntake(config.catalog, config.schema, config.input_format)
        clean = PrepareText(config.text, config.av_sizes, keep_empty_text=True)
        cleaned = intake.records | "PrepareText" >> clean
        keyed = (
            cleaned.records
            | "AssignSplits" >> AssignSplits(config.split_config)
            | "KeyCatalog" >> beam.Map(lambda r: (r["video_id"], (r["split"], r["labels"])))
        )
        dead = (intake.dead_letters, cleaned.dead_letters) | "FlattenDead" >> beam.Flatten()
        stats = report.intake_stats(intake.read, intake.duplicates, dead)
        return keyed, stats | "FlattenIntake" >> beam.Flatten(), dead
