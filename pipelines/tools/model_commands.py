"""``catalog-tagger compress | average-checkpoints | ensemble``: audio/visual model tools.

Thin argparse front ends of ``models.av.tools`` (compress, average) and
``models.av.ensemble_tool``; each prints a one-line
summary and leaves its full report as JSON in ``--output-dir``. User errors
are ``JobError`` (``pipelines.cli.main`` prints them as one line).
"""

from __future__ import annotations

import argparse

PROG = "catalog-tagger"
DATA_HELP = "TFRecord shards to evaluate on (default: the data in the model card)."
MODEL_HELP = "A model dir trained with --features yt8m."
MAX_MB_HELP = "Refuse to export a model whose weights take more MB than this."


def _parser(command: str, description: str, many: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{PROG} {command}", description=description)
    if many:
        parser.add_argument(
            "--model-dir", action="append", required=True,
            help="A trained model dir; repeat for each member (same labels and features).",
        )  # fmt: skip
    else:
        parser.add_argument("--model-dir", required=True, help=MODEL_HELP)
    parser.add_argument("--output-dir", required=True, help="Where saved_model/ and the report go.")
    parser.add_argument("--data-dir", help=DATA_HELP)
    parser.add_argument("--max-model-mb", type=float, help=MAX_MB_HELP)
    return parser


def _epoch_range(text: str) -> tuple[int, int]:
    first, sep, last = text.partition(":")
    try:
        if sep:
            return int(first), int(last)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected A:B (e.g. 3:5), not {text!r}")


def _weights(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.6,0.4, not {text!r}") from None


def _gap(metrics: dict) -> float:
    return metrics["gap@20"]


def compress_main(argv: list[str]) -> int:
    """``catalog-tagger compress``: float16 weights, evaluated against the original."""
    parser = _parser("compress", "Store a trained model's weights in float16 and compare.")
    parser.add_argument(
        "--dtype", default="float16", choices=("float16",), help="Storage dtype of the weights."
    )
    args = parser.parse_args(argv)
    from models.av import tools as av_tools

    r = av_tools.compress(
        args.model_dir, args.output_dir, args.dtype, args.data_dir, args.max_model_mb
    )
    sizes, evals = r["size_mb"], r["eval"]
    print(
        f"compress: weights {sizes['float32']:.2f} -> {sizes[args.dtype]:.2f} MB, eval GAP@20 "
        f"{_gap(evals['float32']):.4f} -> {_gap(evals[args.dtype]):.4f} "
        f"({r['gap_change']:+.4f}); wrote {args.output_dir}"
    )
    return 0


def average_main(argv: list[str]) -> int:
    """``catalog-tagger average-checkpoints``: the mean of several epochs' weights."""
    parser = _parser("average-checkpoints", "Average the weights of several epoch checkpoints.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--last", type=int, help="Average the last N epoch checkpoints.")
    which.add_argument(
        "--epochs", type=_epoch_range, help="Average epochs A..B inclusive, given as A:B."
    )
    args = parser.parse_args(argv)
    from models.av import tools as av_tools

    r = av_tools.average_checkpoints(
        args.model_dir, args.output_dir, args.last, args.epochs, args.data_dir, args.max_model_mb
    )
    epochs, evals = r["epochs"], r["eval"]
    print(
        f"average-checkpoints: epochs {epochs[0]}..{epochs[-1]}, eval GAP@20 "
        f"{_gap(evals['averaged']):.4f} vs best single {_gap(evals['best_single']):.4f} "
        f"({r['gap_change']:+.4f}); wrote {args.output_dir}"
    )
    return 0


def ensemble_main(argv: list[str]) -> int:
    """``catalog-tagger ensemble``: several exports averaged in one SavedModel."""
    parser = _parser(
        "ensemble", "Combine exported models into one weighted-average SavedModel.", True
    )
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--weights", type=_weights, help="Member weights, e.g. 0.6,0.4 (normalised).")
    how.add_argument(
        "--tune-weights", action="store_true", help="Grid-search weights for eval GAP@20."
    )
    parser.add_argument(
        "--grid-step", type=float, default=0.1, help="Weight grid of --tune-weights."
    )
    args = parser.parse_args(argv)
    from models.av import ensemble_tool

    r = ensemble_tool.ensemble(
        args.model_dir, args.output_dir, args.weights, args.tune_weights, args.data_dir,
        args.max_model_mb, args.grid_step,
    )  # fmt: skip
    members = ", ".join(f"{_gap(m):.4f}" for m in r["eval"]["members"])
    weights = ", ".join(f"{w:.3g}" for w in r["weights"])
    print(
        f"ensemble: weights [{weights}], eval GAP@20 {_gap(r['eval']['ensemble']):.4f} "
        f"(members {members}); wrote {args.output_dir}"
    )
    return 0
