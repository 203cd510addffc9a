"""Multi-label ranking metrics for the catalog tagger (pure numpy, no TensorFlow).

Inputs: ``scores`` float ``[n_videos, n_classes]`` (probabilities or logits; only order
matters except for F1 thresholds, which assume probabilities) and ``labels`` in {0, 1}.
Ties in rankings go to the lower video index, then the lower class index (stable sort
by score descending), except per-class AP, where tied scores form one threshold step
(as in sklearn). Predictions are ``scores >= threshold``. The memory-bounded passes
over the score matrix (top-k, per-class curves, counts) are in ``models.ranking``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.ranking import (
    Thresholds,
    class_curves,
    threshold_counts,
    top_k_indices,
    validate,
    validated,
)

NO_POSITIVE_THRESHOLD = 0.5


@validated
def gap_at_k(scores: np.ndarray, labels: np.ndarray, k: int = 20) -> float:
    """Global Average Precision at k, as in YouTube-8M ``eval_util.calculate_gap``.

    The top-``k`` predictions of every video are pooled into one list of
    ``(score, is_positive)``, sorted by score descending (stable: ties keep video
    order, then class order), and ``GAP = sum_i precision@i * rel_i / labels.sum()``:
    the denominator counts ALL positive labels, including those outside any top-k.
    Returns 0.0 when there are no positives.
    """
    if k < 1:
        raise ValueError(f"Expected k >= 1. Received: k={k}")
    num_positives = np.count_nonzero(labels)
    if num_positives == 0:
        return 0.0
    top, rows = top_k_indices(scores, k), np.arange(scores.shape[0])[:, None]
    rel = labels[rows, top].ravel()[np.argsort(-scores[rows, top].ravel(), kind="stable")]
    precision = np.cumsum(rel) / np.arange(1, rel.size + 1)
    return float(precision[rel].sum() / num_positives)


@validated
def recall_at_k(scores: np.ndarray, labels: np.ndarray, k: int = 20) -> float:
    """Fraction of all positive labels that are in their video's top-``k`` (pooled
    over videos, like GAP's denominator); 0.0 when there are no positives."""
    if k < 1:
        raise ValueError(f"Expected k >= 1. Received: k={k}")
    num_positives = np.count_nonzero(labels)
    if num_positives == 0:
        return 0.0
    top = top_k_indices(scores, k)
    return float(np.count_nonzero(labels[np.arange(scores.shape[0])[:, None], top]) / num_positives)


@validated
def hit_at_one(scores: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of videos whose top-scoring class is a true label (YT8M hit@1).

    Ties for the top score go to the lowest class index (``np.argmax``); 0.0 if empty.
    """
    if scores.size == 0:
        return 0.0
    return float(labels[np.arange(scores.shape[0]), np.argmax(scores, axis=1)].mean())


@validated
def perr(scores: np.ndarray, labels: np.ndarray) -> float:
    """Precision at equal recall rate (YT8M ``calculate_precision_at_equal_recall_rate``).

    For each video with ``n > 0`` true labels: precision of its top-``n`` predictions
    (ties: lower class index first). Averaged over videos with at least one label
    (unlike YT8M, which divides by all videos); 0.0 if no video has a label. Scores
    are not required to be positive (YT8M skips predictions ``<= 0``; we do not).
    """
    valid = np.count_nonzero(labels, axis=1) > 0
    if not valid.any():
        return 0.0
    scores, labels = scores[valid], labels[valid]
    n_true = np.count_nonzero(labels, axis=1)
    top = top_k_indices(scores, int(n_true.max()))
    hits = labels[np.arange(scores.shape[0])[:, None], top]
    hits &= np.arange(top.shape[1]) < n_true[:, None]
    return float(np.mean(hits.sum(axis=1) / n_true))


@validated
def average_precision_per_class(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class AP over all videos ranked by that class's score; NaN without positives.

    ``AP = sum over distinct positive scores t of (#positives scoring t / P) *
    precision(scores >= t)``. Without ties this is the mean of precision@rank at each
    positive; tied scores form a single step (order-independent, like sklearn).
    """
    ap = np.full(scores.shape[1], np.nan)
    for j, _, count, tp, n_ge in class_curves(scores, labels):
        ap[j] = float(np.sum(count * (tp / n_ge)) / tp[0])
    return ap


@validated
def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Macro mAP: mean ``average_precision_per_class`` over classes with positives (or 0.0)."""
    ap = average_precision_per_class.__wrapped__(scores, labels)
    ap = ap[~np.isnan(ap)]
    return float(ap.mean()) if ap.size else 0.0


@validated
def tune_thresholds(
    scores: np.ndarray, labels: np.ndarray, min_precision: float | None = None
) -> np.ndarray:
    """Per-class decision thresholds ``[n_classes]`` (float64), applied as ``scores >= t``.

    Candidates are the distinct scores of the class's positives; they contain every
    optimum. The chosen score is then moved down to the midpoint with the next lower
    score of the class, so the same predictions hold on the tuning data while scores
    recomputed elsewhere (another runtime, float rounding) keep a margin.

    * ``min_precision=None``: the threshold maximizing F1; among equal F1 the highest.
    * ``min_precision=p``: the lowest threshold with precision ``>= p`` (max recall at
      that precision). If no threshold reaches ``p``: "never predict", i.e. the next
      float above ``max(1.0, class max score)`` (``1.0 + eps`` for probabilities).
    * Classes without positives get ``NO_POSITIVE_THRESHOLD`` (0.5).
    """
    if min_precision is not None and not 0.0 < min_precision <= 1.0:
        raise ValueError(f"Expected 0 < min_precision <= 1. Received: {min_precision}")
    thresholds = np.full(scores.shape[1], NO_POSITIVE_THRESHOLD, dtype=np.float64)
    for j, u, _, tp, n_ge in class_curves(scores, labels):
        if min_precision is None:
            f1 = 2.0 * tp / (n_ge + tp[0])
            thresholds[j] = _with_margin(scores[:, j], u[len(f1) - 1 - np.argmax(f1[::-1])])
            continue
        reaching = np.flatnonzero(tp / n_ge >= min_precision)
        if reaching.size:
            thresholds[j] = _with_margin(scores[:, j], u[reaching[0]])
        else:
            top = max(scores.dtype.type(1.0), scores[:, j].max())
            thresholds[j] = np.nextafter(top, scores.dtype.type(np.inf))
    return thresholds


def _with_margin(column: np.ndarray, threshold: float) -> float:
    """Midpoint between ``threshold`` and the next lower score (or half of it)."""
    lower = column[column < threshold]
    below = float(lower.max()) if lower.size else min(0.0, float(threshold))
    return (float(threshold) + below) / 2.0


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise ``num / den`` with 0.0 where ``den == 0``."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


@validated
def f1_scores(scores: np.ndarray, labels: np.ndarray, thresholds: Thresholds) -> dict[str, float]:
    """F1 of predictions ``scores >= thresholds`` (scalar or ``[n_classes]``).

    Returns ``micro_f1``, ``micro_precision``, ``micro_recall`` (counts pooled over all
    classes) and ``macro_f1``: mean per-class F1 over classes with at least one
    positive OR at least one prediction (classes with neither are skipped, those with
    only one of them score 0). Any 0/0 ratio is 0.0.
    """
    return f1_from_counts(*threshold_counts(scores, labels, thresholds))


def f1_from_counts(tp: np.ndarray, n_pred: np.ndarray, n_pos: np.ndarray) -> dict[str, float]:
    """``f1_scores`` from per-class true positive, predicted and actual positive counts."""
    f1 = _ratio(2 * tp, n_pred + n_pos)
    active = (n_pred + n_pos) > 0
    return {
        "micro_f1": float(_ratio(2 * tp.sum(), n_pred.sum() + n_pos.sum())),
        "macro_f1": float(f1[active].mean()) if active.any() else 0.0,
        "micro_precision": float(_ratio(tp.sum(), n_pred.sum())),
        "micro_recall": float(_ratio(tp.sum(), n_pos.sum())),
    }


@validated
def per_class_report(
    scores: np.ndarray, labels: np.ndarray, thresholds: Thresholds, class_names: Sequence[str]
) -> list[dict]:
    """One dict per class (class order): name, support, ap, precision, recall, f1, threshold.

    ``support`` is the number of positives, ``ap`` is NaN without positives, and
    precision/recall/f1 of ``scores >= threshold`` are 0.0 where undefined.
    """
    if len(class_names) != scores.shape[1]:
        raise ValueError(f"Expected {scores.shape[1]} class names. Received: {len(class_names)}")
    tp, n_pred, n_pos = threshold_counts(scores, labels, thresholds)
    ap = average_precision_per_class.__wrapped__(scores, labels)
    prf = _ratio(tp, n_pred), _ratio(tp, n_pos), _ratio(2 * tp, n_pred + n_pos)
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), n_pos.shape)
    keys = ("ap", "precision", "recall", "f1", "threshold")
    return [
        {"name": str(name), "support": int(n_pos[j])}
        | {key: float(col[j]) for key, col in zip(keys, (ap, *prf, thr), strict=True)}
        for j, name in enumerate(class_names)
    ]


def evaluate(
    scores: np.ndarray, labels: np.ndarray, thresholds: Thresholds | None = None, k: int = 20
) -> dict[str, float]:
    """Headline metrics as unrounded python floats (inputs are validated once).

    Keys: ``f"gap@{k}"``, ``hit@1``, ``perr``, ``map`` and, when ``thresholds`` is
    given, ``micro_f1`` and ``macro_f1`` (see ``f1_scores``).
    """
    scores, labels = validate(scores, labels)
    result = {
        f"gap@{k}": gap_at_k.__wrapped__(scores, labels, k),
        "hit@1": hit_at_one.__wrapped__(scores, labels),
        "perr": perr.__wrapped__(scores, labels),
        "map": mean_average_precision.__wrapped__(scores, labels),
    }
    if thresholds is not None:
        f1 = f1_scores.__wrapped__(scores, labels, thresholds)
        result["micro_f1"], result["macro_f1"] = f1["micro_f1"], f1["macro_f1"]
    return result
