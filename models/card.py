"""The model card: one builder for every model kind, and the kind every consumer reads.

Every card has ``kind`` (one of ``MODEL_KINDS``), ``model_version`` (the UTC
time of training), ``metrics`` (eval and test), ``versions`` of the libraries
that trained it and, per kind, its own sections (``data``/``vocabulary``/
``hparams`` for text, ``av`` for the audio/visual models, ``tuning`` after
``train --tune``). Consumers dispatch on ``kind_of(card)`` and nothing else.
"""

from __future__ import annotations

import datetime

import tensorflow as tf
import tf_keras as keras

TEXT = "text"  # catalog text in (the ``raw`` signature)
FUSION = "text+av"  # catalog text plus mean_rgb/mean_audio vectors (``fused``)
YT8M_VIDEO = "yt8m-video"  # YouTube-8M video-level features (``features``)
YT8M_FRAMES = "yt8m-frames"  # YouTube-8M frame-level features (``frames``)
MODEL_KINDS = (TEXT, FUSION, YT8M_VIDEO, YT8M_FRAMES)
TEXT_KINDS = (TEXT, FUSION)  # read catalogs (CatalogIntake); the others read TFRecords


def model_card(results: dict, *, kind: str, **sections) -> dict:
    """The common fields plus ``sections``; ``versions`` merges in extra entries."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}. Received: kind={kind!r}")
    now = datetime.datetime.now(datetime.UTC)
    versions = {"tensorflow": tf.__version__, "tf_keras": keras.__version__}
    versions |= sections.pop("versions", {})
    return {
        "kind": kind,
        "model_version": now.strftime("%Y%m%dT%H%M%SZ"),
        "metrics": results,
        **sections,
        "versions": versions,
    }


def kind_of(card: dict) -> str:
    """The card's model kind. Cards written before ``kind`` existed are read by their
    ``features``/``av`` sections (those text cards cannot say "fusion": train again)."""
    if "kind" in card:
        return card["kind"]
    if card.get("features") == "yt8m":
        return YT8M_FRAMES if card["av"]["frame_level"] else YT8M_VIDEO
    return TEXT


def input_mode(kind: str) -> str:
    """How the batch predictor feeds the model: "text" (raw catalog text, fusion
    included), "video" or "frames" (YouTube-8M features)."""
    return {YT8M_VIDEO: "video", YT8M_FRAMES: "frames"}.get(kind, "text")
