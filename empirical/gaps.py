"""Per-example IN–OUT gaps from shadow models, followed across S (``science.md`` section 5).

For every example of a cell, its statistic's IN and OUT values over the cell's models give a
Gaussian fit (means, sample standard deviations) and the standardised gap
Δ̂ = (μ̂_in − μ̂_out)/σ̂_out. Δ̂ carries finite-shadow noise,

    E[Δ̂²] ≈ (Δ² + r²/n_in + 1/n_out)·(n_out − 1)/(n_out − 3),   r = σ_in/σ_out,

so ``gap_sq`` (the unbiased Δ² of an example) subtracts it. A seed's candidate pools are nested in
S, so the examples of the pool at S₀ are in every larger pool of that seed: :func:`follow_gaps`
follows them, and every quantity below is taken over the *same* examples at every S.

The theory says √S·Δ does not move with S for any example. :func:`gap_rows` measures, with
bootstrap intervals over the followed examples (seeds as strata, one resample shared by every S so
that slopes get intervals too): √S·RMS(Δ) (noise removed), √S·mean(Δ̂), quantiles of √S·|Δ̂| (marked
unresolvable where noise alone would give at least half the value), the law of each S₀-gap
quintile (examples grouped by |Δ̂| in the S₀ cell, their mean Δ² measured in the *other* cells, so
that the grouping's noise does not regress to the mean), and per-example slopes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtri

from mialaw.empirical.cells import read_cell, read_settings
from mialaw.empirical.config import RunConfig
from mialaw.theory.pooled_roc import ExampleGaussians

__all__ = ["ExampleFits", "FollowedGaps", "example_fits", "follow_gaps", "gap_rows"]

QUANTILES = (0.5, 0.9, 0.99, 1.0)
GROUPS = 5  # S₀-gap quintiles


@dataclass(frozen=True, eq=False)
class ExampleFits:
    """Every example's Gaussian fit of its statistic over a cell's models; arrays (N,)."""

    ids: np.ndarray
    labels: np.ndarray
    mean_in: np.ndarray
    sd_in: np.ndarray
    mean_out: np.ndarray
    sd_out: np.ndarray
    n_in: np.ndarray
    n_out: np.ndarray
    # Correlation of an example's IN and OUT values within complementary model pairs (0 where
    # the models are not paired). Pairs split the same candidates, so for the class-mean learner
    # the two values sum to a constant (ρ = −1): μ̂_in − μ̂_out is then twice as noisy as for
    # independent models, while their midpoint is exact.
    pair_corr: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        return (self.mean_in - self.mean_out) / self.sd_out

    @property
    def noise_var(self) -> np.ndarray:
        """The variance Δ̂ has without signal: r²/n_in + 1/n_out − 2ρr/n (n pairs)."""
        r = self.sd_in / self.sd_out
        pairs = np.minimum(self.n_in, self.n_out)
        return r**2 / self.n_in + 1.0 / self.n_out - 2 * self.pair_corr * r / pairs

    @property
    def gap_sq(self) -> np.ndarray:
        """Unbiased Δ² per example (can be negative where Δ is below the noise)."""
        n = self.n_out
        return self.gap**2 * (n - 3) / (n - 1) - self.noise_var

    @property
    def gap_corrected(self) -> np.ndarray:
        """sign(Δ̂)·sqrt(max(Δ², 0)): each gap shrunk by its finite-shadow noise (a fitted gap
        is larger in magnitude than the true one by that noise, on average)."""
        return np.sign(self.gap) * np.sqrt(np.maximum(self.gap_sq, 0.0))

    @property
    def log_ratio_corrected(self) -> np.ndarray:
        """log(σ_in/σ_out) per example, shrunk towards its mean over the examples by the share
        of its spread that sampling noise explains (≈ 1/(2(n_in − 1)) + 1/(2(n_out − 1))): an
        attacker model fed the raw ratios would exploit IN/OUT spread differences that are noise."""
        lr = np.log(self.sd_in / self.sd_out)
        noise = np.mean(0.5 / (self.n_in - 1) + 0.5 / (self.n_out - 1))
        observed = lr.var()
        shrink = max(0.0, 1.0 - noise / observed) if observed > 0 else 0.0
        return lr.mean() + shrink * (lr - lr.mean())

    def gaussians(self, *, corrected: bool = True):
        """The examples' Gaussians; ``corrected``: the gap and the spread ratio with the
        finite-shadow noise taken out (:attr:`gap_corrected`, :attr:`log_ratio_corrected`)."""
        if not corrected:
            return ExampleGaussians(self.mean_in, self.sd_in, self.mean_out, self.sd_out)
        mean_in = self.mean_out + self.gap_corrected * self.sd_out
        sd_in = self.sd_out * np.exp(self.log_ratio_corrected)
        return ExampleGaussians(mean_in, sd_in, self.mean_out, self.sd_out)

    def take(self, positions) -> ExampleFits:
        pick = np.asarray(positions, dtype=np.int64)
        return ExampleFits(*(getattr(self, f)[pick] for f in self.__dataclass_fields__))


def example_fits(keep, stats, ids=None, labels=None) -> ExampleFits:
    """Per-example fits from keep (M, N) and stats (M, N[, Q]) (queries averaged)."""
    keep = np.asarray(keep, dtype=bool)
    s = np.asarray(stats, dtype=np.float64)
    if s.ndim == 3:
        s = s.mean(-1)
    if keep.ndim != 2 or s.shape != keep.shape:
        raise ValueError(f"keep and stats must be (models, examples); got {keep.shape}, {s.shape}")
    n_in, n_out = keep.sum(0), (~keep).sum(0)
    if n_in.min() < 2 or n_out.min() < 4:
        raise ValueError("every example needs >= 2 IN and >= 4 OUT models for a gap")

    def moments(mask, n):
        mean = np.where(mask, s, 0.0).sum(0) / n
        var = np.where(mask, (s - mean) ** 2, 0.0).sum(0) / (n - 1)
        return mean, np.sqrt(np.maximum(var, 1e-300))

    mean_in, sd_in = moments(keep, n_in)
    mean_out, sd_out = moments(~keep, n_out)
    # An example whose shadows all agree (a saturated confidence) has no spread to standardise
    # by: its spreads are floored at a millionth of the typical one, so its gap is large, finite.
    typical = float(np.median(np.concatenate([sd_in, sd_out])))
    floor = 1e-6 * typical if typical > 0 else 1e-300
    sd_in, sd_out = np.maximum(sd_in, floor), np.maximum(sd_out, floor)
    n = keep.shape[1]
    ids = np.arange(n) if ids is None else np.asarray(ids, dtype=np.int64)
    labels = np.zeros(n, np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
    corr = _pair_correlation(keep, s, mean_in, sd_in, mean_out, sd_out)
    return ExampleFits(ids, labels, mean_in, sd_in, mean_out, sd_out, n_in * 1.0, n_out * 1.0, corr)


def _pair_correlation(keep, s, mean_in, sd_in, mean_out, sd_out) -> np.ndarray:
    """Per example, the correlation of its IN and OUT values over complementary model pairs
    (rows 2k and 2k + 1); zeros when the rows are not such pairs."""
    if keep.shape[0] % 2 or not np.array_equal(keep[0::2], ~keep[1::2]):
        return np.zeros(keep.shape[1])
    first_in = keep[0::2]
    value_in = np.where(first_in, s[0::2], s[1::2])
    value_out = np.where(first_in, s[1::2], s[0::2])
    pairs = value_in.shape[0]
    cov = ((value_in - mean_in) * (value_out - mean_out)).sum(0) / (pairs - 1)
    return np.clip(cov / (sd_in * sd_out), -1.0, 1.0)


def cell_fits(arrays: dict) -> ExampleFits:
    return example_fits(arrays["keep"], arrays["stats"], arrays.get("indices"), arrays["labels"])


@dataclass(frozen=True, eq=False)
class FollowedGaps:
    """The examples of the S₀ pools, followed through every S ≥ S₀ of a run (all seeds).

    ``gap``, ``gap_sq``, ``noise_var``: (len(shots), N); ``seed_of``: (N,) the seed of each column.
    """

    run: str
    classes: int
    base_shots: int
    shots: tuple
    seed_of: np.ndarray
    gap: np.ndarray = field(repr=False)
    gap_sq: np.ndarray = field(repr=False)
    noise_var: np.ndarray = field(repr=False)

    @property
    def examples(self) -> int:
        return self.seed_of.size


def run_cells(run_dir, classes):
    """(config, C, read(S, seed) -> cell arrays) of a run folder at C (default: its smallest)."""
    settings = read_settings(run_dir)
    config = RunConfig.from_dict(settings["config"])
    classes = min(config.classes) if classes is None else int(classes)
    if classes not in config.classes:
        raise ValueError(f"{run_dir} has no cells at C = {classes}; it has C in {config.classes}")
    read = lambda s, k: read_cell(run_dir, classes, s, k, settings)  # noqa: E731
    return config, classes, read


def follow_gaps(run_dir, base_shots: int, *, classes=None) -> FollowedGaps:
    """Follow the examples of every seed's S₀ = ``base_shots`` pool through the larger S."""
    config, classes, read = run_cells(run_dir, classes)
    if base_shots not in config.shots:
        raise ValueError(f"S0 = {base_shots} is not among the run's shots {config.shots}")
    shots = tuple(s for s in config.shots if s >= base_shots)
    if len(shots) < 2:
        raise ValueError(f"S0 = {base_shots} leaves fewer than 2 shot values to follow")
    gaps, sq, noise, seed_of = [], [], [], []
    for seed in range(config.seeds):
        base = cell_fits(read(base_shots, seed))
        per_s = []
        for s in shots:
            fits = cell_fits(read(s, seed))
            position = {int(i): p for p, i in enumerate(fits.ids)}
            missing = [int(i) for i in base.ids if int(i) not in position]
            if missing:
                raise ValueError(
                    f"{run_dir}: {len(missing)} examples of the S = {base_shots} pool of seed "
                    f"{seed} are not in its S = {s} pool (pools are not nested)"
                )
            per_s.append(fits.take([position[int(i)] for i in base.ids]))
        gaps.append(np.stack([f.gap for f in per_s]))
        sq.append(np.stack([f.gap_sq for f in per_s]))
        noise.append(np.stack([f.noise_var for f in per_s]))
        seed_of.append(np.full(base.ids.size, seed))
    return FollowedGaps(
        run=str(run_dir),
        classes=classes,
        base_shots=int(base_shots),
        shots=shots,
        seed_of=np.concatenate(seed_of),
        gap=np.concatenate(gaps, axis=1),
        gap_sq=np.concatenate(sq, axis=1),
        noise_var=np.concatenate(noise, axis=1),
    )


def resample_indices(seed_of, resamples: int, rng) -> np.ndarray:
    """(resamples, N) indices drawn with replacement within each seed (seeds as strata)."""
    out = np.empty((resamples, seed_of.size), dtype=np.int64)
    start = 0
    for seed in np.unique(seed_of):
        members = np.flatnonzero(seed_of == seed)
        out[:, start : start + members.size] = rng.choice(members, (resamples, members.size))
        start += members.size
    return out


def _interval(draws, level):
    tail = (1 - level) / 2
    finite = draws[np.isfinite(draws)]
    if finite.size < 0.9 * draws.size:
        return [None, None]
    return [float(np.quantile(finite, tail)), float(np.quantile(finite, 1 - tail))]


def _half_log_slope(shots, values):
    """½·d log(values)/d log S by least squares over the columns' last axis; NaN where a
    value is not positive."""
    x = np.log(np.asarray(shots, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        y = 0.5 * np.log(np.where(values > 0, values, np.nan))
    xc = x - x.mean()
    return (y * xc).sum(-1) / (xc * xc).sum()


def _shot_row(followed, i, boot, mean_sq, mean_sq_boot, noise_sd, level) -> dict:
    """The row of the i-th S: √S-scaled RMS, mean and quantiles of the gaps, with intervals."""
    s = followed.shots[i]
    root = np.sqrt(s)
    row = {"shots": int(s), "examples": followed.examples, "noise_sd": float(noise_sd)}
    row["rms_scaled"] = float(np.sqrt(max(mean_sq[i], 0.0) * s))
    row["rms_scaled_ci"] = _interval(np.sqrt(np.maximum(mean_sq_boot[i], 0.0) * s), level)
    signed = followed.gap[i]
    row["mean_scaled"] = float(signed.mean() * root)
    row["mean_scaled_ci"] = _interval(signed[boot].mean(-1) * root, level)
    abs_gap = np.abs(signed)
    for q in QUANTILES:
        value = float(np.quantile(abs_gap, q))
        draws = np.quantile(abs_gap[boot], q, axis=-1)
        # What noise alone (no gap at all) would give at this quantile.
        q_eff = min(q, 1 - 0.5 / followed.examples)
        noise_q = float(noise_sd * ndtri(0.5 + q_eff / 2))
        key = "max" if q == 1.0 else f"q{q * 100:g}"
        row[f"{key}_scaled"] = value * root
        row[f"{key}_scaled_ci"] = [v * root for v in _interval(draws, level)]
        row[f"{key}_resolvable"] = bool(value >= 2 * noise_q)
    return row


def _law(shots, squares, squares_boot, level) -> dict:
    """½·d log(squares)/d log S over the S whose bootstrap interval lies above 0 (all S where
    fewer than two do), with its bootstrap interval; squares (S,), squares_boot (S, B)."""
    # (a NaN draw, e.g. a negative mean gap, counts as not above 0)
    lower = np.quantile(np.nan_to_num(squares_boot, nan=0.0), (1 - level) / 2, axis=1)
    resolved = lower > 0
    use = resolved if resolved.sum() >= 2 else np.ones_like(resolved)
    return {
        "slope": float(_half_log_slope(shots[use], squares[use])),
        "slope_ci": _interval(_half_log_slope(shots[use], squares_boot[use].T), level),
        "shots_range": [int(shots[use][0]), int(shots[use][-1])],
        "resolved_shots": [int(s) for s in shots[resolved]],
    }


def _local_laws(shots, mean_sq, mean_sq_boot, level) -> list[dict]:
    local = []
    for i in range(len(shots) - 1):
        pair = shots[i : i + 2]
        draws = _half_log_slope(pair, mean_sq_boot[i : i + 2].T)
        local.append(
            {
                "shots_low": int(pair[0]),
                "shots_high": int(pair[1]),
                "slope": float(_half_log_slope(pair, mean_sq[i : i + 2])),
                "slope_ci": _interval(draws, level),
            }
        )
    return local


def gap_rows(
    followed: FollowedGaps, *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> dict:
    """The per-example gap laws of ``followed`` with bootstrap intervals (module docstring).

    Returns {"by_shots": rows per S, "rms_law" and "mean_law": the slopes of √(mean Δ²) and of
    the signed mean gap, "groups": rows per S₀-gap quintile, "slopes": the per-example slope
    distribution}.
    """
    rng = np.random.default_rng(seed)
    boot = resample_indices(followed.seed_of, resamples, rng)
    shots = np.asarray(followed.shots, dtype=np.float64)
    mean_sq = followed.gap_sq.mean(1)
    mean_sq_boot = followed.gap_sq[:, boot].mean(-1)  # (S, resamples)
    noise_sd = np.sqrt(np.median(followed.noise_var, axis=1))
    by_shots = [
        _shot_row(followed, i, boot, mean_sq, mean_sq_boot, noise_sd[i], level)
        for i in range(len(shots))
    ]
    rms_law = _law(shots, mean_sq, mean_sq_boot, level)
    rms_law["local"] = _local_laws(shots, mean_sq, mean_sq_boot, level)
    # The signed mean gap needs no noise correction: its square's law (where it is positive).
    mean_gap, mean_boot = followed.gap.mean(1), followed.gap[:, boot].mean(-1)
    mean_law = _law(
        shots,
        np.where(mean_gap > 0, mean_gap, np.nan) ** 2,
        np.where(mean_boot > 0, mean_boot, np.nan) ** 2,
        level,
    )
    return {
        "run": followed.run,
        "classes": followed.classes,
        "base_shots": followed.base_shots,
        "examples": followed.examples,
        "by_shots": by_shots,
        "rms_law": rms_law,
        "mean_law": mean_law,
        "groups": _group_laws(followed, boot, level),
        "slopes": _example_slopes(followed, boot, level),
    }


def group_of(followed: FollowedGaps, groups: int = GROUPS) -> np.ndarray:
    """Each example's quintile (0 = smallest) of |Δ̂| in the S₀ cell."""
    base = np.abs(followed.gap[0])
    edges = np.quantile(base, np.linspace(0, 1, groups + 1)[1:-1])
    return np.searchsorted(edges, base, side="right")


def group_slopes(followed: FollowedGaps, groups: int = GROUPS) -> np.ndarray:
    """The gap slope of each S₀-gap group, measured on the cells after S₀: (groups,)."""
    group = group_of(followed, groups)
    later = followed.gap_sq[1:]
    means = np.stack([later[:, group == g].mean(1) for g in range(groups)])
    return _half_log_slope(followed.shots[1:], means)


def _group_laws(followed: FollowedGaps, boot, level) -> list[dict]:
    group = group_of(followed)
    later = followed.gap_sq[1:]  # the grouping cell (S₀) is left out: no regression to the mean
    shots = followed.shots[1:]
    rows = []
    for g in range(GROUPS):
        members = group == g
        means = later[:, members].mean(1)
        draws = []
        for idx in boot:
            pick = idx[members[idx]]
            draws.append(later[:, pick].mean(1))
        draws = np.asarray(draws)
        base = np.abs(followed.gap[0][members])
        rows.append(
            {
                "group": g + 1,
                "examples": int(members.sum()),
                "base_gap_range": [float(base.min()), float(base.max())],
                "rms_scaled": [
                    float(np.sqrt(max(m, 0.0) * s)) for m, s in zip(means, shots, strict=True)
                ],
                "shots": [int(s) for s in shots],
                "slope": float(_half_log_slope(shots, means)),
                "slope_ci": _interval(_half_log_slope(shots, draws), level),
            }
        )
    return rows


def _example_slopes(followed: FollowedGaps, boot, level, min_points: int = 3) -> dict:
    """Each example's slope of log|Δ̂| on log S over the S where |Δ̂| exceeds 3 noise sd (an
    example needs ``min_points`` such S). Examples that stay exposed are over-represented among
    those with a slope, which flattens this distribution: read it beside the group laws."""
    x = np.log(np.asarray(followed.shots, dtype=np.float64))[:, None]
    ok = np.abs(followed.gap) > 3 * np.sqrt(followed.noise_var)
    y = np.log(np.abs(followed.gap))
    count = ok.sum(0)
    xm = (x * ok).sum(0) / np.maximum(count, 1)
    ym = np.where(ok, y, 0.0).sum(0) / np.maximum(count, 1)
    sxx = (ok * (x - xm) ** 2).sum(0)
    sxy = np.where(ok, (x - xm) * (y - ym), 0.0).sum(0)
    has = (count >= min_points) & (sxx > 0)
    slopes = np.where(has, sxy / np.where(sxx > 0, sxx, 1.0), np.nan)
    valid = slopes[has]
    out = {"examples": followed.examples, "with_slope": int(has.sum()), "min_points": min_points}
    if valid.size == 0:
        return out | {"median": None, "median_ci": [None, None], "quantiles": {}}
    medians = [np.nanmedian(slopes[idx]) for idx in boot]
    out["median"] = float(np.median(valid))
    out["median_ci"] = _interval(np.asarray(medians), level)
    out["quantiles"] = {f"{q:g}": float(np.quantile(valid, q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)}
    out["fraction_steeper_than_half"] = float(np.mean(valid < -0.5))
    return out
