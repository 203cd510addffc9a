"""The evaluate job's ``report.json`` rendered for people: PNG plots and ``report.html``.

``write_html_report(report, output_dir)`` writes the four plots of
``pipelines.evaluation.plots`` and a self-contained HTML page (inline CSS, no
scripts, images by relative path) into ``output_dir`` through ``FileSystems``
(local or GCS).
"""

from __future__ import annotations

import html

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.evaluation.plots import PLOT_FILES, by_name, render_png, split_name

REPORT_HTML = "report.html"
OUTPUT_FILES = (*PLOT_FILES, REPORT_HTML)
_NONE = "\u2013"  # en dash


def write_html_report(report: dict, output_dir: str) -> list[str]:
    """Writes the plots and ``report.html`` into ``output_dir``; returns their paths."""
    paths = []
    for name in PLOT_FILES:
        paths.append(_write(output_dir, name, render_png(name, report), "image/png"))
    page = render_html(report).encode("utf-8")
    paths.append(_write(output_dir, REPORT_HTML, page, "text/html"))
    return paths


def _write(output_dir: str, name: str, data: bytes, mime_type: str) -> str:
    path = FileSystems.join(output_dir, name)
    with FileSystems.create(path, mime_type, CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)
    return path


_CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pos { color: #187a2f; } .neg { color: #b3261e; }
.note { background: #fff6d5; padding: 0.5em; }
img { max-width: 100%; margin: 0.5em; border: 1px solid #eee; }
""".strip()


def _num(value) -> str:
    return _NONE if value is None else f"{value:.4f}"


def _delta(value) -> str:
    if value is None:
        return '<td class="num">' + _NONE + "</td>"
    css = "num pos" if value > 0 else "num neg" if value < 0 else "num"
    return f'<td class="{css}">{value:+.4f}</td>'


def _cell(value) -> str:
    return f'<td class="num">{_num(value)}</td>'


def _table(headers: list, rows: list) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "\n".join(f"<tr>{row}</tr>" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}\n</table>"


def _difference(candidate: dict, baseline: dict | None, keys) -> dict:
    """candidate - baseline for ``keys`` where both are numbers (else None)."""
    baseline = baseline or {}
    both = [k for k in keys if candidate.get(k) is not None and baseline.get(k) is not None]
    return {k: candidate[k] - baseline[k] for k in both}


def _metrics_table(report: dict) -> str:
    metrics, baseline = report.get("metrics") or {}, report.get("baseline")
    if baseline is None:
        rows = [f"<td>{html.escape(str(k))}</td>{_cell(v)}" for k, v in metrics.items()]
        return _table(["metric", "value"], rows)
    base = baseline.get("metrics") or {}
    deltas = (report.get("deltas") or {}).get("metrics") or {}
    computed = _difference(metrics, base, metrics)
    rows = [
        f"<td>{html.escape(str(k))}</td>{_cell(v)}{_cell(base.get(k))}"
        + _delta(deltas.get(k, computed.get(k)))
        for k, v in metrics.items()
    ]
    return _table(["metric", "value", "baseline", "\u0394"], rows)


def _category_table(report: dict) -> str:
    categories = sorted(
        report.get("per_category") or [],
        key=lambda c: (c.get("ap") is None, -(c.get("ap") or 0.0), str(c["name"])),
    )
    headers = ["category", "support", "AP", "precision", "recall", "F1", "threshold"]
    baseline = report.get("baseline")
    deltas = (report.get("deltas") or {}).get("per_category") or {}
    if baseline is not None:
        headers += ["\u0394 AP", "\u0394 F1"]
        base = by_name(baseline.get("per_category"))
    rows = []
    for c in categories:
        row = f'<td>{html.escape(str(c["name"]))}</td><td class="num">{c.get("support", 0)}</td>'
        row += "".join(_cell(c.get(k)) for k in ("ap", "precision", "recall", "f1", "threshold"))
        if baseline is not None:
            d = deltas.get(c["name"]) or _difference(c, base.get(c["name"]), ("ap", "f1"))
            row += _delta(d.get("ap")) + _delta(d.get("f1"))
        rows.append(row)
    return _table(headers, rows)


def _summary(report: dict) -> str:
    counts, coverage = report.get("counts") or {}, report.get("coverage") or {}
    parts = [
        f"{counts.get('evaluated', 0)} videos evaluated",
        f"{counts.get('predictions_without_catalog', 0)} predictions without catalog entry",
        f"{counts.get('catalog_without_prediction', 0)} catalog videos without prediction",
    ]
    text = f"<p>{'; '.join(parts)}.</p>\n<p>Coverage: {coverage.get('videos_with_tags', 0)}"
    text += f" videos with at least one tag (fraction {_num(coverage.get('fraction'))}).</p>"
    binned = report.get("binned")
    if binned:
        text += (
            f'\n<p class="note">Scores binned into {binned.get("bins")} bins; AP within the '
            f"binning error (scores off by at most {_num(binned.get('max_score_error'))}).</p>"
        )
    return text


def _levels(report: dict) -> str:
    """With a taxonomy roll-up: the generic-category level's metrics and table."""
    level = (report.get("levels") or {}).get("category")
    if not level:
        return ""
    method = html.escape(str(report["levels"].get("method", "")))
    return (
        f"<h2>Generic categories (roll-up, {method})</h2>\n"
        f"{_metrics_table({'metrics': level.get('metrics') or {}})}\n"
        f"{_category_table({'per_category': level.get('per_category') or []})}\n"
    )


def render_html(report: dict) -> str:
    """The ``report.html`` page for ``report`` (images referenced by relative path)."""
    split = html.escape(split_name(report))
    evaluated = (report.get("counts") or {}).get("evaluated", 0)
    images = "\n".join(f'<img src="{name}" alt="{name[:-4]}">' for name in PLOT_FILES)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Evaluation report: {split}</title>
<style>
{_CSS}
</style></head>
<body>
<h1>Evaluation report: {split} ({evaluated} videos)</h1>
{_summary(report)}
<h2>Metrics</h2>
{_metrics_table(report)}
{_levels(report)}<h2>Plots</h2>
{images}
<h2>Per category</h2>
{_category_table(report)}
</body>
</html>
"""
