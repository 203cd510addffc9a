"""The evaluate report beyond the metrics: plot data equal to what the rows say,
the thresholds predict applied, the HTML report, and ``--baseline`` deltas."""

from __future__ import annotations

import collections
import json

import pytest

from pipelines import cli, evaluate
from pipelines.components import publish
from pipelines.evaluation import report as eval_report
from tests.helpers import catalog_labels, tag_rows


def _evaluate(predictions, catalog, model_dir, out, *flags) -> dict:
    args = ["--predictions", str(predictions), "--catalog", str(catalog)]
    args += ["--model-dir", str(model_dir), "--output-dir", str(out), *flags]
    return evaluate.run(cli.profile_args("local") + args)


def _write_predictions(path, rows) -> None:
    (path / "tags").mkdir(parents=True)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    (path / "tags" / "part-00000-of-00001.jsonl").write_text(text)


@pytest.fixture(scope="module")
def rows_labels(sample_predictions, sample_catalog):
    labels = catalog_labels(sample_catalog)
    rows = [row for row in tag_rows(sample_predictions) if row["video_id"] in labels]
    return sorted(rows, key=lambda row: row["video_id"]), labels


@pytest.fixture(scope="module")
def full(sample_predictions, sample_catalog, sample_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("full_report")
    return out, _evaluate(sample_predictions, sample_catalog, sample_model[0], out)


def test_tags_per_video_and_calibration_count_the_rows(full, rows_labels):
    _, report = full
    rows, labels = rows_labels
    curves = report["curves"]
    per_video = collections.Counter(len(row["predicted"]) for row in rows)
    assert curves["tags_per_video"] == {str(n): per_video[n] for n in sorted(per_video)}
    pairs = [(t["score"], t["label"] in labels[r["video_id"]]) for r in rows for t in r["labels"]]
    assert sum(b["count"] for b in curves["calibration"]) == len(pairs)
    for b in curves["calibration"]:
        inside = [(s, p) for s, p in pairs if min(int(s * 10), 9) == round(b["lower"] * 10)]
        assert b["count"] == len(inside)
        if inside:
            assert b["mean_score"] == pytest.approx(
                sum(s for s, _ in inside) / len(inside), abs=1e-6
            )
            assert b["fraction_positive"] == pytest.approx(
                sum(p for _, p in inside) / len(inside), abs=1e-6
            )


def test_micro_and_category_pr_curves_follow_the_rows(full, rows_labels):
    _, report = full
    rows, labels = rows_labels
    pr = report["curves"]["pr"]
    pairs = [
        (t["label"], t["score"], t["label"] in labels[r["video_id"]])
        for r in rows
        for t in r["labels"]
    ]
    support = collections.Counter(name for r in rows for name in set(labels[r["video_id"]]))
    top = sorted(support, key=lambda name: (-support[name], name))[:6]
    assert sorted(pr["per_category"]) == sorted(top)

    def check(curve, selected, positives):
        assert curve["thresholds"] == sorted(curve["thresholds"], reverse=True)
        for t, precision, recall in list(
            zip(curve["thresholds"], curve["precision"], curve["recall"], strict=True)
        )[::7]:
            kept = [p for s, p in selected if min(int(s * 100), 99) >= round(t * 100)]
            assert precision == pytest.approx(sum(kept) / len(kept), abs=1e-6)
            assert recall == pytest.approx(sum(kept) / positives, abs=1e-6)

    check(pr["micro"], [(s, p) for _, s, p in pairs], sum(support.values()))
    name = top[0]
    check(pr["per_category"][name], [(s, p) for n, s, p in pairs if n == name], support[name])


def test_thresholds_in_the_report_are_those_predict_used(full, sample_model, sample_predictions):
    _, report = full
    model = json.loads((sample_model[0] / "saved_model/assets.extra/thresholds.json").read_text())
    used = json.loads((sample_predictions / "thresholds_used.json").read_text())
    assert used == pytest.approx(model)
    for row in report["per_category"]:
        assert row["threshold"] == pytest.approx(model[row["name"]])


def test_html_report_and_plots_written(full, sample_catalog):
    out, report = full
    assert sorted(p.name for p in out.iterdir()) == sorted([publish.SUCCESS, *evaluate.PUBLISHED])
    lines = [line for line in sample_catalog.read_bytes().splitlines()
             if line.strip()]  # fmt: skip
    assert report["catalog"] == {"in": len(lines), "dead_lettered": 7, "duplicates_removed": 24}
    dead = [line for f in (out / "dead_letters").glob("part-*")
            for line in f.read_text().splitlines()]  # fmt: skip
    assert len(dead) == 7
    html = (out / "report.html").read_text()
    assert f"{report['metrics']['gap@20']:.4f}" in html
    for name in eval_report.OUTPUT_FILES:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f'src="{name}"' in html


def test_baseline_scored_on_shared_videos_with_deltas(
    rows_labels, sample_catalog, sample_model, tmp_path
):
    rows, _ = rows_labels
    candidate = rows[1:]  # the baseline lacks rows[0]: both are scored without it
    baseline = [
        {**row, "predicted": row["predicted"] if i % 2 else [],
         "labels": [{**t, "score": round(1 - t["score"], 6)} for t in row["labels"]]}
        for i, row in enumerate(rows)
    ][1:] + [{**rows[0], "video_id": "not-in-the-catalog"}]  # fmt: skip
    _write_predictions(tmp_path / "cand", rows)
    _write_predictions(tmp_path / "cand_shared", candidate)
    _write_predictions(tmp_path / "base", baseline)
    model_dir = sample_model[0]
    both = _evaluate(tmp_path / "cand", sample_catalog, model_dir, tmp_path / "both",
                     "--baseline", str(tmp_path / "base"))  # fmt: skip
    alone = _evaluate(tmp_path / "cand_shared", sample_catalog, model_dir, tmp_path / "a")
    base = _evaluate(tmp_path / "base", sample_catalog, model_dir, tmp_path / "b")
    assert both["counts"]["evaluated"] == len(candidate)
    assert both["counts"]["catalog_without_baseline"] == 1
    assert both["metrics"] == pytest.approx(alone["metrics"], abs=1e-12)
    assert both["baseline"]["metrics"] == pytest.approx(base["metrics"], abs=1e-12)
    for key, delta in both["deltas"]["metrics"].items():
        assert delta == pytest.approx(alone["metrics"][key] - base["metrics"][key], abs=1e-12)
    assert both["deltas"]["metrics"]["gap@20"] > 0.2  # reversed scores rank badly
    base_rows = {row["name"]: row for row in base["per_category"]}
    for row in alone["per_category"]:
        delta = both["deltas"]["per_category"][row["name"]]
        assert delta["f1"] == pytest.approx(row["f1"] - base_rows[row["name"]]["f1"], abs=1e-12)
    html = (tmp_path / "both" / "report.html").read_text()
    assert ">baseline<" in html and f"{both['deltas']['metrics']['gap@20']:+.4f}" in html
