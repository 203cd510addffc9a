"""Value tests for models.av.tools: compress, checkpoint averaging, ensembles (+ their CLI)."""

from __future__ import annotations

import functools
import json
import os
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow as tf

from models import artifacts, checkpoints, metrics
from models.av import data as yt8m_data
from models.av import ensemble as av_ensemble
from models.av import ensemble_tool, trained
from models.av import export as av_export
from models.av import records as yt8m_records
from models.av import tools as av_tools
from models.av import train as av_train
from models.av.zoo import AVParams, model_weights_mb
from pipelines.components.jobs import JobError
from pipelines.tools import model_commands

pytestmark = pytest.mark.slow  # trains the models the tools work on

CLASSES = 12


def _train(data: str, model_dir, epochs: int, lr: float = 1e-3, **params) -> str:
    hparams = av_train.AVTrainParams(
        lr, batch_size=64, epochs=epochs, patience=epochs, max_frames=8
    )
    config = av_train.AVTrainConfig(
        data, str(model_dir), num_classes=CLASSES, model=AVParams(**params), train=hparams
    )
    av_train.train_av(config)
    return str(model_dir)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> dict:
    """Video-level data and two trained models: ``a`` (gated MoE, 3 epochs), ``b`` (logistic)."""
    root = tmp_path_factory.mktemp("av_tools")
    data = str(root / "video.tfrecord")
    yt8m_records.write_video_level_sample(data, 600, CLASSES, seed=1)
    a = _train(data, root / "a", 3, lr=3e-5, model="moe", num_mixtures=2)
    b = _train(data, root / "b", 1, lr=2e-4, model="logistic", seed=1)
    return {"root": root, "data": data, "a": a, "b": b}


@pytest.fixture(scope="module")
def compressed(video) -> dict:
    out = str(video["root"] / "a16")
    return {"dir": out, "report": av_tools.compress(video["a"], out)}


def _eval_batch(data: str) -> dict:
    features, _ = next(iter(yt8m_data.video_level_dataset(data, CLASSES, 64, split="eval")))
    return {k: v for k, v in features.items() if k != "video_id"}


@functools.cache
def _loaded(model_dir: str):
    return tf.saved_model.load(os.path.join(model_dir, artifacts.SAVED_MODEL_DIR))


def _probabilities(model_dir: str, inputs: dict, signature: str = "features") -> np.ndarray:
    return _loaded(model_dir).signatures[signature](**inputs)["probabilities"].numpy()


# ------------------------------------------------------------------ compress


def test_compress_halves_weights_and_keeps_gap(video, compressed):
    report, out = compressed["report"], compressed["dir"]
    ratio = report["size_mb"]["float16"] / report["size_mb"]["float32"]
    assert 0.5 < ratio < 0.6
    assert abs(report["gap_change"]) <= 0.001
    assert report["eval"]["float32"]["gap@20"] > 0.3
    assert report["saved_model_mb"]["float16"] < report["saved_model_mb"]["float32"]
    card = artifacts.read_extra(os.path.join(out, "saved_model"), artifacts.CARD_FILE)
    assert card["av"]["compressed_from"]["model_dir"] == video["a"]
    assert card["av"]["params"]["weight_dtype"] == card["av"]["weight_dtype"] == "float16"
    assert os.path.exists(os.path.join(out, trained.REPORTS["compress"]))


def test_compressed_model_is_float16_and_close(video, compressed):
    out = compressed["dir"]
    card = artifacts.read_extra(os.path.join(out, "saved_model"), artifacts.CARD_FILE)
    model = av_train.build(av_train.config_from_card(card, out), CLASSES)
    checkpoints.load_weights(model, os.path.join(out, "checkpoints", "best.h5"))
    kernels = [w.dtype for w in model.weights if "kernel" in w.name]
    biases = [w.dtype for w in model.weights if "bias" in w.name]
    assert len(kernels) == 4 and set(kernels) == {tf.float16} and set(biases) == {tf.float32}
    inputs = _eval_batch(video["data"])
    original, small = _probabilities(video["a"], inputs), _probabilities(out, inputs)
    np.testing.assert_allclose(small, original, atol=1e-2)
    assert np.abs(small - original).max() > 0  # really a different (rounded) model


def test_compress_refuses_bad_requests(video, compressed, tmp_path):
    with pytest.raises(JobError, match="already compressed"):
        av_tools.compress(compressed["dir"], str(tmp_path / "again"))
    with pytest.raises(JobError, match="--max-model-mb"):
        av_tools.compress(video["a"], str(tmp_path / "small"), max_model_mb=1.0)
    with pytest.raises(JobError, match="--dtype"):
        av_tools.compress(video["a"], str(tmp_path / "x"), dtype="float32")
    with pytest.raises(JobError, match="differ"):
        av_tools.compress(video["a"], video["a"])
    with pytest.raises(JobError, match="holds another model"):
        av_tools.compress(video["a"], video["b"])
    with pytest.raises(JobError, match="no exported model"):
        av_tools.compress(str(tmp_path), str(tmp_path / "y"))


# ------------------------------------------------------------------ averaging


def test_average_of_two_checkpoints_is_their_mean(video, tmp_path):
    out = str(tmp_path / "avg")
    report = av_tools.average_checkpoints(video["a"], out, last=2)
    assert report["epochs"] == [2, 3]
    assert set(report["eval"]["checkpoints"]) == {"epoch-002", "epoch-003"}
    gaps = report["eval"]["averaged"]["gap@20"], report["eval"]["best_single"]["gap@20"]
    assert report["gap_change"] == pytest.approx(gaps[0] - gaps[1])
    card = artifacts.read_extra(os.path.join(out, "saved_model"), artifacts.CARD_FILE)
    assert card["av"]["averaged_epochs"] == [2, 3]
    config = av_train.config_from_card(card, out)
    weights = []
    for path in (f"{video['a']}/checkpoints/epoch-002.h5", f"{video['a']}/checkpoints/epoch-003.h5",
                 f"{out}/checkpoints/best.h5"):  # fmt: skip
        model = av_train.build(config, CLASSES)
        checkpoints.load_weights(model, path)
        weights.append(model.get_weights())
    for first, second, averaged in zip(*weights, strict=True):
        expected = ((first.astype(np.float64) + second) / 2).astype(first.dtype)
        np.testing.assert_array_equal(averaged, expected)
    assert not np.array_equal(weights[0][0], weights[1][0])


def test_epoch_checkpoints_hold_the_weights_only(video):
    """No Adam slots: each epoch file is about the weights' size (Adam state would be 3x)."""
    available = av_tools.epoch_checkpoints(video["a"])
    assert list(available) == [1, 2, 3] and all(p.endswith(".h5") for p in available.values())
    card = artifacts.read_extra(os.path.join(video["a"], "saved_model"), artifacts.CARD_FILE)
    model = av_train.build(av_train.config_from_card(card, video["a"]), CLASSES)
    weights_bytes = model_weights_mb(model) * 2**20
    for path in available.values():
        assert 1.0 < os.path.getsize(path) / weights_bytes < 1.3
    summary = json.loads(pathlib.Path(video["a"], "training_summary.json").read_text())
    checkpoints.load_weights(model, available[summary["best_epoch"]])
    best = av_train.build(av_train.config_from_card(card, video["a"]), CLASSES)
    checkpoints.load_weights(best, os.path.join(video["a"], "checkpoints", "best.h5"))
    for loaded, kept in zip(model.get_weights(), best.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, kept)  # the best epoch's file holds its weights


def test_older_tf_format_epoch_checkpoints_still_average(video, tmp_path):
    model_dir = tmp_path / "old"
    shutil.copytree(video["a"], model_dir, ignore=shutil.ignore_patterns("epoch-*"))
    card = artifacts.read_extra(os.path.join(video["a"], "saved_model"), artifacts.CARD_FILE)
    model = av_train.build(av_train.config_from_card(card, video["a"]), CLASSES)
    for epoch, path in av_tools.epoch_checkpoints(video["a"]).items():
        checkpoints.load_weights(model, path)
        model.save_weights(str(model_dir / "checkpoints" / f"epoch-{epoch:03d}"))
    assert set(av_tools.epoch_checkpoints(str(model_dir))) == {1, 2, 3}
    report = av_tools.average_checkpoints(str(model_dir), str(tmp_path / "avg"), last=2)
    new = av_tools.average_checkpoints(video["a"], str(tmp_path / "avg_new"), last=2)
    assert report["eval"]["averaged"] == new["eval"]["averaged"]


def test_average_needs_enough_checkpoints(video, tmp_path):
    with pytest.raises(JobError, match="last 5 checkpoints but .* has 3"):
        av_tools.average_checkpoints(video["a"], str(tmp_path / "o"), last=5)
    with pytest.raises(JobError, match=r"epoch\(s\) \[4\]"):
        av_tools.average_checkpoints(video["a"], str(tmp_path / "o"), epochs=(2, 4))
    with pytest.raises(JobError, match="either --last"):
        av_tools.average_checkpoints(video["a"], str(tmp_path / "o"))


def test_select_epochs():
    available = {1: "e1", 2: "e2", 3: "e3", 4: "e4"}
    assert av_tools.select_epochs(available, "m", last=3) == [2, 3, 4]
    assert av_tools.select_epochs(available, "m", epochs=(1, 2)) == [1, 2]
    with pytest.raises(JobError, match="1 <= A <= B"):
        av_tools.select_epochs(available, "m", epochs=(3, 2))
    with pytest.raises(JobError, match="no epoch checkpoints"):
        av_tools.select_epochs({}, "m", last=1)


# ------------------------------------------------------------------ ensembles


def test_ensemble_weights_one_zero_is_model_a(video, tmp_path):
    out = str(tmp_path / "ens10")
    report = ensemble_tool.ensemble([video["a"], video["b"]], out, weights=[1, 0])
    inputs = _eval_batch(video["data"])
    np.testing.assert_allclose(
        _probabilities(out, inputs), _probabilities(video["a"], inputs), atol=1e-6
    )
    members = report["eval"]["members"]
    assert report["eval"]["ensemble"]["gap@20"] == pytest.approx(members[0]["gap@20"], abs=1e-9)
    card = artifacts.read_extra(os.path.join(out, "saved_model"), artifacts.CARD_FILE)
    assert card["av"]["ensemble"]["weights"] == [1.0, 0.0]
    assert [m["model_dir"] for m in card["av"]["ensemble"]["members"]] == [video["a"], video["b"]]


def test_ensemble_equal_weights_is_the_mean_and_serves_examples(video, tmp_path):
    out = str(tmp_path / "ens55")
    report = ensemble_tool.ensemble([video["a"], video["b"]], out, weights=[0.6, 0.6])
    assert report["weights"] == [0.5, 0.5]
    inputs = _eval_batch(video["data"])
    expected = (_probabilities(video["a"], inputs) + _probabilities(video["b"], inputs)) / 2
    features = _probabilities(out, inputs)
    np.testing.assert_allclose(features, expected, atol=1e-6)
    examples = next(iter(tf.data.TFRecordDataset(video["data"]).batch(32)))
    served = _loaded(out).signatures["serving_default"](examples=examples)
    parsed, _ = yt8m_data.parse_video_level(examples, CLASSES)
    direct = _loaded(out).signatures["features"](
        mean_rgb=parsed["mean_rgb"], mean_audio=parsed["mean_audio"]
    )
    np.testing.assert_allclose(served["probabilities"], direct["probabilities"], atol=1e-7)
    assert list(served["video_id"].numpy()) == list(parsed["video_id"].numpy())


def test_ensemble_tuned_weights_on_grid_and_not_worse(video, tmp_path):
    report = ensemble_tool.ensemble(
        [video["a"], video["b"]], str(tmp_path / "tuned"), tune_weights=True, grid_step=0.25
    )
    weights = np.array(report["weights"])
    np.testing.assert_allclose(weights * 4, np.round(weights * 4), atol=1e-12)
    assert weights.sum() == pytest.approx(1.0)
    gap = report["eval"]["ensemble"]["gap@20"]
    assert all(gap >= m["gap@20"] for m in report["eval"]["members"])
    assert report["gap_change"] >= 0


def test_tune_weights_coordinate_ascent_beats_members():
    rng = np.random.default_rng(0)
    labels = (rng.random((200, 10)) < 0.2).astype(np.float32)
    members = [np.clip(labels + rng.normal(0, s, labels.shape), 0, 1) for s in (0.5, 0.7, 0.9, 2)]
    weights = av_ensemble.tune_weights(members, labels, grid_step=0.1)
    np.testing.assert_allclose(weights * 10, np.round(weights * 10), atol=1e-12)
    gap = metrics.gap_at_k(av_ensemble.combine(members, weights), labels)
    assert all(gap >= metrics.gap_at_k(m, labels) for m in members)
    assert sorted(av_ensemble.simplex(3, 2)) == sorted(
        [(2, 0, 0), (0, 2, 0), (0, 0, 2), (1, 1, 0), (1, 0, 1), (0, 1, 1)]
    )
    with pytest.raises(ValueError, match="divide 1"):
        av_ensemble.grid_units(0.3)


def test_ensemble_refuses_mismatched_members(video, tmp_path):
    extra = os.path.join(video["b"], "saved_model", artifacts.EXTRA_DIR)
    other = tmp_path / "shuffled" / "saved_model" / artifacts.EXTRA_DIR
    shutil.copytree(extra, other)
    labels = artifacts.read_extra(os.path.dirname(str(other)), artifacts.LABELS_FILE)
    (other / artifacts.LABELS_FILE).write_text("".join(f"{x}\n" for x in labels[::-1]))
    out = str(tmp_path / "o")
    with pytest.raises(JobError, match="different labels"):
        ensemble_tool.ensemble([video["a"], str(tmp_path / "shuffled")], out)
    with pytest.raises(JobError, match="max-model-mb"):
        ensemble_tool.ensemble([video["a"], video["b"]], out, max_model_mb=1.0)
    with pytest.raises(JobError, match="3 weights for 2"):
        ensemble_tool.ensemble([video["a"], video["b"]], out, weights=[1, 2, 3])
    with pytest.raises(JobError, match=">= 0"):
        ensemble_tool.ensemble([video["a"], video["b"]], out, weights=[1, -1])
    with pytest.raises(JobError, match="at least two"):
        ensemble_tool.ensemble([video["a"]], out)


# ------------------------------------------------------------------ frame level + CLI


def _untrained_frame_model(root, data: str) -> str:
    """An exported (untrained, seeded) NetVLAD model dir: the tools only need its export."""
    params = AVParams(model="netvlad", cluster_size=4, hidden_size=16, num_mixtures=2)
    hparams = av_train.AVTrainParams(batch_size=64, max_frames=8)
    config = av_train.AVTrainConfig(
        data, str(root / "vlad"), num_classes=CLASSES, model=params, train=hparams
    )
    labels = av_train.label_names(config)
    card = av_train.model_card(config, labels, {})
    export_dir = os.path.join(config.model_dir, artifacts.SAVED_MODEL_DIR)
    model = av_train.build(config, CLASSES)
    av_export.export_av_model(export_dir, model, labels, [0.5] * CLASSES, card)
    return config.model_dir


def test_frame_level_ensemble_reads_each_members_frames(tmp_path, capsys):
    data = str(tmp_path / "frames.tfrecord")
    yt8m_records.write_frame_level_sample(data, 200, CLASSES, seed=2, max_frames=8)
    model = _untrained_frame_model(tmp_path, data)
    short = tmp_path / "short" / "saved_model"  # the same model, reading 4 frames at most
    shutil.copytree(os.path.join(model, "saved_model"), short)
    card = artifacts.read_extra(str(short), artifacts.CARD_FILE)
    card["av"]["max_frames"] = 4
    (short / artifacts.EXTRA_DIR / artifacts.CARD_FILE).write_text(json.dumps(card))
    ens = str(tmp_path / "ens")
    argv = ["--model-dir", model, "--model-dir", str(short.parent), "--output-dir", ens]
    assert model_commands.ensemble_main([*argv, "--weights", "1,1"]) == 0
    assert "ensemble: weights [0.5, 0.5], eval GAP@20" in capsys.readouterr().out
    features, _ = next(iter(yt8m_data.frame_level_dataset(data, CLASSES, 32, max_frames=8)))
    inputs = {k: features[k] for k in ("rgb", "audio", "num_frames")}
    cut = {"rgb": inputs["rgb"][:, :4], "audio": inputs["audio"][:, :4],
           "num_frames": tf.minimum(inputs["num_frames"], 4)}  # fmt: skip
    full, four = _probabilities(model, inputs, "frames"), _probabilities(model, cut, "frames")
    assert np.abs(full - four).max() > 1e-4  # some videos have more than 4 frames
    ensembled = _probabilities(ens, inputs, "frames")
    np.testing.assert_allclose(ensembled, (full + four) / 2, atol=1e-6)
    examples = next(iter(tf.data.TFRecordDataset(data).batch(32)))
    served = _loaded(ens).signatures["serving_default"](examples=examples)["probabilities"]
    np.testing.assert_allclose(served, ensembled, atol=1e-6)
    saved = artifacts.read_extra(os.path.join(ens, "saved_model"), artifacts.CARD_FILE)
    assert saved["av"]["frame_level"] and saved["av"]["max_frames"] == 8


def test_cli_flags(video, tmp_path, capsys):
    out = str(tmp_path / "avg")
    argv = ["--model-dir", video["a"], "--output-dir", out, "--epochs", "1:2"]
    assert model_commands.average_main(argv) == 0
    assert capsys.readouterr().out.startswith("average-checkpoints: epochs 1..2")
    with pytest.raises(SystemExit):
        model_commands.average_main(["--model-dir", "m", "--output-dir", "o", "--epochs", "3"])
    with pytest.raises(SystemExit):
        model_commands.ensemble_main(["--model-dir", "m", "--output-dir", "o", "--weights", "a"])
