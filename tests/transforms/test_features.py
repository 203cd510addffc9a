"""preprocessing_fn on inline rows: exact vocabularies, tf-idf weights and ids."""

from __future__ import annotations

import json
import math

import apache_beam as beam
import numpy as np
import pytest
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam

from tests.helpers import local_options
from transforms.features import (
    LABELS_VOCAB,
    RAW_FEATURE_SPEC,
    TOKENS_VOCAB,
    TransformConfig,
    make_preprocessing_fn,
)
from transforms.text import TextConfig

pytestmark = pytest.mark.slow  # runs tf.Transform analysis on Beam


def _row(video_id: str, title: str, labels: list[str]) -> dict:
    return {"video_id": video_id, "title": title, "description": "", "tags": "", "labels": labels}


TRAIN = [
    _row("a", "Pie, pie & jam; zebra!", ["food"]),
    _row("b", "<b>pie</b> tea", ["food", "drink"]),
    _row("c", "tea jam jam", ["drink", "rare"]),
    _row("d", "TEA", ["food"]),
]
# An eval row full of words never seen in train, plus one known word.
EVAL = [_row("e", "unseen novel pie gibberish", ["fun"])]
UNIGRAMS = TextConfig(bigrams=False)


RAW = {"l2_normalize": False, "frequency_threshold": 2}
CONFIGS = {
    "tfidf": TransformConfig(num_oov_buckets=3, min_label_count=2, weighting="tfidf", **RAW),
    "no_oov": TransformConfig(num_oov_buckets=0, weighting="tfidf", **RAW),
    "count": TransformConfig(num_oov_buckets=0, weighting="count", **RAW),
    "binary": TransformConfig(num_oov_buckets=0, weighting="binary", **RAW),
    "sublinear": TransformConfig(num_oov_buckets=2, weighting="sublinear_tfidf", **RAW),
    "default": TransformConfig(frequency_threshold=2),
}


def _to_json(row: dict) -> str:
    return json.dumps(
        {k: np.asarray(v).tolist() for k, v in row.items() if k != "video_id"}
        | {"video_id": row["video_id"].decode()}
    )


def _add_transform(p, name: str, config: TransformConfig, out_dir: str) -> None:
    metadata = tft.DatasetMetadata.from_feature_spec(RAW_FEATURE_SPEC)
    with tft_beam.Context(temp_dir=f"{out_dir}/tmp"):
        (train, _), transform_fn = (
            p | f"Train{name}" >> beam.Create(TRAIN),
            metadata,
        ) | f"Analyze{name}" >> tft_beam.AnalyzeAndTransformDataset(
            make_preprocessing_fn(config, UNIGRAMS)
        )
        (evals, _) = ((p | f"Eval{name}" >> beam.Create(EVAL), metadata), transform_fn) | (
            f"Transform{name}" >> tft_beam.TransformDataset()
        )
        _ = transform_fn | f"Write{name}" >> tft_beam.WriteTransformFn(out_dir)
    _ = (
        (train, evals)
        | f"Flatten{name}" >> beam.Flatten()
        | f"Json{name}" >> beam.Map(_to_json)
        | f"Rows{name}" >> beam.io.WriteToText(f"{out_dir}/rows", shard_name_template="")
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every config transformed in one pipeline: ``{name: (TFTransformOutput, rows)}``."""
    root = tmp_path_factory.mktemp("features")
    with beam.Pipeline(options=local_options()) as p:
        for name, config in CONFIGS.items():
            _add_transform(p, name, config, str(root / name))
    result = {}
    for name in CONFIGS:
        lines = (root / name / "rows").read_text().splitlines()
        rows = {row["video_id"]: row for row in map(json.loads, lines)}
        result[name] = (tft.TFTransformOutput(str(root / name)), rows)
    return result


@pytest.fixture(scope="module")
def tfidf_run(runs):
    return runs["tfidf"]


def _idf(df: int, n_docs: int = 4) -> float:
    return 1 + math.log((n_docs + 1) / (df + 1))


def test_vocabularies_are_named_sorted_and_thresholded(tfidf_run):
    output, _ = tfidf_run
    # document frequencies: tea 3, pie 2, jam 2, zebra 1 (< threshold 2); ties break by
    # token descending. (By term counts pie and jam would be 3: each is twice in one video.)
    assert output.vocabulary_by_name(TOKENS_VOCAB) == [b"tea", b"pie", b"jam"]
    assert output.vocabulary_size_by_name(TOKENS_VOCAB) == 3
    # food 3, drink 2, rare 1 (< min_label_count 2)
    assert output.vocabulary_by_name(LABELS_VOCAB) == [b"food", b"drink"]


def test_tfidf_rows(tfidf_run):
    _, rows = tfidf_run
    a = rows["a"]  # pie x2, jam, zebra (OOV) -> 4 tokens; df: pie 2, jam 2 of 4 docs
    # An OOV bucket holds words kept out of the vocabulary: no document frequency, the
    # rarest idf (df 0).
    ids = a["token_ids"]
    weights = dict(zip(ids, a["token_weights"], strict=True))
    assert ids[:2] == [1, 2] and ids[2] in (3, 4, 5)
    np.testing.assert_allclose(weights[1], 2 / 4 * _idf(2), rtol=1e-6)
    np.testing.assert_allclose(weights[2], 1 / 4 * _idf(2), rtol=1e-6)
    np.testing.assert_allclose(weights[ids[2]], 1 / 4 * _idf(0), rtol=1e-6)
    assert (a["num_tokens"], a["num_oov_tokens"]) == (4, 1)
    assert a["label_ids"] == [0]
    assert rows["c"]["label_ids"] == [1]  # "rare" dropped: below min_label_count
    assert rows["d"]["token_ids"] == [0]
    np.testing.assert_allclose(rows["d"]["token_weights"], [_idf(3)], rtol=1e-6)


def test_unseen_words_never_land_on_a_real_words_id(tfidf_run):
    _, rows = tfidf_run
    e = rows["e"]
    ids = e["token_ids"]
    assert 1 in ids  # pie
    unseen = [i for i in ids if i != 1]
    assert unseen and all(3 <= i < 3 + 3 for i in unseen)  # only OOV buckets [V, V + oov)
    assert (e["num_tokens"], e["num_oov_tokens"]) == (4, 3)
    assert e["label_ids"] == []  # "fun" never seen in train


def test_no_oov_buckets_drops_unseen_words_instead_of_folding_them(runs):
    _, rows = runs["no_oov"]
    e = rows["e"]
    assert e["token_ids"] == [1]  # -1 never folds onto jam (id 2 = V - 1)
    assert (e["num_tokens"], e["num_oov_tokens"]) == (4, 3)


@pytest.mark.parametrize(("weighting", "expected"), [("count", [2.0, 1.0]), ("binary", [1.0, 1.0])])
def test_count_and_binary_weights(runs, weighting, expected):
    _, rows = runs[weighting]
    assert rows["a"]["token_ids"] == [1, 2]
    assert rows["a"]["token_weights"] == expected
    assert rows["c"]["token_ids"] == [0, 2]
    assert rows["c"]["token_weights"] == ([1.0, 2.0] if weighting == "count" else [1.0, 1.0])


def test_sublinear_tfidf_is_one_plus_log_count_times_idf(runs):
    _, rows = runs["sublinear"]
    a = rows["a"]  # pie x2 (id 1), jam (id 2), zebra -> an OOV bucket (df 0)
    weights = dict(zip(a["token_ids"], a["token_weights"], strict=True))
    assert sorted(weights)[:2] == [1, 2] and sorted(weights)[2] in (3, 4)
    np.testing.assert_allclose(weights[1], (1 + math.log(2)) * _idf(2), rtol=1e-6)
    np.testing.assert_allclose(weights[2], _idf(2), rtol=1e-6)
    np.testing.assert_allclose(weights[sorted(weights)[2]], _idf(0), rtol=1e-6)
    c = rows["c"]  # tea, jam x2: df tea 3, jam 2
    np.testing.assert_allclose(
        c["token_weights"], [_idf(3), (1 + math.log(2)) * _idf(2)], rtol=1e-6
    )
    # eval never moves the idf: "pie" keeps its train df of 2
    e = dict(zip(rows["e"]["token_ids"], rows["e"]["token_weights"], strict=True))
    np.testing.assert_allclose(e[1], _idf(2), rtol=1e-6)


def test_default_is_l2_normalised_sublinear_tfidf_without_oov_buckets(runs):
    output, rows = runs["default"]
    assert output.vocabulary_size_by_name(TOKENS_VOCAB) == 3
    a = rows["a"]
    assert a["token_ids"] == [1, 2]  # zebra dropped: no buckets
    raw = np.array([(1 + math.log(2)) * _idf(2), _idf(2)])
    np.testing.assert_allclose(a["token_weights"], raw / np.linalg.norm(raw), rtol=1e-6)
    assert rows["e"]["token_ids"] == [1] and rows["e"]["token_weights"] == [1.0]


@pytest.mark.parametrize(
    "kwargs",
    [{"top_k": 0}, {"frequency_threshold": -1}, {"num_oov_buckets": -2}, {"weighting": "bm25"}],
)
def test_transform_config_validation(kwargs):
    with pytest.raises(ValueError, match="Received"):
        TransformConfig(**kwargs)


def test_oov_noise_swaps_known_words_for_the_bucket_tft_hashes_them_to(tfidf_run):
    import tensorflow as tf

    from models.text.data import FEATURES, oov_bucket_ids, with_oov_noise

    output, rows = tfidf_run
    assert output.vocabulary_size_by_name(TOKENS_VOCAB) == 3  # so unseen words offset by 3 too
    unseen = [b"unseen", b"novel", b"gibberish"]
    got = {i for i in rows["e"]["token_ids"] if i != 1}  # tft's own buckets for them
    assert got == set(oov_bucket_ids(unseen, 3).tolist())
    buckets = oov_bucket_ids(output.vocabulary_by_name(TOKENS_VOCAB), 3)
    bow = tf.SparseTensor([[0, 0], [0, 2], [1, 4]], [0.5, 0.25, 1.0], [2, 6])
    dataset = tf.data.Dataset.from_tensors(({FEATURES: bow}, tf.zeros([2, 1])))
    swapped = next(iter(with_oov_noise(dataset, buckets, 1.0, seed=0)))[0][FEATURES]
    expected = sorted([(0, int(buckets[0]), 0.5), (0, int(buckets[2]), 0.25), (1, 4, 1.0)])
    rows_ids = swapped.indices.numpy().tolist()
    assert sorted(
        (r, c, v) for (r, c), v in zip(rows_ids, swapped.values.numpy().tolist(), strict=True)
    ) == (expected)  # a bucket id (4) is never moved again
    kept = next(iter(with_oov_noise(dataset, buckets, 0.0, seed=0)))[0][FEATURES]
    assert kept.indices.numpy().tolist() == [[0, 0], [0, 2], [1, 4]]


def test_document_frequency_file_lists_the_vocabulary_in_order(tfidf_run):
    output, _ = tfidf_run
    lines = output.vocabulary_by_name("tokens_df")
    assert lines == [b"3 tea", b"2 pie", b"2 jam"]  # "<videos> <term>", the ids' order


STEM_TRAIN = [
    _row("s1", "Running dogs", ["pets"]),
    _row("s2", "The dog runs", ["pets"]),
    _row("s3", "runners running", ["sport"]),
]


def test_stems_are_a_table_built_at_analysis_and_shipped_in_the_graph(tmp_path):
    import tensorflow as tf

    metadata = tft.DatasetMetadata.from_feature_spec(RAW_FEATURE_SPEC)
    config = TransformConfig(frequency_threshold=1, l2_normalize=False, weighting="count")
    fn = make_preprocessing_fn(config, TextConfig(stem=True, bigrams=False))
    context = tft_beam.Context(temp_dir=str(tmp_path / "tmp"))
    with beam.Pipeline(options=local_options()) as p, context:
        _, transform_fn = (
            p | beam.Create(STEM_TRAIN),
            metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "out"))
    output = tft.TFTransformOutput(str(tmp_path / "out"))
    # run: s1, s2, s3 (running x2, runs); dog: s1, s2; runner: s3
    assert output.vocabulary_by_name(TOKENS_VOCAB) == [b"run", b"dog", b"runner"]
    (stems,) = (tmp_path / "out" / "transform_fn" / "assets").glob("stems-*.tsv")
    assert stems.read_text().splitlines() == [
        "dogs\tdog", "runners\trunner", "running\trun", "runs\trun",
    ]  # fmt: skip
    raw = {
        "video_id": tf.constant(["x"]),
        "title": tf.constant(["RUNNING Runners jogging"]),  # "jogging": never analysed
        "description": tf.constant([""]),
        "tags": tf.constant(["dogs"]),
        "labels": tf.sparse.from_dense(tf.zeros([1, 0], tf.string)),
    }
    out = output.transform_features_layer()(raw)  # no Python stemmer on this path
    assert tf.sparse.to_dense(out["token_ids"]).numpy().tolist() == [[0, 1, 2]]
    assert tf.sparse.to_dense(out["token_weights"]).numpy().tolist() == [[1.0, 1.0, 1.0]]
    assert (out["num_tokens"].numpy()[0], out["num_oov_tokens"].numpy()[0]) == (4, 1)
