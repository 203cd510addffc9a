"""Multi-label ranking metrics: hand-computed cases and brute-force references."""

from __future__ import annotations

import numpy as np
import pytest

from models import metrics, ranking

# 3 videos x 4 classes, all 12 scores distinct; 4 positive labels in total.
SCORES = np.array(
    [
        [0.90, 0.80, 0.30, 0.10],
        [0.20, 0.70, 0.60, 0.40],
        [0.50, 0.05, 0.95, 0.35],
    ]
)
LABELS = np.array(
    [
        [1, 0, 1, 0],
        [0, 1, 0, 0],
        [0, 0, 0, 1],
    ]
)


def test_gap_hand_computed():
    # k=2 pooled, sorted: .95(0) .9(1) .8(0) .7(1) .6(0) .5(0) -> (1/2 + 2/4) / 4 = 0.25
    assert metrics.gap_at_k(SCORES, LABELS, k=2) == pytest.approx(0.25)
    # k=20 keeps all 12: positives at ranks 2 (.9), 4 (.7), 8 (.35), 9 (.3)
    # -> (1/2 + 2/4 + 3/8 + 4/9) / 4 = (131/72) / 4 = 131/288
    assert metrics.gap_at_k(SCORES, LABELS) == pytest.approx(131 / 288)


def test_gap_k_below_label_count_keeps_all_positives_in_denominator():
    scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.6, 0.2, 0.1, 0.3]])
    labels = np.array([[1, 1, 1, 0], [0, 0, 0, 1]])
    # k=1: pooled .9(1) .6(0) -> (1/1) / 4 positives = 0.25
    assert metrics.gap_at_k(scores, labels, k=1) == pytest.approx(0.25)
    # k=2: pooled .9(1) .8(1) .6(0) .3(1) -> (1/1 + 2/2 + 3/4) / 4 = 0.6875
    assert metrics.gap_at_k(scores, labels, k=2) == pytest.approx(0.6875)


def test_gap_ties_are_stable_by_video_then_class():
    scores = np.full((2, 2), 0.5)
    labels = np.array([[0, 1], [1, 0]])
    # k=1 takes class 0 of each video: pooled v0c0(0), v1c0(1) -> (1/2) / 2 = 0.25
    assert metrics.gap_at_k(scores, labels, k=1) == pytest.approx(0.25)
    # k=2 pooled v0c0(0) v0c1(1) v1c0(1) v1c1(0) -> (1/2 + 2/3) / 2 = 7/12
    assert metrics.gap_at_k(scores, labels, k=2) == pytest.approx(7 / 12)


def test_gap_no_positives_is_zero():
    assert metrics.gap_at_k(SCORES, np.zeros_like(LABELS)) == 0.0


def _reference_gap(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    pooled = []
    for s, y in zip(scores, labels, strict=True):
        top = np.argsort(-s, kind="stable")[:k]  # full sort, ties to the lower class
        pooled.extend((float(s[j]), int(y[j])) for j in top)
    pooled = sorted(pooled, key=lambda p: -p[0])  # python sort is stable
    hits, total = 0, 0.0
    for rank, (_, rel) in enumerate(pooled, start=1):
        if rel:
            hits += 1
            total += hits / rank
    return total / labels.sum()


@pytest.mark.parametrize("k", [5, 20, 50])  # 50 > n_classes: every class is kept
@pytest.mark.parametrize("decimals", [None, 1])  # 1 decimal: many ties
def test_gap_matches_reference(k, decimals):
    rng = np.random.default_rng(7)
    scores = rng.random((200, 30))
    if decimals is not None:
        scores = scores.round(decimals)
    labels = (rng.random((200, 30)) < 0.1).astype(int)
    expected = _reference_gap(scores, labels, k)
    assert metrics.gap_at_k(scores, labels, k=k) == pytest.approx(expected, abs=1e-9)


def test_gap_handles_chunks_and_ties(monkeypatch):
    monkeypatch.setattr(ranking, "_CHUNK_ELEMENTS", 64)  # several row blocks
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, (50, 12)).astype(np.float32)
    labels = rng.random((50, 12)) < 0.3
    for k in (1, 3, 12):
        assert metrics.gap_at_k(scores, labels, k=k) == pytest.approx(
            _reference_gap(scores, labels, k), abs=1e-9
        )


def test_hit_at_one_and_perr_hand_computed():
    # top-1: v0 c0 (hit), v1 c1 (hit), v2 c2 (miss) -> 2/3
    assert metrics.hit_at_one(SCORES, LABELS) == pytest.approx(2 / 3)
    # v0 (2 labels): top-2 c0,c1 -> 1/2; v1: c1 -> 1; v2: c2 -> 0 -> (0.5 + 1 + 0) / 3
    assert metrics.perr(SCORES, LABELS) == pytest.approx(0.5)


def test_hit_at_one_ties_go_to_lowest_class():
    scores = np.array([[0.5, 0.5, 0.1], [0.7, 0.7, 0.2]])
    labels = np.array([[0, 1, 0], [1, 0, 0]])
    # v0 picks c0 (miss), v1 picks c0 (hit) -> 1/2
    assert metrics.hit_at_one(scores, labels) == pytest.approx(0.5)


def test_perr_ignores_videos_without_labels():
    labels = LABELS.copy()
    labels[2] = 0
    # v0 1/2, v1 1, v2 skipped -> 0.75
    assert metrics.perr(SCORES, labels) == pytest.approx(0.75)
    assert metrics.perr(SCORES, np.zeros_like(LABELS)) == 0.0


def test_perr_matches_reference_with_ties(monkeypatch):
    monkeypatch.setattr(ranking, "_CHUNK_ELEMENTS", 200)
    rng = np.random.default_rng(9)
    scores = rng.integers(0, 5, (80, 10)).astype(float)  # heavy ties
    labels = rng.random((80, 10)) < 0.25
    precisions = [
        y[np.argsort(-s, kind="stable")[: y.sum()]].mean()
        for s, y in zip(scores, labels, strict=True)
        if y.any()
    ]
    assert metrics.perr(scores, labels) == pytest.approx(np.mean(precisions), abs=1e-12)


def test_average_precision_hand_computed():
    # c0 [.9 .2 .5] pos .9 rank 1 -> 1; c1 [.8 .7 .05] pos .7 rank 2 -> 1/2
    # c2 [.3 .6 .95] pos .3 rank 3 -> 1/3; c3 [.1 .4 .35] pos .35 rank 2 -> 1/2
    ap = metrics.average_precision_per_class(SCORES, LABELS)
    np.testing.assert_allclose(ap, [1, 1 / 2, 1 / 3, 1 / 2])
    # (1 + 1/2 + 1/3 + 1/2) / 4 = 7/12
    assert metrics.mean_average_precision(SCORES, LABELS) == pytest.approx(7 / 12)


def test_map_ignores_class_without_positives():
    labels = LABELS.copy()
    labels[2, 3] = 0
    ap = metrics.average_precision_per_class(SCORES, labels)
    assert np.isnan(ap[3])
    # (1 + 1/2 + 1/3) / 3 = 11/18
    assert metrics.mean_average_precision(SCORES, labels) == pytest.approx(11 / 18)
    assert metrics.mean_average_precision(SCORES, np.zeros_like(LABELS)) == 0.0


def test_average_precision_ties_form_one_step():
    # pos .5 tied with a negative .5: threshold .5 keeps 3 videos, 1 positive -> 1/3
    ap = metrics.average_precision_per_class([[0.9], [0.5], [0.5]], [[0], [1], [0]])
    np.testing.assert_allclose(ap, [1 / 3])


def test_average_precision_matches_rank_definition_without_ties(monkeypatch):
    monkeypatch.setattr(ranking, "_CHUNK_ELEMENTS", 100)  # several class blocks
    rng = np.random.default_rng(11)
    scores, labels = rng.random((60, 9)), rng.random((60, 9)) < 0.2
    labels[:, 4] = False
    expected = np.full(9, np.nan)
    for j in range(9):
        rel = labels[np.argsort(-scores[:, j]), j]
        if rel.any():
            precision = np.cumsum(rel) / np.arange(1, rel.size + 1)
            expected[j] = precision[rel].mean()
    np.testing.assert_allclose(metrics.average_precision_per_class(scores, labels), expected)


def test_perfect_and_reversed_rankings():
    labels = np.array([[1, 0, 0], [0, 1, 1]])
    perfect = metrics.evaluate(labels * 0.9 + 0.05, labels)
    assert perfect == {"gap@20": 1.0, "hit@1": 1.0, "perr": 1.0, "map": 1.0}
    reversed_scores = np.array([[0.1, 0.8, 0.9], [0.7, 0.2, 0.3]])
    result = metrics.evaluate(reversed_scores, labels)
    # gap: pooled .9 .8 .7 .3(1) .2(1) .1(1) -> (1/4 + 2/5 + 3/6) / 3 = 23/60
    assert result["gap@20"] == pytest.approx(23 / 60)
    # hit@1: v0 c2, v1 c0 -> both misses
    assert result["hit@1"] == 0.0
    # perr: v0 top-1 c2 -> 0; v1 top-2 c0,c2 -> 1/2 -> 0.25
    assert result["perr"] == pytest.approx(0.25)
    # each class has one positive, ranked 2nd of 2 videos: c0, c1, c2 -> 1/2 each
    assert result["map"] == pytest.approx(0.5)


def test_evaluate_keys_and_values():
    result = metrics.evaluate(SCORES, LABELS, thresholds=0.5, k=2)
    expected = {"gap@2": 0.25, "hit@1": 2 / 3, "perr": 0.5, "map": 7 / 12}
    expected |= {"micro_f1": 0.4, "macro_f1": 1 / 3}
    assert result == pytest.approx(expected)
    assert all(type(v) is float for v in result.values())


def test_f1_micro_and_macro_by_hand():
    # scores >= .5: v0 [1 1 0 0], v1 [0 1 1 0], v2 [1 0 1 0]
    # c0 tp1 pred2 pos1 -> F1 2/3; c1 same -> 2/3; c2 tp0 -> 0; c3 no prediction -> 0
    # micro: tp2 pred6 pos4 -> P 1/3, R 1/2, F1 4/10; macro (2/3 + 2/3) / 4 = 1/3
    result = metrics.f1_scores(SCORES, LABELS, 0.5)
    assert result == pytest.approx(
        {"micro_f1": 0.4, "macro_f1": 1 / 3, "micro_precision": 1 / 3, "micro_recall": 0.5}
    )
    # c3 with neither a positive nor a prediction drops out of the macro average:
    labels = LABELS.copy()
    labels[2, 3] = 0
    result = metrics.f1_scores(SCORES, labels, np.array([0.5, 0.5, 0.5, 0.99]))
    assert result["macro_f1"] == pytest.approx(4 / 9)  # (2/3 + 2/3 + 0) / 3


def _brute_force_best_f1(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(best F1, highest threshold reaching it) over every distinct score and +inf."""
    best_f1, best_t = -1.0, np.inf
    for t in [*np.unique(s), np.inf]:
        pred = s >= t
        tp = np.sum(pred & y)
        f1 = 2 * tp / (pred.sum() + y.sum())
        if f1 >= best_f1 - 1e-12:
            best_f1, best_t = max(f1, best_f1), t
    return best_f1, best_t


def test_tuned_thresholds_match_brute_force(monkeypatch):
    monkeypatch.setattr(ranking, "_CHUNK_ELEMENTS", 1000)
    rng = np.random.default_rng(5)
    scores = rng.random((300, 8)).round(2)  # ties included
    labels = rng.random((300, 8)) < rng.random(8) * 0.4
    labels[:, 6] = False
    thresholds = metrics.tune_thresholds(scores, labels)
    assert thresholds[6] == 0.5
    for j in range(8):
        if j == 6:
            continue
        best_f1, best_t = _brute_force_best_f1(scores[:, j], labels[:, j])
        f1 = metrics.f1_scores(scores[:, [j]], labels[:, [j]], thresholds[j])["micro_f1"]
        assert f1 == pytest.approx(best_f1, abs=1e-12)
        below = scores[:, j][scores[:, j] < best_t]
        # the optimum moved down to the midpoint with the next lower score
        assert thresholds[j] == pytest.approx((best_t + (below.max() if below.size else 0)) / 2)


def test_min_precision_thresholds():
    scores = np.array([[0.9], [0.8], [0.7], [0.6], [0.5]])
    labels = np.array([[1], [0], [1], [1], [0]])
    # precision at >= .9: 1/1, >= .7: 2/3, >= .6: 3/4, >= .5: 3/5
    # F1 = 2tp / (pred + 3): .9 -> 2/4, .7 -> 4/6, .6 -> 6/7 (best), .5 -> 6/8
    # Each chosen score moves to the midpoint with the next lower score (margin).
    assert metrics.tune_thresholds(scores, labels)[0] == pytest.approx(0.55)
    assert metrics.tune_thresholds(scores, labels, min_precision=0.75)[0] == pytest.approx(0.55)
    assert metrics.tune_thresholds(scores, labels, min_precision=0.8)[0] == pytest.approx(0.85)
    assert metrics.tune_thresholds(scores, labels, min_precision=1.0)[0] == pytest.approx(0.85)


def test_min_precision_unreachable_never_predicts():
    # The positive scores below a negative: best precision 1/2 < 0.6.
    for scores in (np.array([[0.9], [0.8]]), np.array([[3.0], [2.0]])):
        threshold = metrics.tune_thresholds(scores, [[0], [1]], min_precision=0.6)[0]
        assert threshold > max(1.0, scores.max())
        assert not (scores >= threshold).any()
    threshold = metrics.tune_thresholds([[0.9], [0.8]], [[0], [1]], min_precision=0.6)[0]
    assert threshold == np.nextafter(1.0, 2.0)  # 1.0 + eps for probabilities
    scores32 = np.array([[1.0], [0.8]], dtype=np.float32)
    threshold = metrics.tune_thresholds(scores32, [[0], [1]], min_precision=0.6)[0]
    assert not (scores32 >= threshold).any()
    assert not (scores32 >= np.float32(threshold)).any()  # survives a float32 cast
    with pytest.raises(ValueError, match="min_precision"):
        metrics.tune_thresholds(SCORES, LABELS, min_precision=0.0)


def test_inputs_are_not_modified():
    for scores in (SCORES.copy(), SCORES[:, :1].copy(), SCORES[:1].copy()):
        before = scores.copy()
        labels = LABELS[: scores.shape[0], : scores.shape[1]]
        metrics.evaluate(scores, labels, thresholds=metrics.tune_thresholds(scores, labels))
        metrics.per_class_report(scores, labels, 0.5, ["x"] * scores.shape[1])
        np.testing.assert_array_equal(scores, before)


def test_per_class_report():
    report = metrics.per_class_report(SCORES, LABELS, 0.5, ["a", "b", "c", "d"])
    assert [r["name"] for r in report] == ["a", "b", "c", "d"]
    # c0: predicted v0, v2; positive v0 -> P 1/2, R 1, F1 2/3, AP 1
    assert report[0] == pytest.approx(
        {
            "name": "a",
            "support": 1,
            "ap": 1.0,
            "precision": 0.5,
            "recall": 1.0,
            "f1": 2 / 3,
            "threshold": 0.5,
        }
    )
    # c3: nothing predicted -> precision 0 (0/0), recall 0
    assert report[3]["precision"] == 0.0 and report[3]["recall"] == 0.0
    with pytest.raises(ValueError, match="class names"):
        metrics.per_class_report(SCORES, LABELS, 0.5, ["a"])


@pytest.mark.parametrize(
    ("scores", "labels"),
    [
        (np.zeros((3, 4)), np.zeros((3, 5))),
        (np.zeros(4), np.zeros(4)),
        (np.zeros((2, 3, 4)), np.zeros((2, 3, 4))),
    ],
)
def test_shape_validation(scores, labels):
    expected = f"Received: scores.shape={scores.shape}, labels.shape={labels.shape}"
    for fn in (metrics.gap_at_k, metrics.hit_at_one, metrics.perr, metrics.evaluate):
        with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            fn(scores, labels)


def test_value_validation():
    with pytest.raises(ValueError, match="labels"):
        metrics.mean_average_precision(SCORES, LABELS * 2)
    with pytest.raises(ValueError, match="finite"):
        metrics.hit_at_one(np.full((3, 4), np.nan), LABELS)
    with pytest.raises(ValueError, match="k >= 1"):
        metrics.gap_at_k(SCORES, LABELS, k=0)
    with pytest.raises(ValueError, match="thresholds.shape"):
        metrics.f1_scores(SCORES, LABELS, np.full(3, 0.5))
