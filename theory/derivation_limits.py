"""The derivation's last steps (``mialaw.theory.derivation``): the asymptotics of TPR − α in S
(slope −1/2, its constant and remainder) and the isotropic (u, v) reduction of Σ = σ²I."""

from __future__ import annotations

import sympy as sp
from sympy import stats as sps

from .derivation_steps import (
    Phi,
    PhiInv,
    prove_all,
    prove_equal,
    prove_in_ideal,
    prove_limit,
    sym,
    to_erf,
)
from .derivation_symbols import (
    DIM_ISOTROPIC,
    SYMBOLS,
    Builder,
    cgf_normal,
)

_S, _t, _a, _xx, _q, _g = (SYMBOLS[n] for n in ("S", "t", "xm", "xx", "q", "gap"))
_alpha, _Delta, _z, _h, _k = (SYMBOLS[n] for n in ("alpha", "delta", "z", "h", "k"))
_sigma, _u, _v, _d = (SYMBOLS[n] for n in ("sigma", "u", "v", "d"))


def _log_equal(derived, claim, what: str):
    # log(a·b) = log a + log b needs a, b > 0: every factor here is positive (g ≠ 0, i.e. Δ ≠ 0).
    return prove_equal(sp.expand_log(derived, force=True), sp.expand_log(claim, force=True), what)


def asymptotics(b: Builder) -> None:
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


def isotropic(b: Builder) -> None:
    """Steps: the (u, v) reduction for Σ = σ²I, x = m + ε, |m| = 1."""
    c = b.claims
    n = DIM_ISOTROPIC
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
    cgf_eps = cgf_normal(_sigma)
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
