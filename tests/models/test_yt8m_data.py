"""YouTube-8M readers: quantization, parsing, record errors, splits, generators, real shards."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.av import data as y8
from models.av import records as y8_records
from models.av import vocabulary as y8_vocabulary
from models.priors import label_prior
from transforms.records import RecordError
from transforms.splits import SplitConfig, hash_split

STEP = 4 / 255


def _feature(kind: str, values) -> tf.train.Feature:
    if kind == "bytes":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if kind == "int":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _video(video_id=b"ab12", labels=(3, 1), rgb=None, audio=None, drop=()) -> bytes:
    """A hand-built video-level Example (not through the module's own builders)."""
    feature = {
        "id": _feature("bytes", [video_id]),
        "labels": _feature("int", list(labels)),
        "mean_rgb": _feature("float", np.arange(1024) / 1024 if rgb is None else rgb),
        "mean_audio": _feature("float", -np.arange(128) / 128 if audio is None else audio),
    }
    for name in drop:
        del feature[name]
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _frames(n: int, size: int, offset: int = 0) -> list[bytes]:
    return [bytes([(offset + i + j) % 256 for j in range(size)]) for i in range(n)]


def _sequence(video_id=b"seq1", labels=(2,), rgb=None, audio=None) -> bytes:
    """A hand-built frame-level SequenceExample; ``rgb``/``audio`` are lists of frame bytes."""
    example = tf.train.SequenceExample()
    example.context.feature["id"].CopyFrom(_feature("bytes", [video_id]))
    example.context.feature["labels"].CopyFrom(_feature("int", list(labels)))
    for name, frames in (("rgb", rgb), ("audio", audio)):
        for frame in frames if frames is not None else []:
            example.feature_lists.feature_list[name].feature.add().bytes_list.value.append(frame)
    return example.SerializeToString()


def _codes(frames: list[bytes], size: int) -> np.ndarray:
    return np.frombuffer(b"".join(frames), np.uint8).reshape(-1, size)


# Quantization ---------------------------------------------------------------


def test_dequantize_known_values_and_types():
    assert y8.dequantize(0) == -2 + 4 / 512 == -1.9921875
    assert y8.dequantize(255) == pytest.approx(2 + 4 / 512)
    assert y8.dequantize(128) == pytest.approx(128 * STEP - 2 + 4 / 512)
    assert y8.dequantize(0, 1.0, -1.0) == -1 + 2 / 512
    codes = np.array([0, 1, 255], np.uint8)  # uint8 arithmetic would overflow
    np.testing.assert_allclose(y8.dequantize(codes), [-1.9921875, -1.9921875 + STEP, 2.0078125])
    assert y8.dequantize(codes).dtype == np.float32
    tensor = y8.dequantize(tf.constant(codes))
    assert tensor.dtype == tf.float32
    np.testing.assert_allclose(tensor.numpy(), y8.dequantize(codes))


def test_quantize_inverts_dequantize():
    codes = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(y8.quantize(y8.dequantize(codes)), codes)
    x = np.linspace(-2.0, 2.0, 4001)
    assert np.abs(y8.dequantize(y8.quantize(x)) - x).max() <= STEP
    np.testing.assert_array_equal(y8.quantize([-9.0, 9.0, np.float32(-2.0)]), [0, 255, 0])
    assert y8.quantize(x).dtype == np.uint8


# Vocabulary -----------------------------------------------------------------


def test_read_vocabulary_fills_gaps_and_disambiguates(tmp_path):
    path = tmp_path / "vocabulary.csv"
    path.write_text(
        "Index,TrainVideoCount,Name,Vertical1\n"
        "0,10,Game,Games\n"
        "2,5,Car,Autos & Vehicles\n"
        '3,4,"Car, red",\n'
        "4,3,,Food\n"
        "5,2,Car,Autos & Vehicles\n"
        "6,1,Car (2),Other\n"
    )
    vocab = y8_vocabulary.read_vocabulary(str(path))
    assert vocab.names == (
        "Game", "class_1", "Car (2)", "Car, red", "class_4", "Car (5)", "Car (2) (6)",
    )  # fmt: skip
    assert vocab.verticals == (
        "Games",
        "",
        "Autos & Vehicles",
        "",
        "Food",
        "Autos & Vehicles",
        "Other",
    )
    assert vocab.num_classes == 7
    assert len(set(vocab.names)) == 7


def test_read_vocabulary_rejects_other_files(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("id,title\n1,x\n")
    with pytest.raises(ValueError, match=r"no column\(s\) \['Index', 'Name'\]"):
        y8_vocabulary.read_vocabulary(str(path))
    path.write_text("Index,Name\nx,Game\n")
    with pytest.raises(ValueError, match="bad Index 'x'"):
        y8_vocabulary.read_vocabulary(str(path))


# Graph parsing --------------------------------------------------------------


def test_parse_video_level_exact_arrays_and_multi_hot():
    rgb = np.linspace(-1, 1, 1024, dtype=np.float32)
    batch = [
        _video(b"v1", (3, 1, 1), rgb=rgb),  # repeated label counts once
        _video(b"v2", (0, 5, 4, -1)),  # 5 and -1 are out of range: masked out
        _video(b"v3", ()),
    ]
    features, labels = y8.parse_video_level(tf.constant(batch), num_classes=5)
    assert features["video_id"].numpy().tolist() == [b"v1", b"v2", b"v3"]
    np.testing.assert_array_equal(features["mean_rgb"][0].numpy(), rgb)
    np.testing.assert_array_equal(
        features["mean_audio"][1].numpy(), (-np.arange(128) / 128).astype(np.float32)
    )
    assert features["mean_rgb"].shape == (3, 1024) and features["mean_audio"].shape == (3, 128)
    np.testing.assert_array_equal(
        labels.numpy(), [[0, 1, 0, 1, 0], [1, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    )
    assert labels.dtype == tf.float32


def test_parse_frame_level_truncates_pads_and_masks():
    rgb3, audio3 = _frames(3, 1024), _frames(3, 128, offset=7)
    batch = tf.constant(
        [
            _sequence(b"three", (1, 9), rgb3, audio3),
            _sequence(b"empty", (0,)),
            _sequence(b"uneven", (), _frames(2, 1024), _frames(1, 128)),
        ]
    )
    features, labels = y8.parse_frame_level(batch, num_classes=3, max_frames=2)
    assert features["num_frames"].numpy().tolist() == [2, 0, 1]
    assert features["rgb"].shape == (3, 2, 1024) and features["audio"].shape == (3, 2, 128)
    np.testing.assert_array_equal(features["rgb"][0].numpy(), y8.dequantize(_codes(rgb3[:2], 1024)))
    np.testing.assert_array_equal(
        features["audio"][0].numpy(), y8.dequantize(_codes(audio3[:2], 128))
    )
    assert not features["rgb"][1].numpy().any()
    # num_frames is the shorter feature list (as YT-8M's reader); the rest is zeroed
    np.testing.assert_array_equal(
        features["rgb"][2, 0].numpy(), y8.dequantize(_codes(_frames(1, 1024), 1024))[0]
    )
    assert not features["rgb"][2, 1].numpy().any()
    np.testing.assert_array_equal(labels.numpy(), [[0, 1, 0], [1, 0, 0], [0, 0, 0]])

    padded, _ = y8.parse_frame_level(batch[:1], num_classes=3, max_frames=5)
    assert padded["num_frames"].numpy().tolist() == [3]
    np.testing.assert_array_equal(padded["rgb"][0, :3].numpy(), y8.dequantize(_codes(rgb3, 1024)))
    assert padded["rgb"].shape == (1, 5, 1024) and not padded["rgb"][0, 3:].numpy().any()


def test_parse_frame_level_fails_on_a_short_frame():
    bad = _sequence(rgb=[b"\x00" * 1023], audio=_frames(1, 128))
    with pytest.raises(tf.errors.InvalidArgumentError, match="rgb frame is not 1024 bytes"):
        y8.parse_frame_level(tf.constant([bad]), num_classes=3)


# Python decoding ------------------------------------------------------------


def test_decode_video_example_values():
    record = y8_records.decode_video_example(_video(b"ab12", (7, 2)))
    assert record["video_id"] == "ab12" and record["labels"] == [7, 2]
    np.testing.assert_array_equal(record["mean_rgb"], (np.arange(1024) / 1024).astype(np.float32))
    assert record["mean_rgb"].dtype == np.float32 and record["mean_audio"].shape == (128,)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xff\xff", "malformed_example"),
        (_video(drop=("id",)), "missing_video_id"),
        (_video(video_id=b""), "missing_video_id"),
        (_video(video_id=b"  "), "missing_video_id"),
        (_video(video_id=b"\xff\xfe"), "bad_utf8"),
        (_video(rgb=np.zeros(1023)), "bad_feature_size"),
        (_video(audio=np.zeros(129)), "bad_feature_size"),
        (_video(drop=("mean_audio",)), "missing_feature"),
        (_video(rgb=[np.nan] + [0.0] * 1023), "non_finite"),
        (_video(audio=[0.0] * 127 + [np.inf]), "non_finite"),
    ],
    ids=lambda value: value if isinstance(value, str) else "example",  # bytes vary by run
)
def test_decode_video_example_errors(data, reason):
    with pytest.raises(RecordError) as err:
        y8_records.decode_video_example(data)
    assert err.value.reason == reason


def test_decode_frame_example_values():
    rgb3, audio3 = _frames(3, 1024, offset=3), _frames(3, 128)
    record = y8_records.decode_frame_example(_sequence(b"seq1", (4,), rgb3, audio3), max_frames=2)
    assert record["video_id"] == "seq1" and record["labels"] == [4]
    assert record["num_frames"] == 2
    np.testing.assert_array_equal(record["rgb"], y8.dequantize(_codes(rgb3[:2], 1024)))
    np.testing.assert_array_equal(record["audio"], y8.dequantize(_codes(audio3[:2], 128)))
    assert record["rgb"].dtype == np.float32

    empty = y8_records.decode_frame_example(_sequence(b"none"))
    assert empty["num_frames"] == 0
    assert empty["rgb"].shape == (0, 1024) and empty["audio"].shape == (0, 128)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xff\xff", "malformed_example"),
        (_sequence(video_id=b""), "missing_video_id"),
        (_sequence(video_id=b"\xc3\x28"), "bad_utf8"),
        (_sequence(rgb=[b"\x00" * 1023], audio=_frames(1, 128)), "bad_frame_size"),
        (_sequence(rgb=_frames(1, 1024), audio=[b"\x00" * 129]), "bad_frame_size"),
        (_sequence(rgb=_frames(2, 1024), audio=_frames(1, 128)), "frame_count_mismatch"),
        (_sequence(rgb=_frames(1, 1024)), "frame_count_mismatch"),
    ],
    ids=lambda value: value if isinstance(value, str) else "example",  # bytes vary by run
)
def test_decode_frame_example_errors(data, reason):
    with pytest.raises(RecordError) as err:
        y8_records.decode_frame_example(data)
    assert err.value.reason == reason


# Splits ---------------------------------------------------------------------


def test_split_of_is_pinned_and_matches_transforms_splits():
    pinned = {"02aa": "train", "abcd": "eval", "LmN0": "test", "7777": "test", "zz9Q": "train"}
    assert {vid: y8.split_of(vid) for vid in pinned} == pinned
    salted = SplitConfig(salt="2026")
    assert [y8.split_of(v, salted) for v in ("0Aaa", "abcd", "s0v00001")] == [
        "test",
        "train",
        "eval",
    ]
    for vid in [*pinned, "x1", "ünï"]:
        assert y8.split_of(vid) == hash_split(vid)
        assert y8.split_of(vid, salted) == hash_split(vid, salted)


def _ids(dataset) -> list[str]:
    return [v.decode() for features, _ in dataset for v in features["video_id"].numpy()]


@pytest.mark.slow
def test_dataset_split_filter_matches_split_of(tmp_path):
    path = str(tmp_path / "videos.tfrecord")
    y8_records.write_video_level_sample(path, 300, num_classes=6, seed=3)
    everything = _ids(y8.video_level_dataset([path], 6, batch_size=64))
    assert len(everything) == 300
    config = SplitConfig(60, 20, 20, salt="s")
    by_split = {
        split: _ids(y8.video_level_dataset(path, 6, 64, split=split, split_config=config))
        for split in ("train", "eval", "test")
    }
    for split, ids in by_split.items():
        assert ids == [v for v in everything if y8.split_of(v, config) == split]
    assert sum(map(len, by_split.values())) == 300 and min(map(len, by_split.values())) > 30
    with pytest.raises(ValueError, match="split must be one of"):
        y8.video_level_dataset([path], 6, 64, split="validation")


@pytest.mark.slow
def test_labels_dataset_counts_the_same_labels_without_features(tmp_path):
    video, frames = str(tmp_path / "v.tfrecord"), str(tmp_path / "f.tfrecord")
    y8_records.write_video_level_sample(video, 120, num_classes=6, seed=2)
    manifest = y8_records.write_frame_level_sample(frames, 30, 6, seed=3, max_frames=3)
    config = SplitConfig(60, 20, 20, salt="s")
    full = y8.video_level_dataset(video, 6, 32, split="train", split_config=config)
    cheap = y8.labels_dataset(video, 6, 25, split="train", split_config=config)
    assert set(next(iter(cheap))[0]) == {"video_id"}  # no features parsed
    for (f, y), (g, z) in zip(full.unbatch(), cheap.unbatch(), strict=True):
        assert f["video_id"].numpy() == g["video_id"].numpy()
        np.testing.assert_array_equal(y.numpy(), z.numpy())
    counts = sum(y.numpy().sum(axis=0) for _, y in y8.labels_dataset(frames, 6, frame_level=True))
    assert counts.tolist() == manifest["label_counts"]
    prior = label_prior(y8.labels_dataset(video, 6, split="train", split_config=config), 6)
    train = np.concatenate([y.numpy() for _, y in full])
    np.testing.assert_allclose(prior, np.clip(train.mean(axis=0), 1e-6, 1 - 1e-6))


# Generators -----------------------------------------------------------------


def test_generators_are_byte_for_byte_deterministic(tmp_path):
    def write(kind: str, name: str, seed: int) -> bytes:
        path = str(tmp_path / name)
        if kind == "video":
            y8_records.write_video_level_sample(path, 40, num_classes=8, seed=seed)
        else:
            y8_records.write_frame_level_sample(path, 10, 8, seed=seed, max_frames=6, min_frames=0)
        return (tmp_path / name).read_bytes()

    for kind in ("video", "frame"):
        assert write(kind, "a", 5) == write(kind, "b", 5)
        assert write(kind, "c", 6) != write(kind, "a", 5)


def test_video_level_sample_manifest_and_learnable(tmp_path):
    path = str(tmp_path / "videos.tfrecord")
    manifest = y8_records.write_video_level_sample(path, 400, num_classes=10, seed=0)
    records = [y8_records.decode_video_example(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    assert manifest["videos"] == len(records) == 400
    counts = np.zeros(10, int)
    for record in records:
        assert 1 <= len(record["labels"]) <= 3 and len(set(record["labels"])) == len(
            record["labels"]
        )
        counts[record["labels"]] += 1
        assert np.abs(record["mean_rgb"]).max() <= 2.0
    assert manifest["label_counts"] == counts.tolist() and counts.min() > 0
    # Class-dependent: class means from 300 videos rank a true label first on the other 100.
    x = np.stack([np.concatenate([r["mean_rgb"], r["mean_audio"]]) for r in records])
    y = np.zeros((400, 10))
    for i, record in enumerate(records):
        y[i, record["labels"]] = 1
    means = (y[:300].T @ x[:300]) / y[:300].sum(axis=0)[:, None]
    top = np.argmax(x[300:] @ means.T - 0.5 * (means**2).sum(axis=1), axis=1)
    assert y[300:][np.arange(100), top].mean() > 0.9


def test_frame_level_sample_parses_the_same_in_graph_and_python(tmp_path):
    path = str(tmp_path / "frames.tfrecord")
    manifest = y8_records.write_frame_level_sample(path, 12, 5, seed=1, max_frames=6, min_frames=0)
    records = [y8_records.decode_frame_example(r.numpy(), 4) for r in tf.data.TFRecordDataset(path)]
    assert sum(len(r["labels"]) for r in records) == sum(manifest["label_counts"])
    assert manifest["frames"] >= sum(r["num_frames"] for r in records)
    batches = list(y8.frame_level_dataset(path, 5, batch_size=5, max_frames=4))
    assert [int(labels.shape[0]) for _, labels in batches] == [5, 5, 2]
    features = {k: np.concatenate([f[k].numpy() for f, _ in batches]) for k in batches[0][0]}
    for i, record in enumerate(records):
        n = record["num_frames"]
        assert features["video_id"][i].decode() == record["video_id"]
        assert features["num_frames"][i] == n
        np.testing.assert_array_equal(features["rgb"][i, :n], record["rgb"])
        np.testing.assert_array_equal(features["audio"][i, :n], record["audio"])
        assert not features["rgb"][i, n:].any()


# Real YouTube-8M validation shards ---------------------------------------------


@pytest.fixture(scope="module")
def yt8m(shared_data):
    root = shared_data / "yt8m"
    if not root.is_dir():
        pytest.skip(f"{root} is not present")
    return root


def test_shared_vocabulary(yt8m):
    vocab = y8_vocabulary.read_vocabulary(str(yt8m / "vocabulary.csv"))
    assert vocab.num_classes == len(vocab.names) == len(set(vocab.names)) == 3862
    assert vocab.names[:3] == ("Game", "Video game", "Vehicle") and vocab.verticals[0] == "Games"
    assert vocab.names[120] == "class_120"  # an empty Name in the official file


def test_shared_first_record(yt8m):
    first = next(iter(tf.data.TFRecordDataset(str(yt8m / "validate0000.tfrecord")))).numpy()
    record = y8_records.decode_video_example(first)
    assert record["video_id"] == "02aa" and record["labels"] == [3, 4, 9, 34]
    assert record["mean_rgb"].shape == (1024,) and record["mean_audio"].shape == (128,)
    features, labels = y8.parse_video_level(tf.constant([first]), 3862)
    np.testing.assert_array_equal(features["mean_rgb"][0].numpy(), record["mean_rgb"])
    assert np.flatnonzero(labels[0].numpy()).tolist() == [3, 4, 9, 34]


def test_shared_shards_batch_every_video(yt8m):
    files = sorted(str(p) for p in yt8m.glob("validate*.tfrecord"))
    assert len(files) == 40
    ids, labels_per_video = [], []
    # num_classes 4000 > 3862: any label id >= 3862 would show up in the extra columns.
    for features, labels in y8.video_level_dataset(files, 4000, batch_size=1024):
        assert features["mean_rgb"].shape[1:] == (1024,)
        assert not labels[:, 3862:].numpy().any()
        labels_per_video.extend(labels.numpy().sum(axis=1).tolist())
        ids.extend(v.decode() for v in features["video_id"].numpy())
    assert len(ids) == len(set(ids)) == 11_790
    assert min(labels_per_video) >= 1
    evals = _ids(y8.video_level_dataset(files, 3862, 1024, split="eval"))
    assert evals == [v for v in ids if y8.split_of(v) == "eval"]
    assert 0.08 < len(evals) / len(ids) < 0.12
