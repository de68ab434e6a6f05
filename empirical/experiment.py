"""One empirical sweep: for every (C, S, seed) cell, train the target and shadow heads and attack.

A cell of a sweep over classes C, shots S and seeds k (the measurement rules are those of
``mialaw/theory/science.md``, section 3):

1. **Sampling** (``candidate_pool``). 2·S candidates of each of the first C classes. Every class
   is shuffled once (the same order for all seeds) and cut into K equal blocks, one per seed:
   seed k draws its candidates from the start of block k, so seeds use disjoint candidate pools
   whenever 2·S <= n_c/K, and pools are nested in S within a seed. When 2·S exceeds a block the
   windows overlap; the cell records the fraction of its candidates shared with the next seed's
   pool (``pool_overlap``). Everything else of those classes is the held-out *population*: it
   never enters a training set and is used for the feature standardisation, the atypicality
   predictor's class means and covariance, the heads' held-out accuracy, and RMIA's reference
   population (``rmia_population`` examples).
2. **Keep matrix** (``paired_keep``). M + 2 models in complementary pairs (row 2k+1 = ¬row 2k):
   within each class the candidates are paired at random and every model trains on exactly one
   example of each pair, so every model trains on exactly S examples per class and every example
   is IN for exactly half of the models. Drawn from ``SeedSequence([k, C, S])``.
3. **Training.** All M + 2 heads at once (``heads.train_heads``: batched L-BFGS). The L2 strength
   ``weight_decay`` λ is on the *mean* loss, (1/(S·C))·Σ_i CE_i + (λ/2)||W||², so the head is the
   same estimator at every S (a penalty on the sum of losses would weaken as S grows).
4. **Statistics and scores.** Logit-scaled confidence per query (the image, and its horizontal flip
   with ``flip``); LiRA online/offline and offline RMIA by *pair rotation* (every model is a target
   and is scored against the M models outside its pair: each example keeps M/2 IN and M/2 OUT
   shadows whatever the target's membership, so there is no leave-one-out tilt).

Each cell is stored in the run's content-addressed store under ``cells/`` (``store.py``: its
address is the hash of its identity, ``cells.py``; written atomically and checksummed)
holding ``keep`` (bool, models × examples),
``stats`` (float64, models × examples × queries), ``population_stats`` (models × P × queries),
``labels``, ``indices`` (into the feature set), ``grad_norm`` (models × examples; NaN for the MLP),
``atypicality`` (examples), ``objective``, ``iterations``, ``converged``, ``accuracy`` (per model,
on the population), ``pool_overlap`` and ``train_seconds``. The run directory's
``settings.json`` records every setting and names the cells of the latest configuration;
re-running reuses every stored cell whose identity matches and computes the others.

This module gathers the public names of a sweep; the parts live in one module each:
``config`` (RunConfig), ``sampling`` (candidates, keep matrix), ``learners`` (the registry),
``head_learner`` (the default learner), ``attacks`` (the registry of scores), ``cells`` and
``store`` (identity and storage), ``sweep`` (``run_sweep(config, out_dir, *, features=None,
progress=True, plots=True, executor=None)``: the cells through any
``concurrent.futures.Executor``, serial when None).
"""

from __future__ import annotations

from mialaw.empirical.attacks import scores_of
from mialaw.empirical.cells import CellSpec, compute_cell, read_cell, read_settings
from mialaw.empirical.config import FORMAT, HEADS, RunConfig, cell_name
from mialaw.empirical.head_learner import PreparedFeatures, prepare_features, run_cell
from mialaw.empirical.sampling import candidate_pool, paired_keep
from mialaw.empirical.sweep import run_sweep

__all__ = [
    "FORMAT",
    "HEADS",
    "CellSpec",
    "PreparedFeatures",
    "RunConfig",
    "candidate_pool",
    "cell_name",
    "compute_cell",
    "paired_keep",
    "prepare_features",
    "read_cell",
    "read_settings",
    "run_cell",
    "run_sweep",
    "scores_of",
]
