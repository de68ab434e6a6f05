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
from dataclasses import dataclass, field

import numpy as np

from mialaw.theory.lira import lira_scores
from mialaw.theory.measure import Experiment, measure_tpr
from mialaw.theory.model import GaussianModel

from .engines import Engine
from .measure import Measurement, bootstrap_games


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


@dataclass
class _Bench:
    """What the sections share: sizes, repetitions, the model, and the ratios they report."""

    scale: float
    repeat: int
    threads: int
    model: object
    ratios: dict = field(default_factory=dict)
    lira_models: int = 64
    fprs: tuple = (0.1, 0.01, 0.001)

    @property
    def few(self) -> int:
        """Repetitions of the slower timings."""
        return max(2, self.repeat // 2)

    @property
    def lira_targets(self) -> int:
        return int(20000 * self.scale)

    @property
    def games(self) -> int:
        return int(2e6 * self.scale)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mialaw.simulate.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    import numba

    bench = _Bench(
        scale=0.1 if args.quick else 1.0,
        repeat=args.repeat,
        threads=numba.get_num_threads(),
        model=GaussianModel(64, 2, 1.0),
    )
    print(f"threads: {bench.threads} (numba; numpy bound uses as many Generators)")
    bound = _rng_bound(bench)
    fast_rate = _fast_sampler(bench, bound)
    _full_sampler(bench, fast_rate)
    keep, stats = _lira_simulation(bench)
    _oracle_simulation(bench)
    _pair_kernel(bench, keep, stats)
    _bootstrap_costs(
        bench.model, bench.games, bench.lira_targets, bench.lira_models, bench.fprs,
        bench.repeat, bench.ratios,
    )  # fmt: skip
    print("\nratios:")
    for name, value in bench.ratios.items():
        print(f"  {name:40s} {value:10.2f}")
    return 0


def _rng_bound(bench: _Bench) -> float:
    """[1]: numpy's normals per second over all threads (the bound), the Numba ziggurat's."""
    from . import rng

    n = int(2e7 * bench.scale)
    out = np.empty(n)
    rng.fill_normal(out, np.uint64(1), np.uint64(0))
    t = _interleaved(
        {
            "numpy": _numpy_normals(n, bench.threads),
            "numba": lambda: rng.fill_normal(out, np.uint64(1), np.uint64(0)),
        },
        bench.repeat,
    )
    bound = n / t["numpy"]
    print(f"[1] numpy Generator.standard_normal: {bound:.3e} normals/s (the bound)")
    print(f"    numba ziggurat (simulate.rng):   {n / t['numba']:.3e} normals/s")
    return bound


def _fast_sampler(bench: _Bench, bound: float) -> float:
    """[2]: the fast sampler's statistics per second against the bound; returns the rate."""
    from . import numpy_engine, samplers

    targets_n = int(20000 * bench.scale)
    tg = Engine("numba", 1).targets(bench.model, targets_n, "fast")
    keep = samplers.draw_pair_keep(128, targets_n, np.uint64(2))  # 128 models
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
        bench.repeat,
    )
    fast_rate = keep.size / t["numba"]
    bench.ratios["fast sampler / RNG bound"] = fast_rate / bound
    bench.ratios["fast sampler numba / numpy"] = t["numpy"] / t["numba"]
    print(
        f"[2] fast sampler (numba): {fast_rate:.3e} statistics/s; numpy: "
        f"{keep.size / t['numpy']:.3e}/s"
    )
    print(
        f"    fast / bound = {fast_rate / bound:.2f} (target >= 0.5); numba / numpy = "
        f"{t['numpy'] / t['numba']:.1f}x"
    )
    return fast_rate


def _full_sampler(bench: _Bench, fast_rate: float) -> None:
    """[3]: fast against full-data sampler at S = 256, d = 64."""
    from . import samplers

    model = bench.model
    x = samplers.draw_full_targets(64, model.means, np.eye(64), np.uint64(4))
    keep_full = samplers.draw_keep(8, 64, np.uint64(5))
    full_args = (x, model.means, np.eye(64), keep_full, 256, samplers.SCORE, np.uint64(6))
    samplers.full_stats(*full_args)
    t_full = _best(lambda: samplers.full_stats(*full_args), bench.few)
    full_rate = keep_full.size / t_full
    bench.ratios["fast / full sampler (S=256, d=64)"] = fast_rate / full_rate
    print(
        f"[3] full-data sampler (numba, S=256, d=64): {full_rate:.3e} statistics/s; "
        f"fast / full = {fast_rate / full_rate:.0f}x (target >= 1000)"
    )


def _lira_simulation(bench: _Bench):
    """[4]: realistic LiRA up to the scores, numba engine against numpy engine, then stage by
    stage. The measurement (mialaw.theory.measure, the same code for both engines) is timed on
    its own here and in [7]. Returns the numba run's keep matrix and statistics."""

    from . import samplers
    from .lira_kernel import lira_pairs

    model, n, m = bench.model, bench.lira_targets, bench.lira_models

    def lira(engine):
        e = Engine(engine, 7)
        games = e.targets(model, n, "fast")
        keep = e.keep(m, n, pairs=True)
        stats = e.stats(model, games, keep, 256, samplers.SCORE, "fast")
        if engine == "numba":
            return lira_pairs(keep, stats)
        return lira_scores(keep, stats, rotation="pairs")

    lira("numba")
    t = _interleaved({"numba": lambda: lira("numba"), "numpy": lambda: lira("numpy")}, bench.repeat)
    entries = n * m
    bench.ratios["LiRA simulation numba / numpy"] = t["numpy"] / t["numba"]
    print(
        f"[4] LiRA online (pairs), M={m}, N={n}, to the scores: numba "
        f"{entries / t['numba']:.3e} (model, target) trials/s, numpy {entries / t['numpy']:.3e}/s;"
        f" ratio {t['numpy'] / t['numba']:.1f}x (target >= 5)"
    )
    return _lira_stages(bench)


def _lira_stages(bench: _Bench):
    """[4]'s breakdown by stage; returns the numba run's keep matrix and statistics."""

    from . import samplers
    from .lira_kernel import lira_pairs

    model, n, m = bench.model, bench.lira_targets, bench.lira_models
    e_nb, e_np = Engine("numba", 8), Engine("numpy", 8)
    g_nb = e_nb.targets(model, n, "fast")
    k_nb = e_nb.keep(m, n, pairs=True)
    s_nb = e_nb.stats(model, g_nb, k_nb, 256, samplers.SCORE, "fast")
    experiment = Experiment(lira_pairs(k_nb, s_nb), k_nb)
    stages = _interleaved(
        {
            "keep numba": lambda: e_nb.keep(m, n, pairs=True),
            "keep numpy": lambda: e_np.keep(m, n, pairs=True),
            "stats numba": lambda: e_nb.stats(model, g_nb, k_nb, 256, samplers.SCORE, "fast"),
            "stats numpy": lambda: e_np.stats(model, g_nb, k_nb, 256, samplers.SCORE, "fast"),
            "score numba (pairs)": lambda: lira_pairs(k_nb, s_nb),
            "score numpy (theory.lira)": lambda: lira_scores(k_nb, s_nb, rotation="pairs"),
            "measure (shared; estimate)": lambda: measure_tpr(
                experiment, bench.fprs, method="clopper-pearson"
            ),
        },
        bench.few,
    )
    for name, sec in stages.items():
        print(f"      {name:28s} {sec * 1e3:8.2f} ms")
    return k_nb, s_nb


def _oracle_simulation(bench: _Bench) -> None:
    """[5]: the oracle simulation with its point estimate, numba engine against numpy engine."""
    from .attacks import oracle_attack

    games = bench.games

    def oracle(engine):
        return oracle_attack(
            bench.model,
            1000,
            bench.fprs,
            targets=games,
            sampler="fast",
            engine=Engine(engine, 9),
            measurement=Measurement(method="clopper-pearson"),
        )

    oracle("numba")
    engines = {"numba": lambda: oracle("numba"), "numpy": lambda: oracle("numpy")}
    t = _interleaved(engines, bench.few)
    bench.ratios["oracle simulation numba / numpy"] = t["numpy"] / t["numba"]
    print(
        f"[5] oracle, {games} games: numba {games / t['numba']:.3e} games/s, numpy "
        f"{games / t['numpy']:.3e}/s; ratio {t['numpy'] / t['numba']:.1f}x"
    )


def _pair_kernel(bench: _Bench, keep, stats) -> None:
    """[6]: the compiled pair kernel against the shared numpy scorer, online and offline."""

    from .lira_kernel import lira_pairs

    for online in (True, False):
        ref = lira_scores(keep, stats, rotation="pairs", online=online)
        diff = float(np.max(np.abs(lira_pairs(keep, stats, online=online) - ref)))
        t = _interleaved(
            {
                "numba": lambda o=online: lira_pairs(keep, stats, online=o),
                "numpy": lambda o=online: lira_scores(keep, stats, rotation="pairs", online=o),
            },
            bench.repeat,
        )
        kind = "online" if online else "offline"
        bench.ratios[f"pair LiRA kernel / theory.lira ({kind})"] = t["numpy"] / t["numba"]
        print(
            f"[6] pair rotation {kind}, M={bench.lira_models}, N={bench.lira_targets}: numba "
            f"{t['numba'] * 1e3:.1f} ms, theory.lira {t['numpy'] * 1e3:.1f} ms; ratio "
            f"{t['numpy'] / t['numba']:.1f}x; max |difference| {diff:.1e}"
        )


def _bootstrap_costs(model, games, lira_targets, lira_models, fprs, repeat, ratios) -> None:
    """[7]: seconds of the simulation (with its point estimate) against its bootstrap, 1000
    resamples: simulate's route (``measure``) and the shared kernel (``theory.measure_kernel``;
    timed on fewer resamples where it is slow and scaled to 1000)."""
    from mialaw.theory.measure_fast import bootstrap_tpr
    from mialaw.theory.measure_kernel import bootstrap_tpr_reference as shared

    from .attacks import lira_attack, oracle_attack

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
