"""Building blocks of the symbolic derivation: step record, checkers, special functions.

Imports sympy at module level, so only ``mialaw.theory.derivation`` may import this module.

A checker never trusts its caller: it returns ``Check(verified, how)`` where ``verified`` is the
outcome of a sympy computation (a difference that simplifies to zero, a limit that equals the claim,
a polynomial remainder that vanishes) and ``how`` says which computation. Exceptions inside sympy
count as "not verified", never as success.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

SYMBOLIC = "symbolic"
RATIONAL_POINTS = "exact rational evaluation (weaker: not a proof)"


class Sym(sp.Symbol):
    """A symbol whose plain name is readable text and whose LaTeX form is looked up in ``LATEX``."""

    LATEX: dict[str, str] = {}

    def _latex(self, printer):
        return self.LATEX.get(self.name, self.name)


def sym(name: str, latex: str | None = None, **assumptions) -> Sym:
    if latex is not None:
        Sym.LATEX[name] = latex
    return Sym(name, **assumptions)


# --------------------------------------------------------------------------- special functions
_SQRT2 = sp.sqrt(2)


class Phi(sp.Function):
    """Standard normal CDF Φ; ``to_erf`` rewrites it as (1 + erf(z/√2))/2."""

    nargs = 1

    def fdiff(self, argindex=1):
        z = self.args[0]
        return sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi)

    def _latex(self, printer, exp=None):
        body = rf"\Phi\left({printer._print(self.args[0])}\right)"
        return body if exp is None else rf"{body}^{{{exp}}}"


class PhiInv(sp.Function):
    """Standard normal quantile Φ⁻¹; ``to_erf`` rewrites it as √2·erfinv(2p − 1)."""

    nargs = 1

    def _latex(self, printer, exp=None):
        body = rf"\Phi^{{-1}}\left({printer._print(self.args[0])}\right)"
        return body if exp is None else rf"\left({body}\right)^{{{exp}}}"

    def _sympystr(self, printer):
        return f"Phi^-1({printer._print(self.args[0])})"


def to_erf(expr, keep_quantile: bool = False):
    """Rewrite Φ (and Φ⁻¹ unless ``keep_quantile``) through erf/erfinv, which sympy handles."""
    expr = sp.sympify(expr).replace(Phi, lambda z: (1 + sp.erf(z / _SQRT2)) / 2)
    if not keep_quantile:
        expr = expr.replace(PhiInv, lambda p: _SQRT2 * sp.erfinv(2 * p - 1))
    return expr


class NormalLaw(sp.Function):
    """Display-only N(mean, variance) in statements."""

    nargs = 2

    def _latex(self, printer, exp=None):
        mean, var = (printer._print(a) for a in self.args)
        return rf"\mathcal{{N}}\left({mean},\ {var}\right)"

    def _sympystr(self, printer):
        return "N({}, {})".format(*(printer._print(a) for a in self.args))


class F(sp.Function):
    """A generic continuous, strictly increasing CDF: the standard law of a location-scale family.

    The only property used is that ``FInv`` is its inverse, encoded as automatic evaluation.
    """

    nargs = 1

    @classmethod
    def eval(cls, arg):
        if isinstance(arg, FInv):
            return arg.args[0]


class FInv(sp.Function):
    """The quantile function F⁻¹ of ``F``."""

    nargs = 1

    @classmethod
    def eval(cls, arg):
        if isinstance(arg, F):
            return arg.args[0]

    def _latex(self, printer, exp=None):
        body = rf"F^{{-1}}\left({printer._print(self.args[0])}\right)"
        return body if exp is None else rf"\left({body}\right)^{{{exp}}}"

    def _sympystr(self, printer):
        return f"F^-1({printer._print(self.args[0])})"


# --------------------------------------------------------------------------- printing
class _TextPrinter(sp.printing.str.StrPrinter):
    """Plain-text statements: ``lhs = rhs`` and ``lim_(S->oo) f`` rather than sympy's repr form."""

    def _print_Equality(self, expr):
        return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"

    def _print_Limit(self, expr):
        body, var, point = expr.args[:3]
        return f"lim_({self._print(var)}->{self._print(point)}) {self._print(body)}"

    def _print_Tuple(self, expr):
        return ";  ".join(self._print(a) for a in expr.args)


def text_form(expr) -> str:
    return _TextPrinter().doprint(expr)


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Check:
    """Outcome of one machine check."""

    verified: bool
    how: str
    strength: str = SYMBOLIC


@dataclass(frozen=True)
class Step:
    """One step of the derivation: a statement and the machine check that established it."""

    name: str
    title: str
    statement: sp.Basic
    verified: bool
    how: str
    strength: str = SYMBOLIC

    @classmethod
    def from_check(cls, name: str, title: str, statement, check: Check) -> Step:
        return cls(name, title, statement, bool(check.verified), check.how, check.strength)

    @property
    def mark(self) -> str:
        return "[ok]" if self.verified else "[FAILED]"

    def text(self) -> str:
        weak = "" if self.strength == SYMBOLIC else f" ({self.strength})"
        return (
            f"{self.mark} {self.name}: {self.title}\n"
            f"    {text_form(self.statement)}\n"
            f"    checked{weak}: {self.how}"
        )

    def latex(self) -> str:
        mark = r"\checkmark" if self.verified else r"\times\ \text{FAILED}"
        how = _latex_escape(self.how)
        weak = "" if self.strength == SYMBOLIC else rf" \emph{{({_latex_escape(self.strength)})}}"
        return (
            rf"\item[$({mark})$] \textbf{{{_latex_escape(self.title)}}} "
            rf"(\texttt{{{_latex_escape(self.name)}}})" + "\n"
            rf"  \[ {sp.latex(self.statement)} \]" + "\n"
            rf"  \emph{{Checked:}} {how}{weak}"
        )


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "^": r"\^{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "~": r"\textasciitilde{}",
}


# Prose in titles and "how" uses Unicode maths; the LaTeX block must compile with pdflatex.
_LATEX_UNICODE = {
    "Σ": r"$\Sigma$",
    "ᵀ": r"$^\top$",
    "²": r"$^2$",
    "−": "-",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "α": r"$\alpha$",
    "Δ": r"$\Delta$",
    "Φ": r"$\Phi$",
    "φ": r"$\phi$",
    "ξ": r"$\xi$",
    "σ": r"$\sigma$",
    "ε": r"$\varepsilon$",
    "η": r"$\eta$",
    "μ": r"$\mu$",
    "τ": r"$\tau$",
    "Π": r"$\Pi$",
    "χ": r"$\chi$",
    "π": r"$\pi$",
    "√": r"$\surd$",
    "⊥": r"$\perp$",
    "·": r"$\cdot$",
    "→": r"$\to$",
    "⇔": r"$\Leftrightarrow$",
    "½": r"$\frac{1}{2}$",
    "∞": r"$\infty$",
    "–": "--",
    "⁰": r"$^0$",
    "¹": r"$^1$",
    "⁺": r"$^+$",
    "₀": r"$_0$",
    "ₓ": r"$_x$",
    "×": r"$\times$",
    "≠": r"$\neq$",
    "∈": r"$\in$",
    "ⱼ": r"$_j$",
}


def _latex_escape(text: str) -> str:
    text = text.replace("⁻¹", "\x00")  # a two-character superscript
    out = "".join(_LATEX_SPECIAL.get(char, _LATEX_UNICODE.get(char, char)) for char in text)
    return out.replace("\x00", r"$^{-1}$")


# --------------------------------------------------------------------------- checkers
def _is_zero(expr) -> bool:
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    for simplifier in (sp.expand, sp.simplify, lambda e: sp.simplify(sp.expand(e))):
        if simplifier(expr) == 0:
            return True
    return False


def _guard(fn, what: str) -> Check:
    try:
        return fn()
    except Exception as err:  # sympy failing to decide is a failed check, never a pass
        return Check(False, f"{what}: sympy raised {type(err).__name__}: {err}")


def prove_equal(derived, claim, what: str = "simplify(derived - claim) = 0") -> Check:
    """Verified iff sympy simplifies ``derived - claim`` to exactly zero."""

    def run():
        ok = _is_zero(sp.sympify(derived) - sp.sympify(claim))
        return Check(ok, what if ok else f"{what} FAILED: difference did not simplify to 0")

    return _guard(run, what)


def prove_all(checks) -> Check:
    """Conjunction of several checks; ``how`` lists each part."""
    checks = list(checks)
    ok = all(c.verified for c in checks)
    strength = SYMBOLIC if all(c.strength == SYMBOLIC for c in checks) else RATIONAL_POINTS
    return Check(ok, "; ".join(c.how for c in checks), strength)


def prove_limit(expr, var, point, claim, direction: str = "+", what: str | None = None) -> Check:
    """Verified iff ``sympy.limit(expr, var, point, direction)`` equals ``claim`` exactly."""
    what = what or f"sympy.limit({var} -> {point}{direction if point != sp.oo else ''})"

    def run():
        value = sp.limit(expr, var, point, direction)
        ok = _is_zero(value - claim)
        tail = "" if ok else f" FAILED: differs from the claim {sp.sstr(claim)}"
        return Check(ok, f"{what} = {sp.sstr(value)}{tail}")

    return _guard(run, what)


def prove_positive(expr, what: str) -> Check:
    """Verified iff sympy's assumption system decides that ``expr`` is positive."""

    def run():
        ok = sp.sympify(expr).is_positive is True
        return Check(ok, what + ("" if ok else " FAILED: positivity not established"))

    return _guard(run, what)


def _numerator(expr, gens):
    # A rational identity holds where its numerator vanishes (denominators nonzero there).
    expr = sp.expand(expr)
    if not expr.is_polynomial(*gens):
        expr = sp.expand(sp.fraction(sp.together(expr))[0])
    return expr


def prove_in_ideal(expr, relations, gens, what: str) -> Check:
    """Verified iff the polynomial ``expr`` reduces to 0 modulo ``relations`` (a Groebner basis).

    Used for identities that hold on a constraint set, e.g. |m|² = 1: the remainder of the
    multivariate division by the Groebner basis is zero exactly when ``expr`` lies in the ideal.
    """

    def run():
        basis = sp.groebner(list(relations), *gens, order="grevlex", domain=sp.QQ)
        items = list(expr) if isinstance(expr, sp.MatrixBase) else [expr]
        ok = all(basis.reduce(_numerator(e, gens))[1] == 0 for e in items)
        return Check(ok, what + ("" if ok else " FAILED: nonzero remainder"))

    return _guard(run, what)


def check_at_rational_points(derived, claim, points, what: str = "") -> Check:
    """Weaker check: ``derived == claim`` exactly at each point (dict symbol -> rational number).

    Only for expressions sympy cannot reduce symbolically; the ``strength`` says it is not a proof.
    """

    def run():
        if not points:
            return Check(False, f"{what}: no points given", RATIONAL_POINTS)
        for point in points:
            values = {k: sp.Rational(Fraction(v)) for k, v in point.items()}
            diff = sp.sympify(derived).subs(values) - sp.sympify(claim).subs(values)
            if sp.simplify(diff) != 0:
                return Check(False, f"{what} FAILED at {point}", RATIONAL_POINTS)
        return Check(
            True, f"{what} exact equality at {len(points)} rational points", RATIONAL_POINTS
        )

    return _guard(run, what)
