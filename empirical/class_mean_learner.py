"""The theory's learner on real features: every model releases its class means (``class-mean``).

The Gaussian membership model (``science.md`` sections 2 and 5) trains by averaging: model m keeps
m̂_c, the mean of its S training features of class c, and the attack statistic of example (x, y) is
s = ⟨x, m̂_y⟩. This learner trains exactly that on a sweep's real features, with the same
candidates, keep matrix, standardisation and RMIA population as the linear head at the same
(C, S, seed) (the same random stream), so the two learners' cells differ only in the learner.

Because s is linear in the training features, its IN and OUT means and variances follow from the
features alone, and every cell stores them next to what the models did:

* ``theory_iid`` (4, N): the model as written, the other S − 1 training examples fresh draws from
  the class (mean m_y, covariance Σ_y, estimated on the cell's held-out population): OUT mean
  ⟨x, m⟩, variance xᵀΣx/S; IN mean (xᵀx + (S−1)⟨x, m⟩)/S, variance (S−1)·xᵀΣx/S².
* ``theory_paired`` (4, N): the protocol's exact moments. Models come in complementary pairs over a
  fixed pairing of the 2·S candidates of a class (``sampling.paired_keep``): when x is OUT its
  partner x′ is IN, and every other pair contributes one of its two members at random. So the gap
  is ⟨x, x − x′⟩/S and the variance, equal IN and OUT, is Σ_{pairs p ∌ x} ⟨x, a_p − b_p⟩²/(4S²).

Rows are (mean_in, sd_in, mean_out, sd_out); only the Gaussian shape of s is asymptotic (a sum of
S − 1 independent terms).
"""

from __future__ import annotations

import numpy as np

from mialaw.empirical.head_learner import prepare_features, standardizer
from mialaw.empirical.learner_base import Learner
from mialaw.empirical.sampling import candidate_pool, cell_record, paired_keep

__all__ = ["LEARNER", "class_means", "run_cell", "theory_iid", "theory_paired"]

CODE_VERSION = "1"


def class_means(x, y, keep, classes: int) -> np.ndarray:
    """(models, classes, F): every model's mean training feature of every class."""
    x = np.asarray(x, dtype=np.float64)
    keep = np.asarray(keep, dtype=np.float64)
    out = np.empty((keep.shape[0], classes, x.shape[1]))
    for c in range(classes):
        members = y == c
        counts = keep[:, members].sum(1, keepdims=True)
        out[:, c] = keep[:, members] @ x[members] / np.maximum(counts, 1.0)
    return out


def _statistic(x, y, means) -> np.ndarray:
    """s = ⟨x, m̂_y⟩ of every model on every example, (models, N, 1)."""
    out = np.empty((means.shape[0], x.shape[0]))
    for c in range(means.shape[1]):
        members = np.flatnonzero(y == c)
        if members.size:
            out[:, members] = means[:, c] @ x[members].T
    return out[:, :, None]


def theory_iid(x, y, population, population_labels, shots: int, classes: int) -> np.ndarray:
    """(4, N): the Gaussian model's IN/OUT moments of s with m_y, Σ_y of the population."""
    out = np.empty((4, x.shape[0]))
    for c in range(classes):
        members = np.flatnonzero(y == c)
        pop = population[population_labels == c]
        m = pop.mean(0)
        centred = pop - m
        cov = centred.T @ centred / max(pop.shape[0] - 1, 1)
        xc = x[members]
        xm = xc @ m
        q = np.einsum("nf,nf->n", xc @ cov, xc)
        xx = np.einsum("nf,nf->n", xc, xc)
        out[0, members] = (xx + (shots - 1) * xm) / shots
        out[1, members] = np.sqrt((shots - 1) * q) / shots
        out[2, members] = xm
        out[3, members] = np.sqrt(q / shots)
    return out


def theory_paired(x, y, partner, shots: int, classes: int) -> np.ndarray:
    """(4, N): the exact moments of s under the complementary-pair design (module docstring);
    ``partner``: each example's partner (``sampling.paired_keep(..., return_partners=True)``)."""
    partner = np.asarray(partner, dtype=np.int64)
    out = np.empty((4, x.shape[0]))
    for c in range(classes):
        members = np.flatnonzero(y == c)
        local = {int(j): k for k, j in enumerate(members)}
        mate = np.array([local[int(partner[j])] for j in members])
        first = np.flatnonzero(np.arange(members.size) < mate)  # one member of each pair
        second = mate[first]
        xc = x[members]
        gram = xc @ xc.T
        diff = gram[:, first] - gram[:, second]  # ⟨x, a_p − b_p⟩, (2S, S)
        half_sum = 0.5 * (gram[:, first] + gram[:, second]).sum(1)
        own = np.minimum(np.arange(members.size), mate)  # x's pair, as its first member
        own_col = np.searchsorted(first, own)
        own_diff = diff[np.arange(members.size), own_col]
        own_half = 0.5 * (
            gram[np.arange(members.size), np.arange(members.size)]
            + gram[np.arange(members.size), mate]
        )
        rest = half_sum - own_half  # Σ over the other pairs of their mean contribution
        var = (np.einsum("np,np->n", diff, diff) - own_diff**2) / (4.0 * shots**2)
        sd = np.sqrt(np.maximum(var, 0.0))
        out[0, members] = (np.diag(gram) + rest) / shots
        out[1, members] = sd
        out[2, members] = (gram[np.arange(members.size), mate] + rest) / shots
        out[3, members] = sd
    return out


def run_cell(prepared, config, classes: int, shots: int, seed: int) -> dict:
    """One (C, S, seed) cell of class-mean models (the same draws as the head's cell)."""
    y_all = prepared.labels
    pool, overlap = candidate_pool(y_all, shots, classes, seed, config.seeds)
    rng = np.random.default_rng(np.random.SeedSequence([seed, classes, shots]))
    population = np.setdiff1d(np.flatnonzero(y_all < classes), pool)
    if population.size > 20000:
        population = np.sort(rng.choice(population, 20000, replace=False))
    standardize = standardizer(prepared.features[population], config.standardize)
    x = standardize(prepared.features[pool])
    y = y_all[pool]
    keep, partner = paired_keep(config.models, y, rng, return_partners=True)
    rng.integers(2**31)  # the head's training seed: keeps the RMIA population the head's
    means = class_means(x, y, keep, classes)
    reference = np.sort(rng.permutation(population)[: config.rmia_population])
    pop_x = standardize(prepared.features[population])
    pop_y = y_all[population]
    return cell_record(classes, shots, seed, keep, y, pool, overlap) | {
        "stats": _statistic(x, y, means),
        "population_stats": _statistic(
            standardize(prepared.features[reference]), y_all[reference], means
        ),
        "theory_iid": theory_iid(x, y, pop_x, pop_y, shots, classes),
        "theory_paired": theory_paired(x, y, partner, shots, classes),
    }


LEARNER = Learner(
    name="class-mean",
    version=CODE_VERSION,
    prepare=prepare_features,
    run_cell=run_cell,
    description="the theory's learner: every model releases its class means (s = <x, mean>)",
)
