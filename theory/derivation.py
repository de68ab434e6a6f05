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

from .derivation_laws import lemma, score_laws
from .derivation_limits import asymptotics, isotropic
from .derivation_steps import Check as Check  # re-export for users writing their own checks
from .derivation_steps import Step, to_erf
from .derivation_symbols import SYMBOLS, Builder, claims

__all__ = ["Derivation", "Step", "Check", "claims", "derive", "check_claims", "main", "SYMBOLS"]


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
    builder = Builder({**claims(), **claimed})
    for steps in (score_laws, lemma, asymptotics, isotropic):
        steps(builder)
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
