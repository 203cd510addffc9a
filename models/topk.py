"""Ranking metrics from each video's top-k labels only (huge label spaces).

At 100,000 labels a full ``[videos, labels]`` score matrix of a few thousand
eval videos is gigabytes; GAP@k, hit@1, recall@k and PERR only need each
video's top ``k`` labels (scores, and whether each is a true label) plus its
number of true labels. :class:`TopK` holds exactly that (``models.loop``
fills it batch by batch with an in-graph ``tf.math.top_k``: ``O(videos * k)``
memory), and the functions here give the same values as ``models.metrics``
on the full matrix (same tie order: score descending, then lower label id):

* ``gap@k``, ``hit@1``, ``recall@k``: equal.
* ``perr``: equal when no video has more than ``k`` labels (else a video's
  labels past its top ``k`` count as misses).
* thresholds and F1: per-class candidates are the (video, label) pairs that
  made a top ``k``; a label outside a video's top ``k`` counts as not
  predicted, a class none of whose positives made a top ``k`` is never
  predicted (threshold just above 1). Equal when ``k`` covers every label.
* ``map`` is not computed: per-class AP needs every video's score of the class.

:func:`top_k` is the in-graph selection (evaluation here, the export's
``top_k`` signature): exact, ``tf.math.top_k``'s values, indices and tie
order, in about half its time on wide rows.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from models.metrics import NO_POSITIVE_THRESHOLD, f1_from_counts

BLOCK = 32  # labels a block: fastest at 10k-100k labels and k = 20-100 on CPU


def top_k(scores: tf.Tensor, k, block: int = BLOCK) -> tuple[tf.Tensor, tf.Tensor]:
    """``tf.math.top_k(scores, k)`` (``k`` <= the row width) in two small sorts.

    The row is cut into blocks of ``block`` labels. A label in the top ``k`` is
    at most its block's maximum, and at most ``k`` blocks hold a top-``k``
    label, so the top ``k`` lie in the ``k`` blocks with the highest maxima
    (ties: lower block). Those blocks, put back in label order, hold the
    candidates of a second ``top_k``, which then breaks ties by lower label id
    as ``tf.math.top_k`` does on the whole row. ``tf.math.top_k`` on CPU costs
    about as much as a 256-wide matmul over 28,000 labels; this costs half.
    """
    batch, width = tf.shape(scores)[0], tf.shape(scores)[1]
    blocks = -(-width // block)
    padded = tf.pad(scores, [[0, 0], [0, blocks * block - width]], constant_values=-np.inf)
    grid = tf.reshape(padded, [batch, blocks, block])
    _, best = tf.math.top_k(tf.reduce_max(grid, axis=2), k=tf.minimum(k, blocks))
    best = tf.sort(best, axis=1)  # label order, for the tie order
    candidates = tf.reshape(tf.gather(grid, best, batch_dims=1), [batch, -1])
    values, position = tf.math.top_k(candidates, k=k)
    label = best[:, :, None] * block + tf.range(block)[None, None, :]
    return values, tf.gather(tf.reshape(label, [batch, -1]), position, batch_dims=1)


@dataclasses.dataclass(frozen=True)
class TopK:
    """Each video's top-k labels, by score descending (ties: lower label id)."""

    k: int  # as asked: the arrays have min(k, num_labels) columns
    ids: np.ndarray  # [n] video ids
    indices: np.ndarray  # [n, k] label ids
    scores: np.ndarray  # [n, k] their scores (probabilities)
    hits: np.ndarray  # [n, k] bool: the label is one of the video's
    num_positives: np.ndarray  # [n] the video's true labels
    class_positives: np.ndarray  # [num_labels] true labels per class over all videos

    def evaluate(self, thresholds: np.ndarray | None = None) -> dict[str, float]:
        return evaluate(self, thresholds)

    def tune_thresholds(self) -> np.ndarray:
        return tune_thresholds(self)

    def gap(self) -> float:
        return gap(self)


def concatenate(k: int, ids: list, parts: list[tuple], num_labels: int) -> TopK:
    """A :class:`TopK` from per-batch video ids and ``(indices, scores, hits,
    num_positives, class_positives)`` arrays (``[]``: no videos)."""
    if not parts:
        empty = np.zeros([0, 0])
        return TopK(k, np.zeros([0], object), empty.astype(np.int64), empty.astype(np.float32),
                    empty.astype(bool), np.zeros([0], np.int64), np.zeros([num_labels], np.int64))  # fmt: skip
    columns = [np.concatenate([part[i] for part in parts]) for i in range(4)]
    class_positives = np.sum([part[4] for part in parts], axis=0).astype(np.int64)
    return TopK(k, np.concatenate(ids), *columns, class_positives)


def gap(top: TopK) -> float:
    """GAP@k: the top-k predictions of every video pooled, sorted by score (stable)."""
    total = int(top.num_positives.sum())
    if total == 0:
        return 0.0
    rel = top.hits.ravel()[np.argsort(-top.scores.ravel(), kind="stable")]
    precision = np.cumsum(rel) / np.arange(1, rel.size + 1)
    return float(precision[rel].sum() / total)


def hit_at_one(top: TopK) -> float:
    return float(top.hits[:, 0].mean()) if top.hits.size else 0.0


def recall(top: TopK) -> float:
    """Recall@k: positives in their video's top k over all positives."""
    total = int(top.num_positives.sum())
    return float(np.count_nonzero(top.hits) / total) if total else 0.0


def perr(top: TopK) -> float:
    """Precision of each labelled video's top-``n`` (``n``: its label count), averaged."""
    n = top.num_positives
    valid = n > 0
    if not valid.any():
        return 0.0
    within = np.arange(top.hits.shape[1]) < n[:, None]
    return float(np.mean((top.hits & within).sum(axis=1)[valid] / n[valid]))


def _by_class(top: TopK) -> tuple:
    """The candidates ``(class, score, hit)`` sorted by class, then score descending,
    and each one's ``(true positives, candidates)`` at or above it within its class."""
    cls, score, hit = top.indices.ravel(), top.scores.ravel(), top.hits.ravel()
    order = np.lexsort((-score, cls))
    cls, score, hit = cls[order], score[order], hit[order]
    start = np.searchsorted(cls, cls, side="left")
    before = np.cumsum(hit) - hit  # hits strictly before each position
    tp = np.cumsum(hit) - before[start]
    return cls, score, hit, tp, np.arange(cls.size) - start + 1


def tune_thresholds(top: TopK) -> np.ndarray:
    """Per-class F1-maximizing thresholds ``[num_labels]`` (``models.metrics``'s rule:
    among equal F1 the highest, moved down to the midpoint with the next lower
    candidate score of the class); see the module docstring for the candidates."""
    thresholds = np.full(top.class_positives.size, NO_POSITIVE_THRESHOLD, np.float64)
    never = np.nextafter(np.float32(1.0), np.float32(np.inf))
    thresholds[top.class_positives > 0] = never
    cls, score, hit, tp, n_ge = _by_class(top)
    if cls.size == 0:
        return thresholds
    same_next = np.r_[(cls[1:] == cls[:-1]) & (score[1:] == score[:-1]), False]
    ends = np.flatnonzero(~same_next & (tp > 0))  # ends of tied runs, a positive at or above
    f1 = 2.0 * tp[ends] / (n_ge[ends] + top.class_positives[cls[ends]])
    best = ends[np.lexsort((ends, -f1, cls[ends]))]  # per class: best F1, then highest score
    best = best[np.r_[True, cls[best][1:] != cls[best][:-1]]]
    has_next = np.r_[cls[1:] == cls[:-1], False][best]
    chosen = score[best].astype(np.float64)
    below = np.where(has_next, score[np.minimum(best + 1, cls.size - 1)], np.minimum(chosen, 0.0))
    thresholds[cls[best]] = (chosen + below) / 2.0
    return thresholds


def f1_scores(top: TopK, thresholds: np.ndarray) -> dict[str, float]:
    """``models.metrics.f1_scores`` with only the top-k candidates predictable."""
    cls, score, hit = top.indices.ravel(), top.scores.ravel(), top.hits.ravel()
    predicted = score >= np.asarray(thresholds, np.float64)[cls]
    size = top.class_positives.size
    tp = np.bincount(cls[predicted & hit], minlength=size)
    return f1_from_counts(tp, np.bincount(cls[predicted], minlength=size), top.class_positives)


def evaluate(top: TopK, thresholds: np.ndarray | None = None) -> dict[str, float]:
    """``gap@k``, ``hit@1``, ``perr``, ``recall@k`` and, with ``thresholds``,
    ``micro_f1`` and ``macro_f1`` (no ``map``: see the module docstring)."""
    result = {f"gap@{top.k}": gap(top), "hit@1": hit_at_one(top), "perr": perr(top),
              f"recall@{top.k}": recall(top)}  # fmt: skip
    if thresholds is not None:
        f1 = f1_scores(top, thresholds)
        result["micro_f1"], result["macro_f1"] = f1["micro_f1"], f1["macro_f1"]
    return result
