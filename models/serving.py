"""A loaded export with numpy in and numpy out, for the batch predictor.

One instance per worker process (shared across its threads by Beam's
``shared.Shared``, or across processes by ``multi_process_shared``). The
mismatches that would silently mis-tag videos are checked at load time.
"""

from __future__ import annotations

import os
import time

import numpy as np
import tensorflow as tf

from models import artifacts, card


class ModelMismatchError(RuntimeError):
    """The export's parts disagree (labels, thresholds, output width)."""


class LoadedTagger:
    """The ``vectorize`` and ``sparse`` signatures of one export, plus its extras."""

    def __init__(self, export_dir: str):
        start = time.monotonic()
        self.export_dir = export_dir
        import transforms.text  # noqa: F401  (registers the tensorflow-text ops of the graph)

        self._model = tf.saved_model.load(export_dir)
        self.labels = artifacts.read_extra(export_dir, artifacts.LABELS_FILE)
        thresholds = artifacts.read_extra(export_dir, artifacts.THRESHOLDS_FILE)
        self.card = artifacts.read_extra(export_dir, artifacts.CARD_FILE)
        self.kind = card.kind_of(self.card)
        if self.kind in card.TEXT_KINDS:  # raw text in, in one graph call
            self._raw = main = self._model.signatures["raw"]
            self._vectorize = self._model.signatures["vectorize"]
            self._sparse = self._model.signatures["sparse"]
            self._fused = self._model.signatures.get("fused")
            self._embed = self._model.signatures.get("embed")  # models with a hidden layer
            self._top_k = self._model.signatures.get("top_k")  # text models (not fusion)
        else:  # audio/visual: dense inputs
            signature = "frames" if self.kind == card.YT8M_FRAMES else "features"
            self._dense = main = self._model.signatures[signature]
        if sorted(thresholds) != sorted(self.labels):
            raise ModelMismatchError(f"thresholds and labels.txt disagree in {export_dir!r}")
        self.thresholds = np.array([thresholds[name] for name in self.labels], np.float32)
        width = main.structured_outputs["probabilities"].shape[-1]
        if width is not None and width != len(self.labels):
            raise ModelMismatchError(
                f"the model scores {width} labels but labels.txt has {len(self.labels)}"
            )
        self.load_seconds = time.monotonic() - start

    def model_version(self) -> str:
        return self.card.get("model_version", os.path.basename(self.export_dir))

    @staticmethod
    def _text(titles, descriptions, tags) -> dict:
        return {
            "title": tf.constant(titles, tf.string, [len(titles)]),
            "description": tf.constant(descriptions, tf.string, [len(titles)]),
            "tags": tf.constant(tags, tf.string, [len(titles)]),
        }

    def score_raw(self, titles: list[str], descriptions: list[str], tags: list[str]) -> dict:
        """Raw text (``tags[i]``: the video's tags joined by "|") to ``probabilities``
        ``[n, num_labels]``, ``num_tokens`` and ``num_oov_tokens`` ``[n]``: one call
        of the ``raw`` signature, cleaning and tokenizing included."""
        out = self._raw(**self._text(titles, descriptions, tags))
        return {name: value.numpy() for name, value in out.items()}

    def top_k_raw(self, titles: list[str], descriptions: list[str], tags: list[str], k: int):
        """Raw text to each video's ``k`` best ``top_k_indices`` and ``top_k_scores``
        ``[n, k]`` (and the token counts): ``tf.math.top_k`` in the graph, so a wide
        label space never leaves it as a full row (the ``top_k`` signature)."""
        text = self._text(titles, descriptions, tags)
        out = self._top_k(**text, k=tf.constant(k, tf.int32))
        return {name: value.numpy() for name, value in out.items() if name != "top_k_labels"}

    def has_embeddings(self) -> bool:
        """Whether the export has the ``embed`` signature (``embed_raw``)."""
        return getattr(self, "_embed", None) is not None

    def embed_raw(self, titles: list[str], descriptions: list[str], tags: list[str]) -> dict:
        """``score_raw``'s outputs plus each video's ``embedding`` ``[n, hidden]``,
        from one pass of the transform graph (the ``embed`` signature)."""
        out = self._embed(**self._text(titles, descriptions, tags))
        return {name: value.numpy() for name, value in out.items()}

    def vectorize(self, titles: list[str], descriptions: list[str], tags: list[str]) -> dict:
        """Raw text to ``indices``/``values``/``dense_shape`` and token counts."""
        out = self._vectorize(**self._text(titles, descriptions, tags))
        return {name: value.numpy() for name, value in out.items()}

    def predict_sparse(self, indices, values, dense_shape) -> np.ndarray:
        """Probabilities ``[batch, num_labels]`` for one sparse batch."""
        out = self._sparse(
            indices=tf.constant(indices, tf.int64),
            values=tf.constant(values, tf.float32),
            dense_shape=tf.constant(dense_shape, tf.int64),
        )
        return out["probabilities"].numpy()

    def is_fusion(self) -> bool:
        """A text + audio/visual model (``predict_fused`` takes the AV inputs too)."""
        return self.kind == card.FUSION

    def predict_fused(self, indices, values, dense_shape, av: dict) -> np.ndarray:
        """Probabilities for one sparse text batch plus its ``mean_rgb``,
        ``mean_audio`` [batch, size] and ``has_av`` [batch] arrays."""
        out = self._fused(
            indices=tf.constant(indices, tf.int64),
            values=tf.constant(values, tf.float32),
            dense_shape=tf.constant(dense_shape, tf.int64),
            **{name: tf.constant(value, tf.float32) for name, value in av.items()},
        )
        return out["probabilities"].numpy()

    def predict_dense(self, inputs: dict) -> np.ndarray:
        """Probabilities ``[batch, num_labels]`` of an audio/visual model for one batch
        of named dense inputs (``mean_rgb``/``mean_audio`` or ``rgb``/``audio``/``num_frames``)."""
        return self._dense(**{k: tf.constant(v) for k, v in inputs.items()})[
            "probabilities"
        ].numpy()

    def metadata(self) -> dict:
        """Picklable facts a proxy (``multi_process_shared``) can hand back."""
        return {
            "labels": self.labels,
            "thresholds": self.thresholds,
            "model_version": self.model_version(),
            "load_seconds": self.load_seconds,
        }
