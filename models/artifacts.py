"""The layout of a model dir and of its export, and the helpers that read and write it.

    MODEL_DIR/training_summary.json       the trainer's summary (SUMMARY_FILE)
    MODEL_DIR/saved_model/                the one SavedModel (SAVED_MODEL_DIR)
        assets.extra/labels.txt           label names, one per output column
        assets.extra/thresholds.json      a decision threshold per label
        assets.extra/model_card.json      kind, data, settings and metrics
        assets.extra/preprocess_config.json   text models: the preprocess settings

Every model kind (``models.card.MODEL_KINDS``) writes this layout, and every
consumer (predict, nightly, evaluate, serve, the audio/visual tools) reads it
through these names.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from transforms.layout import PREPROCESS_CONFIG_FILE

__all__ = ["PREPROCESS_CONFIG_FILE"]  # re-exported: the export carries it too

SUMMARY_FILE = "training_summary.json"
SAVED_MODEL_DIR = "saved_model"
EXTRA_DIR = "assets.extra"
LABELS_FILE = "labels.txt"
THRESHOLDS_FILE = "thresholds.json"
CARD_FILE = "model_card.json"


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
