"""A text model's extra outputs end to end: the export's ``embed``,
``label_embeddings`` and ``top_k`` signatures, ``predict --embeddings``, ``similar``
on them, and the taxonomy roll-up (``predict``/``evaluate --rollup``) of a text model."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from models import artifacts
from models.serving import LoadedTagger
from pipelines import evaluate, predict, similar
from pipelines.cli import profile_args
from pipelines.components.embeddings import EMBEDDINGS_DIR
from pipelines.components.steps import raw_text
from tests.helpers import latest_records

K = 10
GROUPS = {  # the sample catalog's 20 categories rolled up into four groups
    "Arts": ("Music", "Comedy", "Film & Animation", "Fashion", "DIY & Crafts", "Kids"),
    "Knowledge": ("Science", "News", "Education", "Technology", "History", "Finance"),
    "Leisure": ("Gaming", "Cooking", "Travel", "Pets & Animals", "Nature"),
    "Motion": ("Sports", "Fitness", "Automotive"),
}


@pytest.fixture(scope="module")
def embedded(sample_catalog, sample_model, tmp_path_factory):
    """``(predict output, report, {video_id: row}, {video_id: vector})`` of
    ``predict --embeddings`` over the whole sample catalog."""
    model_dir, _ = sample_model
    out = tmp_path_factory.mktemp("embedded")
    rollup = out.parent / "groups.csv"
    pairs = [f"{label},{group}" for group, labels in GROUPS.items() for label in labels]
    rollup.write_text("label,category\n" + "\n".join(pairs) + "\n")
    args = ["--input", str(sample_catalog), "--model-dir", str(model_dir), "--output-dir", str(out)]
    report = predict.run(profile_args("local") + args + ["--embeddings", "--rollup", str(rollup)])
    rows = {}
    for path in sorted((out / "tags").glob("part-*.jsonl")):
        rows |= {r["video_id"]: r for r in map(json.loads, path.read_text().splitlines())}
    table = pq.read_table(out / EMBEDDINGS_DIR)  # as a numpy/pandas user reads it
    vectors = np.stack(table["embedding"].to_numpy(zero_copy_only=False)).astype(np.float32)
    return out, report, rows, dict(zip(table["video_id"].to_pylist(), vectors, strict=True))


def test_predict_writes_one_embedding_per_tagged_video_equal_to_the_embed_signature(
    embedded, sample_catalog, sample_model
):
    out, report, rows, vectors = embedded
    assert sorted(vectors) == sorted(rows)  # every tagged video, once
    assert report["records"]["tagged"] == len(vectors) == 800  # the fixture catalog
    assert (out / "_SUCCESS").exists()
    tagger = LoadedTagger(str(sample_model[0] / artifacts.SAVED_MODEL_DIR))
    records = latest_records(sample_catalog)
    ids = sorted(vectors)[:50]
    direct = tagger.embed_raw(*zip(*(raw_text(records[i]) for i in ids), strict=True))
    np.testing.assert_allclose(np.stack([vectors[i] for i in ids]), direct["embedding"], atol=1e-5)
    assert direct["embedding"].shape == (50, 2 * 64)  # two seeds' hidden layers, concatenated
    scores = tagger.score_raw(*zip(*(raw_text(records[i]) for i in ids), strict=True))
    np.testing.assert_allclose(direct["probabilities"], scores["probabilities"], atol=1e-6)


def test_label_embeddings_and_in_graph_top_k(sample_model, sample_catalog):
    export = str(sample_model[0] / artifacts.SAVED_MODEL_DIR)
    loaded = tf.saved_model.load(export)
    table = loaded.signatures["label_embeddings"]()
    labels = artifacts.read_extra(export, artifacts.LABELS_FILE)
    assert [v.decode() for v in table["labels"].numpy()] == labels
    assert table["embeddings"].shape == (len(labels), 2 * 64)
    records = list(latest_records(sample_catalog).values())[:20]
    text = dict(
        zip(
            ("title", "description", "tags"), zip(*map(raw_text, records), strict=True), strict=True
        )
    )
    text = {name: tf.constant(values) for name, values in text.items()}
    full = loaded.signatures["raw"](**text)["probabilities"].numpy()
    top = loaded.signatures["top_k"](**text, k=tf.constant(5))
    expected = np.sort(full, axis=1)[:, ::-1][:, :5]
    np.testing.assert_allclose(top["top_k_scores"].numpy(), expected, atol=1e-6)
    names = [[labels[i] for i in row] for row in top["top_k_indices"].numpy()]
    assert names == [[v.decode() for v in row] for row in top["top_k_labels"].numpy()]
    assert top["top_k_scores"].shape == (20, 5)
    wide = loaded.signatures["top_k"](**text, k=tf.constant(10_000))  # capped at L
    assert wide["top_k_scores"].shape == (20, len(labels))


def test_nearest_videos_share_categories_far_more_than_chance(embedded, sample_catalog, tmp_path):
    out = embedded[0]
    args = ["--embeddings", str(out), "--output-dir", str(tmp_path), "--k", str(K), "--exact"]
    report = similar.run(profile_args("local") + args)
    records = latest_records(sample_catalog)
    categories = {v: set(r.get("categories") or ()) for v, r in records.items()}
    shared = []
    for path in sorted((tmp_path / similar.SIMILAR_DIR).glob("part-*.jsonl")):
        for row in map(json.loads, path.read_text().splitlines()):
            mine = categories[row["video_id"]]
            shared += [bool(mine & categories[n["video_id"]]) for n in row["similar"]]
    assert report["records"]["rows"] == 800 and len(shared) == 800 * K
    ids = sorted(categories)
    rng = np.random.default_rng(0)  # chance: random pairs of distinct videos
    pairs = rng.choice(len(ids), size=(20_000, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    chance = np.mean([bool(categories[ids[a]] & categories[ids[b]]) for a, b in pairs])
    rate = float(np.mean(shared))
    assert 0.1 < chance < 0.3  # 20 Zipf-distributed categories, 1-3 a video: 0.21 measured
    assert rate > 0.95 and rate > 4 * chance, (rate, chance)  # 0.995 measured


def test_label_neighbours_from_the_model(sample_model, tmp_path):
    args = ["--model-dir", str(sample_model[0]), "--labels", "--output-dir", str(tmp_path)]
    similar.run(profile_args("local") + args + ["--k", "3"])
    export = str(sample_model[0] / artifacts.SAVED_MODEL_DIR)
    labels = artifacts.read_extra(export, artifacts.LABELS_FILE)
    rows = {}
    for path in sorted((tmp_path / similar.LABELS_DIR).glob("part-*.jsonl")):
        rows |= {r["label"]: r["similar"] for r in map(json.loads, path.read_text().splitlines())}
    assert sorted(rows) == sorted(labels)
    table = tf.saved_model.load(export).signatures["label_embeddings"]()["embeddings"].numpy()
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    scores = unit @ unit.T
    np.fill_diagonal(scores, -np.inf)
    for i, label in enumerate(labels):
        best = [labels[j] for j in np.argsort(-scores[i], kind="stable")[:3]]
        assert [n["label"] for n in rows[label]][:1] == best[:1]


def test_text_model_rollup_in_predict_and_evaluate(embedded, sample_catalog, sample_model):
    out, _, rows, _ = embedded
    group_of = {label: group for group, labels in GROUPS.items() for label in labels}
    for row in list(rows.values())[:200]:
        scores = {t["label"]: t["score"] for t in row["labels"]}  # top-20: every category
        expected = {g: max(scores[label] for label in labels) for g, labels in GROUPS.items()}
        got = {c["category"]: c["score"] for c in row["categories"]}
        assert got == pytest.approx(expected, abs=1e-6)
        assert row["predicted_categories"] == sorted({group_of[n] for n in row["predicted"]})
    args = ["--predictions", str(out), "--catalog", str(sample_catalog)]
    args += ["--model-dir", str(sample_model[0]), "--output-dir", str(out.parent / "eval")]
    groups = str(out.parent / "groups.csv")
    report = evaluate.run(profile_args("local") + args + ["--rollup", groups])
    level = report["levels"]["category"]
    support = dict.fromkeys(GROUPS, 0)  # labelled videos with a member category
    for record in latest_records(sample_catalog).values():
        for group in {group_of[name] for name in record.get("categories") or ()}:
            support[group] += 1
    assert {row["name"]: row["support"] for row in level["per_category"]} == support
    assert sorted(support.values()) == [115, 197, 350, 394]  # the fixture's 800 videos
    # four groups are easier than twenty categories, and the roll-up keeps the ranking good
    assert level["metrics"]["gap@20"] > report["metrics"]["gap@20"] > 0.8


def test_wide_label_spaces_tag_from_the_in_graph_top_k(
    embedded, sample_catalog, sample_model, tmp_path, monkeypatch
):
    """Forced on the 20-label sample: the rows equal the full-row path's."""
    from pipelines.components import scoring

    monkeypatch.setattr(scoring, "TOP_K_ABOVE", 5)  # 20 labels count as "wide"
    monkeypatch.setattr(scoring, "TOP_K_CANDIDATES", 20)  # every label is a candidate
    rollup = embedded[0].parent / "groups.csv"
    config = scoring.PredictConfig("", str(sample_model[0]), "", top_k=3)
    assert scoring.candidates(config, "text") == 20 and scoring.candidates(config, "video") is None
    args = ["--input", str(sample_catalog), "--model-dir", str(sample_model[0])]
    args += ["--output-dir", str(tmp_path), "--rollup", str(rollup)]
    predict.run(profile_args("local") + args)
    rows = {}
    for path in sorted((tmp_path / "tags").glob("part-*.jsonl")):
        rows |= {r["video_id"]: r for r in map(json.loads, path.read_text().splitlines())}
    full = embedded[2]
    assert sorted(rows) == sorted(full)
    for video_id, row in rows.items():
        expected = full[video_id]
        assert [t["label"] for t in row["labels"]] == [t["label"] for t in expected["labels"]]
        assert row["predicted"] == expected["predicted"]
        assert row["predicted_categories"] == expected["predicted_categories"]
        got = [t["score"] for t in row["labels"]] + [c["score"] for c in row["categories"]]
        want = [t["score"] for t in expected["labels"]]
        want += [c["score"] for c in expected["categories"]]
        assert got == pytest.approx(want, abs=2e-6)
