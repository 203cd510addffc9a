"""train --tune: Optuna trials on eval, identical in sequence and on Beam."""

from __future__ import annotations

import json
import os

import pytest

from models.text import tune
from models.text.model import HParams
from models.text.train import TrainConfig, load_training_data, sequential_rounds, train
from pipelines.cli import profile_args
from pipelines.components.tune_trials import beam_rounds

BASE = HParams(hidden_units=32, epochs=2, patience=1, batch_size=32, seeds=1, refit=False)


def _history(curve_value: float, n: int) -> list[dict]:
    params = {"hidden_units": 0, "wide": True, "dropout": 0.3, "learning_rate": 0.01,
              "batch_size": 32}  # fmt: skip
    return [{"number": i, "params": params, "state": "COMPLETE", "value": curve_value,
             "best_epoch": 4, "eval_gap_per_epoch": [curve_value] * 5} for i in range(n)]  # fmt: skip


def test_a_trial_below_the_median_of_earlier_rounds_is_pruned_after_warmup():
    history = _history(0.9, tune.MIN_TRIALS_BEFORE_PRUNING)
    spec = {"number": 4, "params": history[0]["params"], "seed": 0, "history": history}

    def fit(params, on_epoch):
        for epoch in range(5):
            on_epoch(epoch, 0.1 * (epoch + 1))
        return 0.5, 5

    record = tune.run_trial(spec, fit)
    assert record["state"] == "PRUNED"
    # warm-up steps 0 and 1 are never pruned; step 2 (0.3 < median 0.9) is
    assert record["eval_gap_per_epoch"] == pytest.approx([0.1, 0.2, 0.3])
    assert record["value"] == pytest.approx(0.3) and record["best_epoch"] == 3
    assert tune.run_trial({**spec, "history": []}, fit)["state"] == "COMPLETE"


def test_rounds_ask_the_same_settings_whatever_runs_them():
    first = tune.ask_round(0, [], 3)
    assert first == tune.ask_round(0, [], 3)
    assert all(set(p) == set(tune.SEARCH_SPACE) for p in first)
    assert tune.ask_round(0, _history(0.5, 2), 2) == tune.ask_round(0, _history(0.5, 2), 2)


def test_trials_on_beam_equal_trials_in_sequence(sample_preprocessed, tmp_path):
    data = load_training_data(str(sample_preprocessed))
    config = tune.TuneConfig(trials=2, parallelism=2, seed=3)
    here = tune.search(config, sequential_rounds(data, BASE), BASE)
    run_round = beam_rounds(profile_args("local"), str(sample_preprocessed), str(tmp_path), BASE)
    on_beam = tune.search(config, run_round, BASE)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(on_beam) == strip(here)
    assert [r["number"] for r in here] == [0, 1]
    # trial 0 starts at BASE, except hidden_units 32, outside the space, which is sampled
    start = {k: getattr(BASE, k) for k in tune.SEARCH_SPACE if k != "hidden_units"}
    assert tune.starting_point(BASE) == start
    assert {k: here[0]["params"][k] for k in start} == start
    assert all(r["value"] == max(r["eval_gap_per_epoch"]) > 0.3 for r in here)
    assert os.path.exists(tmp_path / "tune" / "round-000")


def test_train_tune_exports_the_best_trial_with_every_trial_recorded(sample_preprocessed, tmp_path):
    config = TrainConfig(str(sample_preprocessed), str(tmp_path), BASE, tune.TuneConfig(trials=2))
    summary = train(config)
    trials = summary["tuning"]["trials"]
    assert [t["number"] for t in trials] == [0, 1]
    best = max(trials, key=lambda t: (t["value"], -t["number"]))
    assert summary["tuning"]["best"] == best
    assert {k: summary["hparams"][k] for k in best["params"]} == best["params"]
    card = json.loads((tmp_path / "saved_model/assets.extra/model_card.json").read_text())
    assert card["tuning"]["best"]["number"] == best["number"]
    assert sorted(os.listdir(tmp_path / "tensorboard" / "tune")) == ["trial-000", "trial-001"]
