"""Memory-bounded numpy passes over score matrices, behind ``models.metrics``.

``scores`` float ``[n_videos, n_classes]`` and ``labels`` in {0, 1} are checked
once by :func:`validate` (or the :func:`validated` decorator). The passes work on
blocks of about ``_CHUNK_ELEMENTS`` scores: the top-k classes of every video
(ties to the lower class index), each class's ranking curve over the scores of
its positives, and per-class counts of the predictions ``scores >= threshold``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np

_CHUNK_ELEMENTS = 1 << 22  # Work on blocks of about 4M scores to bound memory.
_T = TypeVar("_T")
Thresholds = float | np.ndarray  # a scalar or one threshold per class


def validate(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def validated(fn: Callable[..., _T]) -> Callable[..., _T]:
    """Validate ``(scores, labels)`` first; ``fn.__wrapped__`` skips it (see ``evaluate``)."""

    @functools.wraps(fn)
    def wrapper(scores: np.ndarray, labels: np.ndarray, *args, **kwargs) -> _T:
        return fn(*validate(scores, labels), *args, **kwargs)

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


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
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


def class_curves(scores: np.ndarray, labels: np.ndarray) -> Iterator[tuple]:
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


def threshold_counts(scores: np.ndarray, labels: np.ndarray, thresholds: Thresholds) -> tuple:
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
