"""The ``ensemble`` post-training tool: several exports averaged in one SavedModel.

The members are exported audio/visual model dirs (see ``models.av.trained``);
the graph that combines them is built by ``models.av.ensemble``. The result is
a weighted mean of the members' probabilities (fixed, equal, or grid-searched
weights), evaluated and thresholded on the eval split of the first member's
data (or ``data``), exported under ``output_dir/saved_model`` with a JSON report.

User errors raise ``pipelines.components.jobs.JobError`` with a one-line message.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from models import artifacts
from models.av import ensemble as av_ensemble
from models.av import export as av_export
from models.av import train as av_train
from models.av.trained import (
    CARD_AV,
    HEADLINE,
    OWNED,
    Export,
    check_output,
    eval_dataset,
    new_card,
    read_export,
    score_metrics,
    write_report,
)
from transforms.errors import require
from transforms.files import prepare_output_dir


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
    check_output(output_dir, "ensemble", model_dirs)
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
    result, thresholds = score_metrics(av_ensemble.combine(scores, chosen), truth)
    member_evals = [
        {"model_dir": m.model_dir, **score_metrics(s, truth, m.thresholds)[0]}
        for m, s in zip(members, scores, strict=True)
    ]
    described = [
        {"model_dir": m.model_dir, "model_version": m.card.get("model_version")} for m in members
    ]
    about = {"members": described, "weights": chosen.tolist()}
    card = new_card(members[0].card, result, max_frames=max(frames), weights_mb=round(size, 4),
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
    prepare_output_dir(output_dir, OWNED)
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
    return eval_dataset(dataclasses.replace(config, train=train), len(members[0].labels))
