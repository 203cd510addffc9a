"""Tests for the synthetic large-label-space catalog (pipelines/tools/sample_labels.py).

Facts are re-derived from the written bytes (json.loads, the project's record parser
and text graph) and compared with what the generator claims in its manifest.
"""

from __future__ import annotations

import collections
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
from nltk.stem.snowball import SnowballStemmer

from pipelines import cli
from pipelines.tools.sample_catalog import write_sample_catalog
from pipelines.tools.sample_labels import (
    LabelCatalogManifest,
    default_videos,
    label_names,
    topic_words,
    write_label_catalog,
)
from pipelines.tools.sample_vocabulary import FILLER
from tests.helpers import latest_records

pytestmark = pytest.mark.slow  # writes 20,000-video catalogs

LABELS, VIDEOS, SEED = 1000, 20_000, 3
KEYS = ["video_id", "title", "description", "tags", "categories", "updated_at"]
STEM = SnowballStemmer("english").stem


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> tuple[Path, LabelCatalogManifest, list[dict]]:
    path = tmp_path_factory.mktemp("labels") / "catalog.jsonl"
    manifest = write_label_catalog(path, labels=LABELS, videos=VIDEOS, seed=SEED)
    return path, manifest, [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def words() -> list[tuple[str, ...]]:
    return topic_words(LABELS, seed=SEED)


def rank(name: str) -> int:
    """0-based Zipf rank of ``topic_<rank>``."""
    return int(name.removeprefix("topic_")) - 1


def text_words(record: dict) -> list[str]:
    return f"{record['title']} {record['description']} {' '.join(record['tags'])}".lower().split()


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path):
    def write(name: str, seed: int) -> bytes:
        write_label_catalog(tmp_path / name, labels=300, videos=3000, seed=seed)
        return (tmp_path / name).read_bytes()

    first = write("a.jsonl.gz", 5)
    assert first[4:8] == b"\0\0\0\0"  # gzip mtime
    assert write("b.jsonl.gz", 5) == first
    assert gzip.decompress(first) == write("c.jsonl", 5)
    other = gzip.decompress(write("d.jsonl.gz", 6))
    assert other != gzip.decompress(first)
    assert other.count(b"\n") == 3000


def test_manifest_matches_the_file(catalog, words):
    _, manifest, records = catalog
    assigned = [name for record in records for name in record["categories"]]
    assert manifest == LabelCatalogManifest(
        videos=VIDEOS,
        labels=LABELS,
        labels_used=len(set(assigned)),
        label_assignments=len(assigned),
        topic_words=sum(map(len, words)),
        zipf_s=1.0,
        seed=SEED,
    )
    assert manifest.labels == 1000
    assert 1.5 < manifest.label_assignments / VIDEOS < 1.6  # 0.55*1 + 0.35*2 + 0.10*3 = 1.55


def test_records_parse_as_the_sample_catalog_does(catalog):
    path, _, records = catalog
    assert all(list(record) == KEYS for record in records)
    assert [record["video_id"] for record in records] == [f"v{i:07d}" for i in range(VIDEOS)]
    stamp = re.compile(r"202[45]-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    assert all(stamp.fullmatch(record["updated_at"]) for record in records)
    canonical = latest_records(path)  # the reader preprocess uses, default schema
    assert len(canonical) == VIDEOS
    for record in records[:500]:
        parsed = canonical[record["video_id"]]
        assert parsed["categories"] == record["categories"]
        assert parsed["tags"] == record["tags"]


def test_label_names_are_padded_to_the_width_of_n():
    assert label_names(10_000)[41] == "topic_00042"
    assert label_names(100_000)[41] == "topic_000042"
    assert label_names(1000)[0] == "topic_0001"
    assert label_names(1000)[-1] == "topic_1000"
    assert len(set(label_names(1000))) == 1000


def test_each_video_has_one_to_three_distinct_valid_labels(catalog):
    _, _, records = catalog
    names = set(label_names(LABELS))
    sizes = collections.Counter(len(record["categories"]) for record in records)
    for record in records:
        categories = record["categories"]
        assert 1 <= len(categories) <= 3
        assert len(set(categories)) == len(categories)
        assert set(categories) <= names
        assert categories == sorted(categories)
    shares = [sizes[n] / VIDEOS for n in (1, 2, 3)]
    assert shares == pytest.approx([0.55, 0.35, 0.10], abs=0.015)


def test_label_frequencies_follow_zipf(catalog):
    _, _, records = catalog
    counts = np.zeros(LABELS)
    for record in records:
        counts[[rank(name) for name in record["categories"]]] += 1
    assert abs(counts[0] / counts[9] - 10) <= 2  # p(r) ~ 1/r: rank 1 is 10x rank 10
    top = np.arange(1, 201)
    slope = np.polyfit(np.log(top), np.log(np.maximum(counts[:200], 1)), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.1)
    assert counts[:10].sum() > counts[500:].sum()


def test_zipf_s_sets_the_skew(tmp_path):
    path = tmp_path / "flat.jsonl"
    write_label_catalog(path, labels=20, videos=6000, seed=1, zipf_s=0.0)
    counts = collections.Counter(
        name for line in path.read_text().splitlines() for name in json.loads(line)["categories"]
    )
    assert len(counts) == 20
    assert max(counts.values()) / min(counts.values()) < 1.3  # s = 0: uniform


def test_topic_words_are_unique_after_stemming(words):
    from transforms.text import load_stopwords

    assert len(words) == LABELS
    assert all(2 <= len(label_words) <= 3 for label_words in words)
    flat = [word for label_words in words for word in label_words]
    assert all(re.fullmatch(r"[a-z]{5,10}", word) for word in flat)
    assert len(set(flat)) == len(flat)  # each word belongs to exactly one label
    stems = [STEM(word) for word in flat]
    assert len(set(stems)) == len(stems)
    assert not set(stems) & {STEM(word) for word in FILLER}
    assert not set(flat) & load_stopwords()
    assert topic_words(LABELS, seed=SEED + 1) != words


def test_text_shows_some_words_of_each_label_among_filler(catalog, words):
    _, _, records = catalog
    owner = {word: i for i, label_words in enumerate(words) for word in label_words}
    pairs = all_shown = confused = 0
    for record in records:
        ranks = {rank(name) for name in record["categories"]}
        shown = set(text_words(record)) & owner.keys()
        for r in ranks:
            assert shown & set(words[r]), (record, words[r])
            pairs, all_shown = pairs + 1, all_shown + (shown >= set(words[r]))
        confused += any(owner[word] not in ranks for word in shown)
        body = f"{record['title']} {record['description']}".lower().split()
        assert 10 <= sum(word not in owner for word in body) <= 20
        assert set(record["tags"]) - owner.keys() <= set(FILLER)
    assert 0.2 < all_shown / pairs < 0.4  # 0.6**2 or 0.6**3 (or a rival's word): a subset
    assert 0.07 < confused / VIDEOS < 0.11  # one word of another label in ~10% of videos


def test_topic_words_come_out_of_the_text_graph(catalog, words):
    from transforms.text import TextConfig, text_tokens

    _, _, records = catalog
    filler = set(FILLER)
    for record in records[:12]:
        fields = [record["title"], record["description"], "|".join(record["tags"])]
        plain = text_tokens(fields, TextConfig(bigrams=False))
        stemmed = set(text_tokens(fields, TextConfig(stem=True, bigrams=False)))
        for name in record["categories"]:
            label_words = words[rank(name)]
            assert set(plain) & set(label_words)
            assert stemmed & {STEM(word) for word in label_words}
        assert set(plain) <= filler | {word for ws in words for word in ws}


def test_default_videos():
    assert [default_videos(n) for n in (3, 1000, 10_000, 100_000)] == [
        1000,
        20_000,
        200_000,
        200_000,
    ]
    with pytest.raises(ValueError, match="labels must be in"):
        write_label_catalog("unused.jsonl", labels=0)


def test_cli_writes_the_label_catalog(tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    assert cli.main(["sample", "--labels", "40", "--seed", "2", "--output", str(out)]) == 0
    manifest = write_label_catalog(tmp_path / "api.jsonl", labels=40, seed=2)
    assert out.read_bytes() == (tmp_path / "api.jsonl").read_bytes()
    assert manifest.videos == 1000 == out.read_bytes().count(b"\n")
    assert capsys.readouterr().out == f"wrote 1000 lines to {out}: {manifest.to_dict()}\n"
    with pytest.raises(SystemExit):
        cli.main(["sample", "--labels", "-1", "--output", str(out)])


def test_cli_without_labels_writes_the_sample_catalog(tmp_path):
    out = tmp_path / "sample.jsonl"
    assert cli.main(["sample", "--output", str(out)]) == 0
    write_sample_catalog(tmp_path / "api.jsonl")  # 3000 videos, seed 0
    assert out.read_bytes() == (tmp_path / "api.jsonl").read_bytes()
