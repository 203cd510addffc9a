"""One servable SavedModel: the trained model plus the tf.Transform graph.

Signatures (all but ``vectorize`` return ``probabilities`` [batch, num_labels]):
  ``raw``              ``title``, ``description``, ``tags`` string [batch] (a
                       video's tags joined by "|"): raw text, cleaned, tokenized
                       and vectorized by the embedded transform graph; also
                       returns ``num_tokens`` and ``num_oov_tokens``.
  ``serving_default``  ``examples``: serialized ``tf.train.Example`` holding the
                       raw fields (``video_id``, ``title``, ``description``, and
                       ``tags`` as one bytes value per tag; for a fusion model
                       also ``mean_rgb``, ``mean_audio``, ``has_av``).
  ``vectorize``        the ``raw`` inputs to the ``sparse`` inputs (``indices``,
                       ``values``, ``dense_shape``) and token/OOV counts.
  ``sparse``           ``indices`` int64 [N, 2], ``values`` float32 [N],
                       ``dense_shape`` int64 [2]: an already-vectorized batch.
  ``fused``            fusion models only: the ``sparse`` inputs plus
                       ``mean_rgb``, ``mean_audio`` and ``has_av`` [batch]; the
                       other signatures score text alone (``has_av`` 0).
  ``top_k``            the ``raw`` inputs plus ``k`` (int32 scalar): only each
                       video's ``k`` best ``top_k_labels``, ``top_k_indices`` and
                       ``top_k_scores`` leave the graph (``models.topk.top_k``), for
                       label spaces too wide to ship a full row per video.
  ``embed``            text models with a hidden layer: the ``raw`` inputs to
                       ``embedding`` [batch, hidden] (the hidden layer after its
                       activation; an ensemble's members concatenated), with the
                       ``raw`` outputs too, from one pass of the transform graph.
  ``label_embeddings`` no inputs: ``labels`` [L] and ``embeddings`` [L, hidden],
                       the output layer's rows (``models.text.model.label_table``).
All text processing is in the graph (``transforms.text``), so TF Serving, Vertex
AI or a TFX BulkInferrer serve raw metadata as the batch predictor does (the
graph uses tensorflow-text ops: ``import tensorflow_text`` before loading it).

Beside the graph, ``assets.extra/`` carries ``labels.txt``,
``thresholds.json``, ``model_card.json`` and ``preprocess_config.json``.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from models import topk
from models.artifacts import without_training_state, write_extras
from models.losses import probabilities, top_probabilities
from models.text.data import DataSpec, bag_of_words
from models.text.model import embedding_model, has_hidden_layer, label_table
from transforms.records import AV_FIELDS, AV_FLAG
from transforms.text import TAG_SEPARATOR

_EXAMPLE_SPEC = {
    "video_id": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "title": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "description": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "tags": tf.io.RaggedFeature(tf.string),
}
_RAW_SIGNATURE = [
    tf.TensorSpec([None], tf.string, name="title"),
    tf.TensorSpec([None], tf.string, name="description"),
    tf.TensorSpec([None], tf.string, name="tags"),
]


class TaggerModule(tf.Module):
    """The exported graph: transform layer + Keras model, one signature per input kind."""

    def __init__(self, model, output: tft.TFTransformOutput, spec: DataSpec, loss: str):
        super().__init__(name="catalog_tagger")
        self.model = model
        self.transform = output.transform_features_layer()
        self._input_dim = spec.input_dim
        self._loss = loss
        self._av_sizes = spec.av_sizes
        self.label_names = tf.constant(list(spec.label_names), tf.string)
        if spec.fusion:
            self.fused = self._fused_function(spec.av_sizes)
        elif has_hidden_layer(model):
            self.embedder = embedding_model(model)
            self.label_table = tf.Variable(label_table(model), trainable=False)
            self.embed, self.label_embeddings = self._embedding_functions()

    def _scores(self, bow: tf.SparseTensor, av: dict | None = None) -> tf.Tensor:
        return probabilities(self._logits(bow, av), self._loss)

    def _logits(self, bow: tf.SparseTensor, av: dict | None = None) -> tf.Tensor:
        if not self._av_sizes:
            return self.model(bow, training=False)
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
        return self.model(inputs, training=False)

    def _vectorize(self, video_id: tf.Tensor, title, description, tags) -> dict:
        batch = tf.shape(video_id, out_type=tf.int64)[0]
        labels = tf.SparseTensor(
            tf.zeros([0, 2], tf.int64), tf.zeros([0], tf.string), tf.stack([batch, 0])
        )
        raw = {"video_id": video_id, "title": title, "description": description, "tags": tags}
        out = self.transform({**raw, "labels": labels})
        bow = bag_of_words(out["token_ids"], out["token_weights"], self._input_dim)
        return {
            "bow": bow,
            "num_tokens": out["num_tokens"],
            "num_oov_tokens": out["num_oov_tokens"],
        }

    @tf.function(input_signature=_RAW_SIGNATURE)
    def raw(self, title, description, tags):
        """Raw text to ``probabilities`` in one graph call."""
        out = self._vectorize(tf.fill(tf.shape(title), ""), title, description, tags)
        return {
            "probabilities": self._scores(out["bow"]),
            "num_tokens": out["num_tokens"],
            "num_oov_tokens": out["num_oov_tokens"],
        }

    @tf.function(input_signature=[*_RAW_SIGNATURE, tf.TensorSpec([], tf.int32, name="k")])
    def top_k(self, title, description, tags, k):
        """Raw text to each video's ``k`` best labels and scores, in the graph: the
        top of the logits, so only ``k`` scores a video go through the activation."""
        out = self._vectorize(tf.fill(tf.shape(title), ""), title, description, tags)
        logits = self._logits(out["bow"])
        top, indices = topk.top_k(logits, tf.minimum(k, tf.shape(logits)[1]))
        return {
            "top_k_scores": top_probabilities(top, logits, self._loss),
            "top_k_indices": indices,
            "top_k_labels": tf.gather(self.label_names, indices),
            "num_tokens": out["num_tokens"],
            "num_oov_tokens": out["num_oov_tokens"],
        }

    def _embedding_functions(self):
        """The ``embed`` and ``label_embeddings`` signatures (models with a hidden layer)."""

        @tf.function(input_signature=_RAW_SIGNATURE)
        def embed(title, description, tags):
            """Raw text to the video's ``embedding`` and the ``raw`` outputs."""
            out = self._vectorize(tf.fill(tf.shape(title), ""), title, description, tags)
            return {
                "embedding": self.embedder(out["bow"], training=False),
                "probabilities": self._scores(out["bow"]),
                "num_tokens": out["num_tokens"],
                "num_oov_tokens": out["num_oov_tokens"],
            }

        @tf.function(input_signature=[])
        def label_embeddings():
            """The label embedding table with the label names, row for row."""
            return {"labels": self.label_names, "embeddings": tf.identity(self.label_table)}

        return embed, label_embeddings

    @tf.function(input_signature=_RAW_SIGNATURE)
    def vectorize(self, title, description, tags):
        """Raw text to the ``sparse`` signature's inputs, through the transform graph."""
        out = self._vectorize(tf.fill(tf.shape(title), ""), title, description, tags)
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

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        spec = dict(_EXAMPLE_SPEC)
        for name, size in zip(AV_FIELDS, self._av_sizes, strict=False):
            spec[name] = tf.io.FixedLenFeature([size], tf.float32, default_value=[0.0] * size)
        if self._av_sizes:
            spec[AV_FLAG] = tf.io.FixedLenFeature([], tf.float32, default_value=0.0)
        parsed = tf.io.parse_example(examples, spec)
        tags = tf.strings.reduce_join(parsed["tags"], axis=1, separator=TAG_SEPARATOR)
        out = self._vectorize(parsed["video_id"], parsed["title"], parsed["description"], tags)
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
        "raw": module.raw,
        "sparse": module.sparse,
        "vectorize": module.vectorize,
        "serving_default": module.serve_examples,
    }
    if spec.fusion:
        signatures["fused"] = module.fused
    else:
        signatures["top_k"] = module.top_k
    if hasattr(module, "embed"):
        signatures |= {"embed": module.embed, "label_embeddings": module.label_embeddings}
    tf.saved_model.save(module, export_dir, signatures=signatures)
    write_extras(export_dir, spec.label_names, extras)
    return export_dir
