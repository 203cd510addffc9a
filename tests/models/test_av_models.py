"""Value tests for models.av.layers, models.av.zoo (YouTube-8M model zoo) and models.av.fusion."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from models.av.fusion import build_fusion_model
from models.av.layers import ContextGating, FrameMask, MixtureOfExperts, NetVLAD, StoredDense
from models.av.zoo import (
    MODELS,
    AVParams,
    build_av_model,
    model_weights_mb,
    transfer_weights,
)
from models.layers import SparseDense
from models.priors import PRIOR_CLIP, label_prior, moe_output_biases

RGB, AUDIO, CLASSES, TEXT_DIM = 16, 8, 5, 40
SMALL = {"hidden_size": 16, "cluster_size": 4, "lstm_units": 8, "num_mixtures": 2}


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _randomize(layer, rng, scale=0.5):
    layer.set_weights([rng.normal(scale=scale, size=w.shape) for w in layer.get_weights()])


def _small(model="moe", **kwargs) -> AVParams:
    return AVParams(model=model, **{**SMALL, **kwargs})


def _inputs(frame_level: bool, n: int, seed: int = 0, frames: int = 6, labels=None) -> dict:
    """Features around class-dependent means; frame-level videos have 1..frames frames."""
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(123).normal(size=(CLASSES, RGB + AUDIO))
    labels = rng.integers(CLASSES, size=n) if labels is None else labels
    if not frame_level:
        x = means[labels] + 0.5 * rng.normal(size=(n, RGB + AUDIO))
        return {"mean_rgb": x[:, :RGB].astype("f4"), "mean_audio": x[:, RGB:].astype("f4")}
    num_frames = rng.integers(1, frames + 1, size=n)
    x = means[labels][:, None] + 0.5 * rng.normal(size=(n, frames, RGB + AUDIO))
    x *= (np.arange(frames)[None, :] < num_frames[:, None])[..., None]
    return {"rgb": x[..., :RGB].astype("f4"), "audio": x[..., RGB:].astype("f4"),
            "num_frames": num_frames}  # fmt: skip


# ------------------------------------------------------------------ layers
def _np_moe(x, wg, we, be, num_mixtures, wo=None, bo=None):
    n, m = x.shape[0], num_mixtures
    gates = _softmax((x @ wg).reshape(n, CLASSES, m + 1))
    experts = _sigmoid((x @ we + be).reshape(n, CLASSES, m))
    p = (gates[:, :, :m] * experts).sum(-1)
    return p if wo is None else p * _sigmoid(p @ wo + bo)


@pytest.mark.parametrize("gated", [False, True])
def test_moe_matches_numpy_and_sigmoid_of_logits_is_p(gated):
    rng = np.random.default_rng(0)
    layer = MixtureOfExperts(CLASSES, num_mixtures=3, output_context_gating=gated)
    layer.build((None, 7))
    _randomize(layer, rng, scale=1.0)
    x = rng.normal(size=(6, 7)).astype("f4")
    p = _np_moe(x, *layer.get_weights()[:3], 3, *layer.get_weights()[3:])
    logits = layer(x).numpy()
    np.testing.assert_allclose(logits, np.log(p) - np.log1p(-p), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tf.sigmoid(logits).numpy(), p, atol=1e-6)


def test_moe_logits_are_exact_when_p_saturates():
    layer = MixtureOfExperts(2, num_mixtures=1)
    layer.build((None, 1))
    # class 0: the expert's gate ~1, expert logit 200 -> logit(p) = 200 (1 - p = e^-200);
    # class 1: the expert's gate e^-400 (the dummy's ~1) -> logit(p) = -400 + log(sigmoid(200)).
    layer.set_weights(
        [np.array([[200.0, -200.0, -200.0, 200.0]]), np.ones((1, 2)) * 200, np.zeros(2)]
    )
    logits = layer(np.ones((1, 1), "f4")).numpy()
    np.testing.assert_allclose(logits, [[200.0, -400.0]], rtol=1e-5)


@pytest.mark.parametrize("gated", [False, True])
def test_moe_saturated_experts_keep_gradients(gated):
    """A positive whose experts say -40 (p ~ 1e-18) and a negative whose experts say +40
    with the dummy gated off (1 - p ~ 1e-17): the old clip of p to [1e-7, 1 - 1e-7]
    gave both a zero gradient; in log space d(BCE)/d(expert) is O(1), the right way."""
    layer = MixtureOfExperts(2, num_mixtures=2, output_context_gating=gated)
    layer.build((None, 1))
    weights = [np.zeros(w.shape, "f4") for w in layer.get_weights()]
    weights[0][0, 3:] = [20.0, 20.0, -20.0]  # class 1: gates 1/2, 1/2, dummy e^-40 / 2
    weights[1][0] = [-40.0, -40.0, 40.0, 40.0]  # class 0 experts -40, class 1 experts +40
    layer.set_weights(weights)  # class 0: uniform gates; output gate (if any): sigmoid(0)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        logits = layer(tf.ones((1, 1)))
        loss = bce(np.array([[1.0, 0.0]], "f4"), logits)  # both wrong and saturated
    grad = tape.gradient(loss, layer.expert_kernel).numpy().reshape(2, 2)
    # class 0: p = 2/3 sigmoid(-40) [* 1/2]; d(-log p / 2)/de = -(1 - sigmoid(-40)) / 4
    expected_0 = -40 + np.log(2 / 3) + (np.log(0.5) if gated else 0.0)
    np.testing.assert_allclose(logits.numpy()[0, 0], expected_0, atol=1e-3)
    np.testing.assert_allclose(grad[0], [-0.25, -0.25], atol=1e-3)
    if not gated:  # 1 - p = 3/2 e^-40; d(-log(1 - p) / 2)/de = (1/2 e^-40) / (3/2 e^-40) / 2
        np.testing.assert_allclose(logits.numpy()[0, 1], 40 - np.log(1.5), atol=1e-3)
        np.testing.assert_allclose(grad[1], [1 / 6, 1 / 6], atol=1e-3)
    else:  # the output gate caps p near 1/2: not saturated, still pushed down
        assert np.all(grad[1] > 0)


def test_context_gating_and_stored_dense_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 5)).astype("f4")
    gating = ContextGating(weight_dtype="float16")
    gating.build((None, 5))
    _randomize(gating, rng)
    w, b = (v.astype("f4") for v in gating.get_weights())  # float16-rounded values
    assert gating.kernel.dtype == tf.float16 and gating(x).dtype == tf.float32
    np.testing.assert_allclose(gating(x).numpy(), x * _sigmoid(x @ w + b), atol=1e-5)

    dense = StoredDense(3, activation="relu")
    dense.build((None, 5))
    _randomize(dense, rng)
    w, b = dense.get_weights()
    np.testing.assert_allclose(dense(x).numpy(), np.maximum(x @ w + b, 0), atol=1e-5)


def _np_netvlad(x, mask, w, b, centers):
    x = np.where(mask[..., None], x, 0.0)
    a = _softmax(x @ w + b) * mask[..., None]
    vlad = np.einsum("bfk,bfd->bkd", a, x) - a.sum(1)[..., None] * centers[None]
    vlad /= np.maximum(np.linalg.norm(vlad, axis=-1, keepdims=True), 1e-6)
    flat = vlad.reshape(len(x), -1)
    return flat / np.maximum(np.linalg.norm(flat, axis=-1, keepdims=True), 1e-6)


def test_netvlad_matches_numpy_with_masked_and_empty_videos():
    rng = np.random.default_rng(2)
    layer = NetVLAD(3)
    layer.build((None, None, 4))
    _randomize(layer, rng)
    x = rng.normal(size=(3, 5, 4)).astype("f4")
    num_frames = np.array([5, 2, 0])
    mask = np.arange(5)[None] < num_frames[:, None]
    x[~mask] = 1e4  # padding content must not matter
    out = layer(x, mask=FrameMask()([x, num_frames])).numpy()
    assert out.shape == (3, 3 * 4)
    np.testing.assert_allclose(out, _np_netvlad(x, mask, *layer.get_weights()), atol=1e-5)
    np.testing.assert_array_equal(out[2], 0.0)
    np.testing.assert_allclose(np.linalg.norm(out[:2], axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(layer(x[:1]).numpy(), out[:1], atol=1e-6)  # mask=None: all frames
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(tf.constant(x), mask=tf.constant(mask)))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


# ----------------------------------------------------------------- registry
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_registry_model_trains(name):
    frame_level = MODELS[name].frame_level
    assert frame_level == (name in ("netvlad", "bilstm"))
    model = build_av_model(_small(name), CLASSES, frame_level, rgb_size=RGB, audio_size=AUDIO)
    labels = np.random.default_rng(0).integers(CLASSES, size=64)
    x = _inputs(frame_level, 64, labels=labels)
    y = np.eye(CLASSES, dtype="f4")[labels]
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    # Eager steps: tracing the LSTM's backend-selecting graphs costs ~10 s on CPU.
    model.compile(keras.optimizers.Adam(0.02), bce, run_eagerly=True)
    before = float(bce(y, model(x)))
    model.fit(x, y, batch_size=16, epochs=6, verbose=0)
    after = float(bce(y, model(x)))
    assert model.output_shape == (None, CLASSES)
    assert after < 0.6 * before, (before, after)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["netvlad", "bilstm"])
def test_frame_models_ignore_padding(name):
    model = build_av_model(_small(name), CLASSES, rgb_size=RGB, audio_size=AUDIO)
    x = _inputs(True, 3, frames=4)
    x["num_frames"] = np.array([4, 2, 0])
    padded = {k: np.concatenate([v, np.full_like(v[:, :3], 7.0)], 1) for k, v in x.items()
              if k != "num_frames"}  # fmt: skip
    padded["num_frames"] = x["num_frames"].astype("i4")
    np.testing.assert_allclose(model(padded).numpy(), model(x).numpy(), atol=1e-5)
    assert np.all(np.isfinite(model(x).numpy()))


def test_build_av_model_errors():
    with pytest.raises(ValueError, match="is video-level. Received: frame_level=True"):
        build_av_model(_small("moe"), CLASSES, frame_level=True)
    with pytest.raises(ValueError, match="Received: model='nope' .known models"):
        AVParams(model="nope")
    with pytest.raises(ValueError, match="Received: num_classes=0"):
        build_av_model(_small(), 0)
    assert all(f.metadata["help"] for f in dataclasses.fields(AVParams))


# ------------------------------------------------------------ label prior
PRIOR = np.array([1e-6, 0.001, 0.02, 0.3, 0.6])  # 0.6: above what 2 gated experts reach at 0.5


@pytest.mark.parametrize(
    "name, params",
    [("logistic", {}), ("moe", {"output_context_gating": False}), ("moe", {}),
     ("moe", {"num_mixtures": 1}), ("bilstm", {}), ("fusion", {})],
)  # fmt: skip
@pytest.mark.slow
def test_initial_predictions_are_the_label_prior(name, params):
    params = _small("moe" if name == "fusion" else name, **params)
    if name == "fusion":
        model = build_fusion_model(TEXT_DIM, params, CLASSES, text_units=8, rgb_size=RGB,
                                   audio_size=AUDIO, label_prior=PRIOR)  # fmt: skip
        x, zero = None, _fusion_inputs(1, 0, 0, None)  # the flags enter the head at 1.0
    else:
        model = build_av_model(params, CLASSES, rgb_size=RGB, audio_size=AUDIO, label_prior=PRIOR)
        x = _inputs(MODELS[name].frame_level, 64)
        zero = {k: np.zeros_like(v[:1]) for k, v in x.items()}
    m = params.num_mixtures if name != "logistic" else 0
    reachable = np.minimum(PRIOR, m / (m + 1) if m else 1.0)  # 1 expert + dummy: p <= 1/2
    # zero features: uniform gates, experts at their bias -> exactly the prior
    np.testing.assert_allclose(tf.sigmoid(model(zero)).numpy()[0], reachable, rtol=1e-4)
    if x is not None:  # small features: about the prior
        x = {k: v if k == "num_frames" else 0.1 * v for k, v in x.items()}
        mean = tf.reduce_mean(tf.sigmoid(model(x)), axis=0).numpy()
        np.testing.assert_allclose(mean, reachable, rtol=0.1)


def test_moe_biases_cap_unreachable_priors():
    expert, gate = moe_output_biases(np.array([0.05, 0.6, 0.9]), 2, gated=True)
    p = 2 / 3 * _sigmoid(expert) * _sigmoid(gate)
    np.testing.assert_allclose(p, [0.05, 0.6, 2 / 3], rtol=1e-5)
    np.testing.assert_allclose(_sigmoid(gate[:1]), [0.5])  # the gate moves only when needed
    with pytest.raises(ValueError, match="Received: label_prior of shape \\(4,\\)"):
        build_av_model(_small(), CLASSES, rgb_size=RGB, audio_size=AUDIO, label_prior=PRIOR[:4])


def test_label_prior_counts_positives_per_class():
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 0, 0]], "f4")
    dataset = tf.data.Dataset.from_tensor_slices(({"x": labels}, labels)).batch(3)
    np.testing.assert_allclose(label_prior(dataset, 3), [0.75, 0.5, PRIOR_CLIP])
    with pytest.raises(ValueError, match="Received: shape"):
        label_prior(dataset, 4)


# ------------------------------------------------------------------- fusion
def _fusion_inputs(n, has_text, has_av, av_seed):
    rng = np.random.default_rng(0)
    dense = rng.random((n, TEXT_DIM)) * (rng.random((n, TEXT_DIM)) < 0.2)
    av = _inputs(False, n, seed=0 if av_seed is None else av_seed)
    if av_seed is None:
        av = {k: np.zeros_like(v) for k, v in av.items()}
    flags = {"has_text": np.full((n, 1), has_text, "f4"), "has_av": np.full((n, 1), has_av, "f4")}
    return {"bow": tf.sparse.from_dense(dense.astype("f4")), **av, **flags}


def test_fusion_accepts_any_subset_of_modalities():
    model = build_fusion_model(TEXT_DIM, _small(), CLASSES, text_units=8, rgb_size=RGB,
                               audio_size=AUDIO)  # fmt: skip
    assert {"bow", "mean_rgb", "mean_audio", "has_text", "has_av"} == set(model.input_names)
    text_zero_av = model(_fusion_inputs(4, 1, 0, None)).numpy()
    text_random_av = model(_fusion_inputs(4, 1, 0, 1)).numpy()
    np.testing.assert_array_equal(text_zero_av, text_random_av)
    both = model(_fusion_inputs(4, 1, 1, 1)).numpy()
    assert np.abs(both - text_random_av).min() > 1e-4
    av_only = model(_fusion_inputs(4, 0, 1, 1)).numpy()
    assert np.all(np.isfinite(av_only)) and np.abs(av_only - both).max() > 1e-4


# -------------------------------------------------------------- compression
@pytest.mark.parametrize("name", ["moe", "netvlad", "fusion"])
def test_float16_transfer(name):
    def build(weight_dtype):
        params = _small(name if name != "fusion" else "moe", weight_dtype=weight_dtype)
        if name == "fusion":
            return build_fusion_model(TEXT_DIM, params, CLASSES, text_units=8, rgb_size=RGB,
                                      audio_size=AUDIO)  # fmt: skip
        return build_av_model(params, CLASSES, rgb_size=RGB, audio_size=AUDIO)

    src, dst = build("float32"), build("float16")
    transfer_weights(src, dst)
    kernels = [w for w in dst.weights if "kernel" in w.name or "centers" in w.name]
    assert kernels and all(w.dtype == tf.float16 for w in kernels)
    assert 0.5 <= model_weights_mb(dst) / model_weights_mb(src) < 0.6
    x = _fusion_inputs(8, 1, 1, 0) if name == "fusion" else _inputs(name == "netvlad", 8)
    out16, out32 = dst(x).numpy(), src(x).numpy()
    assert out16.dtype == np.float32
    np.testing.assert_allclose(out16, out32, atol=1e-2)
    with pytest.raises(ValueError, match="different structures"):
        transfer_weights(src, build_av_model(_small("logistic"), CLASSES, rgb_size=RGB,
                                             audio_size=AUDIO))  # fmt: skip


def test_model_weights_mb_counts_bytes_by_dtype():
    model = build_av_model(_small("logistic"), CLASSES, rgb_size=RGB, audio_size=AUDIO)
    assert model_weights_mb(model) == ((RGB + AUDIO) * CLASSES + CLASSES) * 4 / 2**20
    half = build_av_model(_small("logistic", weight_dtype="float16"), CLASSES, rgb_size=RGB,
                          audio_size=AUDIO)  # fmt: skip
    assert model_weights_mb(half) == ((RGB + AUDIO) * CLASSES * 2 + CLASSES * 4) / 2**20


def test_sparse_dense_float16_weights():
    layer = SparseDense(3, weight_dtype="float16", bias_initializer="random_normal")
    layer.build((None, 6))
    dense = np.random.default_rng(3).random((4, 6)).astype("f4") * np.array([1, 0, 1, 0, 1, 1])
    out = layer(tf.sparse.from_dense(dense))
    assert layer.kernel.dtype == tf.float16 and out.dtype == tf.float32
    w, b = (v.astype("f4") for v in layer.get_weights())
    np.testing.assert_allclose(out.numpy(), dense @ w + b, atol=1e-5)
    np.testing.assert_allclose(layer(dense).numpy(), out.numpy(), atol=1e-5)


# ------------------------------------------------------------- persistence
@pytest.mark.slow
def test_saved_model_and_weights_round_trip(tmp_path):
    model = build_av_model(_small("netvlad", weight_dtype="float16"), CLASSES, rgb_size=RGB,
                           audio_size=AUDIO)  # fmt: skip
    x = _inputs(True, 3)
    model.save(str(tmp_path / "saved"))
    restored = keras.models.load_model(str(tmp_path / "saved"))
    np.testing.assert_allclose(restored(x).numpy(), model(x).numpy(), atol=1e-6)
    model.save_weights(str(tmp_path / "ckpt"))
    clone = build_av_model(_small("netvlad", weight_dtype="float16", seed=1), CLASSES,
                           rgb_size=RGB, audio_size=AUDIO)  # fmt: skip
    assert np.abs(clone(x).numpy() - model(x).numpy()).max() > 1e-4
    clone.load_weights(str(tmp_path / "ckpt"))
    np.testing.assert_allclose(clone(x).numpy(), model(x).numpy(), atol=1e-6)


# ------------------------------------------------------------ config / args
@pytest.mark.parametrize(
    "layer",
    [
        StoredDense(4, activation="relu", kernel_regularizer="l2", weight_dtype="float16", seed=3),
        ContextGating(weight_dtype="float16", use_bias=False),
        MixtureOfExperts(7, num_mixtures=3, output_context_gating=True, l2=1e-6, seed=1),
        NetVLAD(5, weight_dtype="float16"),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    generic = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(generic) is type(layer) and generic.get_config() == config
    shape = (None, 3, 6) if isinstance(layer, NetVLAD) else (None, 6)
    layer.build(shape)
    clone.build(shape)
    assert [(w.shape, w.dtype) for w in clone.weights] == [
        (w.shape, w.dtype) for w in layer.weights
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda: StoredDense(0),
        lambda: StoredDense(2, use_bias="yes"),
        lambda: StoredDense(2, weight_dtype="bfloat16"),
        lambda: ContextGating(seed=-1),
        lambda: MixtureOfExperts(3, num_mixtures=0),
        lambda: MixtureOfExperts(3, l2=-1.0),
        lambda: MixtureOfExperts(3, output_context_gating=1),
        lambda: NetVLAD(True),
        lambda: AVParams(num_mixtures=-1),
        lambda: AVParams(cluster_size=1),
        lambda: AVParams(dropout=1.0),
        lambda: AVParams(weight_dtype="int8"),
        lambda: AVParams(input_context_gating="no"),
    ],
)
def test_invalid_arguments_raise(make):
    with pytest.raises(ValueError, match="Received"):
        make()
