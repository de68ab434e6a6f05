"""Audit your own fine-tuning data: how exposed is it now, and how many shots would make it safe?

``audit(features, labels)`` measures membership-inference vulnerability (online and offline LiRA,
offline RMIA) of a linear head trained on the user's features at several shots per class S
subsampled from their data, by the project's own sweep (``mialaw.empirical.experiment.run_sweep``
with given features: complementary model pairs, pair rotation, one threshold per experiment,
bootstrap intervals), fits the power law log10(TPR − FPR) = slope·log10 S + intercept per attack
and FPR (weighted least squares over the points the analysis admits: resolvable, detected,
unsaturated), and reports

* the vulnerability at the user's full S (``train_shots``, default: the smallest class, i.e.
  training on everything), *measured* when the data allow a sweep cell at that S (a cell needs
  2·S candidates and >= 10 held-out examples per class, so the full S itself never fits and is
  always *predicted* unless ``train_shots`` is smaller), *predicted* by the fit otherwise;
* the S per class at which TPR − FPR falls under ``target_advantage``, and under the (ε, δ)-DP
  bound (e^ε − 1)·α + δ (``mialaw.theory.dp``), each with Fieller's interval from the fit's full
  covariance (``mialaw.empirical.laws``).

Intervals beyond the measured S. A prediction's interval is where a *measurement* at that S would
fall: the fitted line's band (covariance included) widened by one measurement's noise (the
standard error of the point at the largest fitted S). Beyond the largest fitted S its upper end
also allows the curve to flatten to the theory's large-S slope −½ (``THEORY_SLOPE``): in the
unsaturated regime local slopes are steeper than −½ and approach it, so a straight line through
the measured points under-predicts further out (seen on the Gaussian model: a fitted slope of −1.0
over S = 7…56, a measurement at S = 150 above the straight line's band). The same envelope sets
the upper end of the S needed.

Only the fit's *tail* (the usable points within ``fit_octaves`` octaves of the largest) enters
the law: the law is asymptotic, small S bend the curve (the advantage saturates), and the user asks
about larger S than measured.

Everything is checked before anything runs; bad input raises ``ValueError`` saying what was wrong
and what is allowed. The sweep's cells go to ``out/run`` (an interrupted audit resumes; an
``out`` holding another data set's audit is refused) and the reports ``report.md``,
``report.html`` (self-contained, plots as base64 PNG) and ``report.json`` are each written to a
temporary file and renamed, so none is ever half-written.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mialaw.empirical.analysis import json_ready

__all__ = ["AuditReport", "audit", "default_shots", "check_data", "write_reports"]

ATTACK_LABELS = {"lira_online": "LiRA online", "lira_offline": "LiRA offline", "rmia": "RMIA"}
MIN_HELD_OUT = 10  # per class, as the sweep requires (prepare_features)
FIT_OCTAVES = 3.0  # the law is fitted over the usable points within this many octaves of the top
# The large-S slope of the law (the theory's): local slopes approach it from the steeper side once
# the advantage is unsaturated, so a straight line through steeper points under-predicts beyond
# them; the upper ends of predictions beyond the largest fitted S follow at most this slope.
THEORY_SLOPE = -0.5
MIN_POINTS = 3  # a law needs a residual degree of freedom to be checked at all


# --------------------------------------------------------------------------- validation
def check_data(features, labels) -> tuple[np.ndarray, np.ndarray]:
    """(features float32 N × D, labels int64 N) or ValueError saying what is wrong and allowed."""
    try:
        x = np.asarray(features)
    except ValueError as err:  # numpy refuses ragged nested sequences
        raise ValueError(
            f"features must be a rectangular N × D array of numbers (rows of one length); {err}"
        ) from None
    if x.dtype == object or not (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        raise ValueError(
            f"features must be a rectangular N × D array of numbers; got dtype {x.dtype} "
            "(ragged rows or non-numeric values)"
        )
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"features must be 2-D (N examples × D features); got shape {x.shape}")
    bad = ~np.all(np.isfinite(x), axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"features contain NaN or inf in {rows.size} of {x.shape[0]} rows (first: "
            f"{rows[:5].tolist()}); only finite values are allowed"
        )
    try:
        y = np.asarray(labels)
    except ValueError as err:
        raise ValueError(f"labels must be a 1-D array of N integers; {err}") from None
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D (one integer per example); got shape {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"features and labels disagree: {x.shape[0]} feature rows but {y.shape[0]} labels "
            "(one label per row is required)"
        )
    if y.dtype == bool or not (np.issubdtype(y.dtype, np.integer) or _whole(y)):
        raise ValueError(
            f"labels must be integers 0..C-1; got dtype {y.dtype}"
            + (" with non-integer values" if np.issubdtype(y.dtype, np.floating) else "")
            + " (map class names to 0..C-1 first)"
        )
    y = y.astype(np.int64)
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(
            f"labels hold one class only ({classes.tolist()}); membership of a classifier "
            "needs at least 2 classes"
        )
    if classes[0] != 0 or classes[-1] != classes.size - 1:
        raise ValueError(
            f"labels must be 0..C-1 with every class present; got values {classes[:10].tolist()}"
            + ("..." if classes.size > 10 else "")
        )
    return np.ascontiguousarray(x, dtype=np.float32), y


def _whole(y: np.ndarray) -> bool:
    return (
        np.issubdtype(y.dtype, np.floating)
        and bool(np.all(np.isfinite(y)))
        and bool(np.all(y == np.round(y)))
    )


def largest_shots(counts) -> int:
    """The largest S a sweep cell allows: 2·S candidates plus MIN_HELD_OUT per class."""
    return (int(np.min(counts)) - MIN_HELD_OUT) // 2


def default_shots(counts) -> tuple[int, ...]:
    """A log2 grid 1, 2, 4, ... and the largest S that leaves a quarter of the smallest class
    held out (the most informative cell; the held-out examples standardise the features and are
    RMIA's population, which a bare 10 per class would make coarse)."""
    n = int(np.min(counts))
    top = (n - max(MIN_HELD_OUT, n // 4)) // 2
    if top < 1:
        return ()
    # Octaves below the fitted tail, then half-octaves across it: more points where the law is
    # fitted (residual degrees of freedom) for 1.6x the cost of a plain log2 grid.
    low = top / 2**FIT_OCTAVES
    grid = {2**k for k in range(int(math.log2(top)) + 1) if 2**k < low / 2**0.5}
    grid |= {max(1, round(top / 2 ** (k / 2))) for k in range(int(2 * FIT_OCTAVES) + 1)}
    return tuple(sorted(grid))


def _ints(name, values, minimum=1) -> tuple[int, ...]:
    vals = (values,) if isinstance(values, (int, np.integer)) else tuple(values)
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise ValueError(f"{name} must be integers >= {minimum}; got {values!r}")
        out.append(int(v))
    return tuple(sorted(set(out)))


def _positive(name, values, upper=None) -> tuple[float, ...]:
    if values is None:
        return ()
    vals = (values,) if np.isscalar(values) else tuple(values)
    out = []
    for v in vals:
        f = float(v)
        if not (math.isfinite(f) and f > 0 and (upper is None or f < upper)):
            bound = "" if upper is None else f" and < {upper:g}"
            raise ValueError(f"{name} must be numbers > 0{bound}; got {values!r}")
        out.append(f)
    return tuple(out)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Law:
    """The fitted power law of one attack at one FPR (or why there is none)."""

    attack: str
    fpr: float
    shots_fitted: tuple
    line: object | None = field(default=None, repr=False)  # laws.Line (log10 S, log10 adv)
    r2: float = float("nan")
    error: str | None = None
    # Standard error of log10(advantage) of one measurement, taken from the fitted point at the
    # largest S (the protocol closest to a measurement beyond it).
    noise: float = float("nan")

    @property
    def slope(self):
        from mialaw.theory.estimate import Estimate

        if self.line is None:
            return Estimate(math.nan, math.nan, math.nan)
        (_, _), (_, c_bb) = self.line.covariance
        half = self.line.t * math.sqrt(c_bb)
        return Estimate(self.line.slope - half, self.line.slope, self.line.slope + half)

    def predict(self, shots, *, measurement: bool = True):
        """Advantage TPR − FPR at ``shots``: ``Estimate`` (floats).

        ``measurement=True``: the interval in which a measurement at ``shots`` (this audit's
        protocol) falls, the line's band widened by one measurement's noise (added in
        quadrature on the log scale); ``False``: the band of the fitted line alone (the expected
        advantage, which the S needed is read from).
        """
        from mialaw.theory.estimate import Estimate

        if self.line is None:
            return Estimate(math.nan, math.nan, math.nan)
        x = math.log10(shots)
        lo, est, hi = self._band(x, measurement)
        top = math.log10(max(self.shots_fitted))
        if x > top:  # beyond the data the curve may flatten to the theory's slope
            hi = max(hi, self._band(top, measurement)[2] + THEORY_SLOPE * (x - top))
        cap = 1.0 - self.fpr  # an advantage cannot exceed 1 − α
        return Estimate(*(min(float(10.0**v), cap) for v in (lo, est, hi)))

    def _band(self, x: float, measurement: bool) -> tuple[float, float, float]:
        lo, est, hi = (float(v) for v in self.line.band(x))
        if measurement and math.isfinite(self.noise) and math.isfinite(hi):
            half = math.hypot(hi - est, self.line.t * self.noise)
            lo, hi = est - half, est + half
        return lo, est, hi

    def shots_for(self, advantage: float):
        """S per class at which the law meets ``advantage``: ``Estimate`` (>= 1, inf = never)."""
        from mialaw.theory.estimate import Estimate

        if self.line is None:
            return Estimate(math.nan, math.nan, math.nan)
        y = math.log10(advantage)
        lo, est, hi = self.line.solve(y)
        if not self.line.slope < 0:
            est = math.inf  # a law that does not fall never reaches a lower advantage
        top = math.log10(max(self.shots_fitted))
        edge = self._band(top, False)[2]
        if edge > y:  # the bound lies beyond the data: allow the flattening to the theory's slope
            hi = max(hi, top + (y - edge) / THEORY_SLOPE)
        return Estimate(*(_shots(v) for v in (lo, est, hi)))

    def to_dict(self) -> dict:
        d = {"attack": self.attack, "fpr": self.fpr, "shots_fitted": list(self.shots_fitted)}
        if self.line is None:
            return d | {"error": self.error}
        s = self.slope
        return d | {
            "slope": s.estimate,
            "slope_ci": [s.lower, s.upper],
            "intercept": self.line.intercept,
            "covariance": [list(r) for r in self.line.covariance],
            "dof": self.line.dof,
            "centre_log10_shots": self.line.centre,
            "band_quantile": self.line.t,
            "measurement_log10_se": self.noise,
            "r2": self.r2,
            "level": self.line.level,
        }


def _shots(log10_s: float) -> float:
    if math.isnan(log10_s):
        return math.nan
    if log10_s > 300:
        return math.inf
    return max(1.0, 10.0**log10_s)


@dataclass(frozen=True)
class Exposure:
    """TPR − FPR of one attack at one FPR at the user's S, measured or predicted (``source``)."""

    attack: str
    fpr: float
    shots: int
    advantage: tuple  # (lower, estimate, upper): where a measurement at ``shots`` falls
    source: str  # "measured", "predicted" or "unavailable"
    note: str = ""
    expected: tuple = (math.nan,) * 3  # predicted: the fitted line's band alone

    def to_dict(self) -> dict:
        lo, est, hi = self.advantage
        return {
            "attack": self.attack,
            "fpr": self.fpr,
            "shots": self.shots,
            "advantage": est,
            "advantage_ci": [lo, hi],
            "expected_ci": [self.expected[0], self.expected[2]],
            "source": self.source,
            "note": self.note,
        }


@dataclass(frozen=True)
class ShotsNeeded:
    """S per class at which one attack's TPR − FPR falls under ``bound`` at FPR ``fpr``."""

    criterion: str  # "target advantage 0.01" or "(ε=1, δ=1e-05)-DP"
    attack: str
    fpr: float
    bound: float
    shots: tuple  # (lower, estimate, upper), real, >= 1, inf = not within the data's reach
    note: str = ""

    def to_dict(self) -> dict:
        lo, est, hi = self.shots
        return {
            "criterion": self.criterion,
            "attack": self.attack,
            "fpr": self.fpr,
            "advantage_bound": self.bound,
            "shots": est,
            "shots_ci": [lo, hi],
            "shots_ceil": None if not math.isfinite(est) else int(math.ceil(est)),
            "note": self.note,
        }


@dataclass(frozen=True)
class AuditReport:
    """What ``audit`` found; ``to_json()``, ``to_markdown()``, ``to_html()`` render it."""

    settings: dict
    data: dict  # examples, classes, per-class counts, train_shots, feature key
    points: tuple  # measured points (the analysis' dicts)
    laws: tuple  # of Law
    exposure: tuple  # of Exposure, at data["train_shots"]
    needed: tuple  # of ShotsNeeded
    roc: dict = field(repr=False)  # {"shots": S, "grid": [...], attack: [...]}
    vulnerable: tuple = ()  # dicts: index, name, label, delta, advantage, empirical_tpr
    seconds: float = float("nan")
    run_dir: str | None = None

    # ------------------------------------------------------------------ headline
    def strongest(self, fpr: float) -> Exposure | None:
        """The attack with the largest advantage at the user's S at ``fpr``, among those whose
        interval says something (its ends within a factor 100; else among all)."""
        found = [e for e in self.exposure if e.fpr == fpr and e.source != "unavailable"]
        told = [e for e in found if e.advantage[0] > 0 and e.advantage[2] < 100 * e.advantage[0]]
        found = told or found
        return max(found, key=lambda e: e.advantage[1]) if found else None

    def binding(self, criterion: str, fpr: float) -> ShotsNeeded | None:
        """The attack needing the most shots for ``criterion`` at ``fpr`` (the one that binds)."""
        found = [
            n
            for n in self.needed
            if n.criterion == criterion and n.fpr == fpr and not math.isnan(n.shots[1])
        ]
        return max(found, key=lambda n: n.shots[1]) if found else None

    def headline(self) -> list[str]:
        """The lines a person reads in a minute."""
        d, s = self.data, self.settings
        measured = sorted({p["shots"] for p in self.points})
        lines = [
            f"Data: {d['examples']:,} examples, {d['classes']} classes, {d['features']} features;"
            f" your S = {d['train_shots']:,} per class ({d['train_shots_source']}).",
            f"Audit: LiRA (online, offline) and RMIA against a linear head, {s['shadows']} "
            f"shadows, {s['seeds']} seed(s), S measured at {_list(measured)}.",
        ]
        for alpha in s["fpr"]:
            e = self.strongest(alpha)
            if e is None:
                lines.append(f"At FPR {_pct(alpha)}: no measurement or fit (see the table).")
                continue
            lo, est, hi = e.advantage
            lines.append(
                f"At your S = {e.shots:,}, FPR {_pct(alpha)}: TPR − FPR = {_num(est)} "
                f"[{_num(lo)}, {_num(hi)}] ({e.source}; strongest attack "
                f"{ATTACK_LABELS[e.attack]})."
            )
        for criterion in dict.fromkeys(n.criterion for n in self.needed):
            for alpha in s["fpr"]:
                n = self.binding(criterion, alpha)
                if n is None:
                    continue
                lo, est, hi = n.shots
                have = d["train_shots"]
                verdict = (
                    "you are there already"
                    if hi <= have
                    else "you may be there already"
                    if lo <= have
                    else f"you have {have:,}"
                )
                lines.append(
                    f"TPR − FPR under {_num(n.bound)} ({criterion}) at FPR {_pct(alpha)}: "
                    f"S >= {_shots_text(est)} per class [{_shots_text(lo)}, {_shots_text(hi)}] "
                    f"({ATTACK_LABELS[n.attack]}; {verdict})."
                )
        for law in self.laws:
            if law.attack == "lira_online" and law.line is not None:
                sl = law.slope
                lines.append(
                    f"Power-law slope (LiRA online, FPR {_pct(law.fpr)}): {sl.estimate:.2f} "
                    f"[{sl.lower:.2f}, {sl.upper:.2f}] over S = {_list(law.shots_fitted)} "
                    "(the theory's large-S slope is −0.5)."
                )
                break
        return lines

    # ------------------------------------------------------------------ renderings
    def to_json(self) -> dict:
        return json_ready(
            {
                "format": "mialaw-audit/1",
                "headline": self.headline(),
                "settings": self.settings,
                "data": self.data,
                "exposure": [e.to_dict() for e in self.exposure],
                "shots_needed": [n.to_dict() for n in self.needed],
                "laws": [law.to_dict() for law in self.laws],
                "points": list(self.points),
                "roc": self.roc,
                "most_vulnerable": list(self.vulnerable),
                "seconds": self.seconds,
                "run_dir": self.run_dir,
                "notes": _NOTES,
            }
        )

    def to_markdown(self) -> str:
        out = ["# Membership-inference audit", ""]
        out += [f"- {line}" for line in self.headline()]
        out += ["", "## Exposure at your S", ""]
        out += ["| attack | FPR | TPR − FPR | 95% interval | source |", "|---|---|---|---|---|"]
        for e in self.exposure:
            lo, est, hi = e.advantage
            src = e.source + (f" ({e.note})" if e.note else "")
            out.append(
                f"| {ATTACK_LABELS[e.attack]} | {e.fpr:g} | {_num(est)} | "
                f"[{_num(lo)}, {_num(hi)}] | {src} |"
            )
        if self.needed:
            out += ["", "## Shots per class needed", ""]
            out += ["| criterion | attack | FPR | bound | S | 95% interval |"]
            out += ["|---|---|---|---|---|---|"]
            for n in self.needed:
                lo, est, hi = n.shots
                out.append(
                    f"| {n.criterion} | {ATTACK_LABELS[n.attack]} | {n.fpr:g} | {_num(n.bound)} |"
                    f" {_shots_text(est)} | [{_shots_text(lo)}, {_shots_text(hi)}] |"
                )
        out += ["", "## Power laws (log10(TPR − FPR) = slope · log10 S + intercept)", ""]
        out += [
            "| attack | FPR | slope | 95% interval | S fitted | R² |",
            "|---|---|---|---|---|---|",
        ]
        for law in self.laws:
            if law.line is None:
                out.append(f"| {ATTACK_LABELS[law.attack]} | {law.fpr:g} | no fit: {law.error} |||")
                continue
            sl = law.slope
            out.append(
                f"| {ATTACK_LABELS[law.attack]} | {law.fpr:g} | {sl.estimate:.3f} | "
                f"[{sl.lower:.3f}, {sl.upper:.3f}] | {_list(law.shots_fitted)} | {_num(law.r2)} |"
            )
        if self.vulnerable:
            out += ["", f"## Most vulnerable examples (S = {self.roc.get('shots')})", ""]
            out += ["| index | name | class | Δ̂ | per-example TPR − FPR |", "|---|---|---|---|---|"]
            for v in self.vulnerable:
                out.append(
                    f"| {v['index']} | {v.get('name') or ''} | {v['label']} | {v['delta']:.2f} | "
                    f"{_num(v['advantage'])} |"
                )
        out += ["", "## Notes", ""] + [f"- {n}" for n in _NOTES]
        return "\n".join(out) + "\n"

    def to_html(self) -> str:
        import html

        head = "".join(f"<li>{html.escape(line)}</li>" for line in self.headline())
        md = self.to_markdown().split("\n## ", 1)[1]  # the tables after the headline
        tables = _markdown_tables_to_html("## " + md)
        figures = []
        for title, png in _figures(self):
            figures.append(
                f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{png}'/>"
                f"<figcaption>{html.escape(title)}</figcaption></figure>"
            )
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>mialaw audit</title>"
            f"<style>{_CSS}</style></head><body><h1>Membership-inference audit</h1>"
            f"<ul class='headline'>{head}</ul>{''.join(figures)}{tables}</body></html>\n"
        )

    def write(self, out) -> dict:
        """Write report.md, report.html and report.json into ``out`` (each atomically)."""
        return write_reports(self, out)


_NOTES = [
    "Advantage = TPR − FPR of the pooled attack (one threshold per experiment over all target "
    "models), measured at S subsampled from your data; intervals: bootstrap of examples.",
    "'predicted' values come from the power law fitted to the largest measured S, "
    "with the interval in which a measurement at that S would fall (the fitted line's band, "
    "its covariance included, widened by one measurement's noise; report.json also gives the "
    "line's band alone as expected_ci); 'measured' ones come from a sweep cell at that S.",
    "Shots needed: Fieller's interval (the S at which the fitted line's band meets the bound); "
    "an infinite end means the measured S cannot tell.",
    "Beyond the largest fitted S the upper ends (of TPR − FPR and of the S needed) also allow "
    "the curve to flatten to the theory's large-S slope −0.5 from the band's upper end there.",
    "A point enters a fit if resolvable, detected (interval above FPR), unsaturated and its "
    "achieved FPR is >= FPR/2 (RMIA's scores tie, which can leave its threshold far below FPR).",
    "(ε, δ)-DP bound: an (ε, δ)-DP training bounds TPR − FPR by (e^ε − 1)·FPR + δ.",
    "The audit attacks a linear head on fixed features; fine-tuning more of the network is "
    "usually more exposed.",
]

_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em}"
    "figure{display:inline-block;margin:.5em}img{max-width:100%}.headline li{margin:.3em 0}"
)


def _markdown_tables_to_html(text: str) -> str:
    import html

    parts, rows = [], []

    def flush():
        if rows:
            cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                for r in cells[2:]
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
            rows.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            rows.append(line)
            continue
        flush()
        if line.startswith("## "):
            parts.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            parts.append(f"<p>{html.escape(line[2:])}</p>")
    flush()
    return "".join(parts)


def _figures(report: AuditReport) -> list[tuple[str, str]]:
    """(title, base64 PNG) of the advantage-against-S plot, the ROC and the vulnerable examples."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    def encode(fig) -> str:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        return base64.b64encode(buf.getvalue()).decode("ascii")

    out = []
    alphas = report.settings["fpr"]
    fig, axes = plt.subplots(1, len(alphas), figsize=(4.3 * len(alphas), 3.6), squeeze=False)
    have = report.data["train_shots"]
    bounds = {}
    for n in report.needed:
        bounds.setdefault((n.fpr, n.criterion), n.bound)
    for ax, alpha in zip(axes[0], alphas):
        top = have
        for i, attack in enumerate(ATTACK_LABELS):
            color = f"C{i}"
            pts = sorted(
                (
                    p
                    for p in report.points
                    if p["attack"] == attack and p["fpr"] == alpha and p["resolvable"]
                ),
                key=lambda p: p["shots"],
            )
            pts = [p for p in pts if (p["advantage"] or 0) > 0]
            if pts:
                s = np.array([p["shots"] for p in pts], dtype=float)
                adv = np.array([p["advantage"] for p in pts])
                lo = np.maximum(np.array([p["tpr_ci"][0] for p in pts]) - alpha, adv / 50)
                hi = np.array([p["tpr_ci"][1] for p in pts]) - alpha
                ax.errorbar(
                    s, adv, yerr=[adv - lo, hi - adv], fmt="o", ms=3, capsize=2, color=color,
                    label=ATTACK_LABELS[attack],
                )  # fmt: skip
            law = next((x for x in report.laws if x.attack == attack and x.fpr == alpha), None)
            if law is not None and law.line is not None:
                for n in report.needed:
                    if n.attack == attack and n.fpr == alpha and math.isfinite(n.shots[1]):
                        top = max(top, min(n.shots[1], 1e3 * have))
                grid = np.geomspace(min(law.shots_fitted), max(top, max(law.shots_fitted)), 80)
                blo, best, bhi = law.line.band(np.log10(grid))
                ax.plot(grid, 10**best, "-", color=color, lw=1)
                ax.fill_between(grid, 10**blo, 10**bhi, color=color, alpha=0.15, lw=0)
        ax.axvline(have, color="k", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for (a, criterion), b in bounds.items():
            if a == alpha:
                ax.axhline(b, color="grey", ls="--", lw=1)
                # x in axes fraction, y in data: the label sits on its line at the left edge
                ax.text(0.01, b, criterion, fontsize=6, va="bottom",
                        transform=ax.get_yaxis_transform())  # fmt: skip
        ax.set_xlabel("shots per class S (dotted: yours)")
        ax.set_ylabel("TPR − FPR")
        ax.set_title(f"FPR = {alpha:g}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.append(
        (
            "TPR − FPR against S: measured (95% bootstrap intervals), the fitted law and its 95% "
            "band; dashed: the bounds asked for",
            encode(fig),
        )
    )

    roc = report.roc
    if roc.get("grid"):
        fig, ax = plt.subplots(figsize=(4.3, 3.8))
        grid = np.asarray(roc["grid"])
        for i, attack in enumerate(ATTACK_LABELS):
            if attack in roc:
                ax.plot(
                    grid, np.maximum(roc[attack], 1e-5), color=f"C{i}", label=ATTACK_LABELS[attack]
                )
        ax.plot(grid, grid, ":", color="grey", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(1e-5, 1)
        ax.set_xlabel("FPR")
        ax.set_ylabel("TPR")
        ax.set_title(f"ROC at S = {roc['shots']} (your largest measured S)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        out.append((f"ROC at S = {roc['shots']}", encode(fig)))

    if report.vulnerable:
        fig, ax = plt.subplots(figsize=(4.3, 3.8))
        v = report.vulnerable
        names = [str(x.get("name") or x["index"]) for x in v][::-1]
        ax.barh(range(len(v)), [x["delta"] for x in v][::-1], color="C3")
        ax.set_yticks(range(len(v)), [n[-24:] for n in names], fontsize=6)
        ax.set_xlabel("standardised IN−OUT gap |Δ̂| (larger = more exposed)")
        ax.set_title(f"Most vulnerable examples at S = {roc.get('shots')}")
        fig.tight_layout()
        out.append(("Most vulnerable examples (index or file name)", encode(fig)))
    return out


# --------------------------------------------------------------------------- formatting
def _num(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.3g}"


def _pct(a: float) -> str:
    return f"{100 * a:g}%"


def _shots_text(v) -> str:
    if v is None or math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "∞"
    return f"{math.ceil(v):,}" if v < 1e7 else f"{v:.1e}"


def _list(values) -> str:
    values = list(values)
    return (
        ", ".join(f"{int(v):,}" for v in values)
        if len(values) <= 6
        else (f"{int(values[0]):,} … {int(values[-1]):,} ({len(values)} values)")
    )


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_reports(report: AuditReport, out) -> dict:
    """report.md, report.html, report.json in ``out``: all rendered first, then each renamed
    into place, so a failure leaves no half-written report."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "report.json": json.dumps(report.to_json(), indent=1, ensure_ascii=False),
        "report.md": report.to_markdown(),
        "report.html": report.to_html(),
    }
    paths = {}
    for name, text in texts.items():
        _atomic_write(out / name, text)
        paths[name] = out / name
    return paths


# --------------------------------------------------------------------------- the audit
@dataclass(frozen=True, eq=False)
class _GivenFeatures:
    """What ``run_sweep(..., features=...)`` takes: features, labels and a content key."""

    features: np.ndarray
    labels: np.ndarray
    key: str


def _content_key(x: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in (x, y):
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return "given-" + h.hexdigest()[:24]


def _check_resume(run_dir: Path, key: str) -> None:
    """run_sweep compares the cell settings only; the data must match too."""
    path = run_dir / "settings.json"
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text()).get("feature_key")
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path} is unreadable ({err}); delete {run_dir} or use another out"
        ) from None
    if old != key:
        raise ValueError(
            f"{run_dir} holds an audit of other data (features {old}, now {key}); use another "
            "out directory, or the same data to resume"
        )


def audit(
    features,
    labels,
    *,
    shots=None,
    fpr=(0.1, 0.01, 0.001),
    shadows: int = 16,
    seeds: int = 1,
    target_advantage=None,
    epsilon=None,
    delta: float = 1e-5,
    out=None,
    train_shots: int | None = None,
    weight_decay: float = 0.01,
    standardize: bool = True,
    rmia_population: int | None = None,
    fit_octaves: float | None = FIT_OCTAVES,
    level: float = 0.95,
    top: int = 10,
    names=None,
    dataset: str = "user",
    backbone: str = "given",
    device: str = "auto",
    progress: bool = True,
) -> AuditReport:
    """Audit membership-inference exposure of a linear head fine-tuned on ``features``.

    Parameters
    ----------
    features, labels : N × D numbers and N integer labels 0..C-1 (every class present).
    shots : S per class to measure (default: 1, 2, 4, ... and the largest S the data allow,
        (smallest class − 10) // 2).
    fpr : FPRs α at which TPR is measured.
    shadows, seeds : shadow heads per target (even, >= 4) and independent experiments.
    target_advantage : one or more bounds on TPR − FPR; reports the S per class that reaches each.
    epsilon, delta : one or more ε (and δ) of the (ε, δ)-DP bound (e^ε − 1)·α + δ on TPR − FPR.
    out : directory for the sweep's cells (``out/run``, resumable) and report.md/html/json; None
        runs in a temporary directory and writes nothing.
    train_shots : the S per class you train with (default: the smallest class: all your data).
    weight_decay : λ of the head's mean-loss objective (the sweep's ``RunConfig.weight_decay``).
    rmia_population : RMIA's reference population P (default: C·max(10, smallest class // 4),
        what the default grid leaves held out at its largest S, so that RMIA is the same attack
        at every S; the held-out examples shrink as S grows).
    fit_octaves : the power law is fitted to the usable points within ``fit_octaves`` octaves
        below the largest usable S (None: all usable points).
    names : optional per-example names (e.g. file paths) for the most vulnerable examples.

    Returns an ``AuditReport``. Raises ``ValueError`` for bad input before anything runs.
    """
    import tempfile

    from mialaw.empirical.experiment import RunConfig, run_sweep

    started = time.perf_counter()
    x, y = check_data(features, labels)
    counts = np.bincount(y)
    n_min = int(counts.min())
    if shots is None:
        shots = default_shots(counts)
        if len(shots) < 2:
            raise ValueError(
                f"the smallest class has {n_min} examples; an audit needs S = 1 and 2 at least, "
                f"i.e. >= {2 * 2 + MIN_HELD_OUT} examples per class (2·S candidates and "
                f">= {MIN_HELD_OUT} held out)"
            )
    else:
        shots = _ints("shots", shots)
        if len(shots) < 2:
            raise ValueError(f"shots must hold >= 2 distinct values for a fit; got {shots!r}")
    top_s = largest_shots(counts)
    if max(shots) > top_s:
        smallest = int(np.argmin(counts))
        raise ValueError(
            f"S = {max(shots)} needs {2 * max(shots) + MIN_HELD_OUT} examples per class (2·S "
            f"candidates and >= {MIN_HELD_OUT} held out), but class {smallest} has {n_min}; "
            f"allowed: S <= {top_s}"
            + ("" if top_s >= 1 else f" (no S is possible: every class needs >= {2 + 10})")
        )
    if train_shots is None:
        train_shots, source = n_min, "the smallest class: training on all your data"
    else:
        train_shots = _ints("train_shots", train_shots)[0]
        source = "as given"
    measured_train = train_shots <= top_s
    grid = tuple(sorted(set(shots) | ({train_shots} if measured_train else set())))
    alphas = _positive("fpr", fpr, upper=1.0)
    targets = _positive("target_advantage", target_advantage, upper=1.0)
    epsilons = () if epsilon is None else _positive("epsilon", epsilon)
    delta = float(delta)
    if not (math.isfinite(delta) and 0 <= delta < 1):
        raise ValueError(f"delta must lie in [0, 1); got {delta!r}")
    if fit_octaves is not None and not (
        isinstance(fit_octaves, (int, float))
        and not isinstance(fit_octaves, bool)
        and fit_octaves >= 1
    ):
        raise ValueError(f"fit_octaves must be a number >= 1 or None; got {fit_octaves!r}")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 0:
        raise ValueError(f"top must be an integer >= 0; got {top!r}")
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != x.shape[0]:
            raise ValueError(
                f"names must hold one name per example ({x.shape[0]}); got {len(names)}"
            )
    if rmia_population is None:
        rmia_population = int(counts.size) * max(MIN_HELD_OUT, n_min // 4)
    config = RunConfig(
        dataset=dataset,
        backbone=backbone,
        classes=(int(counts.size),),
        shots=grid,
        shadows=shadows,
        seeds=seeds,
        fpr=alphas,
        head="linear",
        weight_decay=weight_decay,
        standardize=bool(standardize),
        rmia_population=rmia_population,
        device=device,
    )
    given = _GivenFeatures(x, y, _content_key(x, y))
    with tempfile.TemporaryDirectory(prefix="mialaw-audit-") as scratch:
        run_dir = Path(out) / "run" if out is not None else Path(scratch) / "run"
        if out is not None and Path(out).exists() and not Path(out).is_dir():
            raise ValueError(f"out {out} exists and is not a directory")
        _check_resume(run_dir, given.key)
        result = run_sweep(config, run_dir, features=given, progress=progress, plots=False)
        largest = max(grid)
        roc, vulnerable = _largest_cell(result, run_dir, config, largest, top, names)
    points = tuple(p for p in result.points)
    laws = tuple(
        _law(points, attack, alpha, fit_octaves, level)
        for attack in ATTACK_LABELS
        for alpha in config.fpr
    )
    exposure = tuple(_exposure(points, law, train_shots, measured_train) for law in laws)
    criteria = [(f"target advantage {_num(t)}", lambda a, t=t: t) for t in targets]
    criteria += [
        (
            f"(ε={_num(e)}, δ={delta:g})-DP",
            lambda a, e=e: math.expm1(e) * a + delta,
        )
        for e in epsilons
    ]
    needed = tuple(
        _needed(law, name, bound(law.fpr), epsilons, delta)
        for name, bound in criteria
        for law in laws
    )
    report = AuditReport(
        settings={
            "shots": list(grid),
            "fpr": list(config.fpr),
            "shadows": config.shadows,
            "seeds": config.seeds,
            "weight_decay": config.weight_decay,
            "standardize": config.standardize,
            "rmia_population": config.rmia_population,
            "fit_octaves": fit_octaves,
            "level": level,
            "target_advantage": list(targets),
            "epsilon": list(epsilons),
            "delta": delta,
            "head": "linear",
        },
        data={
            "examples": int(x.shape[0]),
            "features": int(x.shape[1]),
            "classes": int(counts.size),
            "per_class": counts.tolist(),
            "train_shots": int(train_shots),
            "train_shots_source": source,
            "largest_measurable_shots": int(top_s),
            "feature_key": given.key,
            "dataset": dataset,
            "backbone": backbone,
        },
        points=points,
        laws=laws,
        exposure=exposure,
        needed=needed,
        roc=roc,
        vulnerable=vulnerable,
        seconds=time.perf_counter() - started,
        run_dir=None if out is None else str(run_dir),
    )
    if out is not None:
        write_reports(report, out)
    return report


def _usable(rows, alpha) -> np.ndarray:
    """The analysis' fit rule (resolvable, detected, unsaturated), and an achieved FPR of at least
    α/2: coarse scores (RMIA's are fractions of its population, so many tie) can leave the
    ≤ α threshold far below α, and such a point measures TPR at another FPR."""
    from mialaw.empirical.analysis import fit_rule

    if not rows:
        return np.zeros(0, dtype=bool)
    achieved = np.array([p["achieved_fpr"] >= alpha / 2 for p in rows])
    return fit_rule(rows, alpha) & achieved


def _law(points, attack, alpha, fit_octaves, level) -> Law:
    """Weighted power law over the tail of the usable points (see the module docstring)."""
    from mialaw.empirical.laws import line_from_power_law
    from mialaw.theory.fits import fit_power_law

    rows = sorted(
        (p for p in points if p["attack"] == attack and p["fpr"] == alpha),
        key=lambda p: p["shots"],
    )
    usable = _usable(rows, alpha)
    shots = np.array([p["shots"] for p in rows], dtype=np.float64)
    if fit_octaves is not None and usable.any():
        usable &= shots >= shots[usable].max() / 2.0**fit_octaves * (1 - 1e-9)
    adv = np.array([np.nan if p["advantage"] is None else p["advantage"] for p in rows])
    sigma = np.array(
        [np.nan if p["log10_advantage_se"] is None else p["log10_advantage_se"] for p in rows]
    )
    fitted = tuple(int(s) for s in shots[usable])
    if len(fitted) < MIN_POINTS:
        return Law(
            attack,
            float(alpha),
            fitted,
            error=f"{len(fitted)} usable points (resolvable, detected, unsaturated) where the "
            f"fit needs >= {MIN_POINTS}",
        )
    try:
        fit = fit_power_law(shots, adv, keep=usable, sigma=sigma, level=level)
    except ValueError as err:
        return Law(attack, float(alpha), fitted, error=str(err))
    line = line_from_power_law(fit, shots, sigma)
    last = np.flatnonzero(fit.kept)[-1]
    return Law(
        attack,
        float(alpha),
        tuple(int(s) for s in shots[fit.kept]),
        line,
        fit.r2,
        noise=float(sigma[last]),
    )


def _exposure(points, law: Law, train_shots: int, measured: bool) -> Exposure:
    if measured:
        p = next(
            (
                p
                for p in points
                if p["attack"] == law.attack and p["fpr"] == law.fpr and p["shots"] == train_shots
            ),
            None,
        )
        if p is not None and p["resolvable"]:
            lo, hi = (v - law.fpr for v in p["tpr_ci"])
            return Exposure(law.attack, law.fpr, train_shots, (lo, p["advantage"], hi), "measured")
        note = "unresolvable at this S (fewer than 1/FPR non-members)"
    else:
        note = ""
    if law.line is None:
        return Exposure(
            law.attack, law.fpr, train_shots, (math.nan,) * 3, "unavailable", f"no fit: {law.error}"
        )
    return Exposure(
        law.attack,
        law.fpr,
        train_shots,
        tuple(law.predict(train_shots)),
        "predicted",
        note,
        tuple(law.predict(train_shots, measurement=False)),
    )


def _needed(law: Law, criterion: str, bound: float, epsilons, delta) -> ShotsNeeded:
    if law.line is None:
        return ShotsNeeded(
            criterion, law.attack, law.fpr, bound, (math.nan,) * 3, f"no fit: {law.error}"
        )
    lo, est, hi = law.shots_for(bound)
    note = ""
    if criterion.endswith("-DP") and law.line.slope < 0:
        # The project's inversion (mialaw.theory.dp) gives the same point estimate.
        from mialaw.theory.dp import dp_shots_from_power_law

        eps = next(e for e in epsilons if criterion.startswith(f"(ε={_num(e)},"))
        try:
            est = dp_shots_from_power_law(
                law.line.slope, law.line.intercept, eps, delta, law.fpr
            ).shots
        except ValueError as err:
            est, note = math.inf, str(err)
    if math.isinf(hi):
        note = note or "the fit's slope is not significantly negative or the data end too early"
    return ShotsNeeded(criterion, law.attack, law.fpr, bound, (lo, est, hi), note)


def _largest_cell(result, run_dir: Path, config, shots: int, top: int, names):
    """ROC (mean over seeds) and the most vulnerable examples at the largest measured S."""
    from mialaw.empirical.analysis import ROC_GRID, per_example_vulnerability
    from mialaw.empirical.experiment import cell_name, load_cell

    classes = config.classes[0]
    cells = [c for c in result.runs[0].cells if c.shots == shots and c.classes == classes]
    roc = {"shots": int(shots), "grid": ROC_GRID.tolist()}
    for name in ATTACK_LABELS:
        curves = [c.roc[name] for c in cells if name in c.roc]
        if curves:
            roc[name] = np.mean(curves, axis=0).tolist()
    alpha = config.fpr[min(1, len(config.fpr) - 1)]  # the second FPR (1% by default)
    i_alpha = list(config.fpr).index(alpha)
    best: dict = {}
    for cell in cells:
        arrays = load_cell(run_dir / "cells" / cell_name(classes, shots, cell.seed))
        delta, adv = per_example_vulnerability(arrays["keep"], arrays["stats"], [alpha])
        for j, idx in enumerate(arrays["indices"].tolist()):
            entry = {
                "index": int(idx),
                "name": None if names is None else names[idx],
                "label": int(arrays["labels"][j]),
                "delta": float(abs(delta[j])),
                "advantage": float(adv[0, j]),
                "fpr": alpha,
                "empirical_tpr": _finite(cell.example_tpr[i_alpha, j]),
                "seed": int(cell.seed),
            }
            if idx not in best or entry["delta"] > best[idx]["delta"]:
                best[idx] = entry
    ranked = sorted(best.values(), key=lambda e: -e["delta"])[:top]
    return roc, tuple(ranked)


def _finite(v):
    v = float(v)
    return v if math.isfinite(v) else None
