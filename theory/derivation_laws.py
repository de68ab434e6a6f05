"""The derivation's first steps (``mialaw.theory.derivation``): the laws of the score s = <x, m̂>
for a non-member and a member, their gap Δ, and the lemma TPR = Φ(Φ⁻¹(α) + |Δ|)."""

from __future__ import annotations

import sympy as sp

from .derivation_steps import (
    F,
    FInv,
    NormalLaw,
    Phi,
    PhiInv,
    prove_all,
    prove_equal,
    prove_positive,
    sym,
    to_erf,
)
from .derivation_symbols import (
    DIM_GENERAL,
    SYMBOLS,
    Builder,
    cgf_normal,
    moments_from_cgf,
)

_S, _t, _a, _xx, _q, _g = (SYMBOLS[n] for n in ("S", "t", "xm", "xx", "q", "gap"))
_alpha, _Delta, _z, _h, _k = (SYMBOLS[n] for n in ("alpha", "delta", "z", "h", "k"))
_sigma, _u, _v, _d = (SYMBOLS[n] for n in ("sigma", "u", "v", "d"))


def score_laws(b: Builder) -> None:
    """Steps 1-3: the law of one projected draw, then of s = <x, m̂> OUT and IN."""
    c = b.claims
    n = DIM_GENERAL
    x = sp.Matrix(sp.symbols(f"x0:{n}", real=True))
    m = sp.Matrix(sp.symbols(f"m0:{n}", real=True))
    # Σ = L Lᵀ with a general lower-triangular L: every SPD Σ has this form (Cholesky).
    chol = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"l{i}{j}", real=True) if j <= i else 0)
    sigma_full = chol * chol.T
    # X = m + L Z with Z_j iid N(0, 1); P = <x, X> = <x, m> + Σ_j c_j Z_j with c = Lᵀ x.
    # Independence of the Z_j makes the CGF of P the sum of the coordinates' CGFs.
    coef = chol.T * x
    cgf_z = cgf_normal(1)
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
    out_mean, out_var = moments_from_cgf(cgf_out)
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
    in_mean, in_var = moments_from_cgf(cgf_in)
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


def lemma(b: Builder) -> None:
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
