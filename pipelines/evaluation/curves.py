"""The evaluate report's plot data: PR curves, calibration, tags per video.

One mergeable ``CurvesFn`` with fixed-size histograms (memory independent of
the number of videos): per category and for all categories together, listed
scores are counted in ``bins`` score bins, split into positives and negatives;
a precision-recall point per bin edge follows by cumulative sums. Positives a
video does not list (scores below its top-k) are recall the curve never
reaches, as in the metrics. Calibration bins listed ``(score, label)`` pairs;
the histogram counts predicted tags per video.
"""

from __future__ import annotations

import collections

import apache_beam as beam
import numpy as np

CURVE_BINS = 100
CALIBRATION_BINS = 10
TOP_CATEGORIES = 6


def _bins(scores, bins: int) -> np.ndarray:
    return np.clip((np.asarray(scores, np.float64) * bins).astype(np.int64), 0, bins - 1)


def pr_points(positives: np.ndarray, negatives: np.ndarray, unlisted: int) -> dict:
    """Precision/recall at each bin's lower edge, from the highest bin down.

    ``positives``/``negatives``: per-bin counts of listed scores; ``unlisted``:
    positives never listed. Points where nothing is predicted are skipped.
    """
    bins = len(positives)
    tp = np.cumsum(positives[::-1])
    predicted = tp + np.cumsum(negatives[::-1])
    total = int(positives.sum()) + unlisted
    keep = predicted > 0
    return {
        "thresholds": (np.arange(bins - 1, -1, -1) / bins)[keep].round(6).tolist(),
        "precision": (tp[keep] / predicted[keep]).round(6).tolist(),
        "recall": (tp[keep] / total if total else tp[keep] * 0.0).round(6).tolist(),
    }


class CurvesFn(beam.CombineFn):
    """Histogram accumulator over ``video_item`` tuples (see ``eval_metrics``)."""

    def __init__(self, bins: int = CURVE_BINS, calibration_bins: int = CALIBRATION_BINS):
        self._bins, self._calibration = bins, calibration_bins

    def create_accumulator(self):
        return {
            "labels": {},  # label -> int64 [3, bins]: positives, negatives, [0, 0] = unlisted
            "calibration": np.zeros((3, self._calibration)),  # count, sum score, positives
            "tags": collections.Counter(),
        }

    def _hist(self, acc, label):
        return acc["labels"].setdefault(label, np.zeros((3, self._bins), np.int64))

    def add_input(self, acc, video):
        _, positives, ranked, predicted = video
        acc["tags"][len(predicted)] += 1
        listed = set()
        for label, score in ranked:
            positive = label in positives
            self._hist(acc, label)[int(not positive), _bins(score, self._bins)] += 1
            cal = _bins(score, self._calibration)
            acc["calibration"][:, cal] += (1, score, positive)
            listed.add(label)
        for label in set(positives) - listed:
            self._hist(acc, label)[2, 0] += 1
        return acc

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for acc in accumulators:
            for label, hist in acc["labels"].items():
                self._hist(merged, label)[:] += hist
            merged["calibration"] += acc["calibration"]
            merged["tags"].update(acc["tags"])
        return merged

    def extract_output(self, acc):
        hists = acc["labels"]
        micro = sum(hists.values(), np.zeros((3, self._bins), np.int64))
        support = {label: int(h[0].sum() + h[2, 0]) for label, h in hists.items()}
        top = sorted(support, key=lambda label: (-support[label], label))[:TOP_CATEGORIES]
        curve = lambda h: pr_points(h[0], h[1], int(h[2, 0]))  # noqa: E731
        return {
            "pr": {
                "micro": curve(micro),
                "per_category": {label: curve(hists[label]) for label in top if support[label]},
            },
            "calibration": self._calibration_rows(acc["calibration"]),
            "tags_per_video": {str(n): acc["tags"][n] for n in sorted(acc["tags"])},
        }

    def _calibration_rows(self, table) -> list[dict]:
        rows = []
        for i in range(self._calibration):
            count, total, positives = table[:, i]
            rows.append({
                "lower": i / self._calibration, "upper": (i + 1) / self._calibration,
                "count": int(count),
                "mean_score": round(total / count, 6) if count else None,
                "fraction_positive": round(positives / count, 6) if count else None,
            })  # fmt: skip
        return rows
