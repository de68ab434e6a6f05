"""mialaw.simulate: Monte Carlo of the membership game (Numba; oracle and shadow-model LiRA).

Python API (what ``mialaw simulate`` and ``mialaw reproduce`` call)::

    from mialaw.simulate.sweep import SweepConfig, run_sweep

    config = SweepConfig(dim=64, sigma=1.0, shots=(100, 1000, 10**4), fpr=(0.1, 0.01),
                         targets=10**6, attack="oracle", seed=1)
    result = run_sweep(config, progress=True)   # SweepResult
    result.points            # SweepPoint per (S, α): tpr (NaN if unresolvable), bootstrap
                             # tpr_ci, interval_method, achieved_fpr, counts, detected, theory
    result.fit(0.1)          # weighted PowerLawFit of log10(TPR − α) on log10 S (detected points)
    result.local_slopes(0.1) # slopes between neighbouring detected S
    result.fit(0.1, per_example=True)   # oracle only: the per-example-calibrated TPR
    result.theory_fit(0.1)   # the same fit on the exact theory at the same S
    result.to_json()         # {"config", "points", "fit"}
    run_grid(config, shadows=(16, 64, 256), classes=(2, 10))   # one SweepResult per combination

Modules (one idea each; numba is imported only by the modules that compile kernels):

* ``rng``          counter-based xoshiro256** streams per fixed-size block, ziggurat normals,
                   gammas: bit-identical results whatever the thread count;
* ``samplers``     Numba samplers: target features by the (u, v) reduction, balanced keep
                   matrices (random or in complementary pairs), the fast sufficient-statistic
                   sampler and the full-data sampler, true-class score or logit-scaled
                   confidence over C classes;
* ``numpy_engine`` the same samplers in plain vectorised numpy (benchmark baseline, test twin);
* ``engines``      ``Engine(name, seed)``: one interface over both, ``Targets``, ``derive_seed``;
* ``oracle``       the exact Neyman–Pearson log likelihood ratio and per-example p-value;
* ``lira_kernel``  compiled LiRA by pair rotation (the default, untilted), leave-one-out
                   rotation (tilted, for old runs) and dedicated target models (equal to
                   ``mialaw.theory.lira.lira_scores``);
* ``measure``      pooled TPR by ``mialaw.theory.measure`` (one threshold, resolvability,
                   bootstrap intervals), with faster bootstrap passes (``theory.measure_fast``:
                   the shared bootstrap's replicates; one target model: exact
                   order statistics);
* ``attacks``      ``oracle_attack`` and ``lira_attack`` -> ``AttackResult``;
* ``sweep``        ``SweepConfig``, ``run_sweep``, ``run_grid``, ``SweepResult``, ``SweepPoint``;
* ``cli``          ``mialaw simulate``; ``plots`` the log-log figure; ``bench`` the benchmark
                   (``python -m mialaw.simulate.bench``).
"""
