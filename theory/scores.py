"""Attack statistics from model outputs."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def logit_confidence(logits, labels) -> np.ndarray:
    """Logit-scaled confidence log p_y − log Σ_{y'≠y} p_{y'} from logits, stably, in float64.

    Since p = softmax(z), this is z_y − logsumexp_{y'≠y} z_{y'}: the normaliser cancels, so no
    probability is ever formed and confidences near 1 (where log(p/(1−p)) cancels) stay exact.

    logits: (..., C) with C >= 2; labels: integers in [0, C), broadcast against logits[..., 0].
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim < 1 or z.shape[-1] < 2:
        raise ValueError(f"logits must have a last axis of >= 2 classes; got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits must be finite")
    y = np.asarray(labels)
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers; got dtype {y.dtype}")
    if np.any(y < 0) or np.any(y >= z.shape[-1]):
        raise ValueError(f"labels must lie in [0, {z.shape[-1]}); got values outside")
    y = np.broadcast_to(y, z.shape[:-1])
    z_true = np.take_along_axis(z, y[..., None], axis=-1)[..., 0]
    others = np.where(np.arange(z.shape[-1]) == y[..., None], -np.inf, z)
    return z_true - logsumexp(others, axis=-1)
