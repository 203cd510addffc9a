"""The evaluate job: Beam metrics equal models.metrics on the same data, the test
split matches preprocess and training, binned mode is close and bounded, and the
CombineFns merge."""

from __future__ import annotations

import json

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from models import metrics
from pipelines import cli, evaluate
from pipelines.evaluation import metrics as eval_metrics
from pipelines.evaluation.config import EvaluateConfig
from pipelines.evaluation.join import EvaluatedVideos
from pipelines.tools.sample_catalog import generate_lines
from tests.helpers import catalog_labels, local_options, split_ids
from transforms.splits import SplitConfig, group_split
from transforms.text import TextConfig


@pytest.fixture(scope="module")
def predictions(sample_predictions):
    return sample_predictions


def _evaluate(predictions, catalog, model_dir, out, *flags) -> dict:
    args = ["--predictions", str(predictions), "--catalog", str(catalog)]
    args += ["--model-dir", str(model_dir), "--output-dir", str(out), *flags]
    return evaluate.run(cli.profile_args("local") + args)


@pytest.fixture(scope="module")
def reports(predictions, sample_catalog, sample_model, tmp_path_factory):
    model_dir, _ = sample_model
    runs = {"exact": [], "binned": ["--binned"], "test": ["--split", "test"]}
    return {
        name: _evaluate(predictions, sample_catalog, model_dir, tmp_path_factory.mktemp(name), *f)
        for name, f in runs.items()
    }


@pytest.fixture(scope="module")
def data(predictions, sample_catalog):
    """Prediction rows joined with catalog labels, sorted by video_id."""
    files = sorted((predictions / "tags").glob("part-*.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    labels = catalog_labels(sample_catalog)
    rows = sorted((r for r in rows if r["video_id"] in labels), key=lambda r: r["video_id"])
    return rows, labels


def _matrices(rows, labels):
    """Scores (0 where not listed), labels and predictions; columns: sorted label space."""
    space = sorted({t["label"] for r in rows for t in r["labels"]})
    col = {name: j for j, name in enumerate(space)}
    scores, truth, pred = (np.zeros((len(rows), len(space))) for _ in range(3))
    for i, row in enumerate(rows):
        for t in row["labels"]:
            scores[i, col[t["label"]]] = t["score"]
        truth[i, [col[name] for name in labels[row["video_id"]]]] = 1
        pred[i, [col[name] for name in row["predicted"]]] = 1
    return scores, truth, pred


def test_exact_metrics_equal_numpy_metrics(reports, data):
    rows, labels = data
    scores, truth, pred = _matrices(rows, labels)
    expected = metrics.evaluate(scores, truth)
    expected |= metrics.f1_scores(pred, truth, 0.5)
    got = reports["exact"]["metrics"]
    for key in ("gap@20", "hit@1", "perr", "map", "micro_f1", "macro_f1"):
        assert got[key] == pytest.approx(expected[key], abs=1e-9), key
    assert reports["exact"]["counts"]["evaluated"] == len(rows)
    # predict tags the sample's empty-text videos too, and evaluate scores them
    _, manifest = generate_lines(800, 7)
    assert sum(1 for r in rows if r.get("empty_text")) == manifest.empty_text
    assert reports["exact"]["counts"]["empty_text"] == manifest.empty_text
    assert reports["exact"]["coverage"]["videos_with_tags"] == int((pred.sum(1) > 0).sum())
    ap = metrics.average_precision_per_class(scores, truth)
    table = {row["name"]: row for row in reports["exact"]["per_category"]}
    for j, name in enumerate(sorted(table)):
        assert table[name]["ap"] == pytest.approx(ap[j], abs=1e-9)
        assert table[name]["support"] == int(truth[:, j].sum())


def test_test_split_matches_preprocess_and_training(
    reports, data, predictions, sample_catalog, sample_preprocessed, sample_model
):
    rows, labels = data
    trained_ids = split_ids(sample_preprocessed)  # preprocess drops empty-text videos
    empty_ids = {r["video_id"] for r in rows if r.get("empty_text")}
    empty_test = {v for v in empty_ids if group_split([(v, None)], SplitConfig()) == "test"}
    expected_ids = trained_ids | empty_test
    config = EvaluateConfig(
        str(predictions), str(sample_catalog), "unused", split="test", text=TextConfig()
    )
    with TestPipeline(options=local_options()) as p:
        videos = p | EvaluatedVideos(config)
        assert_that(
            videos["predictions"] | "Ids" >> beam.Map(lambda video: video[0]),
            equal_to(sorted(expected_ids)),
        )
    test = reports["test"]
    assert test["counts"]["evaluated"] == len(expected_ids)
    assert test["counts"]["empty_text"] == len(empty_test)
    by_id = {r["video_id"]: r for r in rows}
    gap = {}
    for name, ids in (("trained", trained_ids), ("evaluated", expected_ids)):
        scores, truth, _ = _matrices([by_id[v] for v in sorted(ids)], labels)
        gap[name] = metrics.evaluate(scores, truth)["gap@20"]
    _, summary = sample_model
    assert gap["trained"] == pytest.approx(summary["metrics"]["test"]["gap@20"], abs=1e-4)
    assert test["metrics"]["gap@20"] == pytest.approx(gap["evaluated"], abs=1e-9)


def test_binned_close_to_exact_and_bounded(reports, data):
    binned, exact = reports["binned"], reports["exact"]
    assert binned["binned"] == {"bins": 1000, "max_score_error": 0.001}
    # Binning only reorders scores within one 0.001-wide bin (a tie step); on 20
    # sigmoid-scored labels over ~800 videos that moves GAP/mAP by far less than
    # 0.01 (ten bin widths), the bound asserted here.
    for key in ("gap@20", "map"):
        assert abs(binned["metrics"][key] - exact["metrics"][key]) <= 0.01, key
    for key in ("hit@1", "perr", "micro_f1", "macro_f1"):
        assert binned["metrics"][key] == exact["metrics"][key]
    rows, labels = data
    items = [eval_metrics.video_item(r["video_id"], labels[r["video_id"]], r) for r in rows]
    for fn in (eval_metrics.GapFn(False, 1000), eval_metrics.CategoryFn(False, 1000)):
        sizes = []
        for n in (100, len(items)):
            acc = fn.create_accumulator()
            for item in items[:n]:
                acc = fn.add_input(acc, item)
            sizes.append(eval_metrics.accumulator_size(acc))
        assert sizes[0] == sizes[1] <= 21 * (2 * 1000 + 8)


@pytest.mark.parametrize("exact", [True, False])
def test_combine_fns_merge_halves_as_whole(data, exact):
    rows, labels = data
    items = [eval_metrics.video_item(r["video_id"], labels[r["video_id"]], r) for r in rows]
    fns = (
        eval_metrics.VideoStatsFn(),
        eval_metrics.GapFn(exact, 50),
        eval_metrics.CategoryFn(exact, 50),
    )
    for fn in fns:
        accs = []
        for part in (items, items[::2], items[1::2]):
            acc = fn.create_accumulator()
            for item in part:
                acc = fn.add_input(acc, item)
            accs.append(acc)
        whole = fn.extract_output(accs[0])
        merged = fn.extract_output(fn.merge_accumulators(accs[1:]))
        if isinstance(whole, dict):
            assert merged == pytest.approx(whole, abs=1e-12)
        else:
            assert merged == whole
