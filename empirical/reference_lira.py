"""The reference LiRA code's own scores (Carlini et al., ``research/mi_lira_2021``, ``plot.py``).

The reference fits, per example, a Gaussian to the shadow models' statistics with the *median* as
its centre and the population standard deviation (``np.std``, plus 1e-30) as its spread, after
cutting every example's IN (resp. OUT) list to the smallest IN (resp. OUT) count over all examples,
keeping the first models in model order (``generate_ours``: ``x[:in_size]``). Its scores, here
oriented so that larger means "member" (the reference ranks by minus its ``prediction``):

* online: mean over queries of log N(s; μ_in, σ_in) − log N(s; μ_out, σ_out);
* offline: minus the mean over queries of log N(s; μ_out, σ_out), the *two-sided* log-density
  under the OUT Gaussian (``generate_ours_offline``): a statistic far from the OUT models' on
  either side scores as a member. mialaw's own offline score (``mialaw.theory.lira``) is the
  one-sided log Φ((s − μ_out)/σ_out) of the published test.

``fix_variance`` (the reference's option of that name): online, one spread of all IN statistics
of all examples for IN and OUT; offline, one spread of all OUT statistics.

These scores are what ``score_arrays(..., preset="reference")`` gives; ``mialaw.theory.lira``
with ``LIRA_PRESETS["reference"]`` has the same centre and spread but neither the truncation nor
the two-sided offline score.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SPREAD_FLOOR", "reference_scores", "truncated"]

SPREAD_FLOOR = 1e-30  # the reference adds it to every standard deviation
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def truncated(member: np.ndarray, stats: np.ndarray, side: str) -> np.ndarray:
    """The statistics of every example's first k models with ``member`` true (model order), k the
    smallest count over examples: (k, examples, queries). ValueError when some example has fewer
    than 2 such models (no spread)."""
    counts = member.sum(0)
    k = int(counts.min()) if counts.size else 0
    if k < 2:
        worst = int(np.argmin(counts))
        raise ValueError(
            f"every example needs >= 2 {side} shadow models; example {worst} has {k} "
            "(use more shadow models or fewer dedicated targets)"
        )
    # A stable sort puts each example's chosen models first, in model order.
    first = np.argsort(~member, axis=0, kind="stable")[:k]
    return np.take_along_axis(stats, first[:, :, None], axis=0)


def _gaussian(values: np.ndarray, fix_variance: bool, spread_of=None):
    """Median and population standard deviation (+ the floor) over models (axis 0)."""
    centre = np.median(values, axis=0)
    pooled = values if spread_of is None else spread_of
    spread = np.std(pooled) if fix_variance else np.std(values, axis=0)
    return centre, spread + SPREAD_FLOOR


def _log_density(x, centre, spread):
    z = (x - centre) / spread
    return -0.5 * z * z - np.log(spread) - HALF_LOG_2PI


def reference_scores(
    keep, stats, target_stats, *, online: bool, fix_variance: bool = False
) -> np.ndarray:
    """Scores (targets × examples, larger = member) of ``target_stats`` (T × N × Q) against the
    shadow models ``keep`` (M × N bool) and ``stats`` (M × N × Q), as the reference computes them
    (see the module docstring)."""
    keep = np.asarray(keep, dtype=bool)
    stats = np.asarray(stats, dtype=np.float64)
    target_stats = np.asarray(target_stats, dtype=np.float64)
    out_values = truncated(~keep, stats, "OUT")
    if not online:
        mu_out, sd_out = _gaussian(out_values, fix_variance)
        return -_log_density(target_stats, mu_out, sd_out).mean(-1)
    in_values = truncated(keep, stats, "IN")
    mu_in, sd_in = _gaussian(in_values, fix_variance)
    # fix_variance: the reference uses the IN statistics' spread for OUT too
    mu_out, sd_out = _gaussian(out_values, fix_variance, in_values if fix_variance else None)
    return (
        _log_density(target_stats, mu_in, sd_in) - _log_density(target_stats, mu_out, sd_out)
    ).mean(-1)
