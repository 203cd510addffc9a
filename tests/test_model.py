"""The model builder: architecture per hyperparameters, losses, validation."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.layers import SparseDense
from models.model import HParams, build_model, loss_fn, probabilities


def _bow(batch: int = 3, dim: int = 50) -> tf.SparseTensor:
    return tf.sparse.reorder(
        tf.SparseTensor([[0, 1], [0, 7], [1, 3], [2, 49]], [0.5, 1.0, 2.0, 0.1], [batch, dim])
    )


def test_hidden_model_layers_and_shapes():
    model = build_model(50, 4, HParams(hidden_units=8))
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
    assert loss_fn(HParams()).get_config()["from_logits"] is True
    assert loss_fn(HParams(loss="softmax")).get_config()["from_logits"] is True
    np.testing.assert_allclose(probabilities(logits, "sigmoid"), tf.sigmoid(logits))
    assert float(tf.reduce_sum(probabilities(logits, "softmax"))) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"hidden_units": -1}, {"dropout": 1.0}, {"learning_rate": 0}, {"loss": "hinge"},
     {"batch_size": 0}, {"l2": -0.1}],
)  # fmt: skip
def test_hparams_validation(kwargs):
    with pytest.raises(ValueError, match="Received"):
        HParams(**kwargs)
