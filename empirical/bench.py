"""Benchmarks of the empirical pipeline (not tests): ``python -m mialaw.empirical.bench``.

Every comparison runs the baseline and the fast path side by side in this process and prints the
ratio.

* ``heads``: 64 linear softmax heads (S = 256 shots, C = 10 classes, 1280 features: 5,120
  candidates, 2,560 per model, in complementary pairs as in the sweeps) trained as one batched
  problem (``train_linear_heads``, float32) against fitting them one by one with scikit-learn's
  ``LogisticRegression`` (lbfgs, same objective Σ CE + λ/2·||W||², C = 1/λ). The final
  objectives of both are evaluated here in float64 and compared ("equal final loss"); the
  achieved GFLOP/s of the batched solver (its GEMM work over its wall time) is set against a
  plain torch matmul of the same shapes.
* ``lira``: the shared ``mialaw.theory.lira.lira_scores`` (online, per-example variance, pair
  rotation) against a straightforward reference that, per target model, loops over the examples
  with ragged IN/OUT lists of shadow models, at 20,000 examples × 256 models × 2 queries, for
  both centres: the mean (this project's default, ``np.mean`` per list) and the median of the
  reference preset ``LIRA_PRESETS["reference"]`` (TF-privacy-style: ``np.median`` and
  ``np.std`` per list). The reference is timed on a few targets (``--lira-targets``) and
  compared per target with the fast path computing all 256 targets at once and one target per
  call (both centres timed in turn, best of two rounds); then the all-targets time of the median
  centre is set against the mean's.
* ``cells``: the time of full-profile cells (64 shadows + 2 = 66 models, 1280 features) for
  C ∈ {2, 5, 10} and S = 1 … 256 on synthetic features, and the estimated time of the
  full-profile sweep (× seeds). Feature extraction is not included.
* ``features``: frozen EfficientNet-Lite0 feature extraction on CPU at 224 px over 256
  Fashion-MNIST images (scikit-learn's digits where Fashion-MNIST is not installed): the
  reference torch path (``extract_features(..., fast=False)``) against the default engine
  (onnxruntime where installed), interleaved over ``--rounds`` so that a change of machine load
  hits both alike. Prints images/s (wall) and CPU ms per image of each, the ratio, the max
  relative difference of the features and whether the fast features are bit-identical across
  two runs.

With no arguments, ``heads`` and ``lira`` run. ``--tiny`` (or the environment variable
``MIALAW_BENCH_TINY=1``) shrinks every benchmark to a seconds-long smoke run.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy.special import log_softmax
from scipy.stats import norm

from mialaw.empirical import heads as heads_mod
from mialaw.empirical.backbone_onnx import relative_difference
from mialaw.empirical.backbones import get_backbone
from mialaw.empirical.config import RunConfig
from mialaw.empirical.datasets import DatasetNotFoundError, gaussian_features, load_dataset
from mialaw.empirical.features import extract_features, get_features
from mialaw.empirical.head_learner import PreparedFeatures, run_cell
from mialaw.empirical.sampling import paired_keep
from mialaw.theory.lira import LIRA_PRESETS, lira_scores


def _features(shots: int, classes: int, dim: int, seed: int = 0):
    """Synthetic features: the theory's Gaussian model in ``dim`` dimensions, standardised."""

    sample = gaussian_features(
        dim=dim, classes=classes, sigma=0.5, n_per_class=2 * shots, seed=seed
    )
    x = sample.features.astype(np.float64)
    x = (x - x.mean(0)) / x.std(0)
    return x.astype(np.float32), sample.labels


def _objective(w, b, x, y, lam) -> float:
    z = x @ w.T + b
    return float(-log_softmax(z, axis=1)[np.arange(len(y)), y].sum() + 0.5 * lam * np.sum(w * w))


def bench_heads(models=64, shots=256, classes=10, dim=1280, sklearn_models=None, lam=1.0):
    x, y = _features(shots, classes, dim)
    keep = paired_keep(models, y, seed=0)
    n = x.shape[0]
    batched, t_batched, gflops = _batched_heads(x, y, keep, classes, lam)
    mm_gflops = _matmul_gflops(x, models * classes)
    timed = models if sklearn_models is None else min(int(sklearn_models), models)
    t_sklearn, rel = _sklearn_heads(x, y, keep, batched, timed, lam)
    print(f"[heads] {models} heads, S={shots}, C={classes}, F={dim} (N={n}, {n // 2} per model)")
    print(
        f"  batched L-BFGS (float32, torch): {t_batched:.2f} s, iterations "
        f"{batched.iterations.min()}-{batched.iterations.max()}"
    )
    print(
        f"  sklearn LogisticRegression one by one: {t_sklearn:.2f} s"
        + ("" if timed == models else f" (timed {timed} models, scaled to {models})")
    )
    print(f"  speed-up: {t_sklearn / t_batched:.1f}x")
    print(
        f"  final objective, batched vs sklearn (relative): mean {rel.mean():+.2e}, "
        f"max {rel.max():+.2e} (negative = batched lower)"
    )
    print(
        f"  achieved {gflops:.1f} GFLOP/s vs plain torch matmul {mm_gflops:.1f} GFLOP/s "
        f"({gflops / mm_gflops:.0%})"
    )
    return {"speedup": t_sklearn / t_batched, "objective_rel_max": float(rel.max())}


def _batched_heads(x, y, keep, classes: int, lam: float):
    """(heads, seconds, achieved GFLOP/s) of ``train_linear_heads`` on all models at once."""

    # Count the GEMM work of the batched solver: each evaluation of k models is a forward and a
    # gradient GEMM of (N, F+1) × (F+1, k·C).
    work = [0.0]
    original = heads_mod._linear_objective

    def counting(z, onehot, weights, lam_, n_classes):
        fun_grad = original(z, onehot, weights, lam_, n_classes)

        def wrapped(params, idx):
            work[0] += 4.0 * z.shape[0] * (z.shape[1] + 1) * params.shape[0] * n_classes
            return fun_grad(params, idx)

        return wrapped

    heads_mod._linear_objective = counting
    try:
        heads_mod.train_linear_heads(x[:64], y[:64], keep[:, :64], classes=classes)  # warm-up
        work[0] = 0.0
        start = time.perf_counter()
        batched = heads_mod.train_linear_heads(x, y, keep, classes=classes, weight_decay=lam)
        t_batched = time.perf_counter() - start
    finally:
        heads_mod._linear_objective = original
    return batched, t_batched, work[0] / t_batched / 1e9


def _matmul_gflops(x, columns: int) -> float:
    """GFLOP/s of a plain torch matmul (N, F+1) × (F+1, columns): what the batched solver's
    GEMMs could reach."""
    import torch

    n, dim = x.shape
    xa = torch.as_tensor(np.c_[x, np.ones(n, np.float32)])
    wt = torch.randn(dim + 1, columns)
    for _ in range(2):
        xa @ wt
    reps = 10
    start = time.perf_counter()
    for _ in range(reps):
        xa @ wt
    t_mm = (time.perf_counter() - start) / reps
    return 2.0 * n * (dim + 1) * columns / t_mm / 1e9


def _sklearn_heads(x, y, keep, batched, timed: int, lam: float):
    """(seconds for all models, scaled from the first ``timed``; relative difference of the
    batched heads' final objective from scikit-learn's, per timed model)."""
    from sklearn.linear_model import LogisticRegression

    models = keep.shape[0]
    x64 = x.astype(np.float64)
    start = time.perf_counter()
    fits = []
    for m in range(timed):
        ref = LogisticRegression(C=1.0 / lam, tol=1e-6, max_iter=10000)
        fits.append(ref.fit(x64[keep[m]], y[keep[m]]))
    t_sklearn = (time.perf_counter() - start) * models / timed
    ours, theirs = [], []
    for m, ref in enumerate(fits):
        xm, ym = x64[keep[m]], y[keep[m]]
        theirs.append(_objective(ref.coef_, ref.intercept_, xm, ym, lam))
        ours.append(_objective(batched.weights[m].astype(np.float64), batched.bias[m], xm, ym, lam))
    ours, theirs = np.array(ours), np.array(theirs)
    return t_sklearn, (ours - theirs) / theirs


def _reference_lira(keep, stats, targets, centre="mean", ddof=1):
    """Per target, per example: ragged IN/OUT lists, Gaussian fits, online score (the slow way).

    ``centre="median"`` with ``ddof=0`` is the reference LiRA as TF-privacy-style code computes it
    (``compute_score_lira(median_or_mean="median")``): a ragged list of shadow statistics per
    example, ``np.median`` and ``np.std`` of each list, a log-likelihood ratio per query."""

    loc = np.median if centre == "median" else np.mean
    models, n, _ = stats.shape
    in_lists = [list(np.flatnonzero(keep[:, e])) for e in range(n)]
    out_lists = [list(np.flatnonzero(~keep[:, e])) for e in range(n)]
    rows = []
    for t in targets:
        row = np.empty(n)
        gone = (t, t ^ 1)  # pair rotation: the target and its complementary partner
        for e in range(n):
            ins = [m for m in in_lists[e] if m not in gone]
            outs = [m for m in out_lists[e] if m not in gone]
            s_in = stats[ins, e]
            s_out = stats[outs, e]
            mu_in, sd_in = loc(s_in, 0), s_in.std(0, ddof=ddof)
            mu_out, sd_out = loc(s_out, 0), s_out.std(0, ddof=ddof)
            s = stats[t, e]
            row[e] = np.mean(norm.logpdf(s, mu_in, sd_in) - norm.logpdf(s, mu_out, sd_out))
        rows.append(row)
    return np.array(rows)


def _time_lira(keep, stats, chosen, presets, repeats=2):
    """Per preset: (best seconds for all targets at once, best seconds of one target per call,
    scores of both). The presets are timed in turn, ``repeats`` rounds, best of each: a change of
    machine load hits every preset alike."""

    best = {name: [np.inf, np.inf] for name in presets}
    scores = {}
    for _ in range(repeats):
        for name, (_, _, options) in presets.items():
            start = time.perf_counter()
            every = lira_scores(keep, stats, **options)
            t_all = time.perf_counter() - start
            one, t_one = [], np.inf
            for t in chosen:
                start = time.perf_counter()
                one.append(lira_scores(keep, stats, targets=[t], **options))
                t_one = min(t_one, time.perf_counter() - start)
            best[name] = [min(best[name][0], t_all), min(best[name][1], t_one)]
            scores[name] = every, np.vstack(one)
    return {name: (*best[name], *scores[name]) for name in presets}


def bench_lira(examples=20000, models=256, queries=2, targets=3):
    """Both centres, side by side: this project's mean centre (sample variance) against the
    per-example loop with np.mean, and the reference preset's median centre (population
    variance) against the TF-privacy-style loop with np.median; then median against mean."""

    rng = np.random.default_rng(0)
    keep = paired_keep(models, np.zeros(examples), seed=1)
    stats = rng.standard_normal((models, examples, queries)) + 0.3 * keep[:, :, None]
    chosen = list(range(targets))
    # Warm-up (not timed): scipy's imports, and the median kernels compiled or loaded.
    small = np.ascontiguousarray(keep[:, :64]), np.ascontiguousarray(stats[:, :64])
    _reference_lira(*small, [0])
    lira_scores(*small, **LIRA_PRESETS["reference"])
    presets = {"mean": ("mean", 1, {}), "median": ("median", 0, LIRA_PRESETS["reference"])}
    print(f"[lira] {examples} examples x {models} models x {queries} queries, online LiRA, pairs")
    loops, refs = {}, {}
    for name, (centre, ddof, _) in presets.items():
        start = time.perf_counter()
        refs[name] = _reference_lira(keep, stats, chosen, centre=centre, ddof=ddof)
        loops[name] = (time.perf_counter() - start) / targets
    fast = _time_lira(keep, stats, chosen, presets)
    out = {}
    for name, (centre, ddof, _) in presets.items():
        t_ref, (t_all, t_one, every, one) = loops[name], fast[name]
        err = max(np.abs(every[chosen] - refs[name]).max(), np.abs(one - refs[name]).max())
        print(
            f"  {name} centre (ddof={ddof}): per-example loop ({'np.' + centre} of ragged lists) "
            f"{t_ref:.2f} s per target (timed {targets}); lira_scores all {models} targets "
            f"{t_all:.2f} s ({t_all / models * 1e3:.1f} ms per target), one target per call "
            f"{t_one * 1e3:.0f} ms (best of the rounds)"
        )
        print(
            f"    speed-up: {t_ref / t_all * models:.0f}x (all targets at once), "
            f"{t_ref / t_one:.0f}x (one target per call); max |difference| {err:.1e}"
        )
        out[name] = {"all": t_ref / t_all * models, "one": t_ref / t_one, "seconds_all": t_all}
        out[name] |= {"max_err": err, "one_seconds": t_one, "loop_seconds": t_ref}
    ratio = out["median"]["seconds_all"] / out["mean"]["seconds_all"]
    print(f"  all targets, median centre / mean centre: {ratio:.2f}x the time (target <= 1.5)")
    return {
        "speedup": out["mean"]["all"],
        "speedup_same_targets": out["mean"]["one"],
        "max_err": max(out["mean"]["max_err"], out["median"]["max_err"]),
        "median": out["median"],
        "median_over_mean": ratio,
    }


def bench_cells(
    classes=(2, 5, 10),
    shots=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    shadows=64,
    seeds=3,
    dim=1280,
    real=None,
):
    """Time full-profile cells (training + scoring); estimate the sweep (× seeds).

    ``real``: optional dict of ``get_features`` arguments (e.g. Fashion-MNIST under
    efficientnet-lite0 with ``max_per_class``); shots that the real features cannot hold are
    extrapolated linearly in S from the largest measured one (the cost of a cell grows like the
    number of candidates, 2·S·C, once that exceeds the feature dimension).
    """

    total = 0.0
    for c in classes:
        if real is not None:
            fs = get_features(**real, progress=False)
            keep_c = fs.labels < c
            x, y = fs.features[keep_c], fs.labels[keep_c]
        else:
            x, y = _features((2 * max(shots) + 500) // 2, c, dim, seed=1)
        prepared = PreparedFeatures(features=x, labels=y, flipped=None, key="bench")
        config = RunConfig(
            dataset="bench",
            backbone="none",
            classes=(c,),
            shots=(1,),
            shadows=shadows,
            device="cpu",
        )
        line, last = [], None
        for s in shots:
            if 2 * s + 2 > np.bincount(y).min():
                dt = last[1] * s / last[0]
                line.append(f"S={s}: ~{dt:.0f}s (extrapolated)")
            else:
                start = time.perf_counter()
                run_cell(prepared, config, c, s, 0)
                dt = time.perf_counter() - start
                last = (s, dt)
                line.append(f"S={s}: {dt:.1f}s")
            total += dt
        print(f"[cells] C={c}: " + ", ".join(line), flush=True)
    print(
        f"[cells] one seed: {total / 60:.1f} min; {seeds} seeds: {total * seeds / 60:.1f} min "
        "(training and scoring; feature extraction and plots excluded)"
    )
    return {"minutes": total * seeds / 60}


def _bench_images(n: int):
    """The first ``n`` Fashion-MNIST training images, else scikit-learn's digits (as uint8)."""

    try:
        ds = load_dataset("fashion-mnist")
    except DatasetNotFoundError:
        ds = load_dataset("digits")
    if n > len(ds):
        raise ValueError(f"{ds.name} has {len(ds)} images; asked for {n}")
    return ds.name, np.ascontiguousarray(ds.images[:n])


def _timed(function):
    """(result, wall seconds, CPU seconds of all the process's threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def bench_features(images=256, resolution=224, rounds=2):
    """Reference torch path vs the default engine on the same images, interleaved."""
    import torch

    if rounds < 1 or images < 1:
        raise ValueError(f"images and rounds must be >= 1; got {images}, {rounds}")
    name, batch = _bench_images(images)
    backbone = get_backbone("efficientnet-lite0", device="cpu", resolution=resolution)

    def run(fast):
        return extract_features(backbone, batch, fast=fast, progress=False)

    # Warm-up: the fast engine exports and checks its graph on first use (a one-off cost).
    _, setup, _ = _timed(lambda: extract_features(backbone, batch[:2], progress=False))
    extract_features(backbone, batch[:8], fast=False, progress=False)
    best = {"reference": (np.inf, np.inf), "fast": (np.inf, np.inf)}
    out = {}
    for _ in range(rounds):
        for label, fast in (("reference", False), ("fast", True)):
            out[label], wall, cpu = _timed(lambda fast=fast: run(fast))
            best[label] = (min(best[label][0], wall), min(best[label][1], cpu))
    again = run(True)
    ref, fast = out["reference"], out["fast"]
    rel = relative_difference(fast, ref)
    big = np.abs(ref) > 1e-2 * np.abs(ref).max()  # elementwise, where |ref| is not tiny
    elementwise = float((np.abs(fast - ref)[big] / np.abs(ref[big])).max())
    speed = {k: images / v[0] for k, v in best.items()}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"[features] efficientnet-lite0 at {resolution} px, {images} {name} images, CPU, "
        f"{torch.get_num_threads()} threads, best of {rounds} interleaved rounds "
        f"(load average {load})"
    )
    print(f"  engine: {backbone.engine_name} (export + check on first use: {setup:.1f} s)")
    for label in ("reference", "fast"):
        print(
            f"  {label:9s}: {speed[label]:7.1f} images/s, "
            f"{best[label][1] / images * 1e3:6.1f} CPU ms per image"
        )
    print(
        f"  speed-up: {speed['fast'] / speed['reference']:.2f}x (wall), "
        f"{best['reference'][1] / best['fast'][1]:.2f}x (CPU time)"
    )
    print(
        f"  max |fast - ref| / max |ref|: {rel:.1e}; elementwise relative where |ref| > 1% of "
        f"max: {elementwise:.1e}; fast bit-identical across runs: {np.array_equal(again, fast)}"
    )
    return {
        "speedup": speed["fast"] / speed["reference"],
        "relative_difference": rel,
        "bit_identical": bool(np.array_equal(again, fast)),
        "engine": backbone.engine_name,
    }


BENCHMARKS = ("heads", "lira", "cells", "features")
DEFAULT_BENCHMARKS = ("heads", "lira")
#: Seconds-long sizes for smoke runs (``--tiny``): the same code paths on small problems.
TINY = {
    "heads": dict(models=4, shots=8, classes=3, dim=16),
    "lira": dict(examples=200, models=16, queries=2, targets=2),
    "cells": dict(classes=(2,), shots=(1, 2), shadows=4, seeds=1, dim=16),
    "features": dict(images=6, resolution=32, rounds=1),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # No `choices` here: argparse checks a list default of nargs="*" against them and fails
    # (the old bug); main() validates the names instead.
    parser.add_argument(
        "which",
        nargs="*",
        metavar="BENCHMARK",
        help=f"any of {', '.join(BENCHMARKS)} (default: {' '.join(DEFAULT_BENCHMARKS)})",
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        default=os.environ.get("MIALAW_BENCH_TINY", "") not in ("", "0"),
        help="seconds-long smoke sizes (default from MIALAW_BENCH_TINY)",
    )
    parser.add_argument(
        "--sklearn-models",
        type=int,
        default=None,
        help="time scikit-learn on this many heads and scale (default: all 64)",
    )
    parser.add_argument("--lira-targets", type=int, default=3)
    parser.add_argument(
        "--real-max-per-class",
        type=int,
        default=None,
        help="cells: time on Fashion-MNIST efficientnet-lite0 features (this many per class)",
    )
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument(
        "--images", type=int, default=None, help="features: number of images (default 256)"
    )
    parser.add_argument(
        "--resolution", type=int, default=None, help="features: input resolution (default 224)"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="features: interleaved rounds (default 2)"
    )
    return parser


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    which = list(dict.fromkeys(args.which)) or list(DEFAULT_BENCHMARKS)
    unknown = [w for w in which if w not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    sizes = {k: dict(v) for k, v in TINY.items()} if args.tiny else {k: {} for k in BENCHMARKS}
    features = {"images": args.images, "resolution": args.resolution, "rounds": args.rounds}
    sizes["features"].update({k: v for k, v in features.items() if v is not None})
    if "heads" in which:
        bench_heads(sklearn_models=args.sklearn_models, **sizes["heads"])
    if "lira" in which:
        bench_lira(**{"targets": args.lira_targets, **sizes["lira"]})
    if "cells" in which:
        real = None
        if args.real_max_per_class:
            real = dict(
                dataset="fashion-mnist",
                backbone="efficientnet-lite0",
                classes=10,
                max_per_class=args.real_max_per_class,
                cache_dir=args.cache_dir,
                device="cpu",
            )
        bench_cells(real=real, **sizes["cells"])
    if "features" in which:
        bench_features(**sizes["features"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
