"""Typed pipeline options, and the frozen configs built from them.

Every job's options class is importable from here: the catalog, output and
preprocess ones are defined here, those of the jobs that score with a model
(predict, nightly, evaluate, tune-thresholds) in ``scoring_options``.

Every flag has ``help=``. Options are Beam ``PipelineOptions`` subclasses, so
the same command line carries Beam's own flags (``--runner``,
``--temp_location``, ``--setup_file``, ``--direct_num_workers`` ...). Nothing
here names a runner: runner settings come from a profile (see
``pipelines/profiles/`` and ``deploy/runners/``).
"""

from __future__ import annotations

import argparse

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.components import guards
from pipelines.components.catalog_io import FORMATS
from pipelines.components.scoring_options import (
    WRITE_EMBEDDINGS,
    EvaluateOptions,
    NightlyOptions,
    PredictOptions,
    TuneOptions,
)
from transforms.errors import JobError
from transforms.features import WEIGHTINGS, TransformConfig
from transforms.records import RecordSchema, parse_label_map
from transforms.splits import SplitConfig
from transforms.text import TextConfig

# defined beside (scoring_options), re-exported: every options class is importable from here
__all__ = ["EvaluateOptions", "NightlyOptions", "PredictOptions", "TuneOptions", "WRITE_EMBEDDINGS"]


class CatalogOptions(PipelineOptions):
    """Where the catalog is and how its schema maps onto canonical fields."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--input", help="Catalog file path or glob (JSONL or CSV, .gz ok).")
        parser.add_argument(
            "--input-format", default="auto", choices=FORMATS, help="Force the input format."
        )
        parser.add_argument(
            "--field",
            action="append",
            default=[],
            help="CANONICAL=SOURCE column mapping, e.g. video_id=show_id (repeatable).",
        )
        parser.add_argument(
            "--list-separator",
            action="append",
            default=[],
            help="FIELD=SEP for list fields given as strings, e.g. categories=, (default |).",
        )
        parser.add_argument(
            "--label-map",
            help="JSON file mapping raw category values to names ({raw: name}, or a "
            "YouTube videoCategoryListResponse such as US_category_id.json).",
        )
        parser.add_argument(
            "--updated-at-format",
            help="strptime format of updated_at (default: epoch seconds or ISO 8601).",
        )
        parser.add_argument(
            "--split-key",
            help="Source column the hash split groups on (default: the video_id column).",
        )
        parser.add_argument(
            "--max-field-chars",
            type=int,
            default=100_000,
            help="Text/tag fields longer than this are dead-lettered.",
        )


class OutputOptions(PipelineOptions):
    """Where a job writes, and when it publishes."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--output-dir", help="Directory the job writes (owned by the job).")
        parser.add_argument(
            "--max-dead-letter-fraction",
            type=float,
            default=guards.MAX_DEAD_LETTER_FRACTION,
            help="Refuse to publish when more of the records read than this fraction were "
            "dead-lettered (the previous output stays).",
        )
        parser.add_argument(
            "--wait",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="Wait for the job to finish (--no-wait: return once it is submitted; the "
            "job still publishes its output, report and _SUCCESS itself).",
        )


class TextOptions(PipelineOptions):
    """How text is cleaned and tokenized (transforms/text.py)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--ascii-only", action="store_true", help="Fold accents and drop non-ASCII text."
        )
        parser.add_argument(
            "--digits",
            default="drop",
            choices=("drop", "keep", "token"),
            help="All-digit tokens: drop them, keep them, or replace them by <num>.",
        )
        parser.add_argument("--stem", action="store_true", help="Snowball English stemming.")
        parser.add_argument(
            "--keep-stopwords", action="store_true", help="Do not remove English stopwords."
        )
        parser.add_argument(
            "--bigrams",
            action=argparse.BooleanOptionalAction,
            default=TextConfig().bigrams,
            help="Add word bigrams a_b (--no-bigrams: words alone).",
        )
        parser.add_argument(
            "--max-tokens", type=int, default=5000, help="Keep at most this many tokens a video."
        )


class TransformOptions(PipelineOptions):
    """tf.Transform vocabulary and weighting."""

    @classmethod
    def _add_argparse_args(cls, parser):
        defaults = TransformConfig()
        parser.add_argument(
            "--vocab-top-k",
            type=int,
            default=defaults.top_k,
            help="Keep the terms in the most train videos, at most this many.",
        )
        parser.add_argument(
            "--frequency-threshold",
            type=int,
            default=defaults.frequency_threshold,
            help="Drop terms found in fewer train videos than this (min_df).",
        )
        parser.add_argument(
            "--oov-buckets",
            type=int,
            default=defaults.num_oov_buckets,
            help="Hash buckets for out-of-vocabulary words (0: unseen words are dropped; "
            "with buckets, train --oov-rate teaches them what an unseen word means).",
        )
        parser.add_argument(
            "--weighting",
            default=defaults.weighting,
            choices=WEIGHTINGS,
            help="Bag-of-words weights: sublinear_tfidf ((1 + ln count) * idf), tfidf "
            "(count / length * idf), count or binary.",
        )
        parser.add_argument(
            "--l2-normalize",
            action=argparse.BooleanOptionalAction,
            default=defaults.l2_normalize,
            help="Scale each video's weights to unit L2 norm.",
        )
        parser.add_argument(
            "--min-label-count",
            type=int,
            default=1,
            help="Drop categories with fewer train videos than this.",
        )
        parser.add_argument(
            "--av-features",
            action="store_true",
            help="Keep each record's mean_rgb/mean_audio vectors (zeros and has_av=0 when "
            "absent) for a text + audio/visual fusion model; AV-only records are kept.",
        )
        parser.add_argument(
            "--rgb-size", type=int, default=1024, help="Length of mean_rgb (--av-features)."
        )
        parser.add_argument(
            "--audio-size", type=int, default=128, help="Length of mean_audio (--av-features)."
        )


class PreprocessOptions(PipelineOptions):
    """Splits and outputs of the preprocess job."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--split-ratios", default="80,10,10", help="TRAIN,EVAL,TEST percentages."
        )
        parser.add_argument("--split-salt", default="", help="Salt that reshuffles hash splits.")
        parser.add_argument(
            "--num-shards",
            type=int,
            default=0,
            help="TFRecord shards per split; 0 lets the runner decide.",
        )


def record_schema(options: PipelineOptions) -> RecordSchema:
    """The record schema from the catalog flags (reads --label-map now)."""
    opts = options.view_as(CatalogOptions)
    label_map = None
    if opts.label_map:
        with FileSystems.open(opts.label_map) as handle:
            label_map = parse_label_map(handle.read().decode("utf-8"))
    return RecordSchema.from_flags(
        fields=opts.field,
        separators=opts.list_separator,
        label_map=label_map,
        updated_at_format=opts.updated_at_format,
        group_key=opts.split_key,
        max_field_chars=opts.max_field_chars,
    )


def text_config(options: PipelineOptions) -> TextConfig:
    opts = options.view_as(TextOptions)
    return TextConfig(
        ascii_only=opts.ascii_only,
        digits=opts.digits,
        stem=opts.stem,
        remove_stopwords=not opts.keep_stopwords,
        bigrams=opts.bigrams,
        max_tokens=opts.max_tokens,
    )


def transform_config(options: PipelineOptions) -> TransformConfig:
    opts = options.view_as(TransformOptions)
    return TransformConfig(
        top_k=opts.vocab_top_k,
        frequency_threshold=opts.frequency_threshold,
        num_oov_buckets=opts.oov_buckets,
        weighting=opts.weighting,
        l2_normalize=opts.l2_normalize,
        min_label_count=opts.min_label_count,
        av_features=opts.av_features,
        rgb_size=opts.rgb_size,
        audio_size=opts.audio_size,
    )


def split_config(options: PipelineOptions) -> SplitConfig:
    opts = options.view_as(PreprocessOptions)
    return SplitConfig.parse(opts.split_ratios, opts.split_salt)


def run_settings(options: PipelineOptions):
    """The guards and waiting of a run, from its flags (a ``JobError`` if out of range)."""
    from pipelines.components.publish import RunSettings

    out, nightly = options.view_as(OutputOptions), options.view_as(NightlyOptions)
    try:
        limits = guards.Guards(
            max_dead_letter_fraction=out.max_dead_letter_fraction,
            max_deleted_fraction=nightly.max_deleted_fraction,
            allow_mass_delete=nightly.allow_mass_delete,
        )
    except ValueError as err:
        raise JobError(str(err)) from None
    return RunSettings(guards=limits, wait=out.wait)
