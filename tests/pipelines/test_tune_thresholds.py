"""tune-thresholds: the trainer's threshold rule applied per category on the eval
split of a predict output, and predict --thresholds-file applying the result."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import metrics
from pipelines import cli, predict, tune_thresholds
from tests.helpers import catalog_labels, split_ids, tag_rows


def _tune(predictions, catalog, model_dir, out, *flags) -> dict:
    args = ["--predictions", str(predictions), "--catalog", str(catalog)]
    args += ["--model-dir", str(model_dir), "--output-dir", str(out), *flags]
    return tune_thresholds.run(cli.profile_args("local") + args)


@pytest.fixture(scope="module")
def eval_matrix(sample_predictions, sample_catalog, sample_preprocessed):
    """Scores (0 where unlisted) and labels of the eval-split videos; sorted label space."""
    labels, ids = catalog_labels(sample_catalog), split_ids(sample_preprocessed, "eval")
    rows = [row for row in tag_rows(sample_predictions) if row["video_id"] in ids]
    space = sorted({t["label"] for r in rows for t in r["labels"]} | {
        name for r in rows for name in labels[r["video_id"]]})  # fmt: skip
    scores, truth = np.zeros((len(rows), len(space))), np.zeros((len(rows), len(space)))
    for i, row in enumerate(rows):
        for t in row["labels"]:
            scores[i, space.index(t["label"])] = t["score"]
        truth[i, [space.index(name) for name in labels[row["video_id"]]]] = 1
    return space, scores, truth


@pytest.fixture(scope="module")
def tuned(sample_predictions, sample_catalog, sample_model, tmp_path_factory):
    runs = {"f1": [], "p90": ["--min-precision", "0.9"]}
    return {
        name: _tune(sample_predictions, sample_catalog, sample_model[0],
                    tmp_path_factory.mktemp(name), *flags)
        for name, flags in runs.items()
    }  # fmt: skip


def test_max_f1_thresholds_follow_the_trainer_rule(tuned, eval_matrix, sample_model):
    space, scores, truth = eval_matrix
    result = tuned["f1"]
    assert result["split"] == "eval" and result["objective"] == "max_f1"
    assert result["videos"] == len(scores)
    card = json.loads((sample_model[0] / "saved_model/assets.extra/model_card.json").read_text())
    assert result["model_version"] == card["model_version"]
    expected = metrics.tune_thresholds(scores, truth)
    with_positives = [name for j, name in enumerate(space) if truth[:, j].any()]
    assert sorted(result["thresholds"]) == with_positives
    for j, name in enumerate(space):
        if truth[:, j].any():
            assert result["thresholds"][name] == pytest.approx(expected[j], abs=1e-12), name
    rows = {row["name"]: row for row in result["per_category"]}
    for j, name in enumerate(with_positives):
        pred = scores[:, space.index(name)] >= result["thresholds"][name]
        tp = (pred & (truth[:, space.index(name)] > 0)).sum()
        assert rows[name]["precision"] == pytest.approx(tp / max(pred.sum(), 1))
        assert rows[name]["support"] == truth[:, space.index(name)].sum(), j


def test_min_precision_reaches_the_target_or_says_not(tuned, eval_matrix):
    space, scores, truth = eval_matrix
    result = tuned["p90"]
    assert result["objective"] == "min_precision" and result["min_precision"] == 0.9
    expected = metrics.tune_thresholds(scores, truth, min_precision=0.9)
    for row in result["per_category"]:
        assert row["threshold"] == pytest.approx(expected[space.index(row["name"])], abs=1e-12)
        if row["reached"]:
            assert row["precision"] >= 0.9
        else:
            assert row["threshold"] > 1.0 and row["recall"] == 0.0
    assert any(row["reached"] for row in result["per_category"])


def test_predict_applies_the_thresholds_file(tuned, sample_catalog, sample_model, tmp_path_factory):
    model_dir = sample_model[0]
    path = tmp_path_factory.mktemp("file") / "thresholds.json"
    path.write_text(json.dumps(tuned["p90"]))
    out = tmp_path_factory.mktemp("tuned_predict")
    args = ["--input", str(sample_catalog), "--model-dir", str(model_dir)]
    args += ["--output-dir", str(out), "--thresholds-file", str(path)]
    predict.run(cli.profile_args("local") + args)
    model = json.loads((model_dir / "saved_model/assets.extra/thresholds.json").read_text())
    expected = model | tuned["p90"]["thresholds"]
    used = json.loads((out / "thresholds_used.json").read_text())
    assert used == pytest.approx(expected)
    rows = tag_rows(out)
    assert rows
    for row in rows:
        listed = [t["label"] for t in row["labels"] if t["score"] >= expected[t["label"]] + 1e-6]
        assert set(listed) <= set(row["predicted"])
        assert all(expected[name] <= 1.0 for name in row["predicted"])


def test_bad_thresholds_files_are_one_line_errors(
    tuned, sample_catalog, sample_model, tmp_path, capsys
):
    base = ["predict", "--input", str(sample_catalog), "--model-dir", str(sample_model[0])]
    base += ["--output-dir", str(tmp_path / "out")]
    cases = {
        "unknown": ({**tuned["f1"], "thresholds": {"NoSuchGenre": 0.5}}, "categories the model"),
        "version": ({**tuned["f1"], "model_version": "19990101T000000Z"}, "was tuned for model"),
        "shape": ({"thresholds": [0.5]}, "is not a thresholds file"),
    }
    for name, (payload, message) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(payload))
        assert cli.main([*base, "--thresholds-file", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert cli.main([*base, "--thresholds-file", str(path), "--threshold", "0.3"]) == 2
    assert "exclude each other" in capsys.readouterr().err
