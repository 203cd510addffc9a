"""Options of the jobs that score videos with a trained model.

``predict``, ``nightly``, ``evaluate`` and ``tune-thresholds`` (with the
catalog and output flags of ``pipelines.components.options``, which re-exports
these classes: import them from there). Every flag has ``help=``.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.components import guards
from transforms.records import SPLITS

WRITE_EMBEDDINGS = "write"  # predict's bare --embeddings


class PredictOptions(PipelineOptions):
    """The batch predictor: model, output, batching."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--model-dir", help="A train --model-dir (holds saved_model/).")
        parser.add_argument("--top-k", type=int, default=20, help="Labels kept per video.")
        parser.add_argument(
            "--threshold",
            default="tuned",
            help="'tuned' (per-category thresholds saved with the model) or a score in [0, 1].",
        )
        parser.add_argument(
            "--rollup",
            help="Roll fine labels up into generic categories: a YouTube-8M vocabulary.csv "
            "or a 'label,category' CSV (adds 'categories' to every row).",
        )
        parser.add_argument(
            "--rollup-column",
            default="Vertical1",
            help="vocabulary.csv column(s) naming the category (comma list allowed).",
        )
        parser.add_argument(
            "--rollup-method",
            default="max",
            choices=("max", "noisy_or"),
            help="Category score from its members: max or noisy_or (1 - prod(1 - p)).",
        )
        parser.add_argument(
            "--thresholds-file",
            help="Per-category thresholds written by 'catalog-tagger tune-thresholds' "
            "(categories it lacks keep the model's tuned thresholds).",
        )
        parser.add_argument(
            "--batch-size", type=int, default=512, help="Largest inference batch (videos)."
        )
        parser.add_argument(
            "--min-batch-size", type=int, default=16, help="Smallest inference batch (videos)."
        )
        parser.add_argument(
            "--output-format",
            default="jsonl",
            choices=("jsonl", "csv", "tfrecord"),
            help="Format of the tag shards.",
        )
        parser.add_argument(
            "--share-model-across-processes",
            action="store_true",
            help="One model per machine (Beam multi_process_shared) instead of per process.",
        )
        parser.add_argument(
            "--tagged-at", help="Timestamp written in every row (default: now, UTC)."
        )
        parser.add_argument(  # one flag for two jobs: Beam parses every options class at once
            "--embeddings",
            nargs="?",
            const=WRITE_EMBEDDINGS,
            metavar="PATH",
            help="predict (no value): also write each video's embedding (the model's hidden "
            "layer) as Parquet under OUTPUT/embeddings/. similar: the embeddings to index, a "
            "predict --output-dir, a directory of Parquet files (video_id, embedding) or a glob.",
        )


class NightlyOptions(PipelineOptions):
    """The nightly incremental job (with PredictOptions and the catalog flags)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--catalog", help="Catalog path or glob, as for --input.")
        parser.add_argument(
            "--state-dir", help="Holds the tags table (latest row per video) and run history."
        )
        parser.add_argument(
            "--retrain",
            action="store_true",
            help="Retrain on the labelled catalog first; promote only if it passes the gate.",
        )
        parser.add_argument(
            "--retrain-every-days",
            type=int,
            default=0,
            help="Retrain when the last retrain is this many days old (0: only with --retrain).",
        )
        parser.add_argument(
            "--max-deleted-fraction",
            type=float,
            default=guards.MAX_DELETED_FRACTION,
            help="Refuse to publish a table that drops more than this fraction of the live "
            "table's videos (an empty or partial catalog), unless --allow-mass-delete.",
        )
        parser.add_argument(
            "--allow-mass-delete",
            action="store_true",
            help="Publish even when the catalog lost more than --max-deleted-fraction.",
        )
        parser.add_argument(
            "--lock-expiry-hours",
            type=float,
            default=12.0,
            help="A run's lock on --state-dir lapses after this long (a crashed run's lock "
            "can then be taken over).",
        )
        parser.add_argument(
            "--gap-tolerance",
            type=float,
            default=0.005,
            help="Promote a candidate if its held-out GAP@20 >= current - tolerance.",
        )


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
        parser.add_argument(
            "--baseline", help="Another predict --output-dir to compare with (e.g. the last model)."
        )


class TuneOptions(PipelineOptions):
    """Threshold tuning (with the evaluate flags; --split defaults to eval)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--min-precision",
            type=float,
            help="Per category, the lowest threshold whose precision reaches this value "
            "(default: the threshold maximizing F1).",
        )
