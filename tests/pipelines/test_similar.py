"""``catalog-tagger similar``: the embeddings format, approximate and exact neighbours
checked against a brute-force numpy computation, ``--video-ids``, duplicates, label
neighbours and the one-line errors.

The helpers (``write_parquet``, ``read_parquet``, ``run_similar``,
``brute_force``, ``recall``) take any embeddings, so a test on real predict
``--embeddings`` output only has to point ``run_similar`` at it.
"""

from __future__ import annotations

import json
import pathlib

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipelines import cli, similar
from pipelines.cli import profile_args
from pipelines.components.embeddings import (
    EMBEDDINGS_DIR,
    ReadEmbeddings,
    WriteEmbeddings,
    to_table,
)
from pipelines.components.neighbours import EXACT_BELOW, IndexSettings, sample_rows
from tests.helpers import local_options
from transforms.errors import JobError

pytestmark = pytest.mark.slow  # runs the similar job on Beam

K = 10


def clustered(n: int = 3000, clusters: int = 30, dim: int = 64, seed: int = 0):
    """``(ids, matrix)``: ``n`` vectors around ``clusters`` random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    matrix = centres[rng.integers(clusters, size=n)] + 1.5 * rng.normal(size=(n, dim))
    return [f"vid-{i:05d}" for i in range(n)], matrix.astype(np.float32)


def write_parquet(directory: pathlib.Path, ids, matrix, name: str = "part-00000.parquet"):
    """The embeddings as one Parquet file, in a predict output's layout."""
    (directory / EMBEDDINGS_DIR).mkdir(parents=True, exist_ok=True)
    pq.write_table(to_table(list(zip(ids, matrix, strict=True))), directory / EMBEDDINGS_DIR / name)
    return directory


def read_parquet(directory: pathlib.Path):
    """``(ids, matrix)`` read back with pyarrow and numpy alone (as a user would)."""
    table = pq.read_table(directory / EMBEDDINGS_DIR)
    matrix = np.stack(table["embedding"].to_numpy(zero_copy_only=False)).astype(np.float32)
    return table["video_id"].to_pylist(), matrix


def run_similar(embeddings, out: pathlib.Path, *flags: str):
    """``(report, {video_id: [(other, score), ...]})`` of one run."""
    args = ["--embeddings", str(embeddings), "--output-dir", str(out), *flags]
    report = similar.run(profile_args("local") + args)
    rows = {}
    for path in sorted((out / similar.SIMILAR_DIR).glob("part-*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            assert row["video_id"] not in rows
            rows[row["video_id"]] = [(n["video_id"], n["score"]) for n in row["similar"]]
    return report, rows


def brute_force(ids, matrix, k: int = K) -> dict:
    """Each id's k most cosine-similar other ids, by numpy."""
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    scores = unit @ unit.T
    np.fill_diagonal(scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return {
        ids[i]: [(ids[j], float(scores[i, j])) for j in order[i]] for i in range(len(ids))
    }  # fmt: skip


def assert_same_neighbours(found: list, expected: list, atol: float = 1e-5) -> None:
    """Same scores (float32 against float64), and the same ids but where two scores
    tie within float error."""
    assert len(found) == len(expected)
    np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], atol=atol)
    for (other, score), (wanted, wanted_score) in zip(found, expected, strict=True):
        assert other == wanted or abs(score - wanted_score) <= atol, (found, expected)


def recall(rows: dict, truth: dict, only=None) -> float:
    queries = list(rows) if only is None else only
    shares = [
        len({o for o, _ in rows[q]} & {o for o, _ in truth[q]}) / len(truth[q]) for q in queries
    ]
    return float(np.mean(shares))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    ids, matrix = clustered()
    return ids, matrix, write_parquet(tmp_path_factory.mktemp("predict"), ids, matrix)


@pytest.fixture(scope="module")
def truth(catalog):
    ids, matrix, _ = catalog
    return brute_force(ids, matrix)


@pytest.fixture(scope="module")
def approximate(catalog, tmp_path_factory):
    out = tmp_path_factory.mktemp("hnsw")  # efSearch 16: visibly approximate on 3,000 vectors
    return run_similar(catalog[2], out, "--index", "hnsw", "--ef-search", "16")


@pytest.fixture(scope="module")
def exact(catalog, tmp_path_factory):
    return run_similar(catalog[2], tmp_path_factory.mktemp("exact"), "--exact")


def test_parquet_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    pairs = [(f"vidéo-{i}", rng.normal(size=16).astype(np.float32)) for i in range(600)]
    with beam.Pipeline(options=local_options()) as p:
        _ = p | beam.Create(pairs) | WriteEmbeddings(str(tmp_path))
    expected = [(video_id, tuple(vector.tolist())) for video_id, vector in pairs]
    with beam.Pipeline(options=local_options()) as p:
        back = (
            p | ReadEmbeddings(str(tmp_path)) | beam.MapTuple(lambda i, v: (i, tuple(v.tolist())))
        )
        assert_that(back, equal_to(expected))
    files = sorted((tmp_path / EMBEDDINGS_DIR).glob("part-*.parquet"))
    assert files and str(pq.read_schema(files[0])) == (
        "video_id: string not null\nembedding: list<element: float> not null\n"
        "  child 0, element: float"
    )
    ids, matrix = read_parquet(tmp_path)
    assert sorted(zip(ids, map(tuple, matrix.tolist()), strict=True)) == sorted(expected)


def test_approximate_recall_reaches_the_reported_figure(approximate, truth):
    report, rows = approximate
    stated = report["index"]["recall"]
    assert report["index"]["kind"] == "hnsw" and report["index"]["ef_search"] == 16
    assert stated["queries"] == 1000 and stated["value"] < 1.0
    measured = recall(rows, truth)
    assert measured >= stated["lower_bound"] and measured >= 0.9, (measured, stated)
    # the report's figure is exactly the recall of the rows on its documented sample
    ids = sorted(truth)
    sample = [ids[r] for r in sample_rows(ids, 1000)]
    assert recall(rows, truth, sample) == pytest.approx(stated["value"], abs=1e-4)


def test_exact_neighbours_equal_brute_force(exact, truth):
    report, rows = exact
    assert report["index"]["kind"] == "flat" and report["index"]["recall"]["exact"] is True
    assert rows.keys() == truth.keys()
    for video_id, found in rows.items():
        assert_same_neighbours(found, truth[video_id])


@pytest.mark.parametrize("run", ["approximate", "exact"])
def test_one_row_a_video_k_neighbours_never_itself(run, request, truth):
    report, rows = request.getfixturevalue(run)
    records = report["records"]
    assert records["rows"] == records["queries"] == records["videos"] == len(rows) == len(truth)
    assert records["balanced"] is True and records["duplicates_removed"] == 0
    for video_id, found in rows.items():
        assert len(found) == K and video_id not in {o for o, _ in found}
        assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)


def test_video_ids_restrict_the_rows(catalog, truth, tmp_path):
    wanted = catalog[0][::120]
    lines = [*wanted, "", f"  {wanted[0]}  ", "no-such-video", "another-unknown"]
    (tmp_path / "ids.txt").write_text("\n".join(lines) + "\n")
    report, rows = run_similar(
        catalog[2],
        tmp_path / "out",
        "--exact",
        "--video-ids",
        str(tmp_path / "ids.txt"),
        "--k",
        "3",
    )
    assert sorted(rows) == sorted(wanted)
    assert report["records"]["queries"] == report["records"]["rows"] == len(wanted)
    assert report["records"]["ids_without_embedding"] == 2
    for video_id, found in rows.items():  # every video is still a candidate
        assert_same_neighbours(found, truth[video_id][:3])


def test_an_id_found_twice_keeps_the_row_of_the_later_file(tmp_path):
    ids, matrix = clustered(n=40, clusters=4, dim=8, seed=3)
    write_parquet(tmp_path / "run-1", ids, matrix)
    write_parquet(tmp_path / "run-2", ids[:10], -matrix[:10])
    report, rows = run_similar(
        f"{tmp_path}/run-*/embeddings/*.parquet", tmp_path / "out", "--k", "3"
    )
    assert report["records"]["balanced"] is True
    assert (report["records"]["in"], report["records"]["duplicates_removed"]) == (50, 10)
    kept = {**dict(zip(ids, matrix, strict=True)), **dict(zip(ids[:10], -matrix[:10], strict=True))}
    truth = brute_force(list(kept), np.stack(list(kept.values())), 3)
    assert rows.keys() == truth.keys()
    for video_id, found in rows.items():
        assert_same_neighbours(found, truth[video_id])


def test_index_kind_auto_is_exact_below_the_threshold():
    assert IndexSettings().resolved(EXACT_BELOW - 1) == "flat"
    assert IndexSettings().resolved(EXACT_BELOW) == "hnsw"
    assert IndexSettings(kind="hnsw").resolved(10) == "hnsw"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--k", "0"], "--k must be at least 1, not 0"),
        (["--exact", "--index", "hnsw"], "--exact and --index hnsw exclude each other"),
        (["--labels"], "--labels needs --model-dir"),
    ],
)
def test_bad_flags_are_one_line_errors(catalog, tmp_path, capsys, flags, message):
    argv = ["similar", "--embeddings", str(catalog[2]), "--output-dir", str(tmp_path), *flags]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == f"catalog-tagger: error: {message}"


def test_missing_embeddings_are_a_one_line_error(tmp_path):
    with pytest.raises(JobError, match=r"^no input file matches .*\*\.parquet'$"):
        run_similar(tmp_path / "nowhere", tmp_path / "out")


def test_a_dimension_mismatch_refuses_to_publish(tmp_path):
    write_parquet(tmp_path / "in", ["a", "b", "c"], np.ones((3, 8), np.float32), "part-1.parquet")
    write_parquet(tmp_path / "in", ["d", "e"], np.ones((2, 16), np.float32), "part-2.parquet")
    with pytest.raises(JobError) as raised:
        run_similar(tmp_path / "in", tmp_path / "out")
    assert str(raised.value) == (
        "refusing to publish: dimension mismatch: 3 embeddings have 8 values (e.g. 'a'), "
        "2 embeddings have 16 values (e.g. 'd')"
    )
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def _label_model(model_dir: pathlib.Path, labels, matrix, signature: bool = True) -> None:
    import tensorflow as tf

    class Table(tf.Module):
        def __init__(self):
            super().__init__()
            self.labels = tf.constant(labels)
            self.embeddings = tf.Variable(matrix)

        @tf.function(input_signature=[])
        def label_embeddings(self):
            return {"labels": self.labels, "embeddings": self.embeddings}

    table = Table()
    signatures = {"label_embeddings": table.label_embeddings} if signature else {}
    tf.saved_model.save(table, str(model_dir / "saved_model"), signatures=signatures)


def test_label_neighbours(tmp_path):
    labels, matrix = clustered(n=40, clusters=5, dim=12, seed=5)
    labels = [f"label {i}" for i in range(len(labels))]
    _label_model(tmp_path / "model", labels, matrix)
    out = tmp_path / "out"
    report = similar.run(["--model-dir", str(tmp_path / "model"), "--labels", "--output-dir",
                          str(out), "--k", "4"])  # fmt: skip
    assert report["records"] == {"labels": 40, "rows": 40} and (out / "_SUCCESS").exists()
    rows = [json.loads(line) for line in (out / "labels" / "part-00000-of-00001.jsonl").open()]
    truth = brute_force(labels, matrix, 4)
    assert sorted(row["label"] for row in rows) == sorted(labels)
    for row in rows:
        found = [(n["label"], n["score"]) for n in row["similar"]]
        assert_same_neighbours(found, truth[row["label"]])
    _label_model(tmp_path / "plain", labels, matrix, signature=False)
    with pytest.raises(JobError, match="has no label_embeddings signature$"):
        similar.run(["--model-dir", str(tmp_path / "plain"), "--labels", "--output-dir", str(out)])
