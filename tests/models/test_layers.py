"""Value tests for models.layers (SparseDense, sparse_input)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from models.layers import SparseDense, sparse_input

INPUT_DIM = 50
UNITS = 6


def _random_sparse(
    batch: int, input_dim: int, empty_rows=(), density: float = 0.15, seed: int = 0
) -> tf.SparseTensor:
    """Seeded random tf-idf-like SparseTensor with the given rows left empty."""
    rng = np.random.default_rng(seed)
    dense = rng.random((batch, input_dim)).astype(np.float32)
    dense *= rng.random((batch, input_dim)) < density
    # Make sure every non-empty row has at least one entry.
    for r in range(batch):
        if not dense[r].any():
            dense[r, rng.integers(input_dim)] = rng.random() + 0.1
    dense[list(empty_rows)] = 0.0
    return tf.sparse.from_dense(tf.constant(dense))


def _empty_sparse(batch: int, input_dim: int) -> tf.SparseTensor:
    return tf.SparseTensor(
        indices=tf.zeros([0, 2], tf.int64),
        values=tf.zeros([0], tf.float32),
        dense_shape=[batch, input_dim],
    )


def _built_layer(**kwargs) -> SparseDense:
    kwargs.setdefault("bias_initializer", "random_normal")
    layer = SparseDense(UNITS, **kwargs)
    layer.build((None, INPUT_DIM))
    return layer


# --------------------------------------------------------------- sparse == dense
@pytest.mark.parametrize(
    "sp",
    [
        pytest.param(lambda: _random_sparse(8, INPUT_DIM, empty_rows=(3, 6, 7)), id="mid+trailing"),
        pytest.param(
            lambda: _random_sparse(5, INPUT_DIM, empty_rows=(0, 4), seed=1), id="first+last"
        ),
        pytest.param(lambda: _random_sparse(7, INPUT_DIM, seed=2), id="no-empty"),
        pytest.param(lambda: _empty_sparse(4, INPUT_DIM), id="all-empty"),
    ],
)
@pytest.mark.parametrize("activation", ["relu", None])
def test_sparse_matches_dense(sp, activation):
    sp = sp()
    layer = _built_layer(activation=activation)
    dense_in = tf.sparse.to_dense(sp)

    out_sparse = layer(sp)
    out_dense = layer(dense_in)

    assert out_sparse.shape == (sp.dense_shape[0], UNITS)
    expected = dense_in.numpy() @ layer.kernel.numpy() + layer.bias.numpy()
    if activation == "relu":
        expected = np.maximum(expected, 0.0)
    np.testing.assert_allclose(out_dense.numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(out_sparse.numpy(), out_dense.numpy(), atol=1e-5)


def test_sparse_matches_dense_in_tf_function_with_unordered_indices():
    layer = _built_layer(activation="relu")
    sp = _random_sparse(6, INPUT_DIM, empty_rows=(2, 5), seed=3)
    perm = np.random.default_rng(0).permutation(int(tf.shape(sp.values)[0]))
    shuffled = tf.SparseTensor(
        tf.gather(sp.indices, perm), tf.gather(sp.values, perm), sp.dense_shape
    )
    fn = tf.function(
        layer.call,
        input_signature=[tf.SparseTensorSpec([None, INPUT_DIM], tf.float32)],
    )
    out = fn(shuffled)
    np.testing.assert_allclose(out.numpy(), layer(tf.sparse.to_dense(sp)).numpy(), atol=1e-5)
    out_empty = fn(_empty_sparse(3, INPUT_DIM))
    np.testing.assert_allclose(
        out_empty.numpy(), np.broadcast_to(np.maximum(layer.bias.numpy(), 0), (3, UNITS))
    )


# ------------------------------------------------------------------- gradients
def test_kernel_gradient_is_indexed_slices_on_present_ids_only():
    layer = _built_layer(activation="relu")
    sp = _random_sparse(8, INPUT_DIM, empty_rows=(3, 7), density=0.05, seed=4)
    dense_in = tf.sparse.to_dense(sp)
    present = np.unique(sp.indices.numpy()[:, 1])
    assert 0 < len(present) < INPUT_DIM  # the check below must be meaningful

    with tf.GradientTape() as tape:
        loss_sparse = tf.reduce_sum(tf.square(layer(sp) - 0.3))
    g_kernel, g_bias = tape.gradient(loss_sparse, [layer.kernel, layer.bias])

    with tf.GradientTape() as tape:
        loss_dense = tf.reduce_sum(tf.square(layer(dense_in) - 0.3))
    g_kernel_dense, g_bias_dense = tape.gradient(loss_dense, [layer.kernel, layer.bias])

    assert isinstance(g_kernel, tf.IndexedSlices)
    np.testing.assert_array_equal(np.unique(g_kernel.indices.numpy()), present)
    np.testing.assert_allclose(
        tf.convert_to_tensor(g_kernel).numpy(), g_kernel_dense.numpy(), atol=1e-5
    )
    np.testing.assert_allclose(g_bias.numpy(), g_bias_dense.numpy(), atol=1e-5)
    np.testing.assert_allclose(loss_sparse.numpy(), loss_dense.numpy(), rtol=1e-5)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("units", [0, -1, "3", 2.0, True, None])
def test_invalid_units_raise(units):
    with pytest.raises(ValueError, match="Received: units="):
        SparseDense(units)


def test_unknown_input_dim_raises():
    with pytest.raises(ValueError, match="Received: input_shape="):
        SparseDense(3).build((None, None))


def test_sparse_input_helper():
    x = sparse_input(INPUT_DIM)
    assert isinstance(x.type_spec, tf.SparseTensorSpec)
    assert x.shape.as_list() == [None, INPUT_DIM]
    assert x.dtype == tf.float32
    with pytest.raises(ValueError, match="Received"):
        sparse_input(0)


def test_compute_output_shape():
    layer = SparseDense(7)
    assert layer.compute_output_shape((None, 11)).as_list() == [None, 7]
    assert layer.compute_output_shape((4, 3, 11)).as_list() == [4, 3, 7]


# --------------------------------------------------------------- serialization
def test_config_round_trip_and_outputs():
    layer = SparseDense(
        UNITS,
        activation="relu",
        use_bias=True,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=1),
        bias_initializer="ones",
        kernel_regularizer=keras.regularizers.L2(1e-3),
        name="sd",
    )
    layer.build((None, INPUT_DIM))
    config = layer.get_config()
    clone = SparseDense.from_config(config)
    assert clone.get_config() == config
    # Also through the generic registry (registered name).
    generic = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(generic, SparseDense)
    assert generic.get_config() == config

    clone.build((None, INPUT_DIM))
    clone.set_weights(layer.get_weights())
    sp = _random_sparse(6, INPUT_DIM, empty_rows=(1, 5), seed=5)
    np.testing.assert_allclose(clone(sp).numpy(), layer(sp).numpy(), atol=1e-6)
    assert len(clone.losses) == 1  # kernel regularizer survives the round trip


def test_savedmodel_round_trip(tmp_path):
    x = sparse_input(INPUT_DIM)
    model = keras.Model(x, SparseDense(4, activation="relu", bias_initializer="ones")(x))
    sp = _random_sparse(5, INPUT_DIM, empty_rows=(2, 4), seed=6)
    before = model.predict(sp, verbose=0)

    path = str(tmp_path / "model")
    model.save(path, save_format="tf")
    reloaded = keras.models.load_model(path)

    assert isinstance(reloaded.layers[-1], SparseDense)
    after = reloaded.predict(sp, verbose=0)
    np.testing.assert_allclose(after, before, atol=1e-6)
    np.testing.assert_allclose(reloaded(sp).numpy(), before, atol=1e-6)


# -------------------------------------------------------------------- training
@pytest.mark.slow
def test_fit_reduces_loss_on_sparse_dataset():
    keras.utils.set_random_seed(0)
    n = 256
    sp = _random_sparse(n, INPUT_DIM, empty_rows=(10, n - 1), density=0.1, seed=7)
    # Vocabulary ids >= 40 never occur in the training data.
    sp = tf.sparse.retain(sp, sp.indices[:, 1] < 40)
    true_w = np.random.default_rng(8).normal(size=(INPUT_DIM, 1)).astype(np.float32)
    labels = (tf.sparse.to_dense(sp).numpy() @ true_w > 0).astype(np.float32)

    ds = tf.data.Dataset.from_tensor_slices((sp, labels)).shuffle(n, seed=0).batch(32)

    x = sparse_input(INPUT_DIM)
    h = SparseDense(16, activation="relu")(x)
    y = SparseDense(1, activation="sigmoid")(h)  # dense-input path
    model = keras.Model(x, y)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")

    kernel_before = model.layers[1].kernel.numpy().copy()
    history = model.fit(ds, epochs=5, verbose=0)
    losses = history.history["loss"]

    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0]
    # Vocabulary rows never seen in the data keep their initial values (sparse updates).
    kernel_after = model.layers[1].kernel.numpy()
    np.testing.assert_array_equal(kernel_after[40:], kernel_before[40:])
    assert not np.allclose(kernel_after[:40], kernel_before[:40])
