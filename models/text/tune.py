"""``train --tune``: an Optuna search over the text model's settings on the eval split.

The study (TPE sampler, seeded; median pruning on per-epoch eval GAP@20) runs
in rounds of ``parallelism`` trials. Every round's settings are asked before
any of its trials runs, and a trial is pruned only against the trials of
earlier rounds, so a round can run in sequence in this process or side by side
as a Beam job (one trial per element, ``pipelines.components.tune_trials``) and the study
is the same: each trial is a pure function of its spec (settings, seed, the
earlier rounds). The best settings are then trained with the default seeds and
refit, and exported. Every trial lands in ``training_summary.json``, the model
card and TensorBoard's HParams dashboard (``tensorboard/tune``).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable

import optuna

from models.text.model import HParams

# name: (kind, choices or (low, high)); every trial samples all of them.
SEARCH_SPACE = {
    "hidden_units": ("categorical", (0, 128, 256, 512)),
    "wide": ("categorical", (True, False)),
    "dropout": ("float", (0.1, 0.8)),
    "learning_rate": ("log", (5e-4, 2e-2)),
    "batch_size": ("categorical", (32, 64, 128)),
}
MIN_TRIALS_BEFORE_PRUNING = 4


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    trials: int = 16
    budget_minutes: float | None = None  # no new round starts past it
    parallelism: int = 1  # trials asked per round (Beam runs a round side by side)
    seed: int = 0

    def __post_init__(self) -> None:
        for name, ok in {"trials": self.trials >= 1, "parallelism": self.parallelism >= 1,
                         "budget_minutes": (self.budget_minutes or 1) > 0}.items():  # fmt: skip
            if not ok:
                raise ValueError(f"Invalid {name}. Received: {name}={getattr(self, name)!r}")


def distributions() -> dict:
    kinds = {
        "categorical": lambda v: optuna.distributions.CategoricalDistribution(v),
        "float": lambda v: optuna.distributions.FloatDistribution(*v),
        "log": lambda v: optuna.distributions.FloatDistribution(*v, log=True),
    }
    return {name: kinds[kind](values) for name, (kind, values) in SEARCH_SPACE.items()}


def _study(seed: int, history: list[dict]) -> optuna.Study:
    """An in-memory study holding ``history`` (finished trial records)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=MIN_TRIALS_BEFORE_PRUNING),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=MIN_TRIALS_BEFORE_PRUNING, n_warmup_steps=2
        ),  # fmt: skip
    )
    for record in history:
        study.add_trial(
            optuna.trial.create_trial(
                params=record["params"], distributions=distributions(),
                value=record["value"] if record["state"] == "COMPLETE" else None,
                intermediate_values=dict(enumerate(record["eval_gap_per_epoch"])),
                state=optuna.trial.TrialState[record["state"]],
            )
        )  # fmt: skip
    return study


def ask_round(seed: int, history: list[dict], size: int, first: dict | None = None) -> list[dict]:
    """The next ``size`` trials' settings, from the earlier rounds alone; the very
    first trial is ``first`` (the given settings) when set."""
    study = _study(seed + len(history), history)
    if first is not None and not history:
        study.enqueue_trial(first)
    return [study.ask(distributions()).params for _ in range(size)]


def starting_point(base: HParams) -> dict:
    """``base``'s settings that lie in the search space (the rest are sampled)."""
    point = {}
    for name, dist in distributions().items():
        value = getattr(base, name)
        inside = (value in dist.choices if hasattr(dist, "choices")
                  else dist.low <= value <= dist.high)  # fmt: skip
        if inside:
            point[name] = value
    return point


def trial_hparams(base: HParams, params: dict) -> HParams:
    """One trial: one seed chosen on eval, no refit (the final model refits)."""
    return dataclasses.replace(base, **params, seeds=1, refit=False)


def run_trial(spec: dict, fit_trial: Callable) -> dict:
    """Runs one trial; ``spec`` holds ``number``, ``params``, ``seed`` and
    ``history`` (the earlier rounds' records) and ``fit_trial(params, on_epoch)``
    returns ``(eval GAP@20, best epoch)``. A pure function of ``spec``."""
    study = _study(spec["seed"], spec["history"])
    study.enqueue_trial(spec["params"])
    trial = study.ask(distributions())
    curve: list[float] = []

    def on_epoch(epoch: int, gap: float) -> None:
        curve.append(float(gap))
        trial.report(gap, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()

    start = time.monotonic()
    try:
        value, best_epoch = fit_trial(spec["params"], on_epoch)
        state = "COMPLETE"
    except optuna.TrialPruned:
        value, best_epoch, state = max(curve), curve.index(max(curve)) + 1, "PRUNED"
    return {"number": spec["number"], "params": spec["params"], "state": state,
            "value": float(value), "best_epoch": best_epoch, "eval_gap_per_epoch": curve,
            "seconds": round(time.monotonic() - start, 2)}  # fmt: skip


def search(
    config: TuneConfig, run_round: Callable[[list[dict]], list[dict]], base: HParams
) -> list[dict]:
    """Every trial record, in trial order. ``run_round(specs)`` runs one round's
    specs (in sequence, or on Beam) and returns their records. Trial 0 is
    ``base``'s own settings, so the search never ends below where it started."""
    history: list[dict] = []
    start = time.monotonic()
    while len(history) < config.trials:
        if config.budget_minutes and time.monotonic() - start > config.budget_minutes * 60:
            break
        size = min(config.parallelism, config.trials - len(history))
        params = ask_round(config.seed, history, size, starting_point(base))
        specs = [{"number": len(history) + i, "params": p, "seed": config.seed,
                  "history": list(history)} for i, p in enumerate(params)]  # fmt: skip
        history += sorted(run_round(specs), key=lambda r: r["number"])
    return history


def best_trial(history: list[dict]) -> dict:
    """The completed trial with the highest eval GAP@20 (ties: the earliest)."""
    done = [r for r in history if r["state"] == "COMPLETE"] or history
    return max(done, key=lambda r: (r["value"], -r["number"]))


def log_hparams(log_dir: str, history: list[dict]) -> None:
    """Every trial in TensorBoard's HParams dashboard."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams_api

    for record in history:
        with tf.summary.create_file_writer(
            os.path.join(log_dir, f"trial-{record['number']:03d}")
        ).as_default():  # noqa: E501
            hparams_api.hparams(record["params"], trial_id=f"trial-{record['number']:03d}")
            tf.summary.scalar("eval_gap@20", record["value"], step=record["best_epoch"])


def scratch_dir(parent: str | None = None) -> str:
    return tempfile.mkdtemp(prefix="tune-trial-", dir=parent)
