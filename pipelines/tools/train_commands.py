"""``catalog-tagger train``: the text trainer, or ``--features yt8m`` the audio/visual one.

Thin argparse front ends of ``models.text.train`` and ``models.av.train``: every
field of the settings dataclasses (``HParams``; ``AVParams`` and
``AVTrainParams``) is a flag, with the help attached to the field. Each prints
one line of metrics; user errors are ``JobError`` (``pipelines.cli.main``
prints them as one line).
"""

from __future__ import annotations

import argparse
import json

from pipelines.components.flags import add_dataclass_flags, pop_dataclass_args

PROG = "catalog-tagger"


def train_main(argv: list[str]) -> int:
    """``catalog-tagger train``: dispatches on ``--features`` (text by default)."""
    features, argv = _pop_features(argv)
    return _train_av(argv) if features == "yt8m" else _train_text(argv)


def _pop_features(argv: list[str]) -> tuple[str, list[str]]:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--features", choices=("text", "yt8m"), default="text")
    known, rest = parser.parse_known_args(argv)
    return known.features, rest


def _train_av(argv: list[str]) -> int:
    from models.av.train import AVTrainConfig, AVTrainParams, train_av
    from models.av.zoo import AVParams
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
    add_dataclass_flags(parser, AVParams)
    add_dataclass_flags(parser, AVTrainParams)
    args = vars(parser.parse_args(argv))
    try:
        model = AVParams(**pop_dataclass_args(args, AVParams))
        training = AVTrainParams(**pop_dataclass_args(args, AVTrainParams))
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


def _train_text(argv: list[str]) -> int:
    from models.text.model import HParams
    from models.text.train import TrainConfig, train
    from pipelines.components.jobs import JobError
    from pipelines.components.runner_profiles import profile_args

    parser = argparse.ArgumentParser(prog=f"{PROG} train", description="Train the text tagger.")
    parser.add_argument("--data-dir", required=True, help="A preprocess --output-dir.")
    parser.add_argument("--model-dir", required=True, help="Where checkpoints and the export go.")
    add_dataclass_flags(parser, HParams)
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
    """``--tune`` and its settings (``models.text.tune.TuneConfig``, not all one-to-one)."""
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
