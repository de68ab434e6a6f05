"""Predict membership-inference vulnerability from a fitted regression, without training anything.

The project's regression log10(TPR − FPR) = β_S·log10 S + β_C·log10 C + β_0 (one per attack and
FPR; ``mialaw.empirical.analysis``) is shipped with the package in ``shipped_fits.json``, each fit
with its provenance (source run(s), datasets, backbones, the S and C it was fitted on, the fit
rule) and, where it could be recomputed, the coefficients' covariance. ``predict`` gives the TPR
at (S, C, FPR) with an interval, ``shots_for`` inverts for the S per class at which the advantage
falls under a target.

Intervals. With the covariance, the prediction is the fitted plane's band at (log10 S, log10 C)
(Student t with the fit's residual degrees of freedom, or the normal quantile for a weighted fit
that took its errors as known) and the S needed is Fieller's interval (``mialaw.empirical.laws``).
Without it (a fit JSON that stores only per-coefficient intervals), every coefficient is let range
over its own interval at once (interval arithmetic over the box of coefficients): conservative,
since it ignores that the intercept and the slopes are correlated (for these fits strongly
negatively) and lets all three sit at their extremes together.

These are *predictions for the setting the fit came from*; ``held_out_r2`` says how well a fit
transferred to a held-out dataset or C, and is printed with every prediction: a fit over several
datasets with a negative held-out R² does not transfer across datasets.

``build_fits(paths)`` regenerates the shipped file from stage JSONs
(``paper/stages/empirical-*.json``) or from ``mialaw empirical fit --json`` output:
``python -m mialaw.empirical.predict STAGE... --out FILE``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "FORMAT",
    "SHIPPED_FITS",
    "Prediction",
    "Regression",
    "ShotsPrediction",
    "build_fits",
    "load_fits",
    "predict",
    "select_fit",
    "shots_for",
]

FORMAT = "mialaw-fits/1"
SHIPPED_FITS = Path(__file__).with_name("shipped_fits.json")
DEFAULT_SOURCE = "fashion-mnist-lite0"  # a pretrained backbone: the practitioners' setting
NAMES = ("intercept", "log10_shots", "log10_classes")
ATTACKS = ("lira_online", "lira_offline", "rmia")


@dataclass(frozen=True)
class Regression:
    """One fitted regression: coefficients in ``NAMES`` order and where they came from."""

    source: str
    attack: str
    fpr: float
    coef: tuple
    ci: tuple  # ((lower, upper),) per coefficient
    level: float
    n: int
    covariance: tuple | None = None  # 3 × 3, or None when not stored
    dof: int | None = None
    scale_estimated: bool = True  # False: a weighted fit that took its errors as known
    r2: float | None = None
    held_out_r2: float | None = None
    held_out_by: str | None = None
    provenance: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.source}/{self.attack}/{self.fpr:g}"

    def line(self, classes: float):
        """The ``laws.Line`` in log10 S at fixed C (needs the covariance)."""
        from mialaw.empirical.laws import Line

        if self.covariance is None:
            raise ValueError(f"fit {self.id} stores no covariance")
        z = math.log10(classes)
        c = np.asarray(self.covariance, dtype=np.float64)
        b0, bs, bc = self.coef
        return Line(
            intercept=b0 + bc * z,
            slope=bs,
            covariance=(
                (c[0, 0] + 2 * z * c[0, 2] + z * z * c[2, 2], c[0, 1] + z * c[1, 2]),
                (c[0, 1] + z * c[1, 2], c[1, 1]),
            ),
            dof=self.dof if self.dof is not None else self.n - 3,
            level=self.level,
            known_scale=not self.scale_estimated,
        )

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "attack": self.attack,
            "fpr": self.fpr,
            "coefficients": {
                name: {"estimate": c, "ci": list(ci)}
                for name, c, ci in zip(NAMES, self.coef, self.ci)
            },
            "covariance": None if self.covariance is None else [list(r) for r in self.covariance],
            "dof": self.dof,
            "scale_estimated": self.scale_estimated,
            "level": self.level,
            "n": self.n,
            "r2": self.r2,
            "held_out_r2": self.held_out_r2,
            "held_out_by": self.held_out_by,
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Regression:
        try:
            coefs = d["coefficients"]
            coef = tuple(float(coefs[n]["estimate"]) for n in NAMES)
            ci = tuple(tuple(float(v) for v in coefs[n]["ci"]) for n in NAMES)
            cov = d.get("covariance")
            if cov is not None:
                cov = tuple(tuple(float(v) for v in row) for row in cov)
                if np.shape(cov) != (3, 3):
                    raise ValueError("covariance must be 3 × 3")
            return cls(
                source=str(d.get("source", "user")),
                attack=str(d["attack"]),
                fpr=float(d["fpr"]),
                coef=coef,
                ci=ci,
                level=float(d.get("level", 0.95)),
                n=int(d["n"]),
                covariance=cov,
                dof=None if d.get("dof") is None else int(d["dof"]),
                scale_estimated=bool(d.get("scale_estimated", True)),
                r2=d.get("r2"),
                held_out_r2=d.get("held_out_r2"),
                held_out_by=d.get("held_out_by"),
                provenance=dict(d.get("provenance", {})),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"not a regression fit ({err!r}); a fit needs attack, fpr, n and coefficients "
                f"{list(NAMES)} each with estimate and ci"
            ) from None


@dataclass(frozen=True)
class Prediction:
    """Predicted TPR − FPR (and TPR) at (S, C, FPR) with its interval."""

    shots: float
    classes: int
    fpr: float
    advantage: tuple  # (lower, estimate, upper)
    method: str
    fit: str
    extrapolated: bool

    @property
    def tpr(self) -> tuple:
        return tuple(min(1.0, self.fpr + a) for a in self.advantage)

    def to_dict(self) -> dict:
        lo, est, hi = self.advantage
        return {
            "shots": self.shots,
            "classes": self.classes,
            "fpr": self.fpr,
            "advantage": est,
            "advantage_ci": [lo, hi],
            "tpr": self.tpr[1],
            "tpr_ci": [self.tpr[0], self.tpr[2]],
            "interval": self.method,
            "fit": self.fit,
            "extrapolated": self.extrapolated,
        }


@dataclass(frozen=True)
class ShotsPrediction:
    """S per class at which the predicted TPR − FPR falls under ``target_advantage``."""

    target_advantage: float
    classes: int
    fpr: float
    shots: tuple  # (lower, estimate, upper); inf = not reached within what the fit can say
    method: str
    fit: str
    extrapolated: bool

    def to_dict(self) -> dict:
        lo, est, hi = self.shots
        return {
            "target_advantage": self.target_advantage,
            "classes": self.classes,
            "fpr": self.fpr,
            "shots": est,
            "shots_ci": [lo, hi],
            "shots_ceil": math.ceil(est) if math.isfinite(est) else None,
            "interval": self.method,
            "fit": self.fit,
            "extrapolated": self.extrapolated,
        }


# --------------------------------------------------------------------------- loading
def load_fits(path=None) -> tuple[Regression, ...]:
    """The fits in ``path`` (default: the shipped ones).

    Accepts this module's format (``{"format": "mialaw-fits/1", "fits": [...]}``), a single fit
    object or a list of them, or anything ``build_fits`` reads (a stage JSON, ``mialaw empirical
    fit --json`` output).
    """
    path = SHIPPED_FITS if path is None else Path(path)
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"fit file {path} does not exist") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"fit file {path} is not readable JSON ({err})") from None
    if isinstance(data, dict) and data.get("format") == FORMAT:
        items = data.get("fits", [])
    elif isinstance(data, dict) and ("result" in data or "fit" in data):
        items = build_fits([path])["fits"]
    elif isinstance(data, dict):
        items = [data]
    elif isinstance(data, list):
        items = data
    else:
        raise ValueError(f"fit file {path} holds neither fits nor a fit result")
    fits = tuple(Regression.from_dict(d) for d in items if "error" not in d)
    if not fits:
        raise ValueError(f"fit file {path} holds no usable regression fit")
    return fits


def select_fit(fits, *, fpr: float, attack: str = "lira_online", source=None) -> Regression:
    """The fit of ``attack`` at ``fpr`` (from ``source``; default: the shipped default source, or
    the only source there is)."""
    fits = tuple(fits)
    sources = sorted({f.source for f in fits})
    if source is None:
        source = DEFAULT_SOURCE if DEFAULT_SOURCE in sources else sources[0]
        if len(sources) > 1 and DEFAULT_SOURCE not in sources:
            raise ValueError(f"several fit sources {sources}; choose one with source=")
    if source not in sources:
        raise ValueError(f"unknown fit source {source!r}; allowed: {', '.join(sources)}")
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}; got {attack!r}")
    found = [
        f for f in fits if f.source == source and f.attack == attack and math.isclose(f.fpr, fpr)
    ]
    if not found:
        have = sorted({f.fpr for f in fits if f.source == source and f.attack == attack})
        raise ValueError(
            f"no {attack} fit at FPR {fpr:g} in {source}; fitted FPRs: "
            f"{', '.join(f'{a:g}' for a in have) or 'none'} (the regression is not interpolated "
            "across FPR)"
        )
    return found[0]


# --------------------------------------------------------------------------- predictions
def _check(name, value, minimum, integer=False):
    v = value
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number >= {minimum}; got {value!r}")
    if integer and int(v) != v:
        raise ValueError(f"{name} must be a whole number >= {minimum}; got {value!r}")
    if not (math.isfinite(float(v)) and v >= minimum):
        raise ValueError(f"{name} must be a number >= {minimum}; got {value!r}")
    return int(v) if integer else float(v)


def _outside(fit: Regression, shots=None, classes=None) -> bool:
    prov = fit.provenance
    lo, hi = prov.get("shots_range", (None, None))
    cs = prov.get("classes") or []
    out = False
    if shots is not None and lo is not None:
        out |= not (lo <= shots <= hi)
    if classes is not None and cs:
        out |= not (min(cs) <= classes <= max(cs))
    return bool(out)


def _box(fit: Regression):
    """The corners of the coefficients' box of intervals (the conservative fallback)."""
    import itertools

    return list(itertools.product(*fit.ci))


def _resolve_fit(fit, fits_path, fpr, attack, source) -> Regression:
    if isinstance(fit, Regression):
        if not math.isclose(fit.fpr, fpr):
            raise ValueError(f"the given fit is at FPR {fit.fpr:g}, not {fpr:g}")
        return fit
    return select_fit(load_fits(fits_path), fpr=fpr, attack=attack, source=source)


def predict(
    shots, classes, fpr, *, attack="lira_online", source=None, fit=None, fits_path=None
) -> tuple[Prediction, ...]:
    """Predicted TPR − FPR at each S in ``shots`` for C = ``classes`` at FPR ``fpr``.

    ``fit``: a ``Regression`` to use; else the fit of ``attack`` at ``fpr`` from ``fits_path``
    (default: the shipped fits) and ``source``.
    """
    from mialaw.theory.model import check_fpr

    fpr = float(check_fpr(fpr))
    classes = _check("classes", classes, 2, integer=True)
    values = np.atleast_1d(np.asarray(shots, dtype=object))
    if values.size == 0:
        raise ValueError("shots must hold at least one value")
    shots = [_check("shots", s, 1) for s in values]
    reg = _resolve_fit(fit, fits_path, fpr, attack, source)
    out = []
    for s in shots:
        x = math.log10(s)
        z = math.log10(classes)
        if reg.covariance is not None:
            lo, est, hi = (float(v) for v in reg.line(classes).band(x))
            method = f"{reg.level:.0%} band of the fitted plane (coefficient covariance)"
        else:
            est = reg.coef[0] + reg.coef[1] * x + reg.coef[2] * z
            ys = [b0 + bs * x + bc * z for b0, bs, bc in _box(reg)]
            lo, hi = min(ys), max(ys)
            method = (
                f"per-coefficient {reg.level:.0%} intervals combined at their extremes "
                "(no covariance stored: conservative)"
            )
        cap = 1.0 - fpr
        adv = tuple(min(10.0**v, cap) for v in (lo, est, hi))
        out.append(Prediction(s, classes, fpr, adv, method, reg.id, _outside(reg, s, classes)))
    return tuple(out)


def shots_for(
    target_advantage, classes, fpr, *, attack="lira_online", source=None, fit=None, fits_path=None
) -> ShotsPrediction:
    """The S per class at which the predicted TPR − FPR at FPR ``fpr`` falls to
    ``target_advantage`` for C = ``classes``, with its interval (see the module docstring)."""
    from mialaw.theory.model import check_fpr

    fpr = float(check_fpr(fpr))
    classes = _check("classes", classes, 2, integer=True)
    target = _check("target_advantage", target_advantage, 0)
    if not 0 < target < 1 - fpr:
        raise ValueError(
            f"target_advantage must lie in (0, 1 − fpr) = (0, {1 - fpr:g}); "
            f"got {target_advantage!r}"
        )
    reg = _resolve_fit(fit, fits_path, fpr, attack, source)
    y = math.log10(target)
    z = math.log10(classes)
    if reg.covariance is not None:
        lo, est, hi = reg.line(classes).solve(y)
        method = f"Fieller {reg.level:.0%} interval (coefficient covariance)"
    else:
        est = (y - reg.coef[0] - reg.coef[2] * z) / reg.coef[1]
        slopes = reg.ci[1]
        if max(slopes) >= 0:  # the slope may be zero: S is not bounded above
            xs = [(y - b0 - bc * z) / bs for b0, bs, bc in _box(reg) if bs < 0]
            lo, hi = (min(xs) if xs else -math.inf), math.inf
        else:
            xs = [(y - b0 - bc * z) / bs for b0, bs, bc in _box(reg)]
            lo, hi = min(xs), max(xs)
        method = (
            f"per-coefficient {reg.level:.0%} intervals combined at their extremes "
            "(no covariance stored: conservative)"
        )
    if not reg.coef[1] < 0:
        est = math.inf
    shots = tuple(_shots(v) for v in (lo, est, hi))
    return ShotsPrediction(
        target, classes, fpr, shots, method, reg.id, _outside(reg, shots[1], classes)
    )


def _shots(log10_s: float) -> float:
    log10_s = float(log10_s)
    if math.isnan(log10_s):
        return math.nan
    if log10_s > 300:
        return math.inf
    return max(1.0, 10.0**log10_s)


# --------------------------------------------------------------------------- building the file
def _rows_rule_current(points, attack, fpr):
    """The analysis' rule now: resolvable, detected, unsaturated; weighted by the point SEs."""
    from mialaw.empirical.analysis import fit_rule

    rows = [p for p in points if p["attack"] == attack and p["fpr"] == fpr]
    if not rows or any("detected" not in p or "log10_advantage_se" not in p for p in rows):
        return None
    keep = fit_rule(rows, fpr)
    rows = [p for p, k in zip(rows, keep) if k]
    sigma = np.array([p["log10_advantage_se"] for p in rows], dtype=np.float64)
    return rows, sigma


def _rows_rule_v1(points, attack, fpr):
    """The rule of the first analysis (stage format before bootstrap intervals): resolvable,
    Clopper–Pearson lower bound above FPR, unsaturated; ordinary least squares."""
    rows = [
        p
        for p in points
        if p["attack"] == attack
        and p["fpr"] == fpr
        and p.get("resolvable")
        and p.get("tpr_ci", [None])[0] is not None
        and p["tpr_ci"][0] > fpr
        and p["advantage"] is not None
        and p["advantage"] < 0.9 * (1 - fpr)
    ]
    return rows, None


def _refit(points, entry):
    """Reproduce a stored regression from its points; (fit, rows, rule, covariance) or None."""
    from mialaw.theory.fits import fit_linear

    target = [entry["coefficients"][n]["estimate"] for n in NAMES]
    for rule in (_rows_rule_current, _rows_rule_v1):
        found = rule(points, entry["attack"], entry["fpr"])
        if found is None:
            continue
        rows, sigma = found
        if len(rows) != entry.get("n") or len(rows) < 4:
            continue
        X = np.array([[math.log10(p["shots"]), math.log10(p["classes"])] for p in rows])
        y = np.log10([p["advantage"] for p in rows])
        try:
            fit = fit_linear(X, y, names=list(NAMES[1:]), sigma=sigma)
        except ValueError:
            continue
        if not np.allclose(fit.coef, target, rtol=1e-8, atol=1e-10):
            continue
        A = np.column_stack([np.ones(len(rows)), X])
        w = np.ones(len(rows)) if sigma is None else 1.0 / sigma**2
        unscaled = np.linalg.inv(A.T @ (A * w[:, None]))
        cov = fit.residual_std**2 * unscaled
        if not np.allclose(np.sqrt(np.diag(cov)), fit.stderr, rtol=1e-8):
            continue
        # theory.fits gives Student-t intervals (residual dof) for weighted fits too, even when
        # the reduced-χ² factor is 1: predictions use the same quantile.
        known = False
        name = "weighted, resolvable+detected+unsaturated" if sigma is not None else "OLS, v1"
        return fit, rows, name, cov, known
    return None


def _source_name(path: Path, result: dict) -> str:
    stem = path.stem.removeprefix("empirical-")
    if stem == "combined":
        return "all datasets"
    label = result.get("label")
    return str(label) if label and stem in ("summary", "") else stem


def build_fits(paths) -> dict:
    """The fits file (a dict in ``FORMAT``) from stage JSONs or ``empirical fit --json`` output.

    Each regression entry is refitted from the stored points under the rule that reproduces its
    coefficients (the current analysis' weighted rule, or the first analysis' OLS rule) to
    recover the full covariance; an entry that cannot be reproduced is shipped without it (and
    predictions then use its per-coefficient intervals conservatively).
    """
    fits = []
    for path in map(Path, paths):
        data = json.loads(path.read_text())
        result = data.get("result", data)
        points = result.get("points", [])
        for entry in result.get("fit", {}).get("regression", []):
            if "error" in entry or "coefficients" not in entry or entry.get("n", 0) < 4:
                continue  # no fit, or no residual degree of freedom (no interval)
            d = {
                "source": _source_name(path, result),
                "attack": entry["attack"],
                "fpr": entry["fpr"],
                "coefficients": {
                    n: {"estimate": c["estimate"], "stderr": c.get("stderr"), "ci": c["ci"]}
                    for n, c in entry["coefficients"].items()
                },
                "level": entry.get("level", 0.95),
                "n": entry["n"],
                "r2": entry.get("r2"),
                "held_out_r2": entry.get("held_out_r2"),
                "held_out_by": entry.get("held_out_by"),
                "covariance": None,
                "dof": entry["n"] - 3,
                "scale_estimated": True,
            }
            found = _refit(points, entry)
            prov = {
                "file": path.name,
                "analysis": data.get("config", {}).get("analysis")
                if isinstance(data.get("config"), dict)
                else None,
                "stage_key": data.get("key"),
            }
            if found is not None:
                fit, rows, rule, cov, known = found
                d["covariance"] = cov.tolist()
                d["scale_estimated"] = not known
                prov |= {
                    "fit_rule": rule,
                    "datasets": sorted({p["dataset"] for p in rows}),
                    "backbones": sorted({p["backbone"] for p in rows}),
                    "classes": sorted({int(p["classes"]) for p in rows}),
                    "shots_range": [
                        min(p["shots"] for p in rows),
                        max(p["shots"] for p in rows),
                    ],
                    "models": sorted({int(p["models"]) for p in rows if "models" in p}),
                    "seeds": sorted({int(p["seeds"]) for p in rows if "seeds" in p}),
                }
            else:
                prov["fit_rule"] = "not reproduced from the stored points: no covariance"
            d["provenance"] = prov
            fits.append(d)
    if not fits:
        raise ValueError(f"no regression fits found in {[str(p) for p in paths]}")
    return {
        "format": FORMAT,
        "model": "log10(TPR - FPR) = b0 + bS*log10(S) + bC*log10(C), per attack and FPR",
        "fits": fits,
    }


def write_fits(paths, out) -> Path:
    """``build_fits(paths)`` written to ``out`` (atomically)."""
    import os

    out = Path(out)
    text = json.dumps(build_fits(paths), indent=1)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, out)
    return out


if __name__ == "__main__":  # python -m mialaw.empirical.predict STAGE.json... --out FILE
    import argparse

    parser = argparse.ArgumentParser(description="build the shipped regression fits file")
    parser.add_argument("stages", nargs="+")
    parser.add_argument("--out", default=str(SHIPPED_FITS))
    args = parser.parse_args()
    print(write_fits(args.stages, args.out))
