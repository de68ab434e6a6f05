"""Differential-privacy comparison: the shots per class at which an attack falls inside (ε, δ).

An (ε, δ)-DP mechanism obeys TPR <= e^ε·FPR + δ for every test (the hypothesis-testing view), i.e.
an advantage TPR - α <= (e^ε - 1)·α + δ. Inverting the model's predicted TPR (or a fitted power law)
gives the smallest S at which the prediction first lies inside that bound.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import brentq

from mialaw.theory.average import average_log_advantage
from mialaw.theory.exact import check_test, log_advantage
from mialaw.theory.model import GaussianModel, check_fpr


@dataclass(frozen=True)
class DpShots:
    """Smallest shots per class S with predicted TPR <= e^ε·α + δ.

    ``shots`` is real (the root in log S); ``shots_ceil`` is the whole number of shots to use.
    ``source`` says what was inverted: "average" (E_x TPR at per-example FPR α), "target" (one
    target x) or "power law" (a fitted log10(TPR - FPR) = slope·log10 S + intercept).
    """

    epsilon: float
    delta: float
    fpr: float
    shots: float
    test: str
    source: str

    @property
    def shots_ceil(self) -> int:
        return int(math.ceil(self.shots))

    @property
    def tpr_bound(self) -> float:
        """e^ε·α + δ."""
        return math.exp(self.epsilon) * self.fpr + self.delta

    @property
    def advantage_bound(self) -> float:
        """(e^ε - 1)·α + δ."""
        return math.expm1(self.epsilon) * self.fpr + self.delta

    def to_dict(self) -> dict:
        return asdict(self) | {
            "shots_ceil": self.shots_ceil,
            "tpr_bound": self.tpr_bound,
            "advantage_bound": self.advantage_bound,
        }


def _check_privacy(epsilon, delta, fpr):
    epsilon, delta = float(epsilon), float(delta)
    if not math.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f"epsilon must be a finite number >= 0; got {epsilon!r}")
    if not math.isfinite(delta) or not 0 <= delta < 1:
        raise ValueError(f"delta must lie in [0, 1); got {delta!r}")
    fpr = check_fpr(fpr)
    if fpr.ndim != 0:
        raise ValueError(f"fpr must be a single number here; got shape {fpr.shape}")
    bound = math.expm1(epsilon) * float(fpr) + delta
    if bound <= 0:
        raise ValueError("epsilon = 0 and delta = 0 give a zero advantage bound, never reached")
    return epsilon, delta, float(fpr), bound


def dp_shots(
    model: GaussianModel,
    epsilon: float,
    delta: float,
    fpr: float,
    *,
    test: str = "lira",
    x=None,
    y: int = 0,
    max_shots: float = 1e15,
) -> DpShots:
    """Smallest S with predicted TPR <= e^ε·α + δ (average over targets, or for the target ``x``).

    Found in log S: the condition is evaluated on a logarithmic grid from S = 1 to ``max_shots``,
    and Brent's method locates the crossing after the last grid point where it fails, so the
    answer is the S beyond which the prediction stays inside the bound (the "exact" test's TPR is
    not monotone in S). Raises ``ValueError`` when the bound is not reached below ``max_shots``.
    """
    check_test(test)
    epsilon, delta, fpr, bound = _check_privacy(epsilon, delta, fpr)
    if not (isinstance(max_shots, (int, float)) and 1 < max_shots <= 1e30):
        raise ValueError(f"max_shots must be a number in (1, 1e30]; got {max_shots!r}")
    log_bound = math.log(bound)

    def log_adv(log_s):
        s = np.exp(log_s)
        if x is None:
            return average_log_advantage(model, s, fpr, test=test, y=y)
        return log_advantage(model, x, s, fpr, test=test, y=y)

    def excess(log_s):
        # NaN means TPR < α: inside the bound.
        v = np.asarray(log_adv(log_s), dtype=np.float64) - log_bound
        return np.where(np.isnan(v), -np.inf, v)

    grid = np.linspace(0.0, math.log(max_shots), 71)
    fails = np.nonzero(excess(grid) > 0)[0]
    source = "average" if x is None else "target"
    if fails.size == 0:
        return DpShots(epsilon, delta, fpr, 1.0, test, source)
    last = fails[-1]
    if last == grid.size - 1:
        raise ValueError(
            f"the predicted TPR stays above e^ε·α + δ up to max_shots={max_shots:g}; "
            "raise max_shots or loosen epsilon/delta"
        )

    def f(log_s):
        v = float(excess(log_s))
        return max(v, -1e3)  # brentq needs finite values; -inf only occurs inside the bound

    log_s = brentq(f, grid[last], grid[last + 1], xtol=1e-14, rtol=1e-15, maxiter=200)
    return DpShots(epsilon, delta, fpr, float(math.exp(log_s)), test, source)


def dp_shots_from_power_law(slope, intercept, epsilon, delta, fpr) -> DpShots:
    """Smallest S with log10(advantage) = slope·log10 S + intercept <= log10((e^ε - 1)α + δ).

    ``slope`` must be negative (a law that does not decrease never enters the bound). The result
    is at least 1 shot.
    """
    slope, intercept = float(slope), float(intercept)
    if not (math.isfinite(slope) and slope < 0):
        raise ValueError(f"slope must be a finite negative number; got {slope!r}")
    if not math.isfinite(intercept):
        raise ValueError(f"intercept must be finite; got {intercept!r}")
    epsilon, delta, fpr, bound = _check_privacy(epsilon, delta, fpr)
    log10_shots = (math.log10(bound) - intercept) / slope
    if log10_shots > 308:
        raise ValueError("the power law reaches the bound only beyond 1e308 shots")
    shots = 10.0 ** max(log10_shots, 0.0)
    return DpShots(epsilon, delta, fpr, shots, "power law", "power law")
