"""The model card: one builder for every model kind (text, fusion, YouTube-8M).

Every card has ``model_version`` (the UTC time of training), ``metrics`` (eval
and test), ``versions`` of the libraries that trained it and, per kind, its
own sections (``data``/``vocabulary``/``hparams`` for text, ``av`` for the
audio/visual models, ``tuning`` after ``train --tune``).
"""

from __future__ import annotations

import datetime

import tensorflow as tf
import tf_keras as keras


def model_card(results: dict, **sections) -> dict:
    """The common fields plus ``sections``; ``versions`` merges in extra entries."""
    now = datetime.datetime.now(datetime.UTC)
    versions = {"tensorflow": tf.__version__, "tf_keras": keras.__version__}
    versions |= sections.pop("versions", {})
    return {
        "model_version": now.strftime("%Y%m%dT%H%M%SZ"),
        "metrics": results,
        **sections,
        "versions": versions,
    }
