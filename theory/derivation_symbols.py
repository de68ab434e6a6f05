"""The symbols, the claims of science.md and the step builder of the symbolic derivation
(``mialaw.theory.derivation``), with the sympy helpers its steps share."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import sympy as sp
from sympy import stats as sps

from .derivation_steps import F, FInv, Phi, PhiInv, Step, sym

__all__ = ["SYMBOLS", "Builder", "claims", "cgf_normal", "moments_from_cgf"]

SYMBOLS: Mapping[str, sp.Symbol] = MappingProxyType(
    {
        "S": sym("S", positive=True),
        "t": sym("t", real=True),
        "xm": sym("<x,m>", r"\langle x, m\rangle", real=True),
        "xx": sym("|x|^2", r"\lVert x\rVert^{2}", positive=True),
        "q": sym("q", r"q", positive=True),
        "gap": sym("<x,x-m>", r"\langle x, x - m\rangle", real=True),
        "alpha": sym("alpha", r"\alpha", positive=True),
        "delta": sym("Delta", r"\Delta", real=True),
        "z": sym("z", "z", real=True),
        "h": sym("h", "h", positive=True),
        "k": sym("k", "k", positive=True),
        "sigma": sym("sigma", r"\sigma", positive=True),
        "u": sym("u", "u", real=True),
        "v": sym("v", "v", nonnegative=True),
        "d": sym("d", "d", integer=True, positive=True),
        "w": sym("w", "w", positive=True),
    }
)
_S, _t, _a, _xx, _q, _g = (SYMBOLS[n] for n in ("S", "t", "xm", "xx", "q", "gap"))
_alpha, _Delta, _z, _h, _k = (SYMBOLS[n] for n in ("alpha", "delta", "z", "h", "k"))
_sigma, _u, _v, _d = (SYMBOLS[n] for n in ("sigma", "u", "v", "d"))

# Explicit small dimensions for the vector-level steps (the identities are coordinate-free; these
# dimensions are large enough that no coordinate is special: a full Cholesky factor, m⊥ of dim ≥ 2).
DIM_GENERAL = 3
DIM_ISOTROPIC = 3


def claims() -> dict[str, sp.Expr]:
    """The results as stated in science.md (typed in): what the derivation must reproduce."""
    S, a, xx, q, g = _S, _a, _xx, _q, _g
    z, alpha, D = _z, _alpha, _Delta
    phi_z = sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi)
    return {
        "single_draw_cgf": _t * a + _t**2 * q / 2,
        "out_mean": a,
        "out_var": q / S,
        "in_mean": (xx + (S - 1) * a) / S,
        "in_var": (S - 1) * q / S**2,
        "mean_gap": g / S,
        "delta": g / sp.sqrt(S * q),
        "tpr_location_scale_up": 1 - F(FInv(1 - alpha) - sp.Abs(D)),
        "tpr_location_scale_down": F(FInv(alpha) + sp.Abs(D)),
        "phi_inv_symmetry": -PhiInv(alpha),
        "tpr_gaussian": Phi(PhiInv(alpha) + sp.Abs(D)),
        "series_h1": phi_z,
        "series_h2": -z * phi_z / 2,
        "slope": sp.Rational(-1, 2),
        "asymptote_constant": -(PhiInv(alpha) ** 2) / 2
        + sp.log(sp.Abs(g) / sp.sqrt(2 * sp.pi * q)),
        "remainder_rate": -PhiInv(alpha) * sp.Abs(g) / (2 * sp.sqrt(q)),
        "local_slope_limit": sp.Rational(-1, 2),
        "iso_gap": _u + _u**2 + _v,
        "iso_xx": (1 + _u) ** 2 + _v,
        "iso_q": _sigma**2 * ((1 + _u) ** 2 + _v),
        "iso_u_cgf": _sigma**2 * _t**2 / 2,
        "iso_v_laplace": (1 + 2 * _sigma**2 * SYMBOLS["w"]) ** (-(_d - 1) / 2),
        "iso_delta": (_u + _u**2 + _v) / (_sigma * sp.sqrt(S * ((1 + _u) ** 2 + _v))),
    }


class Builder:
    """Accumulates steps and expressions while the derivation runs."""

    def __init__(self, claims: Mapping[str, sp.Expr]):
        self.claims = dict(claims)
        self.steps: list[Step] = []
        self.expr: dict[str, sp.Expr] = {}

    def add(self, name: str, title: str, statement, check) -> None:
        self.steps.append(Step.from_check(name, title, statement, check))


def cgf_normal(scale) -> sp.Expr:
    """log E[exp(t·Z)] for Z ~ N(0, scale²), obtained from sympy.stats."""
    z = sps.Normal("Z", 0, scale)
    return sp.expand_log(sp.log(sps.moment_generating_function(z)(_t)), force=True)


def moments_from_cgf(cgf) -> tuple[sp.Expr, sp.Expr]:
    """Mean and variance as the first two derivatives of the cumulant generating function at 0."""
    mean = sp.simplify(sp.diff(cgf, _t).subs(_t, 0))
    var = sp.simplify(sp.diff(cgf, _t, 2).subs(_t, 0))
    return mean, var
