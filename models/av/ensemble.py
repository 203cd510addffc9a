"""The graph and the weight search of an audio/visual ensemble (``catalog-tagger ensemble``,
run by ``models.av.ensemble_tool``).

An ensemble is one SavedModel holding its members' loaded SavedModels (tracked
by a ``tf.Module``, so their variables are saved inside it) and signatures that
return ``sum_i w_i * probabilities_i``. It has the members' signatures:
``features`` (video-level) or ``frames`` (frame-level), and ``serving_default``
that parses the serialized examples once for all members. Frame-level members
see at most their own ``max_frames`` frames, as their own exports would.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from models import metrics
from models.av import data as yt8m_data
from models.av import export as av_export
from transforms.errors import JobError, require

VIDEO_INPUTS = ("mean_rgb", "mean_audio")
FRAME_INPUTS = ("rgb", "audio", "num_frames")


def combine(member_scores: Sequence[np.ndarray], weights) -> np.ndarray:
    """The weighted mean of the members' probabilities, float32 as in the graph."""
    weights = np.asarray(weights, np.float32)
    return np.tensordot(weights, np.stack(member_scores).astype(np.float32), axes=1)


def ensemble_module(loaded: list, av: dict, member_frames: list[int], weights):
    """``(module, signatures, member_probabilities)`` of an ensemble of ``loaded`` exports.

    ``av`` is the ensemble card's ``av`` section (level, feature sizes,
    ``max_frames``, ``num_classes``); ``member_probabilities(inputs)`` gives
    each member's probabilities of a batch of named inputs (for evaluation).
    """
    module = tf.Module(name="catalog_tagger_av_ensemble")
    module.members = list(loaded)
    module.member_weights = tf.Variable(
        np.asarray(weights, np.float32), trainable=False, name="member_weights"
    )
    frame_level, sizes = av["frame_level"], av["feature_sizes"]
    signature = "frames" if frame_level else "features"

    def member_probabilities(inputs: dict) -> list:
        out = []
        for member, frames in zip(module.members, member_frames, strict=True):
            own = inputs
            if frame_level:  # what the member's own export reads: <= its max_frames
                own = {"rgb": inputs["rgb"][:, :frames], "audio": inputs["audio"][:, :frames],
                       "num_frames": tf.minimum(inputs["num_frames"], frames)}  # fmt: skip
            out.append(member.signatures[signature](**own)["probabilities"])
        return out

    def probabilities(inputs: dict) -> dict:
        stacked = tf.stack(member_probabilities(inputs))
        return {"probabilities": tf.tensordot(module.member_weights, stacked, axes=1)}

    if frame_level:
        dense = _frames_function(probabilities, sizes)
        parse = lambda ex: yt8m_data.parse_frame_level(  # noqa: E731
            ex, av["num_classes"], av["max_frames"], sizes)[0]  # fmt: skip
    else:
        dense = _features_function(probabilities, sizes)
        parse = lambda ex: yt8m_data.parse_video_level(ex, av["num_classes"], sizes)[0]  # noqa: E731
    names = FRAME_INPUTS if frame_level else VIDEO_INPUTS

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        parsed = parse(examples)
        return {**dense(**{k: parsed[k] for k in names}), "video_id": parsed["video_id"]}

    setattr(module, signature, dense)
    module.serve_examples = serve_examples
    return module, {signature: dense, "serving_default": serve_examples}, member_probabilities


def _features_function(probabilities: Callable, sizes: dict):
    @tf.function(input_signature=av_export.video_signature(sizes))
    def features(mean_rgb, mean_audio):
        return probabilities({"mean_rgb": mean_rgb, "mean_audio": mean_audio})

    return features


def _frames_function(probabilities: Callable, sizes: dict):
    @tf.function(input_signature=av_export.frame_signature(sizes))
    def frames(rgb, audio, num_frames):
        return probabilities({"rgb": rgb, "audio": audio, "num_frames": num_frames})

    return frames


def grid_units(grid_step: float) -> int:
    """Grid points per unit of weight; ``ValueError`` unless ``grid_step`` divides 1."""
    units = round(1.0 / grid_step) if 0 < grid_step <= 1 else 0
    if units < 1 or abs(units * grid_step - 1.0) > 1e-9:
        raise ValueError(f"grid step must divide 1 (0.1, 0.05, 0.25, ...). Received: {grid_step}")
    return units


def simplex(count: int, units: int) -> Iterator[tuple[int, ...]]:
    """Every ``count`` non-negative integers summing to ``units`` (stars and bars)."""
    for cuts in itertools.combinations(range(units + count - 1), count - 1):
        bounds = (-1, *cuts, units + count - 1)
        yield tuple(b - a - 1 for a, b in itertools.pairwise(bounds))


def tune_weights(member_scores, labels, grid_step: float = 0.1, k: int = 20) -> np.ndarray:
    """Member weights on the grid of ``grid_step`` maximizing GAP@k of ``combine``.

    Up to 3 members: the whole simplex. More: coordinate ascent (move one grid
    step from one member to another while GAP improves), started from the best
    of equal weights and each member alone, so the result beats every member.
    Among equal GAPs the weights closest to equal win.
    """
    count, units = len(member_scores), grid_units(grid_step)
    cache: dict[tuple, tuple] = {}

    def key(point: tuple) -> tuple:
        if point not in cache:
            weights = np.array(point) / units
            gap = metrics.gap_at_k(combine(member_scores, weights), labels, k)
            cache[point] = (gap, -float(np.abs(weights - 1.0 / count).sum()))
        return cache[point]

    if count <= 3:
        return np.array(max(simplex(count, units), key=key)) / units
    equal = tuple(units // count + (i < units % count) for i in range(count))
    alone = [tuple(units * (i == j) for i in range(count)) for j in range(count)]
    best = max([equal, *alone], key=key)
    while True:
        moves = [
            tuple(v - (n == i) + (n == j) for n, v in enumerate(best))
            for i, j in itertools.permutations(range(count), 2)
            if best[i] > 0
        ]
        step = max(moves, key=key)
        if key(step) <= key(best):
            return np.array(best) / units
        best = step


def check_members(members: list) -> None:
    """Members (``av_tools.Export``) must share labels, level, feature sizes and split."""
    require(len(members) >= 2, "an ensemble needs at least two --model-dir")
    dirs = [os.path.abspath(m.model_dir) for m in members]
    require(len(set(dirs)) == len(dirs), "the same --model-dir is given twice")
    first = members[0]
    for member in members[1:]:
        pair = f"{member.model_dir!r} and {first.model_dir!r}"
        require(
            member.labels == first.labels,
            f"{pair} have different labels ({len(member.labels)} vs {len(first.labels)}; "
            "an ensemble needs the same labels.txt)",
        )
        for key in ("frame_level", "feature_sizes", "split"):
            mine, theirs = member.card[av_export.CARD_AV][key], first.card[av_export.CARD_AV][key]
            require(mine == theirs, f"{pair} differ in {key}: {mine!r} vs {theirs!r}")


def members_mb(members: list, max_model_mb: float | None) -> float:
    """The members' weights in MB (card ``weights_mb``, else the saved variables)."""
    size = sum(
        m.card[av_export.CARD_AV].get("weights_mb")
        or av_export.saved_model_mb(os.path.join(m.export_dir, "variables"))
        for m in members
    )
    if max_model_mb is not None and size > max_model_mb:
        raise JobError(
            f"the ensemble's members take {size:.1f} MB of weights, over --max-model-mb "
            f"{max_model_mb:g}; drop a member or compress the members (catalog-tagger compress)"
        )
    return size


def initial_weights(weights, count: int, grid_step: float | None = None) -> np.ndarray:
    """``weights`` normalised to sum 1 (equal if None); checks ``grid_step`` if given."""
    if grid_step is not None:
        try:
            grid_units(grid_step)
        except ValueError as err:
            raise JobError(str(err)) from None
    if weights is None:
        return np.full(count, 1.0 / count)
    values = np.asarray(weights, np.float64)
    require(values.shape == (count,), f"--weights gives {values.size} weights for {count} models")
    ok = np.isfinite(values).all() and (values >= 0).all() and values.sum() > 0
    require(ok, f"--weights must be >= 0 with a positive sum, not {list(weights)}")
    return values / values.sum()


def member_scores(member_probabilities, dataset) -> tuple[list[np.ndarray], np.ndarray]:
    """Each member's eval probabilities (one pass over the data) and the labels."""
    scores, labels = [], []
    for features, y in dataset:
        inputs = {k: v for k, v in features.items() if k != "video_id"}
        scores.append([p.numpy() for p in member_probabilities(inputs)])
        labels.append(y.numpy())
    require(scores, "no eval videos in the data (give --data-dir with the models' data)")
    return [np.concatenate(s) for s in zip(*scores, strict=True)], np.concatenate(labels)
