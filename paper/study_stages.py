"""Stages of the study that read other stages' results or runs: the shadow-count study (real and
simulated), the regression held out by backbone. Each returns a JSON-ready dict."""

from __future__ import annotations

from pathlib import Path

from mialaw.empirical.analysis import json_ready
from mialaw.empirical.run_fits import fit_rule, regression_inputs, regressions
from mialaw.empirical.shadows import shadow_count_study
from mialaw.simulate.sweep import SweepConfig, run_sweep
from mialaw.theory.fits import fit_linear

SHADOW_FPRS = (0.1, 0.01)
# Part of these stages' configuration: bump it when their analysis changes.
STUDY_VERSION = 2


def shadow_study(run_dir, shadows) -> dict:
    """LiRA at M = ``shadows`` read from the cells of one run with the largest M."""

    return json_ready(shadow_count_study(Path(run_dir), shadows=shadows, fpr=SHADOW_FPRS))


def simulated_shadow_options(shadows, *, dim=64, seed=20) -> list[dict]:
    """The simulated twin of the shadow-count study: online and offline LiRA, per-example and
    global variance, at every M (the Gaussian model of the other simulations)."""
    runs = []
    for i, m in enumerate(shadows):
        for j, attack in enumerate(("lira-online", "lira-offline")):
            for k, variance in enumerate(("per-example", "global")):
                runs.append(
                    {
                        "dim": dim,
                        "sigma": 1.0,
                        "shots": tuple(4**e for e in range(1, 8)),
                        "fpr": SHADOW_FPRS,
                        "targets": 5000,
                        "shadows": m,
                        "attack": attack,
                        "variance": variance,
                        "seed": seed + 4 * i + 2 * j + k,
                        "resamples": 300,
                        "fit_min_shots": 16,
                    }
                )
    return runs


def simulated_shadows(options: list[dict], executor=None) -> dict:

    sweeps = []
    for opts in options:
        result = run_sweep(SweepConfig(**opts), executor=executor).to_json()
        sweeps.append({"shadows": opts["shadows"], "variance": opts["variance"]} | result)
    return {"sweeps": sweeps}


def backbone_regression(points_by_run: dict, fit_on: str, level: float = 0.95) -> dict:
    """log10 adv = β_S log10 S + β_C log10 C + β_0 across backbones of one dataset: leave one
    backbone out, and fitted on ``fit_on``'s runs alone with R² on each other backbone."""
    import numpy as np

    points = [p for rows in points_by_run.values() for p in rows]
    out = {"leave_one_out": regressions(points, level), "fit_on": fit_on, "one_backbone": []}
    for attack, alpha in sorted({(p["attack"], p["fpr"]) for p in points}):
        chosen = [p for p in points if p["attack"] == attack and p["fpr"] == alpha]
        rows = [p for p, ok in zip(chosen, fit_rule(chosen, alpha)) if ok]
        X, y, sigma = regression_inputs(rows)
        on = np.array([p["backbone"] == fit_on for p in rows])
        entry = {"attack": attack, "fpr": alpha, "n_fit": int(on.sum())}
        try:
            fit = fit_linear(X[on], y[on], names=["log10_shots", "log10_classes"], sigma=sigma[on])
        except ValueError as err:
            out["one_backbone"].append(entry | {"error": str(err)})
            continue
        entry |= fit.to_dict(level) | {"held_out": []}
        for backbone in sorted({p["backbone"] for p in rows} - {fit_on}):
            mask = np.array([p["backbone"] == backbone for p in rows])
            entry["held_out"].append(
                {"group": backbone, "n": int(mask.sum()), "r2": fit.r2_on(X[mask], y[mask])}
            )
        out["one_backbone"].append(entry)
    return json_ready(out)
