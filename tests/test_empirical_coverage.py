"""Coverage of the bootstrap interval on real heads: a 3-seed interval against the mean of many.

Digits (raw pixels), C = 2, S = 4: every class splits into 20 disjoint candidate blocks, one per
seed, so the 20 seeds are independent experiments. The mean TPR over all 20 stands in for the
truth; the interval of each 3-seed subset (resampling examples within seeds) must cover it in at
least 90 % of subsets. Pooled Clopper–Pearson counts are checked to do worse: they treat every
(target model, example) decision as an independent trial.
"""

import itertools

import numpy as np
import pytest

from mialaw.empirical.cell_summary import load_run
from mialaw.empirical.experiment import RunConfig, run_sweep
from mialaw.theory.measure import measure_tpr

SEEDS = 20


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    out = tmp_path_factory.mktemp("coverage") / "digits"
    config = RunConfig(
        dataset="digits",
        backbone="pixels",
        classes=(2,),
        shots=(4,),
        shadows=16,
        seeds=SEEDS,
        fpr=(0.1,),
        cache_dir=str(tmp_path_factory.mktemp("cache")),
        device="cpu",
    )
    run_sweep(config, out, progress=False, plots=False)
    run = load_run(out)
    assert max(c.pool_overlap for c in run.cells) == 0.0  # disjoint candidate pools
    return run.cells


@pytest.mark.parametrize("attack", ["lira_online", "lira_offline"])
def test_three_seed_intervals_cover_the_many_seed_mean(cells, attack):
    experiments = [c.experiment(attack) for c in cells]
    (everything,) = measure_tpr(experiments, [0.1], resamples=200)
    truth = everything.tpr
    subsets = list(itertools.combinations(range(SEEDS), 3))
    chosen = np.random.default_rng(0).choice(len(subsets), 120, replace=False)
    hits = {"bootstrap": 0, "clopper-pearson": 0}
    for i in chosen:
        subset = [experiments[k] for k in subsets[i]]
        for method in hits:
            (m,) = measure_tpr(subset, [0.1], method=method, resamples=300, seed=int(i))
            hits[method] += m.interval.contains(truth)
    coverage = {k: v / len(chosen) for k, v in hits.items()}
    print(attack, coverage)
    assert coverage["bootstrap"] >= 0.9, coverage
    assert coverage["clopper-pearson"] < coverage["bootstrap"], coverage
