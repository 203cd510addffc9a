"""eval_report: the PNG plots and report.html rendered from a report.json dict."""

from __future__ import annotations

import copy
import os
import struct

import pytest

from pipelines.evaluation import plots as eval_plots
from pipelines.evaluation import report as eval_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert('x')</script>&co"
EXPECTED_PIXELS = {
    eval_plots.PR_CURVE_PNG: (800, 600),
    eval_plots.CATEGORY_AP_PNG: (800, 900),
    eval_plots.CALIBRATION_PNG: (700, 600),
    eval_plots.TAGS_PER_VIDEO_PNG: (800, 500),
}


def _category(name, support, ap, f1, threshold=0.5):
    return {
        "name": name,
        "support": support,
        "tp": support // 2,
        "fp": 1,
        "fn": support // 2,
        "ap": ap,
        "precision": 0.6,
        "recall": 0.55,
        "f1": f1,
        "threshold": threshold,
    }


def _curve(points):
    return {
        "precision": [1.0 - 0.1 * i for i in range(points)],
        "recall": [0.1 * i for i in range(points)],
        "thresholds": [1.0 - 0.05 * i for i in range(points)],
    }


def _report() -> dict:
    metrics = {
        "gap@20": 0.4321,
        "hit@1": 0.8765,
        "perr": 0.5,
        "map": 0.3333,
        "micro_f1": 0.61,
        "macro_f1": 0.42,
        "micro_precision": 0.7,
        "micro_recall": 0.55,
    }
    return {
        "split": "test",
        "metrics": metrics,
        "per_category": [
            _category("comedy", 40, 0.61, 0.5),
            _category(EVIL, 12, 0.83, 0.7),
            _category("never_listed", 5, None, 0.0, threshold=None),
            _category("music", 30, 0.2468, 0.3),
        ],
        "coverage": {"videos_with_tags": 90, "fraction": 0.9},
        "counts": {
            "evaluated": 100,
            "predictions_without_catalog": 3,
            "catalog_without_prediction": 7,
        },
        "curves": {
            "pr": {"micro": _curve(8), "per_category": {"comedy": _curve(5), EVIL: _curve(1)}},
            "calibration": [
                {
                    "lower": 0.0,
                    "upper": 0.5,
                    "count": 60,
                    "mean_score": 0.2,
                    "fraction_positive": 0.15,
                },
                {
                    "lower": 0.5,
                    "upper": 0.9,
                    "count": 0,
                    "mean_score": 0.0,
                    "fraction_positive": 0.0,
                },
                {
                    "lower": 0.9,
                    "upper": 1.0,
                    "count": 40,
                    "mean_score": 0.95,
                    "fraction_positive": 0.9,
                },
            ],
            "tags_per_video": {"0": 10, "1": 30, "2": 45, "3": 15},
        },
    }


def _with_baseline(report: dict) -> dict:
    report = copy.deepcopy(report)
    base_metrics = {k: v - 0.05 for k, v in report["metrics"].items()}
    report["baseline"] = {
        "metrics": base_metrics,
        "per_category": [_category("comedy", 40, 0.5, 0.45), _category("music", 30, 0.3, 0.3)],
        "coverage": {"videos_with_tags": 80, "fraction": 0.8},
    }
    deltas = {k: round(report["metrics"][k] - v, 10) for k, v in base_metrics.items()}
    report["deltas"] = {
        "metrics": deltas,
        "per_category": {
            "comedy": {"ap": 0.11, "f1": 0.05, "precision": 0.0, "recall": 0.0},
            "music": {"ap": -0.0532, "f1": 0.0, "precision": 0.0, "recall": 0.0},
        },
    }
    return report


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _render(report: dict, out) -> tuple[list[str], str]:
    paths = eval_report.write_html_report(report, str(out))
    return paths, _read(os.path.join(str(out), eval_report.REPORT_HTML)).decode("utf-8")


def test_writes_plots_and_page(tmp_path):
    paths, page = _render(_report(), tmp_path)
    names = [*eval_plots.PLOT_FILES, eval_report.REPORT_HTML]
    assert paths == [os.path.join(str(tmp_path), name) for name in names]
    assert sorted(os.listdir(tmp_path)) == sorted(names)
    for name, pixels in EXPECTED_PIXELS.items():
        assert _png_size(_read(os.path.join(str(tmp_path), name))) == pixels
        assert f'<img src="{name}"' in page
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "http" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;co" in page
    assert "Evaluation report: test (100 videos)" in page
    for value in ("0.4321", "0.8765", "0.3333", "0.6100", "0.9000"):
        assert value in page
    assert "Scores binned" not in page


def test_category_rows_sorted_by_ap_with_none_last(tmp_path):
    _, page = _render(_report(), tmp_path)
    names = ("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;co", "comedy", "music")
    positions = [page.index(f"<td>{n}</td>") for n in (*names, "never_listed")]
    assert positions == sorted(positions)
    never_row = page[positions[-1] :].split("</tr>")[0]
    assert never_row.count("\u2013") == 2  # AP and threshold are None
    assert '<td class="num">0.2468</td>' in page


def test_without_baseline_has_no_delta_columns(tmp_path):
    _, page = _render(_report(), tmp_path)
    assert "\u0394" not in page and "baseline" not in page
    assert "+0.0500" not in page


def test_baseline_columns_and_signed_deltas(tmp_path):
    _, page = _render(_with_baseline(_report()), tmp_path)
    assert "<th>baseline</th><th>\u0394</th>" in page
    assert "<th>\u0394 AP</th><th>\u0394 F1</th>" in page
    assert '<td class="num">0.3821</td><td class="num pos">+0.0500</td>' in page  # gap@20
    assert '<td class="num pos">+0.1100</td><td class="num pos">+0.0500</td>' in page  # comedy
    assert '<td class="num neg">-0.0532</td><td class="num">+0.0000</td>' in page  # music
    evil_row = page[page.index("<td>&lt;script&gt;") :].split("</tr>")[0]
    assert evil_row.endswith('<td class="num">\u2013</td><td class="num">\u2013</td>')


def test_baseline_delta_computed_when_deltas_missing(tmp_path):
    report = _with_baseline(_report())
    del report["deltas"]
    _, page = _render(report, tmp_path)
    assert '<td class="num">0.8265</td><td class="num pos">+0.0500</td>' in page  # hit@1


def test_binned_note(tmp_path):
    report = _report()
    report["binned"] = {"bins": 1000, "max_score_error": 0.001}
    _, page = _render(report, tmp_path)
    assert "Scores binned into 1000 bins; AP within" in page
    assert "at most 0.0010" in page


@pytest.mark.parametrize(
    "report",
    [
        {},
        {
            "split": "valid",
            "metrics": {},
            "per_category": [],
            "coverage": {},
            "counts": {},
            "curves": {
                "pr": {
                    "micro": {"precision": [], "recall": [], "thresholds": []},
                    "per_category": {},
                },
                "calibration": [],
                "tags_per_video": {},
            },
        },
    ],
    ids=["bare", "empty"],
)
def test_empty_report_still_writes_everything(tmp_path, report):
    paths, page = _render(report, tmp_path)
    assert len(paths) == 5 and all(os.path.getsize(p) > 0 for p in paths)
    for name, pixels in EXPECTED_PIXELS.items():
        assert _png_size(_read(os.path.join(str(tmp_path), name))) == pixels
    assert "<h2>Per category</h2>" in page


def test_many_categories_and_odd_names(tmp_path):
    report = _with_baseline(_report())
    extra = [_category(f"cat_{i:02d} $x^$", 3, i / 100, 0.1) for i in range(60)]
    report["per_category"] += extra + [_category("_hidden", 2, 0.77, 0.2)]
    report["curves"]["pr"]["per_category"]["_hidden"] = _curve(3)
    paths, page = _render(report, tmp_path)
    assert _png_size(_read(paths[1])) == EXPECTED_PIXELS[eval_plots.CATEGORY_AP_PNG]
    assert page.count("<tr>") == 1 + 8 + 1 + 65  # metrics header + rows, categories header + rows


def test_rendering_is_deterministic(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    _, page_a = _render(_with_baseline(_report()), first)
    _, page_b = _render(_with_baseline(_report()), second)
    assert page_a == page_b
    for name in eval_plots.PLOT_FILES:
        assert _read(str(first / name)) == _read(str(second / name))


def test_category_deltas_computed_when_deltas_missing(tmp_path):
    report = _with_baseline(_report())
    del report["deltas"]
    _, page = _render(report, tmp_path)
    comedy = page[page.index("<td>comedy</td>") :].split("</tr>")[0]
    assert comedy.endswith('<td class="num pos">+0.1100</td><td class="num pos">+0.0500</td>')


def test_rollup_level_rendered_when_present():
    from pipelines.evaluation.report import render_html

    level = {
        "metrics": {"gap@20": 0.8765},
        "per_category": [{"name": "Games & <Fun>", "support": 3, "tp": 2, "fp": 0, "fn": 1,
                          "ap": 0.9, "precision": 1.0, "recall": 0.6667, "f1": 0.8}],
    }  # fmt: skip
    page = render_html({"metrics": {}, "levels": {"category": level, "method": "max"}})
    assert "Generic categories (roll-up, max)" in page
    assert "0.8765" in page and "Games &amp; &lt;Fun&gt;" in page
    assert "Generic categories" not in render_html({"metrics": {}})
