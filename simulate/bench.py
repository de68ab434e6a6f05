"""Benchmark (not a test): ``python -m mialaw.simulate.bench [--quick]``.

Runs, in one process and with the same number of threads (numba's thread count, default: all
cores), the Numba engine against the plain vectorised numpy engine and the fast sampler against the
full-data one, and prints rates and ratios:

1. the random-number bound: ``numpy.random.Generator.standard_normal`` normals per second, with
   one Generator per thread drawing concurrently (numpy releases the GIL while filling);
   the Numba ziggurat's rate beside it;
2. the fast sampler (one statistic = one normal plus an FMA) in statistics per second, against the
   bound (target: within 2×, i.e. ratio >= 0.5);
3. fast against full-data sampler at S = 256, d = 64 (target >= 1000×);
4. the realistic LiRA simulation up to the scores (targets, keep matrix in complementary pairs,
   statistics, pair-rotation online LiRA), numba engine against numpy engine (target >= 5×),
   with a breakdown by stage, including the pooled TPR at three FPRs by the shared
   ``mialaw.theory.measure`` (the same code whatever the engine; its bootstrap is [7]);
5. the oracle simulation with its point estimate, numba against numpy;
6. the compiled pair-rotation LiRA kernel against ``mialaw.theory.lira.lira_scores(...,
   rotation="pairs")`` (numpy), online and offline, with the largest difference;
7. the bootstrap against the simulation it measures: the oracle's exact T = 1 fast path
   (``measure.bootstrap_games``) and LiRA's (``theory.measure_fast``: the shared bootstrap's
   replicates), 1000 resamples each, and the shared kernel itself on the LiRA scores.

Each timing is the best of several interleaved repetitions (other load on the machine only ever
slows a run down).
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np


def _best(fn, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _interleaved(fns: dict, repeat: int) -> dict:
    """Best time of each function, repetitions interleaved so drifting load hits all alike."""
    best = dict.fromkeys(fns, np.inf)
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def _numpy_normals(n: int, threads: int):
    """A function drawing n normals with ``threads`` concurrent Generators."""
    gens = [np.random.default_rng(i) for i in range(threads)]
    outs = [np.empty(n // threads) for _ in range(threads)]

    def run():
        if threads == 1:
            gens[0].standard_normal(out=outs[0])
            return
        workers = [
            threading.Thread(target=g.standard_normal, kwargs={"out": o})
            for g, o in zip(gens, outs)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mialaw.simulate.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    import numba

    from mialaw.theory.model import GaussianModel

    from . import numpy_engine, rng, samplers
    from .attacks import oracle_attack
    from .engines import Engine, Targets
    from .lira_kernel import lira_pairs
    from .measure import Measurement

    threads = numba.get_num_threads()
    scale = 0.1 if args.quick else 1.0
    repeat = args.repeat
    print(f"threads: {threads} (numba; numpy bound uses as many Generators)")
    ratios = {}

    # 1. random-number bound
    n = int(2e7 * scale)
    out = np.empty(n)
    rng.fill_normal(out, np.uint64(1), np.uint64(0))
    t = _interleaved(
        {
            "numpy": _numpy_normals(n, threads),
            "numba": lambda: rng.fill_normal(out, np.uint64(1), np.uint64(0)),
        },
        repeat,
    )
    bound = n / t["numpy"]
    print(f"[1] numpy Generator.standard_normal: {bound:.3e} normals/s (the bound)")
    print(f"    numba ziggurat (simulate.rng):   {n / t['numba']:.3e} normals/s")

    # 2. fast sampler against the bound
    model = GaussianModel(64, 2, 1.0)
    targets_n = int(20000 * scale)
    models = 128
    tg = Engine("numba", 1).targets(model, targets_n, "fast")
    keep = samplers.draw_pair_keep(models, targets_n, np.uint64(2))
    args_fast = (tg.proj, tg.sqnorm, tg.quad, keep, 256, samplers.SCORE, np.uint64(3))
    samplers.fast_stats(*args_fast)
    gen = np.random.default_rng(0)
    t = _interleaved(
        {
            "numba": lambda: samplers.fast_stats(*args_fast),
            "numpy": lambda: numpy_engine.fast_stats(
                gen, tg.proj, tg.sqnorm, tg.quad, keep, 256, samplers.SCORE
            ),
        },
        repeat,
    )
    fast_rate = keep.size / t["numba"]
    ratios["fast sampler / RNG bound"] = fast_rate / bound
    ratios["fast sampler numba / numpy"] = t["numpy"] / t["numba"]
    print(
        f"[2] fast sampler (numba): {fast_rate:.3e} statistics/s; numpy: "
        f"{keep.size / t['numpy']:.3e}/s"
    )
    print(
        f"    fast / bound = {fast_rate / bound:.2f} (target >= 0.5); numba / numpy = "
        f"{t['numpy'] / t['numba']:.1f}x"
    )

    # 3. fast against full-data sampler at S = 256, d = 64
    x = samplers.draw_full_targets(64, model.means, np.eye(64), np.uint64(4))
    small = Targets.from_points(model, x)
    keep_full = samplers.draw_keep(8, 64, np.uint64(5))
    full_args = (x, model.means, np.eye(64), keep_full, 256, samplers.SCORE, np.uint64(6))
    samplers.full_stats(*full_args)
    t_full = _best(lambda: samplers.full_stats(*full_args), max(2, repeat // 2))
    full_rate = keep_full.size / t_full
    ratios["fast / full sampler (S=256, d=64)"] = fast_rate / full_rate
    del small
    print(
        f"[3] full-data sampler (numba, S=256, d=64): {full_rate:.3e} statistics/s; "
        f"fast / full = {fast_rate / full_rate:.0f}x (target >= 1000)"
    )

    # 4. realistic LiRA up to the scores: numba engine against numpy engine. The measurement
    # (mialaw.theory.measure, the same code for both engines) is timed on its own below and in [7].
    lira_targets, lira_models, fprs = int(20000 * scale), 64, (0.1, 0.01, 0.001)
    counts_only = Measurement(method="clopper-pearson")
    from mialaw.theory.lira import lira_scores

    def lira(engine):
        e = Engine(engine, 7)
        games = e.targets(model, lira_targets, "fast")
        keep = e.keep(lira_models, lira_targets, pairs=True)
        stats = e.stats(model, games, keep, 256, samplers.SCORE, "fast")
        if engine == "numba":
            return lira_pairs(keep, stats)
        return lira_scores(keep, stats, rotation="pairs")

    lira("numba")
    t = _interleaved({"numba": lambda: lira("numba"), "numpy": lambda: lira("numpy")}, repeat)
    entries = lira_targets * lira_models
    ratios["LiRA simulation numba / numpy"] = t["numpy"] / t["numba"]
    print(
        f"[4] LiRA online (pairs), M={lira_models}, N={lira_targets}, to the scores: numba "
        f"{entries / t['numba']:.3e} (model, target) trials/s, numpy {entries / t['numpy']:.3e}/s;"
        f" ratio {t['numpy'] / t['numba']:.1f}x (target >= 5)"
    )
    # Stage breakdown.
    from mialaw.theory.measure import Experiment, measure_tpr

    e_nb, e_np = Engine("numba", 8), Engine("numpy", 8)
    g_nb = e_nb.targets(model, lira_targets, "fast")
    k_nb = e_nb.keep(lira_models, lira_targets, pairs=True)
    s_nb = e_nb.stats(model, g_nb, k_nb, 256, samplers.SCORE, "fast")
    sc = lira_pairs(k_nb, s_nb)
    experiment = Experiment(sc, k_nb)
    stages = _interleaved(
        {
            "keep numba": lambda: e_nb.keep(lira_models, lira_targets, pairs=True),
            "keep numpy": lambda: e_np.keep(lira_models, lira_targets, pairs=True),
            "stats numba": lambda: e_nb.stats(model, g_nb, k_nb, 256, samplers.SCORE, "fast"),
            "stats numpy": lambda: e_np.stats(model, g_nb, k_nb, 256, samplers.SCORE, "fast"),
            "score numba (pairs)": lambda: lira_pairs(k_nb, s_nb),
            "score numpy (theory.lira)": lambda: lira_scores(k_nb, s_nb, rotation="pairs"),
            "measure (shared; estimate)": lambda: measure_tpr(
                experiment, fprs, method="clopper-pearson"
            ),
        },
        max(2, repeat // 2),
    )
    for name, sec in stages.items():
        print(f"      {name:28s} {sec * 1e3:8.2f} ms")

    # 5. oracle: numba engine against numpy engine
    games = int(2e6 * scale)

    def oracle(engine):
        return oracle_attack(
            model,
            1000,
            fprs,
            targets=games,
            sampler="fast",
            engine=Engine(engine, 9),
            measurement=counts_only,
        )

    oracle("numba")
    t = _interleaved(
        {"numba": lambda: oracle("numba"), "numpy": lambda: oracle("numpy")}, max(2, repeat // 2)
    )
    ratios["oracle simulation numba / numpy"] = t["numpy"] / t["numba"]
    print(
        f"[5] oracle, {games} games: numba {games / t['numba']:.3e} games/s, numpy "
        f"{games / t['numpy']:.3e}/s; ratio {t['numpy'] / t['numba']:.1f}x"
    )

    # 6. compiled pair kernel against the shared numpy scorer
    for online in (True, False):
        ref = lira_scores(k_nb, s_nb, rotation="pairs", online=online)
        diff = float(np.max(np.abs(lira_pairs(k_nb, s_nb, online=online) - ref)))
        t = _interleaved(
            {
                "numba": lambda o=online: lira_pairs(k_nb, s_nb, online=o),
                "numpy": lambda o=online: lira_scores(k_nb, s_nb, rotation="pairs", online=o),
            },
            repeat,
        )
        kind = "online" if online else "offline"
        ratios[f"pair LiRA kernel / theory.lira ({kind})"] = t["numpy"] / t["numba"]
        print(
            f"[6] pair rotation {kind}, M={lira_models}, N={lira_targets}: numba "
            f"{t['numba'] * 1e3:.1f} ms, theory.lira {t['numpy'] * 1e3:.1f} ms; ratio "
            f"{t['numpy'] / t['numba']:.1f}x; max |difference| {diff:.1e}"
        )

    # 7. bootstrap against simulation, 1000 resamples
    _bootstrap_costs(model, games, lira_targets, lira_models, fprs, repeat, ratios)

    print("\nratios:")
    for name, value in ratios.items():
        print(f"  {name:40s} {value:10.2f}")
    return 0


def _bootstrap_costs(model, games, lira_targets, lira_models, fprs, repeat, ratios) -> None:
    """[7]: seconds of the simulation (with its point estimate) against its bootstrap, 1000
    resamples: simulate's route (``measure``) and the shared kernel (``theory.measure_kernel``;
    timed on fewer resamples where it is slow and scaled to 1000)."""
    from mialaw.theory.measure_fast import bootstrap_tpr
    from mialaw.theory.measure_kernel import bootstrap_tpr_reference as shared

    from .attacks import lira_attack, oracle_attack
    from .engines import Engine
    from .measure import Measurement, bootstrap_games

    counts_only = Measurement(method="clopper-pearson")
    alphas = np.asarray(fprs)
    cases = {
        f"oracle, {games} games": (
            lambda: oracle_attack(
                model, 1000, fprs, targets=games, sampler="fast", engine=Engine("numba", 9),
                measurement=counts_only,
            ),
            lambda e: bootstrap_games(e.scores[0], e.labels[0], alphas, 1000, 0),
            50,
        ),
        f"LiRA offline, M={lira_models}, N={lira_targets}": (
            lambda: lira_attack(
                model, 4096, fprs, targets=lira_targets, shadows=lira_models, online=False,
                sampler="fast", engine=Engine("numba", 7), measurement=counts_only,
            ),
            lambda e: bootstrap_tpr(e.scores, e.labels, alphas, 1000, 0),
            200,
        ),
    }  # fmt: skip
    for name, (simulate, fast, shared_resamples) in cases.items():
        experiment = simulate().experiment
        fast(experiment)
        shared(experiment.scores[:, :200], experiment.labels[:, :200], alphas, 100, 0)
        t = _interleaved(
            {
                "sim": simulate,
                "fast": lambda f=fast, e=experiment: f(e),
                "shared": lambda e=experiment, r=shared_resamples: shared(
                    e.scores, e.labels, alphas, r, 0
                ),
            },
            max(2, repeat // 2),
        )
        t_shared = t["shared"] * 1000 / shared_resamples
        ratios[f"bootstrap / simulation ({name.split(',')[0]})"] = t["fast"] / t["sim"]
        ratios[f"shared / simulate bootstrap ({name.split(',')[0]})"] = t_shared / t["fast"]
        print(
            f"[7] {name}: simulation + point estimate {t['sim']:.2f} s; bootstrap, 1000 "
            f"resamples: {t['fast']:.2f} s ({t['fast'] / t['sim']:.2f}x the simulation); shared "
            f"kernel {t_shared:.1f} s ({t_shared / t['fast']:.0f}x slower)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
