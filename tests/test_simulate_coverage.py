"""Do the sweep's intervals hold their coverage, and is pair rotation free of tilt?

Coverage: R simulated experiments of one setting, each measured as a sweep measures it; nominal
95 % intervals must cover the truth in >= 90 % of them. With R = 120 the bar is 108: a method
that covers 80 % passes with probability P(Bin(120, 0.8) >= 108) ≈ 0.3 %. The Clopper–Pearson
interval is measured on the same repeats (printed; ``pytest -s`` shows the numbers) and, where the
threshold's noise dominates, shown to fail. Seeds are fixed: the results are deterministic.
"""

import numpy as np
import pytest

from mialaw.simulate.attacks import lira_attack, oracle_attack
from mialaw.simulate.engines import Engine
from mialaw.simulate.measure import Measurement
from mialaw.theory.average import pooled_tpr
from mialaw.theory.measure import measure_tpr
from mialaw.theory.model import GaussianModel

REPEATS = 120
BAR = 108  # >= 90 % of REPEATS


def _coverage(run, truth, fpr):
    """Hits of the sweep's interval and of Clopper–Pearson on the same repeats."""
    boot = cp = 0
    for r in range(REPEATS):
        result = run(r)
        boot += result.pooled[0].interval.contains(truth)
        pooled_cp = measure_tpr(result.experiment, [fpr], method="clopper-pearson")[0]
        cp += pooled_cp.interval.contains(truth)
    return boot, cp


@pytest.mark.parametrize(
    "dim, sigma, shots, fpr, cp_fails",
    [
        (40, 0.27, 3, 0.02, True),  # steep ROC at the threshold: its noise dominates
        (16, 1.0, 64, 0.1, False),
    ],
)
def test_oracle_pooled_interval_covers_the_exact_pooled_tpr(dim, sigma, shots, fpr, cp_fails):
    """Truth: the exact pooled Neyman–Pearson TPR at global FPR α (``theory.average``)."""
    model = GaussianModel(dim, 2, sigma)
    truth = float(pooled_tpr(model, shots, fpr, statistic="lr").tpr)

    def run(r):
        engine = Engine("numba", 1000 + r)
        return oracle_attack(model, shots, [fpr], targets=20_000, sampler="fast", engine=engine)

    boot, cp = _coverage(run, truth, fpr)
    print(f"oracle d={dim} sigma={sigma} S={shots} a={fpr}: bootstrap {boot}/{REPEATS}, CP {cp}")
    assert boot >= BAR
    if cp_fails:
        assert cp < BAR


def test_lira_pair_rotation_interval_covers_a_large_reference_run():
    """Offline LiRA, 8 models by pair rotation, 2,000 targets per repeat; truth: the pooled TPR
    of one run with 500,000 targets (its own error, ~4e-4, is a fifteenth of a repeat's)."""
    model = GaussianModel(16, 2, 1.0)
    shots, fpr = 16, 0.05
    options = dict(shadows=8, online=False, sampler="fast")
    reference = lira_attack(
        model,
        shots,
        [fpr],
        targets=500_000,
        engine=Engine("numba", 7),
        measurement=Measurement(method="clopper-pearson"),
        **options,
    ).pooled[0]

    def run(r):
        engine = Engine("numba", 5000 + r)
        return lira_attack(model, shots, [fpr], targets=2_000, engine=engine, **options)

    boot, cp = _coverage(run, reference.tpr, fpr)
    print(f"LiRA offline M=8 S={shots} a={fpr}: bootstrap {boot}/{REPEATS}, CP {cp}")
    assert boot >= BAR


def test_pair_rotation_has_no_below_chance_tilt_with_64_shadows():
    """Online LiRA, 64 models, S = 65,536, where membership barely shows: pair rotation's
    interval reaches α = 0.1 (the study's leave-one-out run reported 0.0993 [0.0988, 0.0998],
    a Clopper–Pearson interval, below chance). Leave-one-out's tilt is too small to resolve
    cheaply here; ``test_leave_one_out_tilts_online_lira_without_signal`` shows it at 8 models."""
    model = GaussianModel(64, 2, 1.0)
    measured = lira_attack(
        model,
        65_536,
        [0.1],
        targets=20_000,
        shadows=64,
        online=True,
        sampler="fast",
        engine=Engine("numba", 11),
        evaluation="pairs",
    ).pooled[0]
    print(f"pairs, 64 models, S = 65536: TPR {measured.tpr:.5f} {measured.interval}")
    assert measured.interval.upper >= 0.1
    assert np.isfinite(measured.tpr) and measured.resolvable
