"""The evaluate job's ``report.json`` rendered for people: PNG plots and ``report.html``.

``write_html_report(report, output_dir)`` writes the four plots below and a
self-contained HTML page (inline CSS, no scripts, images by relative path) into
``output_dir`` through ``FileSystems`` (local or GCS). Plots use matplotlib's
``Figure`` + Agg canvas directly (no pyplot, no global backend, thread-safe) at a
fixed pixel size, without PNG metadata, so one report renders to the same bytes.
Missing or empty parts of the report draw an empty axis with a "no data" note.
"""

from __future__ import annotations

import html
import io

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

PR_CURVE_PNG = "pr_curve.png"
CATEGORY_AP_PNG = "category_ap.png"
CALIBRATION_PNG = "calibration.png"
TAGS_PER_VIDEO_PNG = "tags_per_video.png"
REPORT_HTML = "report.html"
PLOT_FILES = (PR_CURVE_PNG, CATEGORY_AP_PNG, CALIBRATION_PNG, TAGS_PER_VIDEO_PNG)
OUTPUT_FILES = (*PLOT_FILES, REPORT_HTML)
DPI = 100
# Figure size in inches; pixels are these times DPI (800x600, 800x900, 700x600, 800x500).
FIGSIZE = {
    PR_CURVE_PNG: (8, 6),
    CATEGORY_AP_PNG: (8, 9),
    CALIBRATION_PNG: (7, 6),
    TAGS_PER_VIDEO_PNG: (8, 5),
}
AP_PLOT_SIDE = 20  # more than 2 * this many categories: the best and the worst this many
_LABEL_CHARS = 40
_NONE = "\u2013"  # en dash


def write_html_report(report: dict, output_dir: str) -> list[str]:
    """Writes the plots and ``report.html`` into ``output_dir``; returns their paths."""
    plots = {
        PR_CURVE_PNG: _plot_pr_curve,
        CATEGORY_AP_PNG: _plot_category_ap,
        CALIBRATION_PNG: _plot_calibration,
        TAGS_PER_VIDEO_PNG: _plot_tags_per_video,
    }
    paths = []
    for name in PLOT_FILES:
        fig, ax = _figure(FIGSIZE[name])
        plots[name](ax, report)
        paths.append(_write(output_dir, name, _png_bytes(fig), "image/png"))
    page = render_html(report).encode("utf-8")
    paths.append(_write(output_dir, REPORT_HTML, page, "text/html"))
    return paths


def _write(output_dir: str, name: str, data: bytes, mime_type: str) -> str:
    path = FileSystems.join(output_dir, name)
    with FileSystems.create(path, mime_type, CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)
    return path


# --- plots -------------------------------------------------------------------------------


def _figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _no_data(ax) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")


def _label(name) -> str:
    """A category name as literal plot text (no mathtext, not hidden from legends)."""
    text = str(name)
    if len(text) > _LABEL_CHARS:
        text = text[: _LABEL_CHARS - 1] + "\u2026"
    text = text.replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def _split(report: dict) -> str:
    return str(report.get("split") or "all splits")


def _pr_line(ax, curve, **style) -> bool:
    recall, precision = list(curve.get("recall") or []), list(curve.get("precision") or [])
    points = min(len(recall), len(precision))
    if not points:
        return False
    marker = "o" if points == 1 else None
    ax.plot(recall[:points], precision[:points], marker=marker, **style)
    return True


def _plot_pr_curve(ax, report: dict) -> None:
    pr = (report.get("curves") or {}).get("pr") or {}
    drawn = _pr_line(ax, pr.get("micro") or {}, label="micro", color="black", linewidth=2.5)
    for name, curve in (pr.get("per_category") or {}).items():
        drawn = _pr_line(ax, curve or {}, label=_label(name), linewidth=1, alpha=0.8) or drawn
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
    ax.set_title(f"Precision-recall ({_split(report)})")
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(loc="lower left", fontsize="small")
    else:
        _no_data(ax)


def _ap_rows(categories: list) -> list:
    """(name, ap) best first; None stands for the gap between the best and worst."""
    rows = [(c["name"], c["ap"]) for c in categories if c.get("ap") is not None]
    rows.sort(key=lambda row: (-row[1], str(row[0])))
    if len(rows) > 2 * AP_PLOT_SIDE:
        rows = rows[:AP_PLOT_SIDE] + [None] + rows[-AP_PLOT_SIDE:]
    return rows


def _plot_category_ap(ax, report: dict) -> None:
    rows = _ap_rows(report.get("per_category") or [])
    ax.set_title(f"Average precision per category ({_split(report)})")
    ax.set(xlim=(0, 1), xlabel="AP")
    if not rows:
        _no_data(ax)
        ax.set_yticks([])
        return
    hidden = sum(c.get("ap") is not None for c in report["per_category"]) - 2 * AP_PLOT_SIDE
    ys = list(range(len(rows)))[::-1]  # best on top
    shown = [(y, row) for y, row in zip(ys, rows, strict=True) if row is not None]
    ax.barh([y for y, _ in shown], [row[1] for _, row in shown], color="tab:blue", label="AP")
    labels = [_label(row[0]) if row else f"\u22ef {hidden} more" for row in rows]
    ax.set_yticks(ys, labels, fontsize="small")
    ax.set_ylim(-0.6, len(rows) - 0.4)
    baseline = _by_name((report.get("baseline") or {}).get("per_category"))
    marks = [(y, baseline[row[0]].get("ap")) for y, row in shown if row[0] in baseline]
    marks = [(y, ap) for y, ap in marks if ap is not None]
    if marks:
        ax.scatter(
            [ap for _, ap in marks],
            [y for y, _ in marks],
            marker="|",
            s=200,
            color="black",
            zorder=3,
            label="baseline AP",
        )
        ax.legend(loc="lower right", fontsize="small")
    ax.grid(True, axis="x", alpha=0.3)


def _plot_calibration(ax, report: dict) -> None:
    bins = [b for b in (report.get("curves") or {}).get("calibration") or [] if b.get("count")]
    bins = [b for b in bins if b.get("mean_score") is not None]
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1, label="perfect")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted score", ylabel="fraction positive")
    ax.set_title(f"Calibration ({_split(report)}; point area \u221d count)")
    ax.grid(True, alpha=0.3)
    if not bins:
        _no_data(ax)
        return
    largest = max(b["count"] for b in bins)
    sizes = [20 + 280 * b["count"] / largest for b in bins]
    xs, ys = [b["mean_score"] for b in bins], [b["fraction_positive"] for b in bins]
    ax.plot(xs, ys, color="tab:blue", linewidth=1)
    ax.scatter(xs, ys, s=sizes, color="tab:blue", alpha=0.7, zorder=3, label="bins")
    ax.legend(loc="upper left", fontsize="small")


def _plot_tags_per_video(ax, report: dict) -> None:
    counts = (report.get("curves") or {}).get("tags_per_video") or {}
    items = sorted((int(tags), int(videos)) for tags, videos in counts.items())
    ax.set_title(f"Predicted tags per video ({_split(report)})")
    ax.set(xlabel="predicted tags", ylabel="videos")
    if not items:
        _no_data(ax)
        return
    ax.bar([tags for tags, _ in items], [videos for _, videos in items], color="tab:blue")
    ax.grid(True, axis="y", alpha=0.3)


# --- HTML --------------------------------------------------------------------------------

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


def _by_name(categories) -> dict:
    return {c["name"]: c for c in categories or []}


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
        base = _by_name(baseline.get("per_category"))
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
    split = html.escape(_split(report))
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
