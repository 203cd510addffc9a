"""Mergeable metric accumulators of the evaluate job (``pipelines/evaluate.py``).

Each ``CombineFn`` holds only picklable config; exact mode keeps the scores it
needs, binned mode ``num_bins`` histograms whose size does not grow with the
number of videos (scores then off by at most one bin width, ``1 / num_bins``).
The definitions match ``models/metrics.py`` (tested against it).
"""

from __future__ import annotations

import collections

import apache_beam as beam
import numpy as np

GAP_K = 20


def video_item(video_id: str, labels, row: dict) -> tuple:
    """``(video_id, positives, listed (label, score) best first, predicted)``;
    tied scores rank by label name (the column order of the label space)."""
    listed = [(t["label"], float(t["score"])) for t in row["labels"]]
    ranked = tuple(sorted(listed, key=lambda pair: (-pair[1], pair[0])))
    return video_id, tuple(sorted(set(labels))), ranked, tuple(row["predicted"])


def rollup_item(video: tuple, taxonomy, method: str) -> tuple:
    """A ``video_item`` at the generic-category level (``transforms/taxonomy.py``):
    category scores from the listed members (exact for ``max`` over a full listing)."""
    from transforms.taxonomy import rollup_listed, rollup_names

    video_id, positives, ranked, predicted = video
    listed = rollup_listed(list(ranked), taxonomy, method)
    return (
        video_id,
        tuple(rollup_names(positives, taxonomy)),
        tuple(sorted(listed, key=lambda pair: (-pair[1], pair[0]))),
        tuple(rollup_names(predicted, taxonomy)),
    )


def _bin(score: float, bins: int) -> int:
    return min(max(int(score * bins), 0), bins - 1)


def stepped_ap(groups, positives: int) -> float:
    """``sum(pos * tp / n) / positives`` over ``(pos, total)`` score groups, best first;
    a group (tied scores, or one bin) is one step, as in ``models.metrics``."""
    tp = seen = 0
    ap = 0.0
    for pos, total in groups:
        tp, seen = tp + pos, seen + total
        if pos:
            ap += pos * (tp / seen)
    return ap / positives if positives else 0.0


def _store(exact: bool, bins: int):
    return [] if exact else np.zeros((2, bins), np.int64)


def _put(store, score: float, positive: bool, bins: int) -> None:
    if isinstance(store, list):
        store.append((score, positive))
    else:
        store[int(not positive), _bin(score, bins)] += 1


def _steps(store, zero_pos: int = 0, zero_neg: int = 0) -> list:
    """``(positives, total)`` per distinct score (exact) or bin, best first, with
    ``zero_pos``/``zero_neg`` more items at score 0."""
    if isinstance(store, list):
        pos, total = collections.Counter(), collections.Counter()
        for score, positive in store:
            pos[score], total[score] = pos[score] + positive, total[score] + 1
        pos[0.0], total[0.0] = pos[0.0] + zero_pos, total[0.0] + zero_pos + zero_neg
        return [(pos[score], total[score]) for score in sorted(total, reverse=True)]
    pos, neg = store[0].copy(), store[1].copy()
    pos[0], neg[0] = pos[0] + zero_pos, neg[0] + zero_neg
    return list(zip(pos[::-1].tolist(), (pos + neg)[::-1].tolist(), strict=True))


def accumulator_size(acc) -> int:
    """How many numbers/strings an accumulator holds (for the memory bound)."""
    if isinstance(acc, np.ndarray):
        return acc.size
    if isinstance(acc, dict):
        return sum(1 + accumulator_size(v) for v in acc.values())
    if isinstance(acc, list | tuple):
        return sum(accumulator_size(v) for v in acc)
    return 1


class VideoStatsFn(beam.CombineFn):
    """Videos, labelled videos, hits@1, summed PERR, covered videos."""

    def create_accumulator(self):
        return [0, 0, 0, 0.0, 0]

    def add_input(self, acc, video):
        _, positives, ranked, predicted = video
        n = len(positives)
        acc[0] += 1
        acc[1] += n > 0
        acc[2] += bool(ranked) and ranked[0][0] in positives
        acc[3] += sum(label in positives for label, _ in ranked[:n]) / n if n else 0.0
        acc[4] += bool(predicted)
        return acc

    def merge_accumulators(self, accumulators):
        return [sum(column) for column in zip(*accumulators, strict=True)]

    def extract_output(self, acc):
        videos, labelled, hits, perr, covered = acc
        return {"videos": videos, "hit@1": hits / videos if videos else 0.0,
                "perr": perr / labelled if labelled else 0.0, "covered": covered}  # fmt: skip


class GapFn(beam.CombineFn):
    """GAP@k: every video's top-k ``(score, is_positive)`` and all positives."""

    def __init__(self, exact: bool, bins: int, k: int = GAP_K):
        self._exact, self._bins, self._k = exact, bins, k

    def create_accumulator(self):
        return [0, _store(self._exact, self._bins)]

    def add_input(self, acc, video):
        video_id, positives, ranked, _ = video
        acc[0] += len(positives)
        for label, score in ranked[: self._k]:
            if self._exact:  # sorts as models.metrics ranks ties: video, then label
                acc[1].append((-score, video_id, label, label in positives))
            else:
                _put(acc[1], score, label in positives, self._bins)
        return acc

    def merge_accumulators(self, accumulators):
        accumulators = list(accumulators)
        merged = self.create_accumulator()
        for positives, pairs in accumulators:
            merged[0] += positives
            merged[1] = merged[1] + pairs
        return merged

    def extract_output(self, acc):
        positives, pairs = acc
        steps = ((p, 1) for *_, p in sorted(pairs)) if self._exact else _steps(pairs)
        return stepped_ap(steps, positives)


class CategoryFn(beam.CombineFn):
    """Per category: tp/fp/fn of ``predicted``, support, and AP data."""

    def __init__(self, exact: bool, bins: int):
        self._exact, self._bins = exact, bins

    def create_accumulator(self):
        return {"videos": 0, "labels": {}}

    def _state(self, acc, label):  # tp, fp, fn, listed, unlisted positives, scores
        return acc["labels"].setdefault(label, [0, 0, 0, 0, 0, _store(self._exact, self._bins)])

    def add_input(self, acc, video):
        _, positives, ranked, predicted = video
        acc["videos"] += 1
        for label in set(positives) | set(predicted):
            state = self._state(acc, label)
            state[0 if label in positives and label in predicted else
                  1 if label in predicted else 2] += 1  # fmt: skip
        listed = {label for label, _ in ranked}
        for label, score in ranked:
            state = self._state(acc, label)
            state[3] += 1
            _put(state[5], score, label in positives, self._bins)
        for label in set(positives) - listed:
            self._state(acc, label)[4] += 1
        return acc

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for acc in accumulators:
            merged["videos"] += acc["videos"]
            for label, state in acc["labels"].items():
                into = self._state(merged, label)
                into[:5] = [a + b for a, b in zip(into[:5], state[:5], strict=True)]
                into[5] = into[5] + state[5]
        return merged

    def _ap(self, state, videos: int) -> float:
        tp, _, fn, listed, unlisted_pos, scores = state
        if not listed:
            return 0.0  # never retrieved
        steps = _steps(scores, unlisted_pos, videos - listed - unlisted_pos)  # unlisted: 0
        return stepped_ap(steps, tp + fn)

    def extract_output(self, acc):
        rows = []
        for label in sorted(acc["labels"]):
            state = acc["labels"][label]
            tp, fp, fn = state[:3]
            rows.append({
                "name": label, "support": tp + fn, "tp": tp, "fp": fp, "fn": fn,
                "ap": self._ap(state, acc["videos"]) if tp + fn else None,
                "precision": tp / (tp + fp) if tp + fp else 0.0,
                "recall": tp / (tp + fn) if tp + fn else 0.0,
                "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
            })  # fmt: skip
        return rows


def ratio(num, den) -> float:
    return num / den if den else 0.0


def headline(videos: dict, gap: float, rows: list[dict]) -> dict:
    """The report's metrics from the three CombineFn outputs."""
    aps = [row["ap"] for row in rows if row["ap"] is not None]
    active = [row["f1"] for row in rows if row["tp"] + row["fp"] + row["fn"]]
    tp, fp, fn = (sum(row[key] for row in rows) for key in ("tp", "fp", "fn"))
    return {
        f"gap@{GAP_K}": gap, "hit@1": videos["hit@1"], "perr": videos["perr"],
        "map": ratio(sum(aps), len(aps)), "micro_f1": ratio(2 * tp, 2 * tp + fp + fn),
        "macro_f1": ratio(sum(active), len(active)),
        "micro_precision": ratio(tp, tp + fp), "micro_recall": ratio(tp, tp + fn),
    }  # fmt: skip
