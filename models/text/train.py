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

from models import artifacts, metrics
from models.card import FUSION, TEXT, model_card
from models.loop import LoopConfig, predict_scores
from models.loop import fit as loop_fit
from models.text import export, tune
from models.text.data import DataSpec, make_dataset, oov_bucket_ids, shard_files, with_oov_noise
from models.text.model import HParams, build_model, ensemble_model, prior_logits
from models.text.tune import TuneConfig
from transforms.errors import JobError, require
from transforms.features import TOKENS_VOCAB
from transforms.layout import PREPROCESS_CONFIG_FILE, PREPROCESS_REPORT_FILE


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    data_dir: str
    model_dir: str
    hparams: HParams = HParams()
    tune: TuneConfig | None = None  # train --tune: search the settings first


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What the trainer reads from a preprocess output directory."""

    output: tft.TFTransformOutput
    spec: DataSpec
    files: dict
    preprocess_config: dict
    preprocess_report: dict


def load_training_data(data_dir: str) -> TrainingData:
    """Checks and opens a preprocess output; clear errors for what is missing."""
    transform_dir = os.path.join(data_dir, tft.TFTransformOutput.TRANSFORM_FN_DIR)
    require(tf.io.gfile.exists(transform_dir), f"no tf.Transform output in {data_dir!r}")
    output = tft.TFTransformOutput(data_dir)
    config, report = (
        _read_json(os.path.join(data_dir, n))
        for n in (PREPROCESS_CONFIG_FILE, PREPROCESS_REPORT_FILE)
    )
    spec = DataSpec.from_transform_output(output, config["transform"]["num_oov_buckets"])
    require(spec.num_labels > 0, f"the label vocabulary in {data_dir!r} is empty")
    files = {split: shard_files(data_dir, split) for split in ("train", "eval", "test")}
    written = report["records"]["written_per_split"]
    require(written.get("train", 0) > 0 and files["train"], f"no train records in {data_dir!r}")
    return TrainingData(output, spec, files, config, report)


def _read_json(path: str) -> dict:
    require(tf.io.gfile.exists(path), f"missing {path!r}: is this a preprocess output?")
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def _check_model_dir(model_dir: str, spec: DataSpec) -> None:
    labels_path = os.path.join(
        model_dir, artifacts.SAVED_MODEL_DIR, artifacts.EXTRA_DIR, artifacts.LABELS_FILE
    )
    if tf.io.gfile.exists(labels_path):
        previous = artifacts.read_extra(
            os.path.join(model_dir, artifacts.SAVED_MODEL_DIR), artifacts.LABELS_FILE
        )
        if tuple(previous) != spec.label_names:
            raise JobError(
                f"{model_dir!r} holds a model with a different label vocabulary "
                f"({len(previous)} vs {spec.num_labels} labels); use a new --model-dir"
            )


def unseen_labels(report: dict, spec: DataSpec) -> dict:
    """Eval/test categories absent from the train label vocabulary, with counts."""
    known = set(spec.label_names)
    return {
        split: {name: n for name, n in report.get("labels", {}).get(split, {}).items()
                if name not in known}
        for split in ("eval", "test")
    }  # fmt: skip


def _datasets(data: TrainingData, hp: HParams) -> dict:
    """train (shuffled, with OOV noise if asked), eval, train+eval (for the refit), test."""
    keras.utils.set_random_seed(hp.seed)  # shuffles hang on the global seed too
    make = lambda splits, shuffle=False: make_dataset(  # noqa: E731
        [f for s in splits for f in data.files[s]], data.output, data.spec,
        hp.batch_size, shuffle, hp.seed,
    )  # fmt: skip
    train, refit = make(["train"], True), make(["train", "eval"], True)
    if hp.oov_rate:
        require(data.spec.oov_buckets > 0, "--oov-rate needs preprocess --oov-buckets > 0")
        buckets = oov_bucket_ids(
            data.output.vocabulary_by_name(TOKENS_VOCAB), data.spec.oov_buckets
        )
        train, refit = (with_oov_noise(d, buckets, hp.oov_rate, hp.seed) for d in (train, refit))
    has_eval = bool(data.files["eval"])
    return {
        "train": train,
        "refit": refit,
        "eval": make(["eval"]) if has_eval else None,
        "test": make(["test"]) if data.files["test"] else None,
    }


def labels_per_video(data: TrainingData) -> tuple[int, int]:
    """The fewest and most categories a train video has (one pass over the labels)."""
    spec = {"label_ids": data.output.transformed_feature_spec()["label_ids"]}
    records = tf.data.TFRecordDataset(data.files["train"], compression_type="GZIP")
    low, high = None, 0
    for batch in records.batch(4096).map(lambda b: tf.io.parse_example(b, spec)["label_ids"]):
        lengths = tf.RaggedTensor.from_sparse(batch).row_lengths().numpy()
        low = int(lengths.min()) if low is None else min(low, int(lengths.min()))
        high = max(high, int(lengths.max()))
    return low or 0, high


def resolve_loss(data: TrainingData, hp: HParams) -> HParams:
    """``--loss auto``: softmax when every train video has exactly one category."""
    if hp.loss != "auto":
        return hp
    single = not data.spec.fusion and labels_per_video(data) == (1, 1)
    return dataclasses.replace(hp, loss="softmax" if single else "sigmoid")


def label_prior_bias(data: TrainingData, loss: str):
    """Output biases at the train split's label log-prior (``models.text.model.prior_logits``)."""
    counts = data.preprocess_report.get("labels", {}).get("train", {})
    train_videos = data.preprocess_report["records"]["written_per_split"]["train"]
    return prior_logits([counts.get(n, 0) for n in data.spec.label_names], train_videos, loss)


def _member(data, hp: HParams, seed: int, train, eval_batches, epochs: int, work: str, on_epoch):
    """One seed's model fitted by the shared loop; ``(model, history, best_epoch)``."""
    keras.utils.set_random_seed(seed)
    member_hp = dataclasses.replace(hp, seed=seed)
    model = build_model(data.spec.input_dim, data.spec.num_labels, member_hp,
                        data.spec.av_sizes, label_prior_bias(data, hp.loss), f"member_{seed}")  # fmt: skip
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
    eval_scores = predict_scores(chosen, datasets["eval"], hp.loss) if datasets["eval"] else None
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
        _, (_, scores, labels), runs = fit_models(data, hp, _datasets(data, hp), work, on_epoch)
    return metrics.gap_at_k(scores, labels), runs[0]["best_epoch"]


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
    _check_model_dir(config.model_dir, data.spec)
    config = dataclasses.replace(config, hparams=resolve_loss(data, config.hparams))
    hp, tuning = config.hparams, None
    if config.tune is not None:
        hp, tuning = tuned_hparams(data, config, run_round)
        config = dataclasses.replace(config, hparams=hp)
    datasets = _datasets(data, hp)
    start = time.monotonic()
    model, eval_scores, runs = fit_models(data, hp, datasets, config.model_dir)
    seconds = time.monotonic() - start
    if eval_scores is None:  # no eval split: thresholds from train, as before
        eval_scores = predict_scores(model, make_dataset(data.files["train"], data.output,
                                                         data.spec, hp.batch_size), hp.loss)  # fmt: skip
    _, scores, labels = eval_scores
    thresholds = metrics.tune_thresholds(scores, labels)
    results = {"eval": metrics.evaluate(scores, labels, thresholds)}
    if datasets["test"] is not None:
        _, scores, labels = predict_scores(model, datasets["test"], hp.loss)
        results["test"] = metrics.evaluate(scores, labels, thresholds)
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


def _model_card(data: TrainingData, hp: HParams, results: dict) -> dict:
    import apache_beam

    return model_card(
        results,
        kind=FUSION if data.spec.fusion else TEXT,
        data={"records": data.preprocess_report["records"],
              "labels": list(data.spec.label_names)},
        vocabulary={"size": data.spec.vocab_size, "oov_buckets": data.spec.oov_buckets},
        hparams=dataclasses.asdict(hp),
        versions={"tensorflow_transform": tft.__version__, "apache_beam": apache_beam.__version__},
    )  # fmt: skip
