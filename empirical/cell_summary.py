"""One cell read for the analysis: its attacks' scores (derived from the stored statistics by the
attack registry), pooled ROC, per-example gaps and vulnerability (``mialaw/theory/science.md``
section 3), and a run folder as the summaries of its cells.

Per-example vulnerability of example n at FPR α: from the attack statistic (logit-scaled
confidence, mean over queries) of all models, the standardised gap Δ̂_n = (mean_IN − mean_OUT)/sd_OUT
and the Gaussian-model per-example advantage Φ(Φ⁻¹(α) + |Δ̂_n|) − α (the LiRA lemma with a common
scale). Without any membership signal Δ̂ has standard deviation sqrt(1/n_in + 1/n_out) (the noise
floor). Also the empirical per-example TPR of the attack that records one (online LiRA): the
fraction of the target models that trained on n in which n's score reaches its seed's pooled
threshold at α.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import special

from mialaw.empirical.attacks import attack_names, example_tpr_attack, scores_of
from mialaw.empirical.cells import read_cell, read_settings
from mialaw.empirical.config import RunConfig
from mialaw.empirical.learners import get_learner
from mialaw.theory.measure import Experiment, mean_roc

__all__ = [
    "ROC_GRID",
    "CellSummary",
    "Run",
    "example_ids",
    "load_run",
    "per_example_vulnerability",
    "subset_models",
    "summarize_cell",
]

ROC_GRID = np.logspace(-4, 0, 121)


def per_example_vulnerability(keep, stats_, fpr) -> tuple[np.ndarray, np.ndarray]:
    """(Δ̂ (N,), per-example advantage (len(fpr), N)) from keep (M, N) and stats (M, N[, Q])."""
    keep = np.asarray(keep, dtype=bool)
    s = np.asarray(stats_, dtype=np.float64)
    if s.ndim == 3:
        s = s.mean(-1)
    n_in = keep.sum(0)
    n_out = (~keep).sum(0)
    mean_in = np.where(keep, s, 0.0).sum(0) / np.maximum(n_in, 1)
    mean_out = np.where(~keep, s, 0.0).sum(0) / np.maximum(n_out, 1)
    var_out = np.where(~keep, (s - mean_out) ** 2, 0.0).sum(0) / np.maximum(n_out - 1, 1)
    delta = (mean_in - mean_out) / np.sqrt(np.maximum(var_out, 1e-300))
    alphas = np.atleast_1d(np.asarray(fpr, dtype=np.float64))
    a = special.ndtri(alphas)[:, None]
    advantage = special.ndtr(a + np.abs(delta)[None]) - alphas[:, None]
    return delta, advantage


@dataclass(frozen=True)
class CellSummary:
    """What the fits and plots need from one cell (the large arrays are not kept)."""

    classes: int
    shots: int
    seed: int
    models: int
    examples: int
    keep: np.ndarray = field(repr=False)  # (M, N) bool
    scores: dict = field(repr=False)  # score name -> (M, N)
    roc: dict = field(repr=False)  # score name -> pooled TPR on ROC_GRID
    delta: np.ndarray = field(repr=False)  # (N,)
    example_advantage: np.ndarray = field(repr=False)  # (len(fpr), N)
    example_tpr: np.ndarray = field(repr=False)  # (len(fpr), N) empirical, online LiRA
    grad_norm: np.ndarray = field(repr=False)  # (N,) mean over the models that trained on it
    atypicality: np.ndarray = field(repr=False)  # (N,)
    accuracy: float
    train_seconds: float
    iterations: float
    pool_overlap: float
    in_count: float  # mean number of IN models per example, over all the cell's models
    ids: np.ndarray | None = field(default=None, repr=False)  # (N,) the examples' indices

    def experiment(self, name: str):
        """The measurement of one attack; the examples' indices into the feature set are their
        ids, so seeds whose candidate pools overlap are bootstrapped jointly."""

        return Experiment(self.scores[name], self.keep, ids=self.ids)

    @property
    def noise_floor_sd(self) -> float:
        """The standard deviation of Δ̂ without signal: sqrt(1/n_in + 1/n_out)."""
        n_in = self.in_count
        return float(np.sqrt(1 / n_in + 1 / (self.models - n_in)))


def summarize_cell(arrays: dict, fpr, config=None) -> CellSummary:
    """Evaluate one cell's saved arrays at the FPRs ``fpr``.

    The attacks' scores are derived here from the saved statistics with the run's settings
    (``config``: a ``RunConfig``; its defaults when None), by ``attacks.scores_of``; RMIA only
    when the cell holds population statistics. Cells that carry scores (imported from another
    tool) are evaluated as they are.
    """
    keep = np.asarray(arrays["keep"], dtype=bool)
    alphas = tuple(float(a) for a in fpr)
    given = {name: arrays[name] for name in attack_names() if name in arrays}
    if given:  # imported cells carry the scores their tool computed (e.g. dedicated targets)
        all_scores = {name: np.asarray(v, dtype=np.float64) for name, v in given.items()}
    else:
        if config is None:
            config = RunConfig(dataset="given", backbone="given")
        pop = arrays.get("population_stats")
        pop = None if pop is None or np.size(pop) == 0 else pop
        all_scores = scores_of(keep, arrays["stats"], pop, config)
    delta, example_adv = per_example_vulnerability(keep, arrays["stats"], alphas)
    in_count = float(keep.sum(0).mean())
    targets = keep.shape[0] if config is None or config.targets is None else config.targets
    full_keep = keep
    keep, all_scores = keep[:targets], {k: v[:targets] for k, v in all_scores.items()}
    scores, roc = {}, {}
    example_tpr = np.full((len(alphas), keep.shape[1]), np.nan)
    for name in all_scores:  # every registered attack (or every score an imported cell holds)
        scores[name] = all_scores[name]
        experiment = Experiment(scores[name], keep)
        roc[name] = mean_roc(experiment, ROC_GRID)
        if name == example_tpr_attack():
            for i, r in enumerate(experiment.roc().tpr_at_fpr(alphas)):
                if alphas[i] * experiment.negatives >= 1:  # resolvable: one seed threshold
                    hits = keep & (scores[name] >= r.threshold)
                    example_tpr[i] = hits.sum(0) / np.maximum(keep.sum(0), 1)
    grad = np.asarray(arrays.get("grad_norm", np.full(full_keep.shape, np.nan)), np.float64)
    grad_in = np.where(full_keep, grad, 0.0).sum(0) / np.maximum(full_keep.sum(0), 1)
    return CellSummary(
        classes=int(arrays["classes"]),
        shots=int(arrays["shots"]),
        seed=int(arrays["seed"]),
        models=full_keep.shape[0],
        examples=keep.shape[1],
        keep=keep,
        scores=scores,
        roc=roc,
        delta=delta,
        example_advantage=example_adv,
        example_tpr=example_tpr,
        grad_norm=grad_in,
        atypicality=np.asarray(arrays.get("atypicality", np.full(keep.shape[1], np.nan))),
        accuracy=float(np.mean(arrays.get("accuracy", np.nan))),
        train_seconds=float(arrays.get("train_seconds", np.nan)),
        iterations=float(np.mean(arrays.get("iterations", np.nan))),
        pool_overlap=float(arrays.get("pool_overlap", np.nan)),
        in_count=in_count,
        ids=example_ids(arrays, config),
    )


def example_ids(arrays: dict, config) -> np.ndarray | None:
    """Which underlying examples a cell's columns are (its indices into the feature set), or
    None where indices do not identify data across cells (imported score folders)."""
    if "indices" not in arrays or (
        config is not None and not get_learner(config.learner).indexes_data
    ):
        return None
    return np.asarray(arrays["indices"], dtype=np.int64)


def subset_models(arrays: dict, models: int) -> dict:
    """A cell as if only its first ``models`` models (whole complementary pairs) had been
    trained: the shadow-count study reads M = 16 and 64 from cells of 256 shadows (the models of
    a cell are exchangeable, so the first M + 2 are a cell of M shadows)."""
    keep = np.asarray(arrays["keep"])
    if models % 2 or not 4 <= models <= keep.shape[0]:
        raise ValueError(f"models must be even, in [4, {keep.shape[0]}]; got {models}")
    per_model = ("keep", "stats", "population_stats", "grad_norm", "accuracy", "objective")
    per_model += ("iterations", "converged")
    out = dict(arrays)
    for name in per_model:
        if name in arrays and np.ndim(arrays[name]) >= 1 and len(arrays[name]) == keep.shape[0]:
            out[name] = np.asarray(arrays[name])[:models]
    return out


@dataclass(frozen=True)
class Run:
    """A run directory: its settings and the summaries of the cells it holds."""

    path: str
    settings: dict
    cells: tuple  # of CellSummary

    @property
    def dataset(self) -> str:
        return self.settings["config"]["dataset"]

    @property
    def backbone(self) -> str:
        return self.settings["config"]["backbone"]


def load_run(out_dir, *, fpr=None, cells=None) -> Run:
    """Read a run directory: its manifest and exactly the cells of its configuration (or
    ``cells``: (C, S, seed)s), as the current code addresses them (``cells.read_cell``)."""
    out_dir = Path(out_dir)
    settings = read_settings(out_dir)
    alphas = tuple(settings["config"]["fpr"]) if fpr is None else tuple(fpr)
    config = RunConfig.from_dict(settings["config"])
    cells = config.cells() if cells is None else cells
    if not cells:
        raise ValueError(f"{out_dir}: no cells asked for")
    summaries = [
        summarize_cell(read_cell(out_dir, *cell, settings), alphas, config) for cell in cells
    ]
    summaries.sort(key=lambda c: (c.classes, c.shots, c.seed))
    return Run(path=str(out_dir), settings=settings, cells=tuple(summaries))
