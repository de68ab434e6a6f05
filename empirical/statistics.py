"""Attack statistics and per-example quantities from trained heads.

* ``attack_stats``: the logit-scaled confidence log p_y − log Σ_{y'≠y} p_{y'} of every model on
  every query of every example, (models × examples × queries) float64, computed from the logits
  by the shared ``mialaw.theory.scores.logit_confidence`` (stable, no probabilities formed).
* ``linear_gradient_norms``: the norm of the gradient of an example's cross-entropy with respect to
  a linear softmax head's parameters (weights and bias). For logits z = W x + b the gradient is
  (p − e_y) ⊗ [x, 1], an outer product, so its Frobenius norm is ||p − e_y||·sqrt(||x||² + 1).
* ``atypicality``: the Gaussian model's per-example predictor |<x, x − m_y>| / sqrt(xᵀΣx), with the
  class means m_c and the shared covariance Σ estimated on a held-out population (Ledoit–Wolf
  shrinkage of the pooled within-class covariance, so it stays well conditioned when the
  population is smaller than the feature dimension).
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from mialaw.theory.scores import logit_confidence

__all__ = ["CODE_VERSION", "atypicality", "attack_stats", "linear_gradient_norms"]

# Part of every cell's identity: bump when a change alters the stored statistics.
CODE_VERSION = "1"


def attack_stats(logits, labels) -> np.ndarray:
    """Stack per-query logits (each (M, N, C)) into stats (M, N, Q) of logit-scaled confidence.

    ``logits`` is one array (M, N, C) (Q = 1) or a sequence of them (one per query, e.g. the
    original and the horizontally flipped image).
    """

    queries = [logits] if isinstance(logits, np.ndarray) else list(logits)
    if not queries:
        raise ValueError("need the logits of at least one query")
    labels = np.asarray(labels)
    out = []
    for z in queries:
        z = np.asarray(z)
        if z.ndim != 3 or z.shape[1] != labels.shape[0]:
            raise ValueError(
                f"logits must be (models, examples={labels.shape[0]}, classes); got {z.shape}"
            )
        out.append(logit_confidence(z, labels[None, :]))
    return np.stack(out, axis=-1)


def linear_gradient_norms(logits, features, labels) -> np.ndarray:
    """||∇_{W,b} CE(Wx + b, y)|| = ||softmax(z) − e_y||·sqrt(||x||² + 1), shape (M, N) float64.

    logits (M, N, C) of the heads on the examples, features (N, F) as the heads saw them.
    """
    z = np.asarray(logits, dtype=np.float64)
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if z.ndim != 3 or x.ndim != 2 or z.shape[1] != x.shape[0] or y.shape != (x.shape[0],):
        raise ValueError(
            f"need logits (M, N, C), features (N, F), labels (N,); got {z.shape}, {x.shape}, "
            f"{y.shape}"
        )
    p = np.exp(log_softmax(z, axis=-1))
    p[:, np.arange(y.size), y] -= 1.0
    residual = np.sqrt(np.einsum("mnc,mnc->mn", p, p))
    return residual * np.sqrt(np.einsum("nf,nf->n", x, x) + 1.0)[None, :]


def atypicality(features, labels, population, population_labels, *, classes: int) -> np.ndarray:
    """|<x, x − m_y>| / sqrt(xᵀΣx) per example, with m_c and Σ estimated on the population.

    Σ is the Ledoit–Wolf shrinkage estimate of the pooled within-class covariance of the
    population (each population example centred on its class mean).
    """
    from sklearn.covariance import ledoit_wolf

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    pop = np.asarray(population, dtype=np.float64)
    pop_y = np.asarray(population_labels)
    if pop.ndim != 2 or pop.shape[1] != x.shape[1] or pop_y.shape != (pop.shape[0],):
        raise ValueError("population must be (n, F) with one label per row, F as the features")
    missing = [c for c in range(classes) if not np.any(pop_y == c)]
    if missing:
        raise ValueError(f"the population has no example of classes {missing}")
    means = np.stack([pop[pop_y == c].mean(0) for c in range(classes)])
    centred = pop - means[pop_y]
    cov, _ = ledoit_wolf(centred, assume_centered=True)
    gap = np.einsum("nf,nf->n", x, x - means[y])
    quad = np.einsum("nf,nf->n", x @ cov, x)
    return np.abs(gap) / np.sqrt(np.maximum(quad, np.finfo(np.float64).tiny))
