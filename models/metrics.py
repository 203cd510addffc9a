"""Multi-label ranking metrics for the catalog tagger (pure numpy, no TensorFlow).

Inputs: ``scores`` float ``[n_videos, n_classes]`` (probabilities or logits; only order
matters except for F1 thresholds, which assume probabilities) and ``labels`` in {0, 1}.
Ties in rankings go to the lower video index, then the lower class index (stable sort
by score descending), except per-class AP, where tied scores form one threshold step
(as in sklearn). Predictions are ``scores >= threshold``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np

_CHUNK_ELEMENTS = 1 << 22  # Work on blocks of about 4M scores to bound memory.
NO_POSITIVE_THRESHOLD = 0.5
_T = TypeVar("_T")
Thresholds = float | np.ndarray  # a scalar or one threshold per class


def _validate(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(scores as float array, labels as bool array)`` or raise ValueError."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        msg = f"scores.shape={scores.shape}, labels.shape={labels.shape}"
        raise ValueError(f"Expected 2D scores and labels of one shape. Received: {msg}")
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    if not np.isfinite(scores).all():
        raise ValueError("Expected finite `scores`. Received: scores containing NaN or inf")
    if labels.dtype != np.bool_ and not ((labels == 0) | (labels == 1)).all():
        raise ValueError(f"Expected `labels` in {{0, 1}}. Received: {np.unique(labels)[:9]}")
    return scores, labels.astype(bool, copy=False)


def _validated(fn: Callable[..., _T]) -> Callable[..., _T]:
    """Validate ``(scores, labels)`` first; ``fn.__wrapped__`` skips it (see evaluate)."""

    @functools.wraps(fn)
    def wrapper(scores: np.ndarray, labels: np.ndarray, *args, **kwargs) -> _T:
        return fn(*_validate(scores, labels), *args, **kwargs)

    return wrapper


def _top_k_block(block: np.ndarray, k: int) -> np.ndarray:
    """Top-k class indices per row, ordered by score descending then class ascending."""
    c = block.shape[1]
    if k >= c:
        return np.argsort(-block, axis=1, kind="stable")
    kth = np.partition(block, c - k, axis=1)[:, c - k, None]  # selection, not a sort
    selected = block >= kth
    exact = np.count_nonzero(selected, axis=1) == k  # False: more ties at the k-th score
    top = np.empty((block.shape[0], k), dtype=np.intp)
    top[exact] = (np.flatnonzero(selected[exact]) % c).reshape(-1, k)
    if not exact.all():
        tied = np.argsort(-block[~exact], axis=1, kind="stable")[:, :k]
        top[~exact] = np.sort(tied, axis=1)
    vals = np.take_along_axis(block, top, axis=1)
    return np.take_along_axis(top, np.argsort(-vals, axis=1, kind="stable"), axis=1)


def _top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """``[n_videos, min(k, n_classes)]`` top-k class indices (see ``_top_k_block``)."""
    n, c = scores.shape
    out = np.empty((n, min(k, c)), dtype=np.intp)
    step = max(1, _CHUNK_ELEMENTS // max(c, 1))
    for start in range(0, n, step):
        out[start : start + step] = _top_k_block(scores[start : start + step], out.shape[1])
    return out


def _transposed(a: np.ndarray) -> np.ndarray:
    """Row-contiguous copy of ``a.T``, copied in tiles (``a.T.copy()`` is cache-hostile)."""
    out = np.empty(a.shape[::-1], dtype=a.dtype)
    for r in range(0, a.shape[0], 512):
        out[:, r : r + 512] = a[r : r + 512].T
    return out


def _class_curves(scores: np.ndarray, labels: np.ndarray) -> Iterator[tuple]:
    """Yield ``(class, u, count, tp, n_ge)`` for every class with at least one positive.

    ``u``: distinct scores of the class's positives (ascending); ``count[i]``: positives
    scoring ``u[i]``; ``tp[i]``/``n_ge[i]``: positives/all videos scoring ``>= u[i]``.
    """
    n, c = scores.shape
    vid, cls = np.divmod(np.flatnonzero(labels), c)  # 2D np.nonzero is much slower
    order = np.argsort(cls, kind="stable")
    vid, cls = vid[order], cls[order]
    pos, bounds = scores[vid, cls], np.searchsorted(cls, np.arange(c + 1))
    step = max(1, _CHUNK_ELEMENTS // max(n, 1))
    for j0 in range(0, c, step):
        block = _transposed(scores[:, j0 : j0 + step])  # a copy: never sort the input
        block.sort(axis=1)
        for j in range(j0, j0 + block.shape[0]):
            if bounds[j] == bounds[j + 1]:
                continue
            u, count = np.unique(pos[bounds[j] : bounds[j + 1]], return_counts=True)
            tp = np.cumsum(count[::-1])[::-1]
            n_ge = n - np.searchsorted(block[j - j0], u, side="left")
            yield j, u, count, tp, n_ge


@_validated
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
    top, rows = _top_k_indices(scores, k), np.arange(scores.shape[0])[:, None]
    rel = labels[rows, top].ravel()[np.argsort(-scores[rows, top].ravel(), kind="stable")]
    precision = np.cumsum(rel) / np.arange(1, rel.size + 1)
    return float(precision[rel].sum() / num_positives)


@_validated
def hit_at_one(scores: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of videos whose top-scoring class is a true label (YT8M hit@1).

    Ties for the top score go to the lowest class index (``np.argmax``); 0.0 if empty.
    """
    if scores.size == 0:
        return 0.0
    return float(labels[np.arange(scores.shape[0]), np.argmax(scores, axis=1)].mean())


@_validated
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
    top = _top_k_indices(scores, int(n_true.max()))
    hits = labels[np.arange(scores.shape[0])[:, None], top]
    hits &= np.arange(top.shape[1]) < n_true[:, None]
    return float(np.mean(hits.sum(axis=1) / n_true))


@_validated
def average_precision_per_class(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class AP over all videos ranked by that class's score; NaN without positives.

    ``AP = sum over distinct positive scores t of (#positives scoring t / P) *
    precision(scores >= t)``. Without ties this is the mean of precision@rank at each
    positive; tied scores form a single step (order-independent, like sklearn).
    """
    ap = np.full(scores.shape[1], np.nan)
    for j, _, count, tp, n_ge in _class_curves(scores, labels):
        ap[j] = float(np.sum(count * (tp / n_ge)) / tp[0])
    return ap


@_validated
def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Macro mAP: mean ``average_precision_per_class`` over classes with positives (or 0.0)."""
    ap = average_precision_per_class.__wrapped__(scores, labels)
    ap = ap[~np.isnan(ap)]
    return float(ap.mean()) if ap.size else 0.0


@_validated
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
    for j, u, _, tp, n_ge in _class_curves(scores, labels):
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


def _counts(scores: np.ndarray, labels: np.ndarray, thresholds: Thresholds) -> tuple:
    """Per-class int arrays ``(true positives, predicted positives, actual positives)``."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.ndim > 1 or (thresholds.ndim == 1 and thresholds.shape != scores.shape[1:]):
        msg = f"thresholds.shape={thresholds.shape}, scores.shape={scores.shape}"
        raise ValueError(f"Expected scalar or [n_classes] thresholds. Received: {msg}")
    c = scores.shape[1]
    tp, n_pred = np.zeros(c, dtype=np.intp), np.zeros(c, dtype=np.intp)
    step = max(1, _CHUNK_ELEMENTS // max(c, 1))
    for start in range(0, scores.shape[0], step):
        pred = scores[start : start + step] >= thresholds
        tp += np.count_nonzero(pred & labels[start : start + step], axis=0)
        n_pred += np.count_nonzero(pred, axis=0)
    return tp, n_pred, np.count_nonzero(labels, axis=0)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise ``num / den`` with 0.0 where ``den == 0``."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


@_validated
def f1_scores(scores: np.ndarray, labels: np.ndarray, thresholds: Thresholds) -> dict[str, float]:
    """F1 of predictions ``scores >= thresholds`` (scalar or ``[n_classes]``).

    Returns ``micro_f1``, ``micro_precision``, ``micro_recall`` (counts pooled over all
    classes) and ``macro_f1``: mean per-class F1 over classes with at least one
    positive OR at least one prediction (classes with neither are skipped, those with
    only one of them score 0). Any 0/0 ratio is 0.0.
    """
    tp, n_pred, n_pos = _counts(scores, labels, thresholds)
    f1 = _ratio(2 * tp, n_pred + n_pos)
    active = (n_pred + n_pos) > 0
    return {
        "micro_f1": float(_ratio(2 * tp.sum(), n_pred.sum() + n_pos.sum())),
        "macro_f1": float(f1[active].mean()) if active.any() else 0.0,
        "micro_precision": float(_ratio(tp.sum(), n_pred.sum())),
        "micro_recall": float(_ratio(tp.sum(), n_pos.sum())),
    }


@_validated
def per_class_report(
    scores: np.ndarray, labels: np.ndarray, thresholds: Thresholds, class_names: Sequence[str]
) -> list[dict]:
    """One dict per class (class order): name, support, ap, precision, recall, f1, threshold.

    ``support`` is the number of positives, ``ap`` is NaN without positives, and
    precision/recall/f1 of ``scores >= threshold`` are 0.0 where undefined.
    """
    if len(class_names) != scores.shape[1]:
        raise ValueError(f"Expected {scores.shape[1]} class names. Received: {len(class_names)}")
    tp, n_pred, n_pos = _counts(scores, labels, thresholds)
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
    scores, labels = _validate(scores, labels)
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
