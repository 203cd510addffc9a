"""Post-training tools for the audio/visual models: compress, average, ensemble.

Each reads trained model dirs (``saved_model/`` with its extras, and the
``checkpoints/`` of ``models.av.train``), evaluates on the eval split of the
data named in the model card (or ``data``), exports one servable SavedModel
under ``output_dir/saved_model`` and writes a JSON report beside it.

  ``compress``            the float32 model rebuilt with ``weight_dtype`` float16.
  ``average_checkpoints`` the elementwise mean of several epochs' weights.
  ``ensemble``            several exports in one graph: a weighted mean of their
                          probabilities (fixed, equal, or grid-searched weights).

User errors raise ``pipelines.components.jobs.JobError`` with a one-line message.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from models import artifacts, metrics
from models import checkpoints as weight_files
from models.av import ensemble as av_ensemble
from models.av import export as av_export
from models.av import train as av_train
from models.av.layers import WEIGHT_DTYPES
from models.av.zoo import model_weights_mb, transfer_weights
from models.loop import CHECKPOINTS, predict_scores
from transforms.errors import JobError, require
from transforms.files import prepare_output_dir

CARD_AV = av_export.CARD_AV
HEADLINE = "gap@20"
REPORTS = {
    "compress": "compress_report.json",
    "average": "average_report.json",
    "ensemble": "ensemble_report.json",
}
_OWNED = (artifacts.SAVED_MODEL_DIR, CHECKPOINTS, *REPORTS.values())


class Export(NamedTuple):
    """One trained model dir: its export's path, labels, thresholds and card."""

    model_dir: str
    export_dir: str
    labels: list[str]
    thresholds: np.ndarray
    card: dict


def read_export(model_dir: str) -> Export:
    """The exported audio/visual model of ``model_dir`` (a clear error if none)."""
    export_dir = os.path.join(model_dir, artifacts.SAVED_MODEL_DIR)
    card_path = os.path.join(export_dir, artifacts.EXTRA_DIR, artifacts.CARD_FILE)
    require(tf.io.gfile.exists(card_path), f"no exported model in {model_dir!r} ({card_path})")
    card = artifacts.read_extra(export_dir, artifacts.CARD_FILE)
    require(CARD_AV in card, f"{model_dir!r} is not an audio/visual (--features yt8m) model")
    labels = artifacts.read_extra(export_dir, artifacts.LABELS_FILE)
    by_label = artifacts.read_extra(export_dir, artifacts.THRESHOLDS_FILE)
    require(sorted(by_label) == sorted(labels), f"thresholds and labels disagree in {model_dir!r}")
    return Export(model_dir, export_dir, labels, np.array([by_label[x] for x in labels]), card)


def _trained(model_dir: str, data: str | None) -> tuple[Export, av_train.AVTrainConfig]:
    source = read_export(model_dir)
    require(
        "ensemble" not in source.card[CARD_AV],
        f"{model_dir!r} holds an ensemble: compress or average its members instead",
    )
    return source, av_train.config_from_card(source.card, model_dir, data=data)


def _load(config, num_labels: int, checkpoint: str):
    require(tf.io.gfile.exists(checkpoint), f"no checkpoint {checkpoint!r}")
    model = av_train.build(config, num_labels)
    weight_files.load_weights(model, checkpoint)
    return model


def _eval_dataset(config, num_labels: int) -> tf.data.Dataset:
    try:
        files = av_train.shard_paths(config.data)
    except JobError as err:
        raise JobError(f"{err}; --data-dir names the data to evaluate on") from None
    return av_train.make_datasets(config, num_labels, files)["eval"]


def _scores(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    _, scores, labels = predict_scores(model, dataset, "sigmoid")
    require(len(scores), "no eval videos in the data (give --data-dir with the model's data)")
    return scores, labels


def _metrics(scores, labels, thresholds=None) -> tuple[dict, np.ndarray]:
    """Metrics at ``thresholds`` (tuned on these scores when None), and the thresholds."""
    if thresholds is None:
        thresholds = metrics.tune_thresholds(scores, labels)
    return metrics.evaluate(scores, labels, thresholds), thresholds


def _new_card(card: dict, eval_metrics: dict, **av_updates) -> dict:
    av = {k: v for k, v in card[CARD_AV].items() if k != "weights_mb"}
    version = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return {
        **card,
        "model_version": version,
        "metrics": {"eval": eval_metrics},
        CARD_AV: {**av, **av_updates},
    }


def _check_output(output_dir: str, kind: str, model_dirs) -> None:
    """Refuses to write over an input, or over a model this tool did not write."""
    out = os.path.abspath(output_dir)
    for model_dir in model_dirs:
        require(out != os.path.abspath(model_dir), "--output-dir must differ from --model-dir")
    ours = tf.io.gfile.exists(os.path.join(output_dir, REPORTS[kind]))
    model = tf.io.gfile.exists(os.path.join(output_dir, artifacts.SAVED_MODEL_DIR))
    require(ours or not model, f"--output-dir {output_dir!r} holds another model; use a new one")


def _finish(output_dir: str, model, source: Export, thresholds, card, max_mb) -> str:
    """Exports ``model`` and saves its weights as ``checkpoints/best.h5`` (for further tools)."""
    export_dir = os.path.join(output_dir, artifacts.SAVED_MODEL_DIR)
    av_export.export_av_model(export_dir, model, source.labels, thresholds, card, max_mb)
    weight_files.save_weights(model, weight_files.best_path(os.path.join(output_dir, CHECKPOINTS)))
    return export_dir


def write_report(output_dir: str, kind: str, report: dict) -> dict:
    with tf.io.gfile.GFile(os.path.join(output_dir, REPORTS[kind]), "w") as handle:
        handle.write(json.dumps(report, indent=2, sort_keys=True))
    return report


def compress(model_dir, output_dir, dtype="float16", data=None, max_model_mb=None) -> dict:
    """Rebuilds the best float32 weights with ``weight_dtype=dtype`` and compares both."""
    stored = [d for d in WEIGHT_DTYPES if d != "float32"]
    require(dtype in stored, f"--dtype must be one of {stored}, not {dtype!r}")
    source, config = _trained(model_dir, data)
    _check_output(output_dir, "compress", [model_dir])
    was = config.model.weight_dtype
    require(was == "float32", f"{model_dir!r} is already compressed ({was} weights)")
    n = len(source.labels)
    original = _load(config, n, weight_files.best_path(os.path.join(model_dir, CHECKPOINTS)))
    compressed = av_train.build(config, n, dtype)
    try:
        transfer_weights(original, compressed)
    except ValueError as err:
        raise JobError(str(err).splitlines()[0]) from None
    av_export.check_size(compressed, max_model_mb)
    dataset = _eval_dataset(config, n)
    scores = {"float32": _scores(original, dataset), dtype: _scores(compressed, dataset)}
    evals = {k: _metrics(*v, source.thresholds)[0] for k, v in scores.items()}
    prepare_output_dir(output_dir, _OWNED)
    params = {**source.card[CARD_AV]["params"], "weight_dtype": dtype}
    origin = {"model_dir": model_dir, "model_version": source.card.get("model_version")}
    card = _new_card(
        source.card, evals[dtype], params=params, weight_dtype=dtype, compressed_from=origin
    )
    export_dir = _finish(output_dir, compressed, source, source.thresholds, card, max_model_mb)
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
    source, config = _trained(model_dir, data)
    _check_output(output_dir, "average", [model_dir])
    available = epoch_checkpoints(model_dir)
    chosen = select_epochs(available, model_dir, last, epochs)
    n = len(source.labels)
    dataset = _eval_dataset(config, n)
    model, evals = av_train.build(config, n), {}

    def evaluate(name: str) -> None:
        evals[name] = _metrics(*_scores(model, dataset))[0]

    average_into(model, {f"epoch-{e:03d}": available[e] for e in chosen}, evaluate)
    av_export.check_size(model, max_model_mb)
    best = _load(config, n, weight_files.best_path(os.path.join(model_dir, CHECKPOINTS)))
    averaged, thresholds = _metrics(*_scores(model, dataset))
    best_single = _metrics(*_scores(best, dataset))[0]
    prepare_output_dir(output_dir, _OWNED)
    origin = {"model_dir": model_dir, "model_version": source.card.get("model_version")}
    card = _new_card(source.card, averaged, averaged_epochs=chosen, averaged_from=origin)
    _finish(output_dir, model, source, thresholds, card, max_model_mb)
    return write_report(output_dir, "average", {
        "model_dir": model_dir, "output_dir": output_dir, "epochs": chosen,
        "eval": {"averaged": averaged, "best_single": best_single, "checkpoints": evals},
        "gap_change": averaged[HEADLINE] - best_single[HEADLINE],
    })  # fmt: skip


def ensemble(
    model_dirs,
    output_dir,
    weights=None,
    tune_weights=False,
    data=None,
    max_model_mb=None,
    grid_step=0.1,
) -> dict:
    """One SavedModel averaging several exports' probabilities (see ``models.av.ensemble``).

    ``weights`` (normalised) or equal weights, or with ``tune_weights`` the grid
    weights maximizing eval GAP@20; thresholds are tuned on eval.
    """
    require(weights is None or not tune_weights, "give --weights or --tune-weights, not both")
    members = [read_export(d) for d in model_dirs]
    av_ensemble.check_members(members)
    _check_output(output_dir, "ensemble", model_dirs)
    size = av_ensemble.members_mb(members, max_model_mb)
    chosen = av_ensemble.initial_weights(weights, len(members), grid_step if tune_weights else None)
    frames = [m.card[CARD_AV]["max_frames"] for m in members]
    av = {**members[0].card[CARD_AV], "max_frames": max(frames)}
    loaded = [tf.saved_model.load(m.export_dir) for m in members]
    module, signatures, probabilities = av_ensemble.ensemble_module(loaded, av, frames, chosen)
    scores, truth = av_ensemble.member_scores(
        probabilities, _ensemble_eval(members, data, max(frames))
    )
    if tune_weights:
        chosen = av_ensemble.tune_weights(scores, truth, grid_step)
        module.member_weights.assign(chosen.astype(np.float32))
    result, thresholds = _metrics(av_ensemble.combine(scores, chosen), truth)
    member_evals = [
        {"model_dir": m.model_dir, **_metrics(s, truth, m.thresholds)[0]}
        for m, s in zip(members, scores, strict=True)
    ]
    described = [
        {"model_dir": m.model_dir, "model_version": m.card.get("model_version")} for m in members
    ]
    about = {"members": described, "weights": chosen.tolist()}
    card = _new_card(members[0].card, result, max_frames=max(frames), weights_mb=round(size, 4),
                     ensemble=about)  # fmt: skip
    export_dir = _save_ensemble(output_dir, module, signatures, members[0].labels, thresholds, card)
    return write_report(output_dir, "ensemble", {
        "model_dirs": list(model_dirs), "output_dir": output_dir, "weights": chosen.tolist(),
        "tuned": bool(tune_weights), "grid_step": grid_step if tune_weights else None,
        "eval": {"members": member_evals, "ensemble": result},
        "gap_change": result[HEADLINE] - max(m[HEADLINE] for m in member_evals),
        "weights_mb": size, "saved_model_mb": av_export.saved_model_mb(export_dir),
    })  # fmt: skip


def _save_ensemble(output_dir: str, module, signatures, labels, thresholds, card: dict) -> str:
    prepare_output_dir(output_dir, _OWNED)
    export_dir = os.path.join(output_dir, artifacts.SAVED_MODEL_DIR)
    tf.saved_model.save(module, export_dir, signatures=signatures)
    by_label = dict(zip(labels, map(float, thresholds), strict=True))
    artifacts.write_extras(
        export_dir, labels, {artifacts.THRESHOLDS_FILE: by_label, artifacts.CARD_FILE: card}
    )
    return export_dir


def _ensemble_eval(members: list[Export], data: str | None, max_frames: int):
    """The eval split of the first member's data (or ``data``), read as the ensemble reads it."""
    config = av_train.config_from_card(members[0].card, members[0].model_dir, data=data)
    train = dataclasses.replace(config.train, max_frames=max_frames)
    return _eval_dataset(dataclasses.replace(config, train=train), len(members[0].labels))
