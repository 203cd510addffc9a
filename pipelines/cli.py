"""``catalog-tagger``: one console script, one subcommand per job.

Beam jobs take their runner settings from a profile file (one flag per line)
chosen with ``--runner-profile``: ``local`` (packaged, offline) by default, or
a path such as ``deploy/runners/dataflow.args``. Flags given on the command
line after it override the profile.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from importlib import resources

PROG = "catalog-tagger"
MODEL_COMMANDS = {
    "compress": "compress_main",
    "average-checkpoints": "average_main",
    "ensemble": "ensemble_main",
}
BEAM_COMMANDS = ("preprocess", "predict", "nightly", "evaluate", "tune-thresholds")


def profile_args(name_or_path: str) -> list[str]:
    """The flags stored in a runner profile (packaged name or file path)."""
    if os.path.sep in name_or_path or name_or_path.endswith(".args"):
        with open(name_or_path, encoding="utf-8") as handle:
            text = handle.read()
    else:
        resource = resources.files("pipelines") / "profiles" / f"{name_or_path}.args"
        if not resource.is_file():
            raise FileNotFoundError(f"unknown runner profile {name_or_path!r}")
        text = resource.read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def split_profile(argv: list[str]) -> tuple[str, list[str]]:
    """Pops ``--runner-profile X`` (or ``=X``) from argv."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--runner-profile", default="local")
    known, rest = parser.parse_known_args(argv)
    return known.runner_profile, rest


def _sample(argv: list[str]) -> int:
    from pipelines.tools.sample_catalog import write_sample_catalog

    parser = argparse.ArgumentParser(prog=f"{PROG} sample", description="Write the sample catalog.")
    parser.add_argument("--output", required=True, help="JSONL path (.gz to compress).")
    parser.add_argument("--videos", type=int, default=3000, help="Unique valid videos.")
    parser.add_argument(
        "--seed", type=int, default=0, help="Random seed (output is deterministic)."
    )
    args = parser.parse_args(argv)
    manifest = write_sample_catalog(args.output, videos=args.videos, seed=args.seed)
    print(f"wrote {manifest.lines} lines to {args.output}: {manifest.to_dict()}")
    return 0


def _serve(argv: list[str]) -> int:
    from pipelines import serve

    return serve.main(argv)


def _flags_from(parser, cls, helps: dict) -> None:
    """One flag per field of a frozen hyperparameter dataclass."""
    import dataclasses

    for field in dataclasses.fields(cls):
        flag, kind = "--" + field.name.replace("_", "-"), type(field.default)
        if kind is bool:
            parser.add_argument(flag, type=_boolean, default=field.default, help=helps[field.name])
        else:
            parser.add_argument(flag, type=kind, default=field.default, help=helps[field.name])


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")
    return text.lower() in ("true", "1", "yes")


def _train_av(argv: list[str]) -> int:
    import dataclasses

    from models.av.train import AVTrainConfig, AVTrainParams, train_av
    from models.av.zoo import AV_HELP, AVParams
    from pipelines.components.jobs import JobError
    from transforms.splits import SplitConfig

    parser = argparse.ArgumentParser(
        prog=f"{PROG} train --features yt8m",
        description="Train an audio/visual (YouTube-8M) tagger.",
    )
    parser.add_argument("--data-dir", required=True, help="TFRecord shards: a dir, file or glob.")
    parser.add_argument("--model-dir", required=True, help="Where checkpoints and the export go.")
    parser.add_argument("--vocabulary", help="YouTube-8M vocabulary.csv (label names).")
    parser.add_argument("--num-classes", type=int, help="Label count without --vocabulary.")
    parser.add_argument("--splits", default="80,10,10", help="train,eval,test percentages.")
    parser.add_argument("--split-salt", default="", help="Salt of the video-id split hash.")
    parser.add_argument("--max-model-mb", type=float, help="Refuse to export a larger model.")
    _flags_from(parser, AVParams, AV_HELP)
    _flags_from(parser, AVTrainParams, AV_TRAIN_HELP)
    args = vars(parser.parse_args(argv))
    take = lambda cls: {f.name: args.pop(f.name) for f in dataclasses.fields(cls)}  # noqa: E731
    try:
        model, training = AVParams(**take(AVParams)), AVTrainParams(**take(AVTrainParams))
        split = SplitConfig.parse(args.pop("splits"), args.pop("split_salt"))
    except ValueError as err:
        raise JobError(str(err)) from None
    config = AVTrainConfig(
        data=args["data_dir"], model_dir=args["model_dir"], vocabulary=args["vocabulary"],
        num_classes=args["num_classes"], model=model, train=training, split=split,
        max_model_mb=args["max_model_mb"],
    )  # fmt: skip
    summary = train_av(config)
    print(f"train: {json.dumps(summary['metrics'])}")
    return 0


AV_TRAIN_HELP = {
    "learning_rate": "Adam learning rate.",
    "batch_size": "Videos per training batch.",
    "epochs": "Maximum epochs (every epoch's weights are kept for averaging).",
    "patience": "Early stopping: epochs without eval GAP@20 improvement.",
    "max_frames": "Frame-level models: frames read per video (YouTube-8M: 300).",
}


def _train(argv: list[str]) -> int:

    features, argv = _pop_features(argv)
    if features == "yt8m":
        return _train_av(argv)

    from models.text.model import HELP, HParams
    from models.text.train import TrainConfig, train
    from pipelines.components.jobs import JobError

    parser = argparse.ArgumentParser(prog=f"{PROG} train", description="Train the text tagger.")
    parser.add_argument("--data-dir", required=True, help="A preprocess --output-dir.")
    parser.add_argument("--model-dir", required=True, help="Where checkpoints and the export go.")
    _flags_from(parser, HParams, HELP)
    _tune_flags(parser)
    args = vars(parser.parse_args(argv))
    data_dir, model_dir = args.pop("data_dir"), args.pop("model_dir")
    try:
        tuning, profile = _pop_tuning(args)
        config = TrainConfig(data_dir, model_dir, HParams(**args), tuning)
    except ValueError as err:
        raise JobError(str(err)) from None
    run_round = None
    if tuning and tuning.parallelism > 1:  # a round of trials side by side, on Beam
        from pipelines.components.tune_trials import beam_rounds

        run_round = beam_rounds(profile_args(profile), data_dir, model_dir, config.hparams)
    summary = train(config, run_round)
    if "tuning" in summary:
        best = summary["tuning"]["best"]
        print(f"tune: {len(summary['tuning']['trials'])} trials, best eval GAP@20 "
              f"{best['value']:.4f} with {json.dumps(best['params'])}")  # fmt: skip
    print(f"train: {json.dumps(summary['metrics'])}")
    return 0


def _tune_flags(parser) -> None:
    parser.add_argument(
        "--tune",
        action="store_true",
        help="Search the model's settings on eval (Optuna TPE) before training.",
    )
    parser.add_argument("--trials", type=int, default=16, help="--tune: trials at most.")
    parser.add_argument(
        "--budget-minutes", type=float, help="--tune: start no new round of trials past this."
    )
    parser.add_argument(
        "--tune-parallelism",
        type=int,
        default=1,
        help="--tune: trials per round; above 1 a round runs as a Beam job "
        "on --runner-profile (the study is the same either way).",
    )
    parser.add_argument("--runner-profile", default="local",
                        help="--tune with --tune-parallelism > 1: where trials run.")  # fmt: skip


def _pop_tuning(args: dict):
    from models.text.tune import TuneConfig

    enabled, profile = args.pop("tune"), args.pop("runner_profile")
    settings = {"trials": args.pop("trials"), "budget_minutes": args.pop("budget_minutes"),
                "parallelism": args.pop("tune_parallelism"), "seed": args["seed"]}  # fmt: skip
    return (TuneConfig(**settings) if enabled else None), profile


def _pop_features(argv: list[str]) -> tuple[str, list[str]]:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--features", choices=("text", "yt8m"), default="text")
    known, rest = parser.parse_known_args(argv)
    return known.features, rest


def _beam_job(command: str, argv: list[str]) -> int:
    from pipelines import evaluate, nightly, predict, preprocess, tune_thresholds

    jobs = {
        "preprocess": preprocess.run,
        "predict": predict.run,
        "nightly": nightly.run,
        "evaluate": evaluate.run,
        "tune-thresholds": tune_thresholds.run,
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
            return _train(rest)
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
    from pipelines import tune_thresholds
    from pipelines.components import options
    from pipelines.evaluation.config import EvaluateOptions

    scoring = (
        EvaluateOptions,
        options.NightlyOptions,
        options.PredictOptions,
        options.CatalogOptions,
        options.OutputOptions,
        options.PreprocessOptions,
    )
    groups = {
        "evaluate": scoring,
        "tune-thresholds": (tune_thresholds.TuneOptions, *scoring),
        "predict": (options.CatalogOptions, options.OutputOptions, options.PredictOptions),
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
