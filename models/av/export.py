"""One servable SavedModel for an audio/visual (YouTube-8M style) model.

The same conventions as the text export (``models/text/export.py``): probabilities
out, ``assets.extra/`` with ``labels.txt``, ``thresholds.json`` and
``model_card.json``. Signatures:

  video-level  ``features``: ``mean_rgb`` float32 [batch, rgb], ``mean_audio``
               float32 [batch, audio] (dense features).
  frame-level  ``frames``: ``rgb`` float32 [batch, frames, rgb], ``audio``
               [batch, frames, audio], ``num_frames`` int32 [batch].
  both         ``serving_default``: ``examples``, serialized YouTube-8M
               ``tf.train.Example`` (video-level) or ``SequenceExample``
               (frame-level, quantized bytes, dequantized in-graph).

``check_size`` enforces ``--max-model-mb`` before anything is written.
"""

from __future__ import annotations

import os

import tensorflow as tf

from models import artifacts
from models.av import data as yt8m_data
from models.av.zoo import model_weights_mb
from transforms.errors import JobError

CARD_AV = "av"  # the model card's section describing the audio/visual model


def video_signature(sizes: dict) -> list:
    """The ``features`` signature's inputs."""
    return [
        tf.TensorSpec([None, sizes["mean_rgb"]], tf.float32, name="mean_rgb"),
        tf.TensorSpec([None, sizes["mean_audio"]], tf.float32, name="mean_audio"),
    ]


def frame_signature(sizes: dict) -> list:
    """The ``frames`` signature's inputs."""
    return [
        tf.TensorSpec([None, None, sizes["rgb"]], tf.float32, name="rgb"),
        tf.TensorSpec([None, None, sizes["audio"]], tf.float32, name="audio"),
        tf.TensorSpec([None], tf.int32, name="num_frames"),
    ]


def _video_module(model, sizes: dict, num_classes: int) -> tf.Module:
    module = tf.Module(name="catalog_tagger_av")
    module.model = model

    @tf.function(input_signature=video_signature(sizes))
    def features(mean_rgb, mean_audio):
        inputs = {"mean_rgb": mean_rgb, "mean_audio": mean_audio}
        return {"probabilities": tf.sigmoid(module.model(inputs, training=False))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        parsed, _ = yt8m_data.parse_video_level(examples, num_classes, sizes)
        out = features(parsed["mean_rgb"], parsed["mean_audio"])
        return {**out, "video_id": parsed["video_id"]}

    module.features, module.serve_examples = features, serve_examples
    return module, {"features": features, "serving_default": serve_examples}


def _frame_module(model, sizes: dict, num_classes: int, max_frames: int) -> tf.Module:
    module = tf.Module(name="catalog_tagger_av")
    module.model = model

    @tf.function(input_signature=frame_signature(sizes))
    def frames(rgb, audio, num_frames):
        inputs = {"rgb": rgb, "audio": audio, "num_frames": num_frames}
        return {"probabilities": tf.sigmoid(module.model(inputs, training=False))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        parsed, _ = yt8m_data.parse_frame_level(examples, num_classes, max_frames, sizes)
        out = frames(parsed["rgb"], parsed["audio"], parsed["num_frames"])
        return {**out, "video_id": parsed["video_id"]}

    module.frames, module.serve_examples = frames, serve_examples
    return module, {"frames": frames, "serving_default": serve_examples}


def check_size(model, max_model_mb: float | None) -> float:
    """The model's weight size in MB; a clear error above the budget."""
    size = model_weights_mb(model)
    if max_model_mb is not None and size > max_model_mb:
        raise JobError(
            f"the model's weights take {size:.1f} MB, over --max-model-mb {max_model_mb:g}; "
            "compress it (--dtype float16) or shrink it (fewer mixtures, smaller hidden size)"
        )
    return size


def export_av_model(
    export_dir: str, model, labels, thresholds, card: dict, max_model_mb: float | None = None
) -> str:
    """Writes the SavedModel and its extras; ``card[CARD_AV]`` describes the inputs."""
    av = card[CARD_AV]
    card = {**card, CARD_AV: {**av, "weights_mb": round(check_size(model, max_model_mb), 4)}}
    sizes, num_classes = av["feature_sizes"], len(labels)
    model = artifacts.without_training_state(model)
    if av["frame_level"]:
        module, signatures = _frame_module(model, sizes, num_classes, av["max_frames"])
    else:
        module, signatures = _video_module(model, sizes, num_classes)
    tf.saved_model.save(module, export_dir, signatures=signatures)
    extras = {
        artifacts.THRESHOLDS_FILE: dict(zip(labels, map(float, thresholds), strict=True)),
        artifacts.CARD_FILE: card,
    }
    artifacts.write_extras(export_dir, labels, extras)
    return export_dir


def saved_model_mb(export_dir: str) -> float:
    """Bytes on disk of a SavedModel directory, in MB (2**20)."""
    total = 0
    for root, _, files in tf.io.gfile.walk(export_dir):
        total += sum(tf.io.gfile.stat(os.path.join(root, f)).length for f in files)
    return total / 2**20
