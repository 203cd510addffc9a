"""The evaluate job's report plots: precision-recall, AP per category, calibration, tags.

``render_png(name, report)`` draws one of ``PLOT_FILES`` for a ``report.json``
dict. Plots use matplotlib's ``Figure`` + Agg canvas directly (no pyplot, no
global backend, thread-safe) at a fixed pixel size, without PNG metadata, so
one report renders to the same bytes. Missing or empty parts of the report
draw an empty axis with a "no data" note.
"""

from __future__ import annotations

import io

PR_CURVE_PNG = "pr_curve.png"
CATEGORY_AP_PNG = "category_ap.png"
CALIBRATION_PNG = "calibration.png"
TAGS_PER_VIDEO_PNG = "tags_per_video.png"
PLOT_FILES = (PR_CURVE_PNG, CATEGORY_AP_PNG, CALIBRATION_PNG, TAGS_PER_VIDEO_PNG)
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


def render_png(name: str, report: dict) -> bytes:
    """The PNG of plot ``name`` (one of ``PLOT_FILES``) for ``report``."""
    fig, ax = _figure(FIGSIZE[name])
    _PLOTS[name](ax, report)
    return _png_bytes(fig)


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


def split_name(report: dict) -> str:
    """The evaluated split for titles ("all splits" when the report has none)."""
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
    ax.set_title(f"Precision-recall ({split_name(report)})")
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
    ax.set_title(f"Average precision per category ({split_name(report)})")
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
    baseline = by_name((report.get("baseline") or {}).get("per_category"))
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
    ax.set_title(f"Calibration ({split_name(report)}; point area \u221d count)")
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
    ax.set_title(f"Predicted tags per video ({split_name(report)})")
    ax.set(xlabel="predicted tags", ylabel="videos")
    if not items:
        _no_data(ax)
        return
    ax.bar([tags for tags, _ in items], [videos for _, videos in items], color="tab:blue")
    ax.grid(True, axis="y", alpha=0.3)


def by_name(categories) -> dict:
    """``{name: category}`` of a report's ``per_category`` list (None: empty)."""
    return {c["name"]: c for c in categories or []}


_PLOTS = {
    PR_CURVE_PNG: _plot_pr_curve,
    CATEGORY_AP_PNG: _plot_category_ap,
    CALIBRATION_PNG: _plot_calibration,
    TAGS_PER_VIDEO_PNG: _plot_tags_per_video,
}
