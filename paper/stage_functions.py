"""The computations behind each stage of `mialaw reproduce`; each returns plain JSON data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mialaw.empirical.analysis import fit_runs
from mialaw.empirical.config import RunConfig
from mialaw.empirical.sweep import run_sweep as run_empirical_sweep
from mialaw.simulate.sweep import SweepConfig
from mialaw.simulate.sweep import run_sweep as run_simulated_sweep
from mialaw.theory import average, dp
from mialaw.theory.fits import fit_power_law
from mialaw.theory.model import GaussianModel

from .profiles import EmpiricalSpec, Profile, SimulationSpec


def derive() -> dict:
    """Every step of the symbolic derivation, with its LaTeX and its verification."""
    import sympy as sp

    from mialaw.theory.derivation import derive as run_derivation

    derivation = run_derivation()
    steps = [
        {
            "name": step.name,
            "title": step.title,
            "latex": sp.latex(step.statement),
            "verified": bool(step.verified),
            "how": step.how,
            "strength": step.strength,
        }
        for step in derivation.steps
    ]
    return {
        "steps": steps,
        "all_verified": all(s["verified"] for s in steps),
        "text": derivation.to_text(),
        "latex": derivation.to_latex(),
    }


def theory_config(spec: Profile) -> dict:
    return dataclasses.asdict(spec.theory) | {
        "epsilons": list(spec.epsilons),
        "delta": spec.delta,
    }


def _theory_shots(t) -> np.ndarray:
    return np.logspace(0, t.max_log10_shots, t.max_log10_shots * t.shots_per_decade + 1)


def theory(spec: Profile) -> dict:
    """Exact average-case and pooled vulnerability over a log grid of S, and its slopes."""

    t = spec.theory
    model = GaussianModel(dim=t.dim, sigma=t.sigma)
    shots = _theory_shots(t)
    # A sub-grid of the main grid (same float values, so the rows can be matched exactly).
    step = t.shots_per_decade // t.pooled_per_decade
    pooled_shots = shots[::step][1 : t.pooled_max_log10_shots * t.pooled_per_decade + 1]
    rows = []
    slopes = []
    for alpha in t.fpr:
        per_test = {
            test: average.average_log_advantage(model, shots, alpha, test=test)
            for test in ("lira", "np")
        }
        asym = average.average_asymptote(model, shots, alpha)
        pooled = average.pooled_tpr(model, pooled_shots, alpha)
        pooled_adv = dict(zip(pooled_shots.tolist(), np.atleast_1d(pooled.advantage).tolist()))
        for i, s in enumerate(shots):
            rows.append(
                {
                    "shots": float(s),
                    "fpr": alpha,
                    "advantage_lira": float(np.exp(per_test["lira"][i])),
                    "advantage_np": float(np.exp(per_test["np"][i])),
                    "log_advantage_lira": float(per_test["lira"][i]),
                    "log_advantage_np": float(per_test["np"][i]),
                    "log_asymptote": float(asym[i]),
                    "pooled_advantage": pooled_adv.get(float(s)),
                }
            )
        top = (shots >= t.slope_range[0]) & (shots <= t.slope_range[1])
        for test in ("lira", "np"):
            fit = fit_power_law(shots[top], np.exp(per_test[test][top]))
            local = np.diff(per_test[test]) / np.diff(np.log(shots))
            slopes.append(
                {
                    "fpr": alpha,
                    "test": test,
                    "slope": fit.slope.estimate,
                    "slope_ci": [fit.slope.lower, fit.slope.upper],
                    "intercept": fit.intercept.estimate,
                    "local_slope_at_max_shots": float(local[-1]),
                    "shots_range": list(t.slope_range),
                }
            )
    dp_rows = []
    for eps in spec.epsilons:
        for alpha in spec.fpr:
            res = dp.dp_shots(model, eps, spec.delta, alpha, test="lira")
            dp_rows.append({"epsilon": eps, "delta": spec.delta, "fpr": alpha, **_plain(res)})
    return {
        "model": {"dim": t.dim, "sigma": t.sigma},
        "rows": rows,
        "slopes": slopes,
        "dp": dp_rows,
    }


def _plain(result) -> dict:
    if dataclasses.is_dataclass(result):
        result = dataclasses.asdict(result)
    return {
        k: (v.item() if isinstance(v, np.generic) else v)
        for k, v in result.items()
        if isinstance(v, (int, float, str, bool, np.generic)) or v is None
    }


def simulate(sim: SimulationSpec, executor=None) -> dict:
    """One simulated sweep (oracle or LiRA) with its fits and the exact theory beside it;
    ``executor`` (None: serial) runs its S-points."""

    result = run_simulated_sweep(SweepConfig(**sim.options), progress=True, executor=executor)
    return {"label": sim.label} | result.to_json()


# Part of the empirical stages' configuration: bump it when the analysis of finished cells changes,
# so that the fits are recomputed (the cells themselves are reused from the run folder).
EMPIRICAL_ANALYSIS_VERSION = 8


def empirical(emp: EmpiricalSpec, run_dir, device: str, executor=None) -> dict:
    """One empirical sweep (resumable cell by cell in ``run_dir``) and its fits; ``executor``
    (None: serial) computes its cells."""

    config = RunConfig(**(emp.options | {"device": device}))
    if executor is not None:  # workers may run in another folder: they need the full path
        run_dir = Path(run_dir).absolute()
    # Its analysis: exactly these cells.
    result = run_empirical_sweep(config, run_dir, progress=True, executor=executor)
    # The run folder is recorded relative to the output folder, which may move.
    return {
        "label": emp.label,
        "run_dir": f"runs/{emp.label}",
        "weight_decay": config.weight_decay,
    } | _relative_runs(result.to_json())


def _relative_runs(payload: dict) -> dict:
    payload["runs"] = [f"runs/{Path(r).name}" for r in payload.get("runs", [])]
    return payload


def empirical_combined(run_dirs) -> dict:
    """The regression across datasets: all real-image runs fitted together (leave one out)."""

    result = fit_runs([str(d) for d in run_dirs])
    return {"label": "all datasets"} | _relative_runs(result.to_json())
