"""The batch predictor: every video tagged once, counts balance, scores equal
training-time evaluation, failures isolated, output published atomically."""

from __future__ import annotations

import csv
import json

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from models.text.data import make_dataset
from models.text.train import load_training_data, predict_scores
from pipelines import cli, predict
from pipelines.components import publish, scoring
from pipelines.components.inference import (
    RunInference,
    TaggerModelHandler,
    data_errors,
    run_with_split,
)
from pipelines.components.steps import raw_text
from pipelines.tools.sample_catalog import generate_lines
from tests.helpers import empty_bag_of_words_scores, latest_records, local_options
from transforms.text import TextConfig, text_tokens

TAGGED_AT = "2026-11-22T00:00:00+00:00"


def _predict(catalog, model_dir, out, *flags) -> dict:
    args = ["--input", str(catalog), "--model-dir", str(model_dir), "--output-dir", str(out)]
    return predict.run(cli.profile_args("local") + args + ["--tagged-at", TAGGED_AT, *flags])


def tag_rows(out) -> list[dict]:
    files = sorted((out / "tags").glob("part-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


@pytest.fixture(scope="module")
def predicted(sample_catalog, sample_model, tmp_path_factory):
    model_dir, _ = sample_model
    out = tmp_path_factory.mktemp("predicted")
    return out, _predict(sample_catalog, model_dir, out)


def _empty_text_ids(catalog) -> set[str]:
    """Videos whose latest version has no token left after cleaning (default text config)."""
    latest = latest_records(catalog)
    return {vid for vid, r in latest.items() if not text_tokens(_fields(r), TextConfig())}


def _fields(record: dict) -> list[str]:
    """A record's fields as the graph splits them: title, description, each tag."""
    title, description, tags = raw_text(record)
    return [title, description, *tags.split("|")]


def test_every_video_tagged_once_and_counts_balance(predicted, sample_catalog, sample_preprocessed):
    out, report = predicted
    _, manifest = generate_lines(800, 7)
    records = report["records"]
    assert records["in"] == manifest.lines
    assert records["duplicates_removed"] == manifest.duplicates
    assert records["dead_lettered"] == manifest.malformed  # empty text is tagged, not dead
    assert list(report["dead_letters"]) == ["read"]
    assert sum(report["dead_letters"]["read"].values()) == manifest.malformed
    assert records["tagged"] == manifest.unique_videos
    assert records["empty_text"] == manifest.empty_text == len(_empty_text_ids(sample_catalog))
    assert records["balanced"] is True
    assert records["in"] == records["tagged"] + records["dead_lettered"] + manifest.duplicates
    rows = tag_rows(out)
    assert len(rows) == len({r["video_id"] for r in rows}) == records["tagged"]
    assert (out / "_SUCCESS").exists() and not (out / "_staging").exists()
    metrics = report["beam_metrics"]  # Beam ML RunInference's own metrics
    assert 16 <= metrics["inference_request_batch_size"]["max"] <= 512
    assert metrics["num_inferences"] == records["tagged"]
    assert metrics["load_model_latency_milli_secs"]["count"] >= 1
    # the whole catalog's rate is a mix of its splits' rates: every train word is in
    # the vocabulary (--frequency-threshold 1), the held-out splits' unseen ones are not
    trained = json.loads((sample_preprocessed / "preprocess_report.json").read_text())
    rates = trained["vocabulary"]["oov_token_rate"]
    assert rates["train"] == 0.0 < report["oov_token_rate"] <= max(rates.values()) < 0.6


def test_empty_text_videos_get_the_models_empty_bag_of_words_scores(
    predicted, sample_model, sample_catalog
):
    out, _ = predicted
    model_dir, _ = sample_model
    rows = tag_rows(out)
    flagged = {r["video_id"]: r for r in rows if "empty_text" in r}
    assert set(flagged) == _empty_text_ids(sample_catalog) and len(flagged) >= 1
    assert all(r["empty_text"] is True for r in flagged.values())
    prior = empty_bag_of_words_scores(model_dir)
    for row in flagged.values():
        got = {t["label"]: t["score"] for t in row["labels"]}
        assert set(got) == set(prior)
        for name, score in prior.items():
            assert got[name] == pytest.approx(score, abs=1e-6), name
        assert [t["score"] for t in row["labels"]] == sorted(got.values(), reverse=True)
    text_row = next(r for r in rows if "empty_text" not in r)
    assert {t["label"]: t["score"] for t in text_row["labels"]} != pytest.approx(prior, abs=1e-3)


def test_rows_hold_sorted_top_k_and_tuned_predictions(predicted, sample_model):
    out, report = predicted
    model_dir, _ = sample_model
    thresholds = json.loads((model_dir / "saved_model/assets.extra/thresholds.json").read_text())
    for row in tag_rows(out)[:200]:
        scores = [t["score"] for t in row["labels"]]
        assert len(scores) == 20 and scores == sorted(scores, reverse=True)
        expected = {
            t["label"] for t in row["labels"] if t["score"] >= thresholds[t["label"]] + 1e-6
        }
        assert expected <= set(row["predicted"])
        assert row["model_version"] == report["model_version"] and row["tagged_at"] == TAGGED_AT


def test_parity_with_training_time_evaluation(predicted, sample_model, sample_preprocessed):
    out, _ = predicted
    model_dir, summary = sample_model
    data = load_training_data(str(sample_preprocessed))
    keras_model = tf.saved_model.load(str(model_dir / "saved_model")).model
    dataset = make_dataset(data.files["eval"], data.output, data.spec, batch_size=64)
    ids, scores, _ = predict_scores(keras_model, dataset, summary["hparams"]["loss"])
    by_id = {r["video_id"]: {t["label"]: t["score"] for t in r["labels"]} for r in tag_rows(out)}
    assert len(ids) > 50
    for video_id, row in zip(ids, scores, strict=True):
        predicted_scores = by_id[video_id.decode()]
        got = np.array([predicted_scores[name] for name in data.spec.label_names])
        np.testing.assert_allclose(got, row, atol=1e-5)


def test_rerun_gives_the_same_rows_and_csv_mapping_reads_like_preprocess(
    predicted, sample_catalog, sample_model, tmp_path
):
    out, _ = predicted
    model_dir, _ = sample_model
    # The same catalog as CSV with other column names, read through mapping flags.
    records = []
    for line in sample_catalog.read_bytes().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("video_id"):
            tags = row.get("tags") or []
            records.append({"id": row["video_id"], "name": row.get("title", ""),
                            "about": row.get("description") or "",
                            "keywords": "|".join(tags) if isinstance(tags, list) else tags,
                            "updated": row.get("updated_at", "")})  # fmt: skip
    path = tmp_path / "catalog.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    flags = ["--field", "video_id=id", "--field", "title=name", "--field", "description=about",
             "--field", "tags=keywords", "--field", "updated_at=updated"]  # fmt: skip
    report = _predict(path, model_dir, tmp_path / "out", *flags)
    rows = {r["video_id"]: r for r in tag_rows(tmp_path / "out")}
    original = {r["video_id"]: r for r in tag_rows(out)}
    assert report["records"]["balanced"] and len(rows) >= len(original) - 2
    same = [vid for vid in original if vid in rows]
    assert all(rows[v]["labels"] == original[v]["labels"] for v in same)


def test_run_with_split_isolates_the_bad_item_and_lets_bugs_through():
    def fn(items):
        if "bad" in items:
            raise tf.errors.InvalidArgumentError(None, None, "rejected input")
        if "bug" in items:
            raise AttributeError("a bug")
        return [i.upper() for i in items]

    failed, errors = [], data_errors()
    parts = list(
        run_with_split(["a", "b", "bad", "c", "d"], fn, lambda i, e: failed.append(i), errors)
    )
    assert [r for _, result in parts for r in result] == ["A", "B", "C", "D"]
    assert failed == ["bad"]
    with pytest.raises(AttributeError, match="a bug"):
        list(run_with_split(["a", "bug", "c"], fn, lambda i, e: failed.append(i), errors))
    assert failed == ["bad"]  # a bug is never dead-lettered, not even after splitting


def test_failed_inference_goes_to_dead_letters_and_empty_rows_score_the_prior(
    sample_model, monkeypatch
):
    from models.serving import LoadedTagger

    model_dir, _ = sample_model
    prior = np.array(list(empty_bag_of_words_scores(model_dir).values()))
    tagger = LoadedTagger(str(model_dir / "saved_model"))
    only_empty = tagger.vectorize(["", "🔥"], ["", ""], ["", ""])  # no token: rows are kept
    assert only_empty["dense_shape"][0] == 2 and only_empty["indices"].shape == (0, 2)
    assert only_empty["num_tokens"].tolist() == [0, 0]
    scores = tagger.predict_sparse(
        only_empty["indices"], only_empty["values"], only_empty["dense_shape"]
    )
    np.testing.assert_allclose(scores, [prior, prior], atol=1e-6)

    handler = TaggerModelHandler(str(model_dir / "saved_model"), min_batch=6, max_batch=6)
    good = [{"video_id": f"g{i}", "title": "Pasta recipe, chef!"} for i in range(5)]
    good[1] = {"video_id": "g1", "title": "🔥 http://x.io"}  # empty text: the model's prior
    bad = {"video_id": "bad", "title": "rejected-by-tf"}  # TF rejects it (below)
    original = LoadedTagger.score_raw

    def score_raw(self, titles, descriptions, tags):  # the real graph, rejecting one video
        if "rejected-by-tf" in titles:
            raise tf.errors.InvalidArgumentError(None, None, "input rejected")
        return original(self, titles, descriptions, tags)

    monkeypatch.setattr(LoadedTagger, "score_raw", score_raw)
    with TestPipeline(options=local_options()) as p:
        scored = p | beam.Create([*good[:2], bad, *good[2:]]) | RunInference(handler)
        scores, dead, tokens, _ = scored
        ids = scores | beam.Map(
            lambda kv: (
                kv[0]["video_id"],
                kv[1].shape[0],
                bool(np.allclose(kv[1], prior, atol=1e-6)),
            )
        )
        expected = [(f"g{i}", 20, i == 1) for i in range(5)]
        assert_that(ids, equal_to(expected), label="Scored")
        reasons = dead | beam.Map(
            lambda d: (d["stage"], d["reason"], json.loads(d["record"])["video_id"])
        )
        assert_that(reasons, equal_to([("inference", "InvalidArgumentError", "bad")]), label="Dead")
        total = tokens | beam.Filter(lambda kv: kv[0] == ("tokens", "total"))
        summed = total | beam.Values() | beam.CombineGlobally(sum)
        # g0, g2, g3, g4: 3 words and 2 bigrams each
        assert_that(summed, equal_to([5 * 4]), label="Tokens")


def test_publish_replaces_the_old_result_and_marks_success(tmp_path):
    out, staging = tmp_path / "out", tmp_path / "out" / "_staging"
    (out / "tags").mkdir(parents=True)
    (out / "tags" / "part-old.jsonl").write_text("old\n")
    (staging / "tags").mkdir(parents=True)
    (staging / "tags" / "part-new.jsonl").write_text("new\n")
    (staging / scoring.REPORT_FILE).write_text("{}")
    publish.publish_dir(str(staging), str(out), scoring.PUBLISHED)
    assert [p.name for p in (out / "tags").iterdir()] == ["part-new.jsonl"]
    assert (out / publish.SUCCESS).exists() and (out / scoring.REPORT_FILE).exists()
    assert not staging.exists()


def test_bad_threshold_and_missing_model_are_one_line_errors(tmp_path, capsys, sample_catalog):
    argv = ["predict", "--input", str(sample_catalog), "--output-dir", str(tmp_path / "o")]
    assert cli.main([*argv, "--model-dir", str(tmp_path)]) == 2
    assert "no exported model" in capsys.readouterr().err
    assert cli.main([*argv, "--model-dir", str(tmp_path), "--threshold", "2"]) == 2
    assert "--threshold must be" in capsys.readouterr().err
