"""The calibrated bridge: real LiRA curves predicted from per-example Gaussians at one S₀.

For every seed, the examples of the S₀ cell are fitted (``gaps.ExampleFits``: each example's IN
and OUT Gaussian of its statistic over the shadow models) and LiRA's TPR at FPR α with one pooled
threshold is computed from those Gaussians (``theory.pooled_roc``), for the attacker the run
measured: per-example mean and sample variance from the M/2 IN and M/2 OUT shadows that pair
rotation leaves, whose estimation noise is drawn ``draws`` times per example (seeded). Seeds are
averaged, as the measurement averages them. The prediction at another S applies a scaling rule to
every example's gap:

* ``theory``: Δ(S) = Δ(S₀)·√(S₀/S), the Gaussian model's law for every example (and the IN/OUT
  spread ratio's logarithm shrinking as S₀/S, as the model's (S−1)/S does);
* ``group-slopes``: Δ(S) = Δ(S₀)·(S/S₀)^b, b the measured slope of the example's S₀-gap quintile
  (``gaps.group_slopes``; the run's own later cells);
* ``self``: no scaling at all: the S cell's own fits (the Gaussian assumption checked at every S).

Cells of the ``class-mean`` learner also carry the moments of the statistic computed from the
features alone (``class_mean_learner``): ``moments-iid`` (the model as written) and
``moments-paired`` (the protocol's exact moments) predict the curve with nothing fitted to models.

The error of a prediction is log10(predicted advantage) − log10(measured advantage), advantage =
TPR − α, where both are positive and the measurement is resolvable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mialaw.empirical.analysis import measured_points
from mialaw.empirical.cell_summary import load_run
from mialaw.empirical.gaps import (
    cell_fits,
    follow_gaps,
    group_of,
    group_slopes,
    resample_indices,
    run_cells,
)
from mialaw.theory.pooled_roc import (
    ExampleGaussians,
    ScoreParameters,
    pooled_tpr,
    pooled_tpr_resampled,
)

__all__ = ["BridgeResult", "bridge", "measure"]

RULES = ("theory", "group-slopes", "self")
MOMENT_RULES = {"moments-iid": "theory_iid", "moments-paired": "theory_paired"}
ATTACKS = ("lira_online", "lira_offline")
_FLOOR = 1e-9  # relative floor for standard deviations (S = 1 class means have none IN)


@dataclass(frozen=True)
class BridgeResult:
    """Predicted beside measured TPRs of one run, from S₀ = ``from_shots``."""

    run: str
    classes: int
    from_shots: int
    rules: tuple
    points: tuple = field(repr=False)  # of dicts (see ``to_json``)

    def to_json(self) -> dict:
        return {
            "run": self.run,
            "classes": self.classes,
            "from_shots": self.from_shots,
            "rules": list(self.rules),
            "points": [dict(p) for p in self.points],
        }

    def median_abs_error(self, rule: str, *, min_shots: int = 0, attack=None) -> float | None:
        """Median |log10 error| of ``rule`` over the points at S >= ``min_shots``."""
        errs = [
            abs(p["log10_error"][rule])
            for p in self.points
            if p["shots"] >= min_shots
            and (attack is None or p["attack"] == attack)
            and p["log10_error"].get(rule) is not None
        ]
        return float(np.median(errs)) if errs else None

    def table(self) -> str:
        head = f"{'S':>6} {'attack':<13} {'FPR':>6} {'measured [95% CI]':>26}"
        head += "".join(f" {r:>15}" for r in self.rules)
        lines = [f"bridge from S0 = {self.from_shots} ({self.run}, C = {self.classes})", head]
        for p in self.points:
            m = p["measured"]
            meas = "unresolvable" if m["tpr"] is None else _fmt_ci(m["tpr"], m["tpr_ci"])
            line = f"{p['shots']:>6} {p['attack']:<13} {p['fpr']:>6g} {meas:>26}"
            for r in self.rules:
                pred, err = p["predicted"].get(r), p["log10_error"].get(r)
                cell = "-" if pred is None else f"{pred:.4f}"
                cell += "" if err is None else f" ({err:+.2f})"
                line += f" {cell:>15}"
            lines.append(line)
        lines.append("(predicted TPR, in brackets log10 predicted/measured advantage)")
        return "\n".join(lines)


def _fmt_ci(value, ci) -> str:
    if not ci or ci[0] is None:
        return f"{value:.4f}"
    return f"{value:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]"


def _attacker(truth, n_in, n_out, corr, draws: int, rng):
    """The score parameters of an attacker with n_in IN and n_out OUT shadows per example, its
    IN and OUT values correlated ``corr`` within model pairs: ``draws`` draws of its mean and
    sample-variance estimates, (N, draws)."""
    size = (truth.size, draws)
    n_in, n_out, corr = n_in[:, None], n_out[:, None], corr[:, None]
    z_in = rng.standard_normal(size)
    z_out = corr * z_in + np.sqrt(1 - corr**2) * rng.standard_normal(size)

    def estimate(mean, sd, n, z):
        m = mean[:, None] + sd[:, None] / np.sqrt(n) * z
        v = sd[:, None] * np.sqrt(rng.chisquare(n - 1, size) / (n - 1))
        return m, np.maximum(v, _FLOOR * np.abs(sd[:, None]).max())

    m_in, v_in = estimate(truth.mean_in, truth.sd_in, n_in, z_in)
    m_out, v_out = estimate(truth.mean_out, truth.sd_out, n_out, z_out)
    return ScoreParameters(m_in, v_in, m_out, v_out)


def _floored(g):
    """Gaussians with standard deviations floored (degenerate cells, e.g. S = 1)."""
    scale = max(float(np.abs(g.sd_out).max()), float(np.abs(g.sd_in).max()), 1e-300)
    floor = _FLOOR * scale
    return ExampleGaussians(
        g.mean_in, np.maximum(g.sd_in, floor), g.mean_out, np.maximum(g.sd_out, floor)
    )


def _scaled(fits, factor, log_ratio_factor):
    """The S₀ Gaussians with gaps times ``factor`` and log(σ_in/σ_out) times
    ``log_ratio_factor``."""
    ratio = np.exp(fits.log_ratio_corrected * log_ratio_factor)
    gap = fits.gap_corrected * factor
    return ExampleGaussians(
        fits.mean_out + gap * fits.sd_out, ratio * fits.sd_out, fits.mean_out, fits.sd_out
    )


def _concat(parts):
    return ExampleGaussians(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


_FIELDS = ("mean_in", "sd_in", "mean_out", "sd_out")


def _predict(truth, n_in, n_out, corr, fpr, attacks, draws, seed, resample=None, level=0.95):
    """{attack: (tpr (len(fpr),), interval (2, len(fpr)) or None)}; ``resample``: (B, N) rows
    of the examples for a bootstrap interval (the same attacker draws travel with a row)."""
    rng = np.random.default_rng(seed)
    score = _attacker(truth, n_in, n_out, corr, draws, rng)
    out = {}
    for a in attacks:
        tpr = pooled_tpr(truth, fpr, a, score)
        interval = None
        if resample is not None:
            # Bootstrap multiplicities of the examples (their attacker draws go with them).
            weights = np.zeros((resample.shape[0], truth.size))
            for b, rows in enumerate(resample):
                np.add.at(weights[b], rows, 1.0)
            boot = pooled_tpr_resampled(truth, fpr, a, score, weights)
            tail = (1 - level) / 2
            interval = np.quantile(boot, [tail, 1 - tail], axis=0)
        out[a] = (tpr, interval)
    return out


def measure(run_dir, seeds: int, classes: int, shots, fpr, attacks, resamples) -> dict:
    """Measured points {(S, attack, α): point} of a run's cells by the project's measurement
    rules (the bridge's other side)."""
    cells = [(classes, s, k) for s in shots for k in range(seeds)]
    run = load_run(run_dir, fpr=fpr, cells=cells)
    rows = measured_points(run, ("lira",), fpr, 0.95, resamples=resamples)
    return {(r["shots"], r["attack"], r["fpr"]): r for r in rows if r["attack"] in attacks}


def _checked(config, from_shots, fpr, attacks, draws):
    """(FPRs, the run's shots from S₀ on), or ValueError saying what is allowed."""
    alphas = tuple(sorted({float(a) for a in (config.fpr if fpr is None else fpr)}, reverse=True))
    if not all(0 < a < 1 for a in alphas):
        raise ValueError(f"fpr must lie in (0, 1); got {alphas}")
    bad = [a for a in attacks if a not in ATTACKS]
    if bad:
        raise ValueError(f"attacks must be among {ATTACKS}; got {bad}")
    if draws < 1:
        raise ValueError(f"draws must be >= 1; got {draws}")
    shots = tuple(s for s in config.shots if s >= from_shots)
    if from_shots not in config.shots or len(shots) < 3:
        raise ValueError(
            f"--from-shots must be one of the run's shots {list(config.shots)} with at least 2 "
            f"larger ones; got {from_shots}"
        )
    return alphas, shots


def _truths(s, from_shots, base, group, slopes, cells, fits_s, rules) -> dict:
    """Every rule's per-example Gaussians at S = ``s`` (every seed's examples pooled)."""
    truths = {"theory": [], "group-slopes": []}
    offset = 0
    for b in base:
        g = group[offset : offset + b.ids.size]
        offset += b.ids.size
        truths["theory"].append(_scaled(b, math.sqrt(from_shots / s), from_shots / s))
        truths["group-slopes"].append(_scaled(b, (s / from_shots) ** slopes[g], from_shots / s))
    truths = {rule: _concat(parts) for rule, parts in truths.items()}
    truths["self"] = _concat([f.gaussians() for f in fits_s])
    for rule, key in MOMENT_RULES.items():
        if rule in rules:
            parts = [ExampleGaussians(*np.asarray(c[key], dtype=np.float64)) for c in cells]
            truths[rule] = _concat(parts)
    return truths


def _rows(shots, attacks, alphas, rules, measured, predicted) -> list[dict]:
    """One point per (S, attack, α): measured, predicted per rule with intervals, the errors."""
    points = []
    for s in shots:
        for a in attacks:
            for i, alpha in enumerate(alphas):
                m = measured.get((s, a, alpha))
                tpr = None if m is None or not m.get("resolvable", True) else m.get("tpr")
                row = {"shots": int(s), "attack": a, "fpr": alpha}
                row["measured"] = {"tpr": tpr, "tpr_ci": None if m is None else m.get("tpr_ci")}
                row |= {"predicted": {}, "predicted_ci": {}, "log10_error": {}}
                for rule in rules:
                    tprs, interval = predicted[(rule, s)][a]
                    pred = float(tprs[i])
                    row["predicted"][rule] = pred
                    row["predicted_ci"][rule] = (
                        None if interval is None else [float(v) for v in interval[:, i]]
                    )
                    ok = tpr is not None and tpr > alpha and pred > alpha
                    err = math.log10((pred - alpha) / (tpr - alpha)) if ok else None
                    row["log10_error"][rule] = err
                points.append(row)
    return points


def bridge(
    run_dir,
    from_shots: int,
    *,
    classes=None,
    fpr=None,
    attacks=ATTACKS,
    draws: int = 8,
    seed: int = 0,
    resamples: int = 1000,
    intervals: int = 100,
    measured: dict | None = None,
) -> BridgeResult:
    """Predict every S ≥ S₀ of a run from its S₀ cells; measure it too (or take ``measured``:
    {(S, attack, α): point with tpr, tpr_ci, resolvable}).

    draws : attacker estimates drawn per example (its finite-shadow noise); seed : their seed.
    resamples : bootstrap resamples of the measurement; intervals : of the S₀ examples for the
        intervals of the S₀-based predictions (0: none).
    """
    config, classes, read = run_cells(run_dir, classes)
    alphas, shots = _checked(config, from_shots, fpr, attacks, draws)
    followed = follow_gaps(run_dir, from_shots, classes=classes)
    # A quintile whose mean Δ² is not resolved (below the noise) has no measured law: the
    # theory's −½ stands in for it.
    slopes = group_slopes(followed)
    slopes = np.where(np.isfinite(slopes), slopes, -0.5)
    group = group_of(followed)
    rules = RULES + tuple(r for r, key in MOMENT_RULES.items() if key in read(from_shots, 0))
    if measured is None:
        measured = measure(run_dir, config.seeds, classes, shots, alphas, attacks, resamples)
    # Every seed's examples pooled (seeds are exchangeable; the measurement averages them).
    base = [cell_fits(read(from_shots, k)) for k in range(config.seeds)]
    seed_of = np.concatenate([np.full(b.ids.size, k) for k, b in enumerate(base)])
    rng = np.random.default_rng([seed, 1])
    resample = resample_indices(seed_of, intervals, rng) if intervals else None
    corr_base = np.concatenate([b.pair_corr for b in base])
    predicted = {}  # (rule, S) -> {attack: (tpr, interval)}
    for s in shots:
        cells = [read(s, k) for k in range(config.seeds)]
        fits_s = [cell_fits(c) for c in cells]
        # The attacker: pair rotation leaves M/2 IN and M/2 OUT shadows of every example, whose
        # IN/OUT values are correlated within model pairs as measured per example.
        n_in = float(np.mean([f.n_in.mean() for f in fits_s])) - 1
        n_out = float(np.mean([f.n_out.mean() for f in fits_s])) - 1
        corr_s = np.concatenate([f.pair_corr for f in fits_s])
        truths = _truths(s, from_shots, base, group, slopes, cells, fits_s, rules)
        for rule in rules:
            truth = _floored(truths[rule])
            ones = np.ones(truth.size)
            s0_rule = rule in ("theory", "group-slopes")
            corr = corr_base if s0_rule else corr_s
            boot = resample if s0_rule else None
            predicted[(rule, s)] = _predict(
                truth, n_in * ones, n_out * ones, corr, alphas, attacks, draws, [seed, s], boot
            )
    points = _rows(shots, attacks, alphas, rules, measured, predicted)
    return BridgeResult(str(run_dir), classes, int(from_shots), rules, tuple(points))
