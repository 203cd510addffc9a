"""``catalog-tagger``: one console script, one subcommand per job.

Beam jobs take their runner settings from a profile file (one flag per line)
chosen with ``--runner-profile``: ``local`` (packaged, offline) by default, or
a path such as ``deploy/runners/dataflow.args``. Flags given on the command
line after it override the profile (``pipelines.components.runner_profiles``).
The ``train`` and model-tool front ends are in ``pipelines/tools/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from pipelines.components.runner_profiles import profile_args, split_profile

PROG = "catalog-tagger"
MODEL_COMMANDS = {
    "compress": "compress_main",
    "average-checkpoints": "average_main",
    "ensemble": "ensemble_main",
}
BEAM_COMMANDS = ("preprocess", "predict", "nightly", "evaluate", "tune-thresholds", "similar")


def _sample(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} sample", description="Write the sample catalog.")
    parser.add_argument("--output", required=True, help="JSONL path (.gz to compress).")
    parser.add_argument(
        "--videos",
        type=int,
        default=None,
        help="Unique valid videos (default 3000; with --labels N: 20*N, within 1,000-200,000).",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Random seed (output is deterministic)."
    )
    parser.add_argument(
        "--labels",
        type=int,
        default=None,
        metavar="N",
        help="Instead of the sample catalog, a clean synthetic one with N labels "
        "(topic_<rank>, Zipf over ranks, 1-3 per video, each with its own 2-3 "
        "pseudo-words) for training and benchmarking with many labels.",
    )
    args = parser.parse_args(argv)
    if args.labels is None:
        from pipelines.tools.sample_catalog import write_sample_catalog

        videos = 3000 if args.videos is None else args.videos
        manifest = write_sample_catalog(args.output, videos=videos, seed=args.seed)
        print(f"wrote {manifest.lines} lines to {args.output}: {manifest.to_dict()}")
        return 0
    from pipelines.tools.sample_labels import write_label_catalog

    try:
        written = write_label_catalog(
            args.output, labels=args.labels, videos=args.videos, seed=args.seed
        )
    except ValueError as err:
        parser.error(str(err))
    print(f"wrote {written.videos} lines to {args.output}: {written.to_dict()}")
    return 0


def _serve(argv: list[str]) -> int:
    from pipelines import serve

    return serve.main(argv)


def _beam_job(command: str, argv: list[str]) -> int:
    from pipelines import evaluate, nightly, predict, preprocess, similar, tune_thresholds

    jobs = {
        "preprocess": preprocess.run,
        "predict": predict.run,
        "nightly": nightly.run,
        "evaluate": evaluate.run,
        "tune-thresholds": tune_thresholds.run,
        "similar": similar.run,
    }
    profile, rest = split_profile(argv)
    result = jobs[command](profile_args(profile) + rest)
    if isinstance(result, dict) and "submitted" in result:
        print(f"{command}: submitted; the job publishes to {result['submitted']} when it is done")
    elif isinstance(result, dict) and "records" in result:
        print(f"{command}: {result['records']}")
    elif isinstance(result, dict) and "metrics" in result:
        print(f"{command}: {json.dumps(result['metrics'])} {json.dumps(result['counts'])}")
    elif isinstance(result, dict) and "thresholds" in result:
        reached = sum(row["reached"] for row in result["per_category"])
        print(f"{command}: {len(result['thresholds'])} categories tuned on "
              f"{result['videos']} {result['split']} videos ({reached} reached the objective)")  # fmt: skip
    return 0


def _print_help() -> None:
    print(
        f"usage: {PROG} COMMAND [flags]\n\n"
        "commands:\n"
        "  sample       write the deterministic sample catalog (JSONL)\n"
        "  preprocess   catalog -> cleaned, tokenized, tf-idf TFRecords + transform graph\n"
        "  train        preprocess output -> multi-label Keras model, metrics, SavedModel\n"
        "               (--features yt8m: audio/visual models on YouTube-8M TFRecords)\n"
        "  compress     store an audio/visual model's large weights in float16\n"
        "  average-checkpoints  average the weights of the last N epoch checkpoints\n"
        "  ensemble     several models' weighted probabilities in one SavedModel\n"
        "  predict      catalog + model -> top-k tags for every video (batch, on Beam)\n"
        "  nightly      incremental tagging: only new/changed videos, persistent tags table\n"
        "  evaluate     predict output + labelled catalog -> GAP@20, Hit@1, mAP, F1,\n"
        "               report.json + report.html with plots (on Beam)\n"
        "  tune-thresholds  per-category thresholds (max F1 or --min-precision) from\n"
        "               predictions on the eval split; predict --thresholds-file uses them\n"
        "  similar      embeddings -> each video's most similar videos (faiss, on Beam);\n"
        "               --labels: each label's nearest labels (pip install .[similar])\n"
        "  serve        tag records over HTTP (POST /tag) with a model (pip install .[serve])\n\n"
        f"'{PROG} COMMAND --help' lists a command's flags; Beam jobs also take Beam's\n"
        "flags (--runner, --temp_location, --setup_file, ...) and --runner-profile.\n"
        "--verbose (any command) shows the libraries' INFO logs and TensorFlow's C++ logs."
    )


QUIET_LOGGERS = ("absl", "tensorflow", "apache_beam", "tensorflow_transform")
# Beam 2.77's RunInference warns on the root logger at every model load when torch is
# absent (its import of ``resource`` fails with the torch-only model manager).
KNOWN_NOISE = ("Resource module is not available for current platform",)


class _DropKnownNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(KNOWN_NOISE)


def configure_logging(verbose: bool) -> None:
    """Quiet by default: warnings from our code, errors from the libraries, and no
    TensorFlow C++ chatter (set before TensorFlow is imported). ``--verbose``
    restores everything, INFO included."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "3")
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.ERROR)
    if not verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_DropKnownNoise())


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and tf.Transform with the process's stderr muted: their C++
    start-up lines (oneDNN, the CUDA probe, absl's pre-init notice) ignore
    ``TF_CPP_MIN_LOG_LEVEL`` in TF 2.21. A failing import is retried unmuted."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
        import tensorflow_transform  # noqa: F401
    except ImportError:
        pass  # the real import below shows why
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in argv
    argv = [arg for arg in argv if arg != "--verbose"]
    configure_logging(verbose)
    if not verbose and argv and argv[0] not in ("sample", "-h", "--help"):
        import_tensorflow_quietly()
    if not argv or argv[0] in ("-h", "--help"):
        _print_help()
        return 0
    command, rest = argv[0], argv[1:]
    from pipelines.components.jobs import JobError

    try:
        if command == "sample":
            return _sample(rest)
        if command == "train":
            from pipelines.tools.train_commands import train_main

            return train_main(rest)
        if command == "serve":
            return _serve(rest)
        if command in MODEL_COMMANDS:
            from pipelines.tools import model_commands

            return getattr(model_commands, MODEL_COMMANDS[command])(rest)
        if command in BEAM_COMMANDS:
            if "--help" in rest or "-h" in rest:
                return _beam_help(command)
            return _beam_job(command, rest)
    except (JobError, FileNotFoundError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    print(f"{PROG}: error: unknown command {command!r}", file=sys.stderr)
    return 2


def _beam_help(command: str) -> int:
    from pipelines.components import options, similar_options

    scoring = (
        options.EvaluateOptions,
        options.NightlyOptions,
        options.PredictOptions,
        options.CatalogOptions,
        options.OutputOptions,
        options.PreprocessOptions,
    )
    groups = {
        "evaluate": scoring,
        "tune-thresholds": (options.TuneOptions, *scoring),
        "predict": (options.CatalogOptions, options.OutputOptions, options.PredictOptions),
        "similar": (similar_options.SimilarOptions, options.OutputOptions),
        "nightly": (
            options.NightlyOptions,
            options.CatalogOptions,
            options.OutputOptions,
            options.PredictOptions,
        ),
        "preprocess": (
            options.CatalogOptions,
            options.OutputOptions,
            options.TextOptions,
            options.TransformOptions,
            options.PreprocessOptions,
        ),
    }[command]
    parser = argparse.ArgumentParser(
        prog=f"{PROG} {command}",
        epilog="Beam flags (--runner, --temp_location, ...) and --runner-profile are accepted too.",
    )
    for group in groups:
        group._add_argparse_args(parser.add_argument_group(group.__doc__.splitlines()[0]))
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
