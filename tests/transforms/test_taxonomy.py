"""Taxonomy roll-up: exact max / noisy-OR numbers, both file layouts, errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from transforms.taxonomy import (
    METHODS,
    Taxonomy,
    read_rollup,
    rollup_labels,
    rollup_listed,
    rollup_names,
    rollup_scores,
)

FINE = ("cat", "dog", "car", "truck", "rock")
# "dog" is in two categories, "truck" alone makes up "Trucks", "rock" is unmapped.
PAIRS = [("cat", "Pets"), ("dog", "Pets"), ("dog", "Autos"), ("car", "Autos"), ("truck", "Trucks")]


@pytest.fixture()
def tax() -> Taxonomy:
    return Taxonomy.from_pairs(FINE, PAIRS)


def test_structure(tax):
    assert tax.fine == FINE
    assert tax.categories == ("Autos", "Pets", "Trucks")
    assert tax.members == ((1, 2), (0, 1), (3,))
    assert tax.unmapped == 1
    assert tax.unknown_labels == 0
    assert tax.matrix.shape == (5, 3)
    assert tax.matrix[1].tolist() == [True, True, False]
    assert not tax.matrix[4].any()


def test_rollup_scores_exact(tax):
    scores = np.array(
        [
            [0.5, 0.2, 0.0, 0.7, 0.9],  # Pets: 0.5 / 0.6; Autos: 0.2 / 0.2
            [0.0, 0.5, 0.5, 0.0, 0.0],  # Autos: 0.5 / 0.75; Pets: 0.5 / 0.5
        ],
        dtype=np.float64,
    )
    np.testing.assert_allclose(
        rollup_scores(scores, tax, "max"), [[0.2, 0.5, 0.7], [0.5, 0.5, 0.0]]
    )
    np.testing.assert_allclose(
        rollup_scores(scores, tax, "noisy_or"), [[0.2, 0.6, 0.7], [0.75, 0.5, 0.0]]
    )
    # A one-member category equals its member, whatever the method.
    for method in METHODS:
        out = rollup_scores(scores, tax, method)
        np.testing.assert_array_equal(out[:, 2], scores[:, 3])


def test_rollup_scores_dtype_and_empty_category():
    tax = Taxonomy(("a", "b"), ("A", "Empty"), ((0, 1), ()))
    out = rollup_scores(np.array([[0.25, 0.5]], dtype=np.float32), tax, "noisy_or")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.625, 0.0]])
    assert rollup_scores(np.zeros((0, 2)), tax).shape == (0, 2)


def test_rollup_labels(tax):
    labels = np.array([[0, 1, 0, 0, 0], [0, 0, 0, 0, 1], [1, 0, 1, 1, 0]], dtype=np.int64)
    out = rollup_labels(labels, tax)
    assert out.dtype == np.int64
    assert out.tolist() == [[1, 1, 0], [0, 0, 0], [1, 1, 1]]


@pytest.mark.parametrize("method", METHODS)
def test_rollup_listed_matches_dense(tax, method):
    scores = np.array([[0.5, 0.2, 0.1, 0.7, 0.9]])
    dense = dict(zip(tax.categories, rollup_scores(scores, tax, method)[0], strict=True))
    listed = rollup_listed(list(zip(FINE, scores[0], strict=True)), tax, method)
    assert [name for name, _ in listed] == sorted(dense, key=lambda c: (-dense[c], c))
    for name, score in listed:
        assert score == pytest.approx(dense[name])


def test_rollup_listed_partial_and_ties(tax):
    listed = [("dog", 0.4), ("unknown", 0.99), ("rock", 0.9), ("cat", 0.1), ("dog", 0.2)]
    # dog keeps 0.4; Autos and Pets tie at 0.4 under max, so they sort by name.
    assert rollup_listed(listed, tax, "max") == [("Autos", 0.4), ("Pets", 0.4)]
    noisy = rollup_listed(listed, tax, "noisy_or")
    assert [name for name, _ in noisy] == ["Pets", "Autos"]
    assert noisy[0][1] == pytest.approx(1 - 0.6 * 0.9)
    assert noisy[1][1] == pytest.approx(0.4)
    assert rollup_listed([], tax) == []


def test_rollup_names(tax):
    assert rollup_names(["truck", "dog", "rock", "nope"], tax) == ["Autos", "Pets", "Trucks"]
    assert rollup_names(["rock"], tax) == []


def test_from_pairs_unknown_duplicates_and_blanks():
    tax = Taxonomy.from_pairs(
        ["x", "y", "x", ""], [("x", "X"), ("zz", "X"), ("qq", "Q"), ("zz", "Z"), ("", "B")]
    )
    assert tax.categories == ("X",)
    assert tax.members == ((0, 2),)  # both classes named "x"
    assert tax.unknown_labels == 2
    assert tax.unmapped == 2  # "y" and the blank label
    # Surrounding whitespace is ignored on both sides; lookups use the model's names.
    spaced = Taxonomy.from_pairs([" Nova", "x"], [("Nova ", " Science ")])
    assert (spaced.categories, spaced.members) == (("Science",), ((0,),))
    assert rollup_names([" Nova"], spaced) == ["Science"]


def test_errors(tax):
    with pytest.raises(ValueError, match="Received: method='mean'"):
        rollup_scores(np.zeros((1, 5)), tax, "mean")
    with pytest.raises(ValueError, match="Received: method='mean'"):
        rollup_listed([], tax, "mean")
    with pytest.raises(ValueError, match=r"Received: shape=\(2, 4\)"):
        rollup_scores(np.zeros((2, 4)), tax)
    with pytest.raises(ValueError, match=r"Received: shape=\(5,\)"):
        rollup_labels(np.zeros(5), tax)
    with pytest.raises(ValueError, match="Empty category name"):
        Taxonomy.from_pairs(FINE, [("cat", " ")])
    with pytest.raises(ValueError, match="maps none"):
        Taxonomy.from_pairs(FINE, [("lion", "Pets")])


def _write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return str(path)


def test_read_vocabulary_layout(tmp_path):
    header = ["Index", "Name", "Vertical1", "Vertical2", "Vertical3", "WikiDescription"]
    path = _write(
        tmp_path / "vocabulary.csv",
        [
            header,
            ["0", "cat", "Pets", "", "", 'A small, "domestic" cat.\nSecond line, too.'],
            ["1", "dog", "Pets", "Autos", "", "Dogs, wolves, etc."],
            ["2", "car", "Autos", "", "", ""],
            ["3", "", "Trucks", "", "", "A blank name is class_3, as the reader names it."],
            ["4", "lion", "Wild", "", "", "Not a model label."],
        ],
    )
    tax = read_rollup(path, FINE)
    assert tax.categories == ("Autos", "Pets")
    assert tax.members == ((2,), (0, 1))
    assert (tax.unknown_labels, tax.unmapped) == (2, 2)  # lion and class_3
    assert read_rollup(path, [*FINE, "class_3"]).categories_by_label["class_3"] == ("Trucks",)
    both = read_rollup(path, FINE, column="Vertical1, Vertical2")
    assert both.members == ((1, 2), (0, 1))
    with pytest.raises(ValueError, match="lacks column"):
        read_rollup(path, FINE, column="Vertical9")


def test_read_pairs_layout_and_opener(tmp_path):
    path = _write(
        tmp_path / "rollup.csv",
        [
            ["label", "category"],
            ["dog", "Pets"],
            ["dog", "Autos, Vehicles"],
            [],
            ["car", "Autos, Vehicles"],
        ],
    )
    opened = []

    def opener(name, mode):
        opened.append((name, mode))
        return open(name, mode)

    tax = read_rollup(path, FINE, opener=opener)
    assert opened == [(path, "rb")]
    assert tax.categories == ("Autos, Vehicles", "Pets")
    assert tax.members == ((1, 2), (1,))
    assert tax.unmapped == 3


def test_read_errors(tmp_path):
    bad = _write(tmp_path / "bad.csv", [["label", "group"], ["dog", "Pets"]])
    with pytest.raises(ValueError, match=r"needs columns .*Received: header \['label', 'group'\]"):
        read_rollup(bad, FINE)
    empty = _write(tmp_path / "empty.csv", [["label", "category"], ["dog", "Pets"], ["car", ""]])
    with pytest.raises(ValueError, match="Empty category name .* line 3"):
        read_rollup(empty, FINE)
    none = _write(tmp_path / "none.csv", [["label", "category"], ["lion", "Wild"]])
    with pytest.raises(ValueError, match="maps none of the model's 5 labels"):
        read_rollup(none, FINE)


def test_real_yt8m_vocabulary(shared_data):
    path = shared_data / "yt8m" / "vocabulary.csv"
    if not path.exists():
        pytest.skip(f"{path} is not present")
    from models.av.vocabulary import read_vocabulary

    names = list(read_vocabulary(str(path)).names)  # blank names become class_<Index>
    assert len(names) == 3862
    tax = read_rollup(str(path), names)
    assert len(tax.categories) == 25
    assert {"Games", "Arts & Entertainment", "Autos & Vehicles", "(Unknown)"} <= set(tax.categories)
    assert tax.categories_by_label["Game"] == ("Games",)
    assert 0 in tax.members[tax.categories.index("Games")]
    assert tax.categories_by_label["Nova"] == ("Autos & Vehicles",)
    # The 56 classes with a blank Name match as class_<Index>; class 3084 is named
    # " Nova" in the file; the reader strips it to "Nova", which the roll-up matches.
    assert (tax.unknown_labels, tax.unmapped) == (0, 0)
    assert tax.categories_by_label["class_120"]
    wide = read_rollup(str(path), names, column="Vertical1,Vertical2,Vertical3")
    assert wide.categories == tax.categories
    assert sum(map(len, wide.members)) > sum(map(len, tax.members))
