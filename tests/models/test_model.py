"""The model builder: architecture per hyperparameters, losses, validation."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.layers import MeanProbabilityLogits, SparseDense
from models.losses import loss_fn, probabilities, top_probabilities
from models.text.model import HParams, build_model, ensemble_model, prior_logits


def _bow(batch: int = 3, dim: int = 50) -> tf.SparseTensor:
    return tf.sparse.reorder(
        tf.SparseTensor([[0, 1], [0, 7], [1, 3], [2, 49]], [0.5, 1.0, 2.0, 0.1], [batch, dim])
    )


def test_hidden_model_layers_and_shapes():
    model = build_model(50, 4, HParams(hidden_units=8, wide=False))
    names = [layer.name for layer in model.layers]
    assert names == ["bow", "sparse_dense", "activation", "dropout", "logits"]
    assert isinstance(model.get_layer("sparse_dense"), SparseDense)
    assert model.get_layer("sparse_dense").kernel.shape == (50, 8)
    assert model(_bow()).shape == (3, 4)


def test_linear_model_is_one_sparse_layer():
    model = build_model(50, 4, HParams(hidden_units=0))
    assert [layer.name for layer in model.layers] == ["bow", "logits"]
    assert model.get_layer("logits").kernel.shape == (50, 4)
    np.testing.assert_allclose(
        model(_bow()).numpy(),
        tf.sparse.sparse_dense_matmul(_bow(), model.get_layer("logits").kernel).numpy()
        + model.get_layer("logits").bias.numpy(),
        atol=1e-6,
    )


def test_losses_take_logits_and_probabilities_match():
    logits = tf.constant([[2.0, -1.0, 0.0]])
    assert loss_fn("sigmoid").get_config()["from_logits"] is True
    assert loss_fn("softmax").get_config()["from_logits"] is True
    with pytest.raises(ValueError, match="Received: loss='auto'"):
        loss_fn("auto")
    np.testing.assert_allclose(probabilities(logits, "sigmoid"), tf.sigmoid(logits))
    assert float(tf.reduce_sum(probabilities(logits, "softmax"))) == pytest.approx(1.0)


@pytest.mark.parametrize("loss", ["sigmoid", "softmax", "sampled_softmax"])
def test_top_probabilities_equal_the_top_of_the_full_row(loss):
    logits = tf.constant(np.random.default_rng(0).normal(0, 8, (6, 3000)), tf.float32)
    top, indices = tf.math.top_k(logits, k=7)
    full = probabilities(logits, loss).numpy()
    expected = np.take_along_axis(full, indices.numpy(), axis=1)
    np.testing.assert_allclose(top_probabilities(top, logits, loss), expected, rtol=1e-5)
    assert np.all(np.diff(expected, axis=1) <= 0)  # ranked by logit = ranked by score


def test_wide_and_deep_adds_a_linear_path_that_starts_at_zero():
    model = build_model(50, 4, HParams(hidden_units=8))  # the default: wide & deep
    wide = model.get_layer("wide")
    assert isinstance(wide, SparseDense) and wide.kernel.shape == (50, 4) and not wide.use_bias
    deep = keras_submodel(model, "logits")
    np.testing.assert_allclose(model(_bow()).numpy(), deep(_bow()).numpy(), atol=1e-6)
    wide.kernel.assign(tf.ones([50, 4]))
    dense_bow = tf.sparse.to_dense(_bow()).numpy()
    np.testing.assert_allclose(
        model(_bow()).numpy() - deep(_bow()).numpy(), dense_bow.sum(1, keepdims=True) * [[1] * 4],
        atol=1e-5,
    )  # fmt: skip


def keras_submodel(model, layer: str):
    import tf_keras as keras

    return keras.Model(model.input, model.get_layer(layer).output)


@pytest.mark.parametrize("loss", ["sigmoid", "softmax"])
def test_output_bias_starts_at_the_label_prior(loss):
    counts, videos = [50, 10, 1, 0], 100
    bias = prior_logits(counts, videos, loss)
    model = build_model(50, 4, HParams(hidden_units=8, loss=loss), output_bias=bias)
    np.testing.assert_allclose(model.get_layer("logits").bias.numpy(), bias)
    empty = tf.SparseTensor(tf.zeros([0, 2], tf.int64), tf.zeros([0]), [2, 50])
    scores = probabilities(model(empty), loss).numpy()  # no words: exactly the prior
    prior = np.clip(np.array(counts) / videos, 1e-6, 1 - 1e-6)
    expected = prior / prior.sum() if loss == "softmax" else prior
    np.testing.assert_allclose(scores, [expected] * 2, rtol=1e-4)


@pytest.mark.parametrize("loss", ["sigmoid", "softmax"])
def test_ensemble_probabilities_are_the_members_mean(loss):
    members = [build_model(50, 4, HParams(hidden_units=8, seed=s, loss=loss), name=f"m{s}")
               for s in range(3)]  # fmt: skip
    for i, member in enumerate(members):  # saturate a member: log space keeps it finite
        member.get_layer("logits").bias.assign(tf.fill([4], 30.0 * (i - 1)))
    ensemble = ensemble_model(members, loss)
    expected = np.mean([probabilities(m(_bow()), loss).numpy() for m in members], axis=0)
    got = probabilities(ensemble(_bow()), loss).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert np.isfinite(ensemble(_bow()).numpy()).all()
    assert ensemble_model(members[:1], loss) is members[0]


def test_mean_probability_logits_config_and_validation():
    layer = MeanProbabilityLogits("softmax", name="avg")
    assert MeanProbabilityLogits.from_config(layer.get_config()).loss == "softmax"
    with pytest.raises(ValueError, match="Received: loss='hinge'"):
        MeanProbabilityLogits("hinge")


@pytest.mark.parametrize(
    "kwargs",
    [{"hidden_units": -1}, {"dropout": 1.0}, {"learning_rate": 0}, {"loss": "hinge"},
     {"batch_size": 0}, {"l2": -0.1}, {"seeds": 0}, {"oov_rate": 1.0}],
)  # fmt: skip
def test_hparams_validation(kwargs):
    with pytest.raises(ValueError, match="Received"):
        HParams(**kwargs)
