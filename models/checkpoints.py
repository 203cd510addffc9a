"""Per-epoch weight checkpoints without the optimizer state.

``model.save_weights`` in TensorFlow format saves everything the model tracks,
the optimizer included: with Adam, 3x the weights. Checkpoint averaging needs
only the weights, so :class:`WeightsOnlyCheckpoint` writes each epoch's as one
HDF5 file, ``DIR/epoch-NNN.h5`` (1-based epochs), which ``model.load_weights``
reads back into an identically built model. Remote paths (``gs://``) are
written through a local temporary file.
"""

from __future__ import annotations

import os
import re
import tempfile

import tensorflow as tf
import tf_keras as keras

EPOCH_FILE = "epoch-{epoch:03d}.h5"
BEST_FILE = "best.h5"  # the weights early stopping kept (and the tools' outputs)


def best_path(directory: str) -> str:
    return os.path.join(directory, BEST_FILE)


_EPOCH = re.compile(r"epoch-(\d+)(\.h5|\.index)")  # .index: older TF-format checkpoints


def _is_local(path: str) -> bool:
    return "://" not in path


def save_weights(model: keras.Model, path: str) -> None:
    """``model``'s weights (no optimizer) as HDF5 at ``path`` (local or remote)."""
    if _is_local(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        model.save_weights(path, save_format="h5")
        return
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, os.path.basename(path))
        model.save_weights(local, save_format="h5")
        tf.io.gfile.copy(local, path, overwrite=True)


def load_weights(model: keras.Model, path: str) -> None:
    """Loads a checkpoint: an HDF5 file (``.h5``) or a TF-format prefix (extra objects ignored)."""
    if not path.endswith(".h5"):
        model.load_weights(path).expect_partial()
    elif _is_local(path):
        model.load_weights(path)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, os.path.basename(path))
            tf.io.gfile.copy(path, local)
            model.load_weights(local)


def epoch_checkpoints(directory: str) -> dict[int, str]:
    """``{epoch: path}`` of the ``epoch-NNN`` checkpoints in ``directory`` (HDF5 preferred)."""
    found: dict[int, str] = {}
    for pattern in ("epoch-*.index", "epoch-*.h5"):  # an .h5 replaces an older prefix
        for path in tf.io.gfile.glob(os.path.join(directory, pattern)):
            match = _EPOCH.fullmatch(os.path.basename(path))
            if match:
                found[int(match.group(1))] = (
                    path[: -len(".index")] if match.group(2) == ".index" else path
                )
    return dict(sorted(found.items()))


class WeightsOnlyCheckpoint(keras.callbacks.Callback):
    """After every epoch, saves the model's weights alone to ``directory/epoch-NNN.h5``."""

    def __init__(self, directory: str):
        super().__init__()
        if not isinstance(directory, str) or not directory:
            raise ValueError(
                f"directory must be a non-empty path. Received: directory={directory!r}"
            )
        self.directory = directory

    def path(self, epoch: int) -> str:
        """The file of 1-based ``epoch``."""
        return os.path.join(self.directory, EPOCH_FILE.format(epoch=epoch))

    def on_epoch_end(self, epoch, logs=None):
        save_weights(self.model, self.path(epoch + 1))
