"""Measured points made up with known coefficients: tasks that share β_S and β_C and differ in
β_0, with noise of known standard error (for the transfer and predict tests)."""

import math

import numpy as np

BETA_S, BETA_C = -0.6, 0.3
# No point saturates (analysis' fit rule keeps them all).
INTERCEPTS = {"a": -0.3, "b": -0.6, "c": 0.0, "d": -0.5}


def synthetic_points(
    noise=0.03, seed=0, intercepts=INTERCEPTS, slopes=None, attack="lira_online", fpr=0.01
):
    """Points of each task in ``intercepts`` (dataset = task name, backbone "net") over C in
    (2, 3, 5) and S in 4..128; ``slopes`` maps a task to its own β_S (default: BETA_S)."""
    rng = np.random.default_rng(seed)
    slopes = slopes or {}
    points = []
    for task, b0 in intercepts.items():
        for classes in (2, 3, 5):
            for shots in (4, 8, 16, 32, 64, 128):
                y = b0 + slopes.get(task, BETA_S) * math.log10(shots)
                y += BETA_C * math.log10(classes)
                se = noise * (1 + 0.5 * rng.random())
                y += se * rng.standard_normal()
                points.append(
                    {
                        "dataset": task,
                        "backbone": "net",
                        "classes": classes,
                        "shots": shots,
                        "attack": attack,
                        "fpr": fpr,
                        "advantage": 10**y,
                        "log10_advantage_se": se,
                        "resolvable": True,
                        "detected": True,
                    }
                )
    return points
