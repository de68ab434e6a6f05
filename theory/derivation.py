"""Symbolic derivation of the simplified Gaussian membership model, every step machine-checked.

``derive()`` returns a :class:`Derivation`: the steps (each a :class:`Step` with its statement, a
verified flag and how it was checked) and the derived sympy expressions, which users may manipulate
(``derive().in_var``, ``derive().asymptote_constant``, ...). Every result is *derived* from the
model's definition (m̂ = (1/S) Σ x_i, x_i ~ N(m, Σ), s = <x, m̂>) by sympy and then compared with
the claims of science.md (``claims()``); a step is verified only if sympy proves the two equal.

Notation: a = <x, m>, xᵀx, q = xᵀΣx, g = <x, x − m>, α the FPR, z = Φ⁻¹(α), Δ the standardised
gap, h = |Δ|, k = |g|/√q (so h = k/√S). sympy is imported only here (never at package import).

``main(latex=False)`` prints every step with [ok]/[FAILED] and returns 0 iff all verified.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import sympy as sp
from sympy import stats as sps

from .derivation_steps import Check as Check  # re-export for users writing their own checks
from .derivation_steps import (
    F,
    FInv,
    NormalLaw,
    Phi,
    PhiInv,
    Step,
    prove_all,
    prove_equal,
    prove_in_ideal,
    prove_limit,
    prove_positive,
    sym,
    to_erf,
)

__all__ = ["Derivation", "Step", "Check", "claims", "derive", "check_claims", "main", "SYMBOLS"]

# --------------------------------------------------------------------------- symbols
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
_DIM_GENERAL = 3
_DIM_ISOTROPIC = 3


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


# --------------------------------------------------------------------------- result object
@dataclass(frozen=True, eq=False)
class Derivation:
    """The derivation: its steps in order and the derived expressions by name."""

    steps: tuple[Step, ...]
    expressions: Mapping[str, sp.Expr]

    @property
    def all_verified(self) -> bool:
        return all(step.verified for step in self.steps)

    @property
    def failed(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if not step.verified)

    @property
    def symbols(self) -> Mapping[str, sp.Symbol]:
        return SYMBOLS

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise ValueError(f"no step named {name!r}; steps are {[s.name for s in self.steps]}")

    def __getitem__(self, name: str) -> sp.Expr:
        try:
            return self.expressions[name]
        except KeyError:
            raise ValueError(
                f"no derived expression {name!r}; available: {sorted(self.expressions)}"
            ) from None

    # Named accessors (expressions in the symbols of SYMBOLS).
    out_mean = property(lambda self: self["out_mean"])
    out_var = property(lambda self: self["out_var"])
    in_mean = property(lambda self: self["in_mean"])
    in_var = property(lambda self: self["in_var"])
    mean_gap = property(lambda self: self["mean_gap"])
    delta = property(lambda self: self["delta"])
    tpr_lemma = property(lambda self: self["tpr_gaussian"])
    tpr = property(lambda self: self["tpr"])
    asymptote_constant = property(lambda self: self["asymptote_constant"])
    asymptote = property(lambda self: self["asymptote"])
    slope = property(lambda self: self["slope"])
    local_slope = property(lambda self: self["local_slope"])
    remainder_rate = property(lambda self: self["remainder_rate"])
    isotropic_gap = property(lambda self: self["iso_gap"])
    isotropic_xx = property(lambda self: self["iso_xx"])
    isotropic_q = property(lambda self: self["iso_q"])
    isotropic_delta = property(lambda self: self["iso_delta"])

    def evaluate(self, name: str, **values):
        """Numerically evaluate a derived expression (numpy/scipy, broadcasting).

        ``values`` are keyed like ``SYMBOLS`` (S, xm, xx, q, gap, alpha, delta, sigma, u, v, ...).
        Plain float64 evaluation of the formula as written: differences such as TPR − α cancel
        at large S; ``mialaw.theory.exact`` is the cancellation-free numerics.
        """
        expr = to_erf(self[name])
        unknown = set(values) - set(SYMBOLS)
        if unknown:
            raise ValueError(f"unknown symbols {sorted(unknown)}; allowed: {sorted(SYMBOLS)}")
        free = {s for s in expr.free_symbols}
        missing = [k for k, s in SYMBOLS.items() if s in free and k not in values]
        if missing:
            raise ValueError(f"{name} needs values for {missing}")
        keys = [k for k in values if SYMBOLS[k] in free]
        fn = sp.lambdify([SYMBOLS[k] for k in keys], expr, modules=["scipy", "numpy"])
        return fn(*(values[k] for k in keys))

    def to_text(self) -> str:
        head = f"Derivation of the Gaussian membership model: {self._tally()}"
        return "\n\n".join([head, *(step.text() for step in self.steps)])

    def to_latex(self) -> str:
        body = "\n".join(step.latex() for step in self.steps)
        return (
            f"% Symbolic derivation (mialaw.theory.derivation): {self._tally()}\n"
            "\\begin{itemize}\n" + body + "\n\\end{itemize}\n"
        )

    def _tally(self) -> str:
        n_ok = sum(step.verified for step in self.steps)
        return f"{n_ok}/{len(self.steps)} steps verified"


# --------------------------------------------------------------------------- the derivation
class _Builder:
    """Accumulates steps and expressions while the derivation runs."""

    def __init__(self, claims: Mapping[str, sp.Expr]):
        self.claims = dict(claims)
        self.steps: list[Step] = []
        self.expr: dict[str, sp.Expr] = {}

    def add(self, name: str, title: str, statement, check) -> None:
        self.steps.append(Step.from_check(name, title, statement, check))


def _cgf_normal(scale) -> sp.Expr:
    """log E[exp(t·Z)] for Z ~ N(0, scale²), obtained from sympy.stats."""
    z = sps.Normal("Z", 0, scale)
    return sp.expand_log(sp.log(sps.moment_generating_function(z)(_t)), force=True)


def _gaussian_laplace_of_square(lap) -> sp.Expr:
    """E[exp(−w·η²)] for η ~ N(0, σ²), derived by integration.

    The integrand exp(−w y²)·pdf(y) (pdf from sympy.stats) is exp(c − a y²) with a > 0; sympy
    integrates exp(−a y²) over the real line (much faster than sympy.stats' generic E).
    """
    y, a = sp.Symbol("y", real=True), sp.Symbol("a", positive=True)
    log_integrand = sp.expand(
        sp.log(sp.exp(-lap * y**2) * sps.density(sps.Normal("eta", 0, _sigma))(y)), force=True
    )
    quad, const = -log_integrand.coeff(y, 2), log_integrand.coeff(y, 0)
    if sp.expand(log_integrand - (const - quad * y**2)) != 0:
        raise ArithmeticError("the Gaussian integrand is not of the form exp(c - a y^2)")
    gauss = sp.integrate(sp.exp(-a * y**2), (y, -sp.oo, sp.oo))
    return sp.simplify(sp.exp(const) * gauss.subs(a, quad))


def _moments_from_cgf(cgf) -> tuple[sp.Expr, sp.Expr]:
    """Mean and variance as the first two derivatives of the cumulant generating function at 0."""
    mean = sp.simplify(sp.diff(cgf, _t).subs(_t, 0))
    var = sp.simplify(sp.diff(cgf, _t, 2).subs(_t, 0))
    return mean, var


def _score_laws(b: _Builder) -> None:
    """Steps 1-3: the law of one projected draw, then of s = <x, m̂> OUT and IN."""
    c = b.claims
    n = _DIM_GENERAL
    x = sp.Matrix(sp.symbols(f"x0:{n}", real=True))
    m = sp.Matrix(sp.symbols(f"m0:{n}", real=True))
    # Σ = L Lᵀ with a general lower-triangular L: every SPD Σ has this form (Cholesky).
    chol = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"l{i}{j}", real=True) if j <= i else 0)
    sigma_full = chol * chol.T
    # X = m + L Z with Z_j iid N(0, 1); P = <x, X> = <x, m> + Σ_j c_j Z_j with c = Lᵀ x.
    # Independence of the Z_j makes the CGF of P the sum of the coordinates' CGFs.
    coef = chol.T * x
    cgf_z = _cgf_normal(1)
    cgf_p = _t * (x.T * m)[0] + sum(cgf_z.subs(_t, _t * cj) for cj in coef)
    claim_p = c["single_draw_cgf"].subs({_a: (x.T * m)[0], _q: (x.T * sigma_full * x)[0]})
    b.add(
        "single_draw",
        "one training draw X ~ N(m, Σ) projects to <x, X> ~ N(<x,m>, q), q = xᵀΣx",
        sp.Eq(sp.Function("K_P")(_t), c["single_draw_cgf"]),
        prove_equal(
            cgf_p,
            claim_p,
            f"CGF of <x, m + L Z> (Z_j iid N(0,1) from sympy.stats, Σ = L Lᵀ general, "
            f"explicit d = {n}) minus t<x,m> + t² xᵀΣx/2 simplifies to 0",
        ),
    )
    # From here on the abstract symbols <x,m> and q stand for the single-draw mean and variance.
    cgf_one = c["single_draw_cgf"]
    i = sp.Symbol("i", integer=True, positive=True)

    # OUT: s = (1/S) Σ_{i=1}^{S} P_i, P_i iid (the cumulant generating functions add).
    cgf_out = sp.Sum(cgf_one.subs(_t, _t / _S), (i, 1, _S)).doit()
    out_mean, out_var = _moments_from_cgf(cgf_out)
    b.expr.update(out_mean=out_mean, out_var=out_var)
    b.add(
        "out_law",
        "OUT: s = (1/S) Σ_{i≤S} <x, x_i> ~ N(<x,m>, q/S)",
        sp.Eq(sym("s|OUT", r"s \mid \mathrm{OUT}"), NormalLaw(c["out_mean"], c["out_var"])),
        prove_all(
            [
                prove_equal(out_mean, c["out_mean"], "K'(0) of Σ_i K_P(t/S) equals the mean"),
                prove_equal(out_var, c["out_var"], "K''(0) equals the variance"),
                prove_equal(
                    cgf_out,
                    _t * c["out_mean"] + _t**2 * c["out_var"] / 2,
                    "the CGF is exactly quadratic in t, so s is Gaussian",
                ),
            ]
        ),
    )

    # IN: one of the S training examples is the target x itself (a constant <x, x> = |x|²).
    cgf_in = _t * _xx / _S + sp.Sum(cgf_one.subs(_t, _t / _S), (i, 1, _S - 1)).doit()
    in_mean, in_var = _moments_from_cgf(cgf_in)
    b.expr.update(in_mean=in_mean, in_var=in_var)
    b.add(
        "in_law",
        "IN: s = (|x|² + Σ_{i≤S-1} <x, x_i>)/S ~ N((xᵀx + (S−1)<x,m>)/S, (S−1)q/S²)",
        sp.Eq(sym("s|IN", r"s \mid \mathrm{IN}"), NormalLaw(c["in_mean"], c["in_var"])),
        prove_all(
            [
                prove_equal(in_mean, c["in_mean"], "K'(0) of t|x|²/S + Σ_{i<S} K_P(t/S)"),
                prove_equal(in_var, c["in_var"], "K''(0) equals the variance"),
                prove_equal(
                    cgf_in,
                    _t * c["in_mean"] + _t**2 * c["in_var"] / 2,
                    "the CGF is exactly quadratic in t, so s is Gaussian",
                ),
            ]
        ),
    )

    # Mean gap and Δ. <x, x − m> = |x|² − <x, m> is bilinearity, checked in coordinates.
    gap_coords = (x.T * (x - m))[0] - ((x.T * x)[0] - (x.T * m)[0])
    mean_gap = sp.simplify((in_mean - out_mean).subs(_xx, _g + _a))
    b.expr["mean_gap"] = mean_gap
    b.add(
        "mean_gap",
        "mean gap E[s|IN] − E[s|OUT] = <x, x − m>/S",
        sp.Eq(
            sym("E[s|IN]-E[s|OUT]", r"\mathbb{E}[s\mid\mathrm{IN}]-\mathbb{E}[s\mid\mathrm{OUT}]"),
            c["mean_gap"],
        ),
        prove_all(
            [
                prove_equal(gap_coords, 0, f"<x, x−m> = |x|² − <x,m> in coordinates (d = {n})"),
                prove_equal(mean_gap, c["mean_gap"], "derived IN mean − OUT mean equals g/S"),
            ]
        ),
    )
    delta = sp.simplify(mean_gap / sp.sqrt(out_var))
    b.expr["delta"] = delta
    b.add(
        "delta",
        "standardised gap on the OUT scale: Δ = <x, x − m>/sqrt(S q)",
        sp.Eq(_Delta, c["delta"]),
        prove_equal(delta, c["delta"], "derived gap / sqrt(derived OUT variance) equals the claim"),
    )


def _lemma(b: _Builder) -> None:
    """Steps: the threshold test at level α in a location–scale family, then the Gaussian case."""
    c = b.claims
    mu0 = sp.Symbol("mu_0", real=True)
    tau = sp.Symbol("tau", positive=True)
    thr, w = sp.Symbol("t_alpha", real=True), sp.Symbol("w", real=True)
    D = sp.Symbol("D", positive=True)  # |Δ|
    standard = lambda s0: (thr - s0) / tau  # noqa: E731

    def threshold(equation):
        # Invert F on both sides (F is continuous and strictly increasing): F⁻¹(F(w)) = w.
        lhs, rhs = equation.lhs, equation.rhs
        inverted = sp.Eq(FInv(lhs), FInv(rhs))
        w_alpha = sp.solve(inverted, w)[0]
        return sp.solve(sp.Eq(standard(mu0), w_alpha), thr)[0]

    # Δ > 0: reject when s ≥ t; OUT ~ μ0 + τ·Z, IN ~ μ0 + τΔ + τ·Z, Z ~ F.
    thr_up = threshold(sp.Eq(F(w), 1 - _alpha))
    fpr_up = 1 - F(standard(mu0)).subs(thr, thr_up)
    tpr_up = 1 - F(standard(mu0 + tau * D)).subs(thr, thr_up)
    # Δ < 0: reject when s ≤ t (the test points towards the IN side); IN ~ μ0 − τ|Δ| + τ·Z.
    thr_down = threshold(sp.Eq(F(w), _alpha))
    fpr_down = F(standard(mu0)).subs(thr, thr_down)
    tpr_down = F(standard(mu0 - tau * D)).subs(thr, thr_down)
    up_claim = c["tpr_location_scale_up"].subs(_Delta, D)
    down_claim = c["tpr_location_scale_down"].subs(_Delta, D)
    # The scale τ cancels inside F's argument; expand so the result is free of μ0 and τ.
    canonical = lambda e: e.replace(F, lambda arg: F(sp.expand(arg))).subs(D, sp.Abs(_Delta))  # noqa: E731
    b.expr["tpr_location_scale_up"] = canonical(tpr_up)
    b.expr["tpr_location_scale_down"] = canonical(tpr_down)
    b.add(
        "lemma_location_scale",
        "lemma: threshold test at level α when IN and OUT are one location–scale family F with a "
        "common scale (LiRA's common-scale model; here the OUT scale): "
        "TPR = 1 − F(F⁻¹(1−α) − |Δ|) (Δ ≥ 0; for Δ < 0, F(F⁻¹(α) + |Δ|))",
        sp.Eq(sym("TPR"), c["tpr_location_scale_up"]),
        prove_all(
            [
                prove_equal(fpr_up, _alpha, "threshold solved from 1 − F((t−μ0)/τ) = α has FPR α"),
                prove_equal(tpr_up, up_claim, "TPR at that threshold equals the claim (Δ > 0)"),
                prove_equal(fpr_down, _alpha, "mirrored test s ≤ t: FPR α"),
                prove_equal(tpr_down, down_claim, "mirrored TPR equals F(F⁻¹(α)+|Δ|) (Δ < 0)"),
            ]
        ),
    )

    # Φ⁻¹(1 − α) = −Φ⁻¹(α): Φ is strictly increasing and maps both sides to 1 − α.
    phi_prime = sp.diff(to_erf(Phi(w)), w)
    sym_claim = c["phi_inv_symmetry"]
    b.add(
        "phi_inverse_symmetry",
        "Gaussian symmetry Φ⁻¹(1 − α) = −Φ⁻¹(α)",
        sp.Eq(PhiInv(1 - _alpha), sym_claim),
        prove_all(
            [
                prove_equal(
                    to_erf(Phi(PhiInv(1 - _alpha))),
                    to_erf(Phi(sym_claim)),
                    "Φ(lhs) − Φ(rhs) simplifies to 0 (erf/erfinv form)",
                ),
                prove_positive(phi_prime, "Φ'(w) = exp(−w²/2)/√(2π) > 0 (sympy: is_positive)"),
                prove_equal(
                    to_erf(1 - Phi(w) - Phi(-w)), 0, "reflection 1 − Φ(w) = Φ(−w) (erf is odd)"
                ),
            ]
        ),
    )

    # Gaussian F = Φ: both orientations collapse to Φ(Φ⁻¹(α) + |Δ|).
    def gaussian(expr):
        expr = expr.replace(F, Phi).replace(FInv, PhiInv)
        return to_erf(expr.subs(PhiInv(1 - _alpha), sym_claim), keep_quantile=True)

    tpr_gauss_claim = to_erf(c["tpr_gaussian"].subs(_Delta, D), keep_quantile=True)
    b.add(
        "lemma_gaussian",
        "lemma for Gaussians (common OUT scale): TPR = Φ(Φ⁻¹(α) + |Δ|) (both orientations)",
        sp.Eq(sym("TPR"), c["tpr_gaussian"]),
        prove_all(
            [
                prove_equal(gaussian(tpr_up), tpr_gauss_claim, "F = Φ in the Δ > 0 branch"),
                prove_equal(gaussian(tpr_down), tpr_gauss_claim, "F = Φ in the Δ < 0 branch"),
            ]
        ),
    )
    # The Gaussian TPR derived from the Δ > 0 branch 1 − Φ(A): by the reflection 1 − Φ(A) = Φ(−A)
    # (checked in phi_inverse_symmetry) and Φ⁻¹(1 − α) = −Φ⁻¹(α) it is Φ(Φ⁻¹(α) + |Δ|).
    (arg,) = [f.args[0] for f in tpr_up.atoms(F)]
    arg = sp.expand(arg.subs(FInv(1 - _alpha), -PhiInv(_alpha)).replace(FInv, PhiInv))
    b.expr["tpr_gaussian"] = Phi(-arg).subs(D, sp.Abs(_Delta))
    b.expr["tpr"] = b.expr["tpr_gaussian"].subs(_Delta, b.expr["delta"])


def _log_equal(derived, claim, what: str):
    # log(a·b) = log a + log b needs a, b > 0: every factor here is positive (g ≠ 0, i.e. Δ ≠ 0).
    return prove_equal(sp.expand_log(derived, force=True), sp.expand_log(claim, force=True), what)


def _asymptotics(b: _Builder) -> None:
    """Steps: series of TPR − α in h = |Δ|, slope and constant, remainder, local slope."""
    c = b.claims
    z, h, k = _z, _h, _k
    # α = Φ(z) with z = Φ⁻¹(α); h = |Δ| = k/√S with k = |g|/√q.
    h_of_s = sp.Abs(b.expr["delta"]).subs(sp.Abs(_g), k * sp.sqrt(_q))
    tpr_zh = b.expr["tpr_gaussian"].subs(sp.Abs(_Delta), h).subs(PhiInv(_alpha), z)
    adv = tpr_zh - Phi(z)  # TPR − α
    adv_erf = to_erf(adv)
    series = sp.series(adv_erf, h, 0, 3).removeO()
    c0, c1, c2 = (sp.simplify(series.coeff(h, j)) for j in range(3))
    b.expr.update(series_h1=c1, series_h2=c2)
    xi = sym("xi", r"\xi", real=True)
    b.add(
        "advantage_series",
        "TPR − α = Φ(z + h) − Φ(z) = φ(z)·h·(1 − z·h/2 + O(h²)), z = Φ⁻¹(α), h = |Δ| = k/√S",
        sp.Eq(sym("TPR-alpha", r"\mathrm{TPR}-\alpha"), c["series_h1"] * h * (1 + xi)),
        prove_all(
            [
                prove_equal(to_erf(Phi(PhiInv(_alpha))), _alpha, "Φ(Φ⁻¹(α)) = α, so α = Φ(z)"),
                prove_equal(h_of_s, k / sp.sqrt(_S), "|Δ| = k/√S with k = |g|/√q"),
                prove_equal(c0, 0, "sympy.series in h: h⁰ coefficient 0"),
                prove_equal(c1, c["series_h1"], "h¹ coefficient φ(z)"),
                prove_equal(c2, c["series_h2"], "h² coefficient −zφ(z)/2"),
            ]
        ),
    )

    # Leading term A(S) = φ(z)·k/√S: its slope in log S and its constant.
    lead = c1 * k / sp.sqrt(_S)
    slope = sp.simplify(_S * sp.diff(sp.log(lead), _S))
    back = {k: sp.Abs(_g) / sp.sqrt(_q), z: PhiInv(_alpha)}
    constant = sp.expand_log(sp.log(lead) + sp.log(_S) / 2, force=True).subs(back)
    b.expr.update(slope=slope, asymptote_constant=constant)
    b.expr["asymptote"] = slope * sp.log(_S) + constant
    b.add(
        "slope",
        "log(TPR − α) = −½·log S + C + log(1 + ξ): the leading term has slope −1/2 in log S",
        sp.Eq(
            sym("log(TPR-alpha)", r"\log(\mathrm{TPR}-\alpha)"),
            c["slope"] * sp.log(_S) + sym("C") + sp.log(1 + xi),
        ),
        prove_equal(slope, c["slope"], "S·d/dS log(φ(z)k/√S) simplifies to the claim"),
    )
    b.add(
        "asymptote_constant",
        "constant C = −½Φ⁻¹(α)² + log(|<x, x − m>|/sqrt(2π q))",
        sp.Eq(sym("C"), c["asymptote_constant"]),
        _log_equal(constant, c["asymptote_constant"], "log(φ(z)·k) (expand_log) equals the claim"),
    )

    # Remainder log(1 + ξ) = log(TPR − α) + ½ log S − C, as S → ∞ ⇔ h = k/√S → 0⁺.
    ratio = adv_erf / (c1 * h)  # 1 + ξ as a function of h
    remainder_s = (
        sp.log(adv_erf.subs(h, k / sp.sqrt(_S)))
        + sp.log(_S) / 2
        - (sp.expand_log(sp.log(lead) + sp.log(_S) / 2, force=True))
    )
    remainder_h = remainder_s.subs(_S, k**2 / h**2)
    limit_rate = sp.limit(sp.log(ratio) / h, h, 0, "+")
    rate = (k * limit_rate).subs(back)
    b.expr["remainder_rate"] = rate
    root_s = sp.sqrt(_S)
    b.add(
        "remainder",
        "log(TPR − α) + ½ log S − C → 0 as S → ∞, and √S times it → −z·k/2: ξ = O(S^(-1/2))",
        sp.Eq(
            sp.Limit(root_s * sym("log(1+xi)", r"\log(1+\xi)"), _S, sp.oo),
            c["remainder_rate"],
        ),
        prove_all(
            [
                _log_equal(
                    remainder_h, sp.log(ratio), "with S = k²/h² the remainder is log((TPR−α)/(φh))"
                ),
                prove_limit(sp.log(ratio), h, 0, 0, what="limit of log(1+ξ) as h → 0+"),
                prove_equal(
                    rate, c["remainder_rate"], f"k·lim_(h→0+) log(1+ξ)/h = {sp.sstr(rate)}"
                ),
            ]
        ),
    )

    # Local slope d log(TPR − α)/d log S of the exact expression, and its limit.
    adv_s = adv.subs(h, k / sp.sqrt(_S))
    local = _S * sp.diff(sp.log(adv_s), _S)
    b.expr["local_slope"] = local.subs(back).subs(Phi(PhiInv(_alpha)), _alpha)
    local_h = to_erf(local).subs(_S, k**2 / h**2)
    b.add(
        "local_slope",
        "local slope d log(TPR − α)/d log S of the exact TPR → −1/2 as S → ∞",
        sp.Eq(
            sp.Limit(
                sym("dlog(TPR-alpha)/dlogS", r"\frac{d\log(\mathrm{TPR}-\alpha)}{d\log S}"),
                _S,
                sp.oo,
            ),
            c["local_slope_limit"],
        ),
        prove_limit(
            local_h,
            h,
            0,
            c["local_slope_limit"],
            what="exact S·d/dS log(Φ(z+k/√S) − Φ(z)) at S = k²/h²; sympy.limit(h → 0+)",
        ),
    )


def _isotropic(b: _Builder) -> None:
    """Steps: the (u, v) reduction for Σ = σ²I, x = m + ε, |m| = 1."""
    c = b.claims
    n = _DIM_ISOTROPIC
    m = sp.Matrix(sp.symbols(f"m0:{n}", real=True))
    eps = sp.Matrix(sp.symbols(f"e0:{n}", real=True))
    gens = [*m, *eps]
    unit = [sp.expand((m.T * m)[0] - 1)]  # the constraint |m|² = 1 (orthonormal class means)
    x = m + eps
    u = (m.T * eps)[0]
    v = (eps.T * eps)[0] - u**2
    on_uv = {_u: u, _v: v}
    gap = (x.T * (x - m))[0]
    xx = (x.T * x)[0]
    quad = (x.T * (_sigma**2 * sp.eye(n)) * x)[0]
    b.expr.update(iso_gap=c["iso_gap"], iso_xx=c["iso_xx"], iso_q=c["iso_q"])
    b.add(
        "isotropic_identities",
        "x = m + ε, u = <m, ε>, v = |ε|² − u²: <x, x−m> = u + u² + v, xᵀx = (1+u)² + v, "
        "q = σ²((1+u)² + v)",
        sp.Tuple(sp.Eq(_g, c["iso_gap"]), sp.Eq(_xx, c["iso_xx"]), sp.Eq(_q, c["iso_q"])),
        prove_all(
            [
                prove_in_ideal(
                    gap - c["iso_gap"].subs(on_uv),
                    unit,
                    gens,
                    f"gap: remainder 0 mod |m|²=1 (d={n})",
                ),
                prove_in_ideal(xx - c["iso_xx"].subs(on_uv), unit, gens, "xᵀx: remainder 0"),
                prove_in_ideal(
                    quad - c["iso_q"].subs(on_uv), unit, [*gens, _sigma], "xᵀ(σ²I)x: remainder 0"
                ),
            ]
        ),
    )

    # Laws. ε ~ N(0, σ²I): u = Σ m_j ε_j has CGF Σ_j K_ε(t m_j).
    cgf_eps = _cgf_normal(_sigma)
    cgf_u = sum(cgf_eps.subs(_t, _t * mj) for mj in m)
    proj = sp.eye(n) - m * m.T  # projection on m⊥
    cov_u_proj = _sigma**2 * proj * m  # Cov(u, P⊥ε) = σ² P⊥ m
    b.add(
        "isotropic_independence",
        "u ~ N(0, σ²); v = |P⊥ε|² with P⊥ = I − m mᵀ; Cov(u, P⊥ε) = 0, so u and v are "
        "independent (jointly Gaussian)",
        sp.Eq(sp.Function("K_u")(_t), c["iso_u_cgf"]),
        prove_all(
            [
                prove_in_ideal(cgf_u - c["iso_u_cgf"], unit, [*gens, _t, _sigma], "CGF of u"),
                prove_in_ideal(cov_u_proj, unit, [*gens, _sigma], "σ² P⊥ m = 0 mod |m|²=1"),
                prove_in_ideal((eps.T * proj * eps)[0] - v, unit, gens, "εᵀP⊥ε = v"),
                prove_in_ideal(proj * proj - proj, unit, gens, "P⊥² = P⊥"),
                prove_in_ideal(proj.trace() - (n - 1), unit, gens, f"tr P⊥ = d − 1 = {n - 1}"),
            ]
        ),
    )

    # Rotation: the Householder reflection Q = I − w wᵀ/(1 − m_0), w = m − e_0, is orthogonal and
    # maps m to e_0; η = Qε ~ N(0, σ² Q Qᵀ) = N(0, σ²I), u = η_0 and v = Σ_{j≥1} η_j².
    e0 = sp.eye(n)[:, 0]
    w = m - e0
    house = sp.eye(n) - w * w.T / (1 - m[0])
    eta = house * eps
    lap = SYMBOLS["w"]
    one_coord = _gaussian_laplace_of_square(lap)
    j = sp.Symbol("j", integer=True, positive=True)
    laplace_v = sp.Product(one_coord, (j, 1, _d - 1)).doit()
    claim_v = c["iso_v_laplace"]
    chi2_law = sps.moment_generating_function(sps.ChiSquared("chi2", _d - 1))(-(_sigma**2) * lap)
    b.add(
        "isotropic_v_law",
        "rotation η = Qε (Q m = e_0): u = η_0 and v = Σ_{j≥1} η_j², so v ~ σ²χ²_{d−1} "
        "(Laplace transform E[exp(−w v)] = (1 + 2σ²w)^(−(d−1)/2))",
        sp.Eq(sp.Function("L_v")(lap), claim_v),
        prove_all(
            [
                prove_in_ideal(house.T * house - sp.eye(n), unit, gens, "QᵀQ = I"),
                prove_in_ideal(house * m - e0, unit, gens, "Q m = e_0"),
                prove_in_ideal(eta[0] - u, unit, gens, "η_0 = u"),
                prove_in_ideal((eta.T * eta)[0] - eta[0] ** 2 - v, unit, gens, "Σ_{j≥1} η_j² = v"),
                prove_equal(
                    laplace_v,
                    claim_v,
                    "Π_{j=1}^{d−1} E[exp(−w η_j²)] (sympy.integrate against the sympy.stats "
                    "normal density; product over symbolic d) equals the claim",
                ),
                prove_equal(
                    claim_v, chi2_law, "claim = E[exp(−wσ²C)], C ~ sympy.stats.ChiSquared(d − 1)"
                ),
            ]
        ),
    )

    # Δ in (u, v): substitute the identities into the derived Δ.
    iso_delta = b.expr["delta"].subs({_g: c["iso_gap"], _q: c["iso_q"]})
    b.expr["iso_delta"] = iso_delta
    b.add(
        "isotropic_delta",
        "Δ = (u + u² + v)/(σ·sqrt(S((1+u)² + v)))",
        sp.Eq(_Delta, c["iso_delta"]),
        prove_equal(iso_delta, c["iso_delta"], "derived Δ with the (u, v) identities substituted"),
    )


# --------------------------------------------------------------------------- public API
def check_claims(claimed: Mapping[str, sp.Expr]) -> Derivation:
    """Run the derivation against ``claimed`` (keys as in ``claims()``); missing keys use defaults.

    A wrong claim yields a step with ``verified=False``: this is how the checker can be exercised.
    """
    unknown = set(claimed) - set(claims())
    if unknown:
        raise ValueError(f"unknown claims {sorted(unknown)}; allowed: {sorted(claims())}")
    try:
        claimed = {key: sp.sympify(value, strict=True) for key, value in claimed.items()}
    except sp.SympifyError as err:
        raise ValueError(f"claims must be sympy expressions or numbers: {err}") from None
    builder = _Builder({**claims(), **claimed})
    _score_laws(builder)
    _lemma(builder)
    _asymptotics(builder)
    _isotropic(builder)
    return Derivation(tuple(builder.steps), MappingProxyType(dict(builder.expr)))


@functools.lru_cache(maxsize=1)
def derive() -> Derivation:
    """The derivation against science.md's claims (computed once, then cached)."""
    return check_claims({})


def main(latex: bool = False) -> int:
    """Print every step with its verified/failed mark; return 0 if all verified, else 1."""
    result = derive()
    print(result.to_latex() if latex else result.to_text())
    return 0 if result.all_verified else 1


if __name__ == "__main__":  # python -m mialaw.theory.derivation [--latex]
    import sys

    raise SystemExit(main(latex="--latex" in sys.argv[1:]))
