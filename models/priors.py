"""Label priors and output biases that make a new model predict them.

A tagger whose output biases start at 0 predicts p = 0.5 (or, for a MoE
head, about 1/3) for every class while most classes have a prior near 1e-3:
its first epochs only learn to say "no". Starting each class at its train
prior (``label_prior``) removes that phase.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

PRIOR_CLIP = 1e-6  # priors are clipped to [PRIOR_CLIP, 1 - PRIOR_CLIP]
_EXPERT_MAX = 0.99  # gated MoE: the largest initial expert probability


def logit(p) -> np.ndarray:
    """``log(p / (1 - p))`` of ``p`` clipped to [PRIOR_CLIP, 1 - PRIOR_CLIP], in float64."""
    p = np.clip(np.asarray(p, np.float64), PRIOR_CLIP, 1.0 - PRIOR_CLIP)
    return np.log(p) - np.log1p(-p)


def moe_output_biases(prior, num_mixtures: int, gated: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(expert bias [C], output-gate bias [C])`` with which a new MoE predicts ``prior``.

    At init the gates are about uniform over the M experts and the dummy, so
    ``p = M / (M + 1) * sigmoid(expert_bias)``, times ``sigmoid(gate_bias)``
    with output Context Gating (its kernel term is small). The gate bias stays
    at ``sigmoid = 0.5`` unless a frequent class needs an expert above
    ``_EXPERT_MAX``; priors above what the head can reach are capped.
    """
    prior = np.clip(np.asarray(prior, np.float64), PRIOR_CLIP, 1.0 - PRIOR_CLIP)
    share = num_mixtures / (num_mixtures + 1)
    gate = np.full_like(prior, 0.5 if gated else 1.0)
    if gated:
        gate = np.clip(np.maximum(gate, prior / (share * _EXPERT_MAX)), 0.5, 1.0 - PRIOR_CLIP)
    expert = prior / (share * gate)
    return logit(expert), logit(gate)


def init_output_bias(model: keras.Model, label_prior=None) -> keras.Model:
    """Sets the biases of ``model``'s ``logits`` head so that it predicts ``label_prior``.

    A logistic head gets ``logit(prior)``; a head with an ``init_prior(prior)``
    method (``models.av.layers.MixtureOfExperts``) sets its own biases.
    Returns ``model``.
    """
    if label_prior is None:
        return model
    head = model.get_layer("logits")
    prior = np.asarray(label_prior, np.float64).reshape(-1)
    if prior.shape != (model.output_shape[-1],) or not np.all(np.isfinite(prior)):
        raise ValueError(
            f"label_prior must hold {model.output_shape[-1]} finite values. "
            f"Received: label_prior of shape {prior.shape}"
        )
    if hasattr(head, "init_prior"):  # a head with its own parametrisation (MoE)
        head.init_prior(prior)
    else:
        head.bias.assign(logit(prior).astype("f4"))
    return model


def label_prior(dataset: tf.data.Dataset, num_classes: int) -> np.ndarray:
    """Train positives / train examples per class, clipped to [PRIOR_CLIP, 1 - PRIOR_CLIP].

    ``dataset`` yields ``(features, labels)`` batches with dense 0/1 labels
    [batch, num_classes] (one pass; only the labels are used).
    """
    counts, total = np.zeros(num_classes, np.float64), 0
    for labels in dataset.map(lambda _, y: y):
        labels = np.asarray(labels)
        if labels.shape[-1] != num_classes:
            raise ValueError(
                f"Labels must have {num_classes} columns. Received: shape {labels.shape}"
            )
        counts += (labels > 0).sum(axis=0)
        total += len(labels)
    if not total:
        raise ValueError("No examples to compute a label prior from. Received: 0 examples")
    return np.clip(counts / total, PRIOR_CLIP, 1.0 - PRIOR_CLIP)
