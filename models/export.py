"""One servable SavedModel: the trained model plus the tf.Transform graph.

Signatures (all but ``vectorize`` return ``probabilities`` [batch, num_labels]):
  ``sparse``           ``indices`` int64 [N, 2], ``values`` float32 [N],
                       ``dense_shape`` int64 [2]: an already-vectorized batch.
  ``tokens``           ``tokens`` string [batch, max_tokens] (cleaned tokens,
                       "" padding) through the embedded transform graph.
  ``vectorize``        ``tokens`` as above to the ``sparse`` inputs (``indices``,
                       ``values``, ``dense_shape``) and token/OOV counts; the
                       batch predictor vectorizes with it, then calls ``sparse``.
  ``serving_default``  ``examples``: serialized ``tf.train.Example`` holding the
                       raw transform features (``video_id``, ``tokens``; for a
                       fusion model also ``mean_rgb``, ``mean_audio``, ``has_av``).
  ``fused``            fusion models only: the ``sparse`` inputs plus
                       ``mean_rgb``, ``mean_audio`` and ``has_av`` [batch]; the
                       other signatures score text alone (``has_av`` 0).
Cleaning and tokenizing (``transforms.text``) are Python/NLTK and not in-graph,
so raw text goes through the batch predictor or is cleaned before ``tokens``.

Beside the graph, ``assets.extra/`` carries ``labels.txt``,
``thresholds.json``, ``model_card.json`` and ``preprocess_config.json``.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
import tensorflow_transform as tft

from models.data import DataSpec, bag_of_words
from models.model import probabilities
from transforms.records import AV_FIELDS, AV_FLAG

EXTRA_DIR = "assets.extra"
LABELS_FILE = "labels.txt"
THRESHOLDS_FILE = "thresholds.json"
CARD_FILE = "model_card.json"
PREPROCESS_CONFIG_FILE = "preprocess_config.json"

_EXAMPLE_SPEC = {
    "video_id": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "tokens": tf.io.VarLenFeature(tf.string),
}


class TaggerModule(tf.Module):
    """The exported graph: transform layer + Keras model, three signatures."""

    def __init__(self, model, output: tft.TFTransformOutput, spec: DataSpec, loss: str):
        super().__init__(name="catalog_tagger")
        self.model = model
        self.transform = output.transform_features_layer()
        self._input_dim = spec.input_dim
        self._loss = loss
        self._av_sizes = spec.av_sizes
        if spec.fusion:
            self.fused = self._fused_function(spec.av_sizes)

    def _scores(self, bow: tf.SparseTensor, av: dict | None = None) -> tf.Tensor:
        if not self._av_sizes:
            return probabilities(self.model(bow, training=False), self._loss)
        batch = bow.dense_shape[0]
        rows = tf.math.bincount(
            tf.cast(bow.indices[:, 0], tf.int32), minlength=tf.cast(batch, tf.int32)
        )
        inputs = {"bow": bow, "has_text": tf.cast(rows > 0, tf.float32)[:, None]}
        if av is None:  # text only
            av = {name: tf.zeros(tf.stack([batch, size]), tf.float32)
                  for name, size in zip(AV_FIELDS, self._av_sizes, strict=True)}  # fmt: skip
            av[AV_FLAG] = tf.zeros([batch], tf.float32)
        inputs |= {name: av[name] for name in AV_FIELDS}
        inputs["has_av"] = tf.reshape(av[AV_FLAG], [-1, 1])
        return probabilities(self.model(inputs, training=False), self._loss)

    def _vectorize(self, video_id: tf.Tensor, tokens: tf.SparseTensor) -> dict:
        batch = tf.shape(video_id, out_type=tf.int64)[0]
        labels = tf.SparseTensor(
            tf.zeros([0, 2], tf.int64), tf.zeros([0], tf.string), tf.stack([batch, 0])
        )
        out = self.transform({"video_id": video_id, "tokens": tokens, "labels": labels})
        bow = bag_of_words(out["token_ids"], out["token_weights"], self._input_dim)
        return {
            "bow": bow,
            "num_tokens": out["num_tokens"],
            "num_oov_tokens": out["num_oov_tokens"],
        }

    def _from_raw(self, video_id: tf.Tensor, tokens: tf.SparseTensor) -> dict:
        out = self._vectorize(video_id, tokens)
        return {
            "probabilities": self._scores(out["bow"]),
            "num_tokens": out["num_tokens"],
            "num_oov_tokens": out["num_oov_tokens"],
        }

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="tokens")])
    def vectorize(self, tokens):
        """Tokens to the ``sparse`` signature's inputs, through the transform graph."""
        out = self._vectorize(tf.fill(tf.shape(tokens)[:1], ""), tf.sparse.from_dense(tokens))
        return {
            "indices": out["bow"].indices,
            "values": out["bow"].values,
            "dense_shape": out["bow"].dense_shape,
            "num_tokens": out["num_tokens"],
            "num_oov_tokens": out["num_oov_tokens"],
        }

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 2], tf.int64, name="indices"),
            tf.TensorSpec([None], tf.float32, name="values"),
            tf.TensorSpec([2], tf.int64, name="dense_shape"),
        ]
    )
    def sparse(self, indices, values, dense_shape):
        bow = tf.sparse.reorder(tf.SparseTensor(indices, values, dense_shape))
        return {"probabilities": self._scores(bow)}

    def _fused_function(self, sizes):
        """The fusion model's signature: a sparse text batch plus AV inputs."""

        @tf.function(input_signature=[
            tf.TensorSpec([None, 2], tf.int64, name="indices"),
            tf.TensorSpec([None], tf.float32, name="values"),
            tf.TensorSpec([2], tf.int64, name="dense_shape"),
            tf.TensorSpec([None, sizes[0]], tf.float32, name="mean_rgb"),
            tf.TensorSpec([None, sizes[1]], tf.float32, name="mean_audio"),
            tf.TensorSpec([None], tf.float32, name="has_av"),
        ])  # fmt: skip
        def fused(indices, values, dense_shape, mean_rgb, mean_audio, has_av):
            bow = tf.sparse.reorder(tf.SparseTensor(indices, values, dense_shape))
            av = {"mean_rgb": mean_rgb, "mean_audio": mean_audio, AV_FLAG: has_av}
            return {"probabilities": self._scores(bow, av)}

        return fused

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="tokens")])
    def tokens(self, tokens):
        video_id = tf.fill(tf.shape(tokens)[:1], "")
        return self._from_raw(video_id, tf.sparse.from_dense(tokens))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        spec = dict(_EXAMPLE_SPEC)
        for name, size in zip(AV_FIELDS, self._av_sizes, strict=False):
            spec[name] = tf.io.FixedLenFeature([size], tf.float32, default_value=[0.0] * size)
        if self._av_sizes:
            spec[AV_FLAG] = tf.io.FixedLenFeature([], tf.float32, default_value=0.0)
        parsed = tf.io.parse_example(examples, spec)
        out = self._vectorize(parsed["video_id"], parsed["tokens"])
        av = {name: parsed[name] for name in (*AV_FIELDS, AV_FLAG)} if self._av_sizes else None
        return {
            "probabilities": self._scores(out["bow"], av),
            "num_tokens": out["num_tokens"],
            "num_oov_tokens": out["num_oov_tokens"],
            "video_id": parsed["video_id"],
        }


def export_model(
    export_dir: str,
    model,
    output: tft.TFTransformOutput,
    spec: DataSpec,
    loss: str,
    extras: dict,
) -> str:
    """Writes the SavedModel and its ``assets.extra`` files; returns the path."""
    module = TaggerModule(without_training_state(model), output, spec, loss)
    signatures = {
        "sparse": module.sparse,
        "tokens": module.tokens,
        "vectorize": module.vectorize,
        "serving_default": module.serve_examples,
    }
    if spec.fusion:
        signatures["fused"] = module.fused
    tf.saved_model.save(module, export_dir, signatures=signatures)
    write_extras(export_dir, spec.label_names, extras)
    return export_dir


def without_training_state(model):
    """A copy of ``model`` with its weights but no optimizer (slots would otherwise be
    saved with the graph, tripling an Adam-trained export)."""
    import tf_keras as keras

    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    return clean


def write_extras(export_dir: str, label_names, extras: dict) -> None:
    """``assets.extra/``: ``labels.txt`` plus one JSON file per ``extras`` entry."""
    extra = os.path.join(export_dir, EXTRA_DIR)
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(os.path.join(extra, LABELS_FILE), "w") as handle:
        handle.write("".join(f"{name}\n" for name in label_names))
    for name, payload in extras.items():
        with tf.io.gfile.GFile(os.path.join(extra, name), "w") as handle:
            handle.write(json.dumps(payload, indent=2, sort_keys=True))


def read_extra(export_dir: str, name: str):
    """One ``assets.extra`` file: JSON decoded, ``labels.txt`` as a list."""
    with tf.io.gfile.GFile(os.path.join(export_dir, EXTRA_DIR, name)) as handle:
        text = handle.read()
    return text.splitlines() if name == LABELS_FILE else json.loads(text)
