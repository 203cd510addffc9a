"""Text + audio/visual fusion through the product path: a catalog whose records carry
text, AV vectors or both; preprocess --av-features, train, the Beam predictor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from models import artifacts
from models.text.data import make_dataset
from models.text.model import HParams
from models.text.train import TrainConfig, load_training_data, predict_scores, train
from pipelines import cli, predict, preprocess
from pipelines.components import tags

pytestmark = pytest.mark.slow  # preprocesses, trains and predicts a fusion model

CATEGORIES = ("Cooking", "Gaming", "Music", "Travel")
WORDS = {
    "Cooking": "recipe pasta oven garlic bake",
    "Gaming": "level boss console speedrun quest",
    "Music": "guitar album concert song drums",
    "Travel": "beach flight hotel island passport",
}
RGB, AUDIO = 16, 8


def _catalog(path) -> None:
    """300 videos: text + AV, text only, AV only (by id mod 3); plus 3 bad records."""
    rng = np.random.default_rng(5)
    centres = {c: (rng.normal(0, 1, RGB), rng.normal(0, 1, AUDIO)) for c in CATEGORIES}
    lines = []
    for i in range(300):
        category = CATEGORIES[i % 4]
        record = {"video_id": f"v{i:04d}", "categories": [category]}
        if i % 3 != 2:
            words = rng.choice(WORDS[category].split(), 3).tolist()
            record["title"] = " ".join([*words, f"episode{i % 7}"])
        if i % 3 != 1:
            rgb, audio = centres[category]
            record["mean_rgb"] = (rgb + rng.normal(0, 0.3, RGB)).round(4).tolist()
            record["mean_audio"] = " ".join(map(str, (audio + rng.normal(0, 0.3, AUDIO)).round(4)))
        lines.append(record)
    lines += [
        {"video_id": "bad-length", "title": "song", "mean_rgb": [0.1] * 5,
         "mean_audio": [0.0] * AUDIO},
        {"video_id": "bad-number", "title": "song", "mean_rgb": "0.1 abc"},
        {"video_id": "nothing", "title": "", "categories": ["Music"]},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.fixture(scope="module")
def fused(tmp_path_factory):
    root = tmp_path_factory.mktemp("fusion")
    catalog = root / "catalog.jsonl"
    _catalog(catalog)
    flags = ["--av-features", "--rgb-size", str(RGB), "--audio-size", str(AUDIO)]
    args = ["--input", str(catalog), "--output-dir", str(root / "pre"), *flags]
    report = preprocess.run(cli.profile_args("local") + args + ["--frequency-threshold", "1"])
    hparams = HParams(
        hidden_units=16, epochs=15, patience=4, learning_rate=0.01, batch_size=32, refit=False
    )
    summary = train(TrainConfig(str(root / "pre"), str(root / "model"), hparams))
    args = ["--input", str(catalog), "--model-dir", str(root / "model")]
    predicted = predict.run(cli.profile_args("local") + args + ["--output-dir", str(root / "out")])
    return root, report, summary, predicted


def _rows(out) -> dict:
    files = sorted((out / "tags").glob("part-*.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    return {row["video_id"]: row for row in rows}


def test_av_only_videos_are_kept_and_bad_vectors_dead_lettered(fused):
    _, report, _, predicted = fused
    assert sum(report["records"]["written_per_split"].values()) == 300
    assert report["dead_letters"] == {
        "read": {"bad_feature": 1},
        "clean": {"bad_feature_size": 1, "empty_text": 1},
    }
    # the record with neither text nor AV is tagged with the prior and flagged
    assert predicted["records"] == {"in": 303, "tagged": 301, "empty_text": 1, "dead_lettered": 2,
                                    "duplicates_removed": 0, "balanced": True}  # fmt: skip


def test_fusion_model_learns_from_either_modality(fused):
    root, _, summary, _ = fused
    assert summary["metrics"]["test"]["gap@20"] > 0.9
    card = artifacts.read_extra(str(root / "model" / "saved_model"), artifacts.CARD_FILE)
    assert card["kind"] == "text+av"
    rows = _rows(root / "out")
    for kind, start in (("text+av", 0), ("text", 1), ("av", 2)):
        ids = [f"v{i:04d}" for i in range(start, 300, 3)]
        hits = [rows[v]["labels"][0]["label"] == CATEGORIES[int(v[1:]) % 4] for v in ids]
        assert np.mean(hits) > 0.9, kind


def test_predictor_equals_training_time_scores(fused):
    root, _, summary, _ = fused
    data = load_training_data(str(root / "pre"))
    assert data.spec.av_sizes == (RGB, AUDIO)
    model = tf.saved_model.load(str(root / "model" / "saved_model")).model
    dataset = make_dataset(data.files["eval"], data.output, data.spec, batch_size=16)
    ids, scores, _ = predict_scores(model, dataset, "sigmoid")
    rows = _rows(root / "out")
    assert len(ids) > 10
    for video_id, expected in zip(ids, scores, strict=True):
        got = {t["label"]: t["score"] for t in rows[video_id.decode()]["labels"]}
        assert [got[n] for n in data.spec.label_names] == pytest.approx(expected.tolist(), abs=1e-5)


def test_text_only_scores_ignore_the_av_inputs(fused):
    root, *_ = fused
    loaded = tf.saved_model.load(str(root / "model" / "saved_model"))
    text = {"title": ["Guitar album"], "description": ["A song."], "tags": [""]}
    vectors = loaded.signatures["vectorize"](**{k: tf.constant(v) for k, v in text.items()})
    sparse = {k: vectors[k] for k in ("indices", "values", "dense_shape")}
    text_only = loaded.signatures["sparse"](**sparse)["probabilities"].numpy()
    for rgb in (np.zeros((1, RGB)), np.full((1, RGB), 3.0)):
        fused_out = loaded.signatures["fused"](
            **sparse, mean_rgb=tf.constant(rgb, tf.float32),
            mean_audio=tf.ones((1, AUDIO)), has_av=tf.zeros([1]),
        )["probabilities"].numpy()  # fmt: skip
        np.testing.assert_allclose(fused_out, text_only, atol=1e-6)
    with_av = loaded.signatures["fused"](
        **sparse, mean_rgb=tf.ones((1, RGB)), mean_audio=tf.ones((1, AUDIO)), has_av=tf.ones([1])
    )["probabilities"].numpy()
    assert np.abs(with_av - text_only).max() > 1e-3


def test_nightly_content_hash_sees_av_changes():
    text_only = {"fingerprint": "abc"}
    assert tags.content_hash(text_only) == "abc"
    fused = {"fingerprint": "abc", "mean_rgb": [0.5], "mean_audio": [0.0], "has_av": 1.0}
    changed = {**fused, "mean_rgb": [0.6]}
    assert tags.content_hash(fused).startswith("abc+av:")
    assert tags.content_hash(fused) != tags.content_hash(changed)
    assert tags.content_hash(fused) == tags.content_hash(dict(fused))
