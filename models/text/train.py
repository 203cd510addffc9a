"""``catalog-tagger train``: fit the text tagger on the preprocess shards.

Adam with a fixed seed, eval GAP@20 after every epoch, early stopping that
keeps the best weights, per-category thresholds tuned on eval, metrics on
eval and test, and one exported SavedModel with a model card.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import tempfile
import time

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models import artifacts
from models.card import FUSION, TEXT, model_card
from models.loop import TOP_K, TOP_K_EVAL_ABOVE, LoopConfig, predict_scores, score_dataset
from models.loop import fit as loop_fit
from models.losses import is_sampled
from models.sampled import DISTORTION
from models.text import export, tune
from models.text.model import HParams, build_model, ensemble_model
from models.text.training_data import (
    TrainingData,
    check_model_dir,
    label_counts,
    label_prior_bias,
    labels_per_video,
    load_training_data,
    make_datasets,
    resolve_loss,
    unseen_labels,
)
from models.text.tune import TuneConfig
from transforms.errors import require

__all__ = [  # the trainer's API, some of it from models.text.training_data
    "TrainConfig", "TrainingData", "fit_models", "fit_trial", "labels_per_video",
    "load_training_data", "predict_scores", "resolve_loss", "sequential_rounds", "train",
    "unseen_labels",
]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    data_dir: str
    model_dir: str
    hparams: HParams = HParams()
    tune: TuneConfig | None = None  # train --tune: search the settings first


def _member(data, hp: HParams, seed: int, train, eval_batches, epochs: int, work: str, on_epoch):
    """One seed's model fitted by the shared loop; ``(model, history, best_epoch)``."""
    keras.utils.set_random_seed(seed)
    member_hp = dataclasses.replace(hp, seed=seed)
    model = build_model(data.spec.input_dim, data.spec.num_labels, member_hp,
                        data.spec.av_sizes, label_prior_bias(data, hp.loss), f"member_{seed}",
                        label_counts(data))  # fmt: skip
    loop = LoopConfig(hp.learning_rate, epochs, hp.patience, hp.loss, work)
    history, best = loop_fit(model, train, eval_batches, loop, on_epoch)
    return model, history, best


def fit_models(data: TrainingData, hp: HParams, datasets: dict, work: str, on_epoch=None):
    """Every seed chosen on eval, then (``refit``) retrained on train + eval for its
    chosen epoch count. Returns ``(final model, selection eval scores, runs)``: the
    eval scores come from the models chosen on eval, before any refit."""
    selected, runs = [], []
    for i in range(1 if data.spec.fusion else hp.seeds):  # fusion models: one seed
        seed = hp.seed + i
        report = on_epoch if i == 0 else None  # pruning watches the first seed
        model, history, best = _member(data, hp, seed, datasets["train"], datasets["eval"],
                                       hp.epochs, os.path.join(work, f"seed-{seed}"), report)  # fmt: skip
        selected.append(model)
        runs.append({"seed": seed, "best_epoch": best, "epochs_run": len(history.epoch),
                     "history": {k: [float(x) for x in v] for k, v in history.history.items()}})  # fmt: skip
    chosen = ensemble_model(selected, hp.loss)
    eval_scores = score_dataset(chosen, datasets["eval"], hp.loss) if datasets["eval"] else None
    if not (hp.refit and datasets["eval"]):
        return chosen, eval_scores, runs
    refitted = [
        _member(data, hp, run["seed"], datasets["refit"], None, run["best_epoch"],
                os.path.join(work, f"refit-{run['seed']}"), None)[0]
        for run in runs
    ]  # fmt: skip
    return ensemble_model(refitted, hp.loss), eval_scores, runs


def fit_trial(data: TrainingData, base: HParams, params: dict, on_epoch) -> tuple:
    """One ``--tune`` trial: ``(eval GAP@20, best epoch)`` of ``params`` on ``base``."""
    hp = resolve_loss(data, tune.trial_hparams(base, params))
    with tempfile.TemporaryDirectory(prefix="tune-trial-") as work:
        _, scores, runs = fit_models(data, hp, make_datasets(data, hp), work, on_epoch)
    return scores.gap(), runs[0]["best_epoch"]


def sequential_rounds(data: TrainingData, base: HParams):
    """``run_round`` for ``tune.search``: the round's trials one after another here."""
    return lambda specs: [tune.run_trial(s, functools.partial(fit_trial, data, base))
                          for s in specs]  # fmt: skip


def tuned_hparams(data: TrainingData, config: TrainConfig, run_round=None):
    """``(hparams, tuning summary)``: the best trial's settings on the given ones."""
    require(data.files["eval"], "--tune needs an eval split to choose on")
    start = time.monotonic()
    run_round = run_round or sequential_rounds(data, config.hparams)
    history = tune.search(config.tune, run_round, config.hparams)
    best = tune.best_trial(history)
    tune.log_hparams(os.path.join(config.model_dir, "tensorboard", "tune"), history)
    summary = {"trials": history, "best": best, "config": dataclasses.asdict(config.tune),
               "seconds": round(time.monotonic() - start, 1)}  # fmt: skip
    return dataclasses.replace(config.hparams, **best["params"]), summary


def train(config: TrainConfig, run_round=None) -> dict:
    """Trains (after ``--tune``'s search if asked), evaluates, exports; returns the
    training summary. ``run_round`` runs a round of tuning trials (default: here)."""
    data = load_training_data(config.data_dir)
    check_model_dir(config.model_dir, data.spec)
    config = dataclasses.replace(config, hparams=resolve_loss(data, config.hparams))
    hp, tuning = config.hparams, None
    if config.tune is not None:
        hp, tuning = tuned_hparams(data, config, run_round)
        hp = resolve_loss(data, hp)  # a tuned wide=True is off again for a sampled loss
        config = dataclasses.replace(config, hparams=hp)
    datasets = make_datasets(data, hp)
    start = time.monotonic()
    model, eval_scores, runs = fit_models(data, hp, datasets, config.model_dir)
    seconds = time.monotonic() - start
    if eval_scores is None:  # no eval split: thresholds from train, as before
        eval_scores = score_dataset(model, datasets["train_eval"], hp.loss)
    thresholds = eval_scores.tune_thresholds()
    results = {"eval": eval_scores.evaluate(thresholds)}
    if datasets["test"] is not None:
        results["test"] = score_dataset(model, datasets["test"], hp.loss).evaluate(thresholds)
    summary = _summary(data, config, runs, results, seconds)
    card = _model_card(data, hp, results)
    if tuning:
        summary["tuning"] = card["tuning"] = tuning
    extras = {
        artifacts.THRESHOLDS_FILE: dict(
            zip(data.spec.label_names, map(float, thresholds), strict=True)
        ),
        artifacts.CARD_FILE: card,
        artifacts.PREPROCESS_CONFIG_FILE: data.preprocess_config,
    }
    export_dir = os.path.join(config.model_dir, artifacts.SAVED_MODEL_DIR)
    export.export_model(export_dir, model, data.output, data.spec, hp.loss, extras)
    with tf.io.gfile.GFile(os.path.join(config.model_dir, artifacts.SUMMARY_FILE), "w") as handle:
        handle.write(json.dumps(summary, indent=2, sort_keys=True))
    logging.info("trained: %s", json.dumps(results))
    return summary


def _summary(data, config, runs, results, seconds) -> dict:
    epochs = sum(run["epochs_run"] for run in runs)
    epochs += sum(run["best_epoch"] for run in runs) if config.hparams.refit else 0
    train_examples = data.preprocess_report["records"]["written_per_split"]["train"]
    return {
        "hparams": dataclasses.asdict(config.hparams),
        "epochs_run": runs[0]["epochs_run"],
        "best_epoch": runs[0]["best_epoch"],
        "history": runs[0]["history"],
        "seeds": runs,
        "wall_seconds": round(seconds, 3),
        "examples_per_second": round(train_examples * epochs / max(seconds, 1e-9), 1),
        "metrics": results,
        "labels_unseen_in_train": unseen_labels(data.preprocess_report, data.spec),
    }


def _training_notes(data: TrainingData, hp: HParams) -> dict:
    """How the model was trained and evaluated, where that departs from the defaults."""
    notes = {}
    if is_sampled(hp.loss):
        notes["sampling"] = {
            "num_sampled": min(hp.num_sampled, data.spec.num_labels),
            "candidates": f"train label counts + 1, ** {DISTORTION} (unique per step)",
            "positives": "one per video per step, uniform among its labels",
            "wide": "off: a wide path has vocabulary x labels weights",
            "optimizer": "lazy Adam: only the rows a step touches move",
        }
    if data.spec.num_labels > TOP_K_EVAL_ABOVE:
        notes["evaluation"] = {"top_k": TOP_K, "above_labels": TOP_K_EVAL_ABOVE,
                               "note": "metrics from each video's top-k labels; no mAP"}  # fmt: skip
    return notes


def _model_card(data: TrainingData, hp: HParams, results: dict) -> dict:
    import apache_beam

    return model_card(
        results,
        kind=FUSION if data.spec.fusion else TEXT,
        data={"records": data.preprocess_report["records"],
              "labels": list(data.spec.label_names)},
        vocabulary={"size": data.spec.vocab_size, "oov_buckets": data.spec.oov_buckets},
        hparams=dataclasses.asdict(hp),
        **_training_notes(data, hp),
        versions={"tensorflow_transform": tft.__version__, "apache_beam": apache_beam.__version__},
    )  # fmt: skip
