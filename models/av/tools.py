"""Post-training tools for the audio/visual models: compress, average checkpoints.

Each reads trained model dirs (``saved_model/`` with its extras, and the
``checkpoints/`` of ``models.av.train``), evaluates on the eval split of the
data named in the model card (or ``data``), exports one servable SavedModel
under ``output_dir/saved_model`` and writes a JSON report beside it (the
shared steps are in ``models.av.trained``).

  ``compress``            the float32 model rebuilt with ``weight_dtype`` float16.
  ``average_checkpoints`` the elementwise mean of several epochs' weights.

The third tool, ``ensemble``, is in ``models.av.ensemble_tool``.
User errors raise ``pipelines.components.jobs.JobError`` with a one-line message.
"""

from __future__ import annotations

import os

import numpy as np

from models import checkpoints as weight_files
from models.av import export as av_export
from models.av import train as av_train
from models.av.stored_weights import WEIGHT_DTYPES
from models.av.trained import (
    CARD_AV,
    HEADLINE,
    OWNED,
    check_output,
    eval_dataset,
    eval_scores,
    export_result,
    load_checkpoint,
    new_card,
    read_trained,
    score_metrics,
    write_report,
)
from models.av.zoo import model_weights_mb, transfer_weights
from models.loop import CHECKPOINTS
from transforms.errors import JobError, require
from transforms.files import prepare_output_dir


def compress(model_dir, output_dir, dtype="float16", data=None, max_model_mb=None) -> dict:
    """Rebuilds the best float32 weights with ``weight_dtype=dtype`` and compares both."""
    stored = [d for d in WEIGHT_DTYPES if d != "float32"]
    require(dtype in stored, f"--dtype must be one of {stored}, not {dtype!r}")
    source, config = read_trained(model_dir, data)
    check_output(output_dir, "compress", [model_dir])
    was = config.model.weight_dtype
    require(was == "float32", f"{model_dir!r} is already compressed ({was} weights)")
    n = len(source.labels)
    original = load_checkpoint(
        config, n, weight_files.best_path(os.path.join(model_dir, CHECKPOINTS))
    )
    compressed = av_train.build(config, n, dtype)
    try:
        transfer_weights(original, compressed)
    except ValueError as err:
        raise JobError(str(err).splitlines()[0]) from None
    av_export.check_size(compressed, max_model_mb)
    dataset = eval_dataset(config, n)
    scores = {"float32": eval_scores(original, dataset), dtype: eval_scores(compressed, dataset)}
    evals = {k: score_metrics(*v, source.thresholds)[0] for k, v in scores.items()}
    prepare_output_dir(output_dir, OWNED)
    params = {**source.card[CARD_AV]["params"], "weight_dtype": dtype}
    origin = {"model_dir": model_dir, "model_version": source.card.get("model_version")}
    card = new_card(
        source.card, evals[dtype], params=params, weight_dtype=dtype, compressed_from=origin
    )
    export_dir = export_result(
        output_dir, compressed, source, source.thresholds, card, max_model_mb
    )
    return write_report(output_dir, "compress", {
        "model_dir": model_dir, "output_dir": output_dir, "dtype": dtype,
        "size_mb": {"float32": model_weights_mb(original), dtype: model_weights_mb(compressed)},
        "saved_model_mb": {"float32": av_export.saved_model_mb(source.export_dir),
                           dtype: av_export.saved_model_mb(export_dir)},
        "eval": evals,
        "gap_change": evals[dtype][HEADLINE] - evals["float32"][HEADLINE],
    })  # fmt: skip


def epoch_checkpoints(model_dir: str) -> dict[int, str]:
    """``{epoch: checkpoint path}`` of the ``checkpoints/epoch-NNN`` weights."""
    return weight_files.epoch_checkpoints(os.path.join(model_dir, CHECKPOINTS))


def select_epochs(available: dict, model_dir: str, last=None, epochs=None) -> list[int]:
    """The epochs named by ``last`` (the last N) or ``epochs`` (inclusive ``(a, b)``)."""
    require((last is None) != (epochs is None), "give either --last N or --epochs A:B")
    have = list(available)
    require(have, f"no epoch checkpoints in {model_dir!r} (checkpoints/epoch-NNN)")
    span = f"epochs {have[0]}..{have[-1]}" if len(have) > 1 else f"epoch {have[0]}"
    if last is not None:
        require(last >= 1, f"--last must be at least 1, not {last}")
        require(
            last <= len(have),
            f"asked to average the last {last} checkpoints but {model_dir!r} has "
            f"{len(have)} ({span})",
        )
        return have[-last:]
    first, final = epochs
    require(1 <= first <= final, f"--epochs A:B needs 1 <= A <= B, not {first}:{final}")
    missing = [e for e in range(first, final + 1) if e not in available]
    require(not missing, f"no checkpoint for epoch(s) {missing} in {model_dir!r} (it has {span})")
    return list(range(first, final + 1))


def average_into(model, checkpoints: dict[str, str], each=None) -> None:
    """Sets ``model``'s weights to the elementwise mean of ``checkpoints`` (name: prefix).

    Each checkpoint is loaded into ``model`` in turn, then ``each(name)`` is
    called; sums are float64 and the mean is cast back to each weight's dtype.
    """
    sums = None
    for name, path in checkpoints.items():
        weight_files.load_weights(model, path)
        if each is not None:
            each(name)
        values = [np.asarray(w, np.float64) for w in model.get_weights()]
        sums = values if sums is None else [s + v for s, v in zip(sums, values, strict=True)]
    dtypes = [w.dtype.as_numpy_dtype for w in model.weights]
    model.set_weights([(s / len(checkpoints)).astype(d) for s, d in zip(sums, dtypes, strict=True)])


def average_checkpoints(
    model_dir, output_dir, last=None, epochs=None, data=None, max_model_mb=None
) -> dict:
    """Averages epoch checkpoints' weights; compares with the best single checkpoint."""
    source, config = read_trained(model_dir, data)
    check_output(output_dir, "average", [model_dir])
    available = epoch_checkpoints(model_dir)
    chosen = select_epochs(available, model_dir, last, epochs)
    n = len(source.labels)
    dataset = eval_dataset(config, n)
    model, evals = av_train.build(config, n), {}

    def evaluate(name: str) -> None:
        evals[name] = score_metrics(*eval_scores(model, dataset))[0]

    average_into(model, {f"epoch-{e:03d}": available[e] for e in chosen}, evaluate)
    av_export.check_size(model, max_model_mb)
    best = load_checkpoint(config, n, weight_files.best_path(os.path.join(model_dir, CHECKPOINTS)))
    averaged, thresholds = score_metrics(*eval_scores(model, dataset))
    best_single = score_metrics(*eval_scores(best, dataset))[0]
    prepare_output_dir(output_dir, OWNED)
    origin = {"model_dir": model_dir, "model_version": source.card.get("model_version")}
    card = new_card(source.card, averaged, averaged_epochs=chosen, averaged_from=origin)
    export_result(output_dir, model, source, thresholds, card, max_model_mb)
    return write_report(output_dir, "average", {
        "model_dir": model_dir, "output_dir": output_dir, "epochs": chosen,
        "eval": {"averaged": averaged, "best_single": best_single, "checkpoints": evals},
        "gap_change": averaged[HEADLINE] - best_single[HEADLINE],
    })  # fmt: skip
