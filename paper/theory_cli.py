"""`mialaw theory ...`: exact numbers of the Gaussian membership model from the command line.

Subcommands: ``tpr`` (the law's table: TPR and advantage over shots × FPR), ``dp-shots`` (shots per
class at which the attack enters an (ε, δ)-DP bound) and ``derive`` (the symbolic derivation).
The symbolic derivation (sympy) is imported only when ``derive`` runs.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

from mialaw.paper.cli_options import add_fpr, add_json, add_shots
from mialaw.paper.resources import check_memory, npy_shape, theory_bytes
from mialaw.theory import average, dp, exact
from mialaw.theory.model import GaussianModel, check_fpr, check_shots

TESTS = ("lira", "exact", "np")
TEST_HELP = {
    "lira": "common-scale LiRA (the lemma: Φ(Φ⁻¹(α) + |Δ|))",
    "exact": "one-sided threshold with the exact unequal IN/OUT variances",
    "np": "Neyman–Pearson most powerful test (ground truth)",
}
MODES = {
    "average": "E_x[TPR(x)] over targets x ~ N(m_0, σ²I), each at per-example FPR α",
    "pooled": "pooled attack: one global threshold over all targets, TPR at GLOBAL FPR α",
    "target": "one target x (class 0), TPR at its own FPR α",
}
# Pooled attack: which per-example statistic the global threshold is put on.
POOLED_STATISTIC = {"lira": "lira", "np": "lr"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="theory_command", metavar="SUBCOMMAND")
    sub.required = True

    tpr = sub.add_parser(
        "tpr",
        help="TPR and advantage over shots × FPR (the law's table)",
        description="TPR and advantage TPR - FPR of membership inference in the Gaussian model.",
    )
    _model_arguments(tpr, dim_required=True)
    add_shots(tpr, type=float, required=True)
    add_fpr(tpr, required=True)
    _test_argument(tpr)
    mode = tpr.add_mutually_exclusive_group()
    mode.add_argument("--average", action="store_true", help=MODES["average"] + " (default)")
    mode.add_argument("--pooled", action="store_true", help=MODES["pooled"])
    mode.add_argument("--target", metavar="X.npy", help=MODES["target"] + ": a .npy d-vector")
    add_json(tpr)
    tpr.set_defaults(handler=_tpr)

    dp = sub.add_parser(
        "dp-shots",
        help="shots per class at which the attack enters an (ε, δ)-DP bound",
        description="Smallest shots per class S with predicted TPR <= e^ε·FPR + δ.",
    )
    dp.add_argument("--epsilon", type=float, nargs="+", required=True, metavar="E")
    dp.add_argument("--delta", type=float, required=True, metavar="D")
    add_fpr(dp, required=True)
    _model_arguments(dp, dim_required=False)
    _test_argument(dp)
    dp.add_argument("--target", metavar="X.npy", help="one target x (class 0) instead of E_x")
    dp.add_argument(
        "--power-law",
        type=float,
        nargs=2,
        metavar=("SLOPE", "INTERCEPT"),
        help="invert a fitted log10(TPR - FPR) = SLOPE·log10 S + INTERCEPT instead of the model",
    )
    add_json(dp)
    dp.set_defaults(handler=_dp_shots)

    derive = sub.add_parser(
        "derive",
        help="print the symbolic derivation, each step verified",
        description="Symbolic derivation of the model (sympy); exits non-zero if a step fails.",
    )
    derive.add_argument("--latex", action="store_true", help="LaTeX instead of plain text")
    derive.set_defaults(handler=_derive)


def _model_arguments(parser, *, dim_required):
    parser.add_argument(
        "--dim", type=int, required=dim_required, default=None if dim_required else 64, metavar="D"
    )
    parser.add_argument(
        "--sigma", type=float, default=1.0, metavar="SIG", help="noise σ in [1e-4, 1e100] (1)"
    )
    parser.add_argument("--classes", type=int, default=2, metavar="C", help="classes (2)")


def _test_argument(parser):
    parser.add_argument(
        "--test",
        choices=TESTS,
        default="lira",
        help="; ".join(f"{k}: {v}" for k, v in TEST_HELP.items()) + " (default lira)",
    )


# --------------------------------------------------------------------------- helpers
# σ's allowed range: below, the quadrature's panels (spaced on the scale 1/σ) outgrow any memory;
# above, σ² overflows. Class means are unit vectors, so σ is the noise relative to their spacing.
SIGMA_RANGE = (1e-4, 1e100)
MAX_EPSILON = 700  # e^ε overflows a float beyond 709; ε > 20 bounds nothing in practice


def check_sigma(sigma, option: str = "--sigma") -> float:
    """``sigma`` as a float in ``SIGMA_RANGE``; ValueError naming the range otherwise."""
    lo, hi = SIGMA_RANGE
    if not (isinstance(sigma, (int, float)) and lo <= sigma <= hi):
        raise ValueError(f"{option} must lie in [{lo:g}, {hi:g}]; got {sigma!r}")
    return float(sigma)


def model_for(args):
    """The Gaussian model of ``--dim --sigma --classes``, after checking σ's range and that the
    exact theory's memory fits (before anything of size d is allocated)."""
    sigma = check_sigma(args.sigma)
    if isinstance(args.dim, int) and isinstance(args.classes, int) and args.dim >= 1:
        check_memory(
            theory_bytes(args.dim, sigma, args.classes),
            f"the exact theory at --dim {args.dim} --sigma {sigma:g}",
            "lower --dim (memory grows like d^0.6) or raise --sigma (like 1/σ below 1)",
        )
    return GaussianModel(args.dim, classes=args.classes, sigma=sigma)


def _finite(x):
    x = float(x)
    return x if math.isfinite(x) else None


def _load_target(path, dim):
    header = npy_shape(path)
    if header is not None and header[0] != (dim,):  # refused before its data are read
        raise ValueError(f"--target must hold one vector of shape ({dim},); got {header[0]}")
    try:
        x = np.load(path, allow_pickle=False)
    except MemoryError:
        raise
    except Exception as err:  # numpy's header parser raises several kinds (TokenError too)
        raise ValueError(f"--target {path}: cannot read a .npy array ({err})") from None
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (dim,):
        raise ValueError(f"--target must hold one vector of shape ({dim},); got {x.shape}")
    return x


def _fmt(x, width, spec):
    """Right-aligned number, or '-' where it is undefined."""
    text = "-" if x is None or not math.isfinite(x) else format(x, spec)
    return text.rjust(width)


# --------------------------------------------------------------------------- tpr
def _tpr(args) -> int:
    model = model_for(args)
    shots = check_shots(args.shots)
    fpr = check_fpr(args.fpr)
    mode = "pooled" if args.pooled else "target" if args.target else "average"
    # One row per (fpr, shots): shots vary fastest, as in the law's table.
    grid_s, grid_a = np.broadcast_arrays(shots[None, :], fpr[:, None])
    statistic = None
    if mode == "average":
        tpr = average.average_tpr(model, grid_s, grid_a, test=args.test)
        log_adv = average.average_log_advantage(model, grid_s, grid_a, test=args.test)
        adv = average.average_advantage(model, grid_s, grid_a, test=args.test)
        asym = average.average_asymptote(model, grid_s, grid_a)
        extra = {}
    elif mode == "target":
        x = _load_target(args.target, args.dim)
        tpr = exact.tpr(model, x, grid_s, grid_a, test=args.test)
        log_adv = exact.log_advantage(model, x, grid_s, grid_a, test=args.test)
        adv = exact.advantage(model, x, grid_s, grid_a, test=args.test)
        asym = exact.asymptote(model, x, grid_s, grid_a)
        extra = {}
    else:
        if args.test not in POOLED_STATISTIC:
            raise ValueError(
                "--pooled thresholds a per-example statistic: use --test lira (the common-scale "
                "LiRA score) or --test np (the exact likelihood ratio)"
            )
        statistic = POOLED_STATISTIC[args.test]
        res = average.pooled_tpr(model, grid_s, grid_a, statistic=statistic)
        tpr, adv, log_adv = res.tpr, res.advantage, res.log_advantage
        asym = np.full(grid_s.shape, np.nan)
        extra = {"threshold": res.threshold, "achieved_fpr": res.achieved_fpr}

    ln10 = math.log(10.0)
    points = []
    for i, j in np.ndindex(grid_s.shape):
        la, asy = float(log_adv[i, j]), float(asym[i, j])
        point = {
            "shots": float(grid_s[i, j]),
            "fpr": float(grid_a[i, j]),
            "tpr": float(tpr[i, j]),
            "advantage": float(adv[i, j]),
            "log_advantage": _finite(la),
            "log10_advantage": _finite(la / ln10),
            "asymptote": _finite(asy),
            "log10_asymptote": _finite(asy / ln10),
        }
        for k, v in extra.items():
            point[k] = _finite(v[i, j])
        points.append(point)

    settings = {
        "dim": args.dim,
        "sigma": args.sigma,
        "classes": args.classes,
        "test": args.test,
        "mode": mode,
        "quantity": MODES[mode],
        "statistic": statistic,
        "target": args.target,
        "log": "natural log for log_advantage and asymptote; log10_* are base 10",
    }
    if args.json:
        print(json.dumps({**settings, "points": points}))
        return 0
    _print_tpr_table(settings, points, shots.size)
    return 0


def _print_tpr_table(settings, points, n_shots):
    print(
        f"Gaussian membership model: d = {settings['dim']}, sigma = {settings['sigma']:g}, "
        f"C = {settings['classes']}; test {settings['test']}: {TEST_HELP[settings['test']]}"
    )
    print(f"{settings['mode']}: {settings['quantity']}")
    if settings["mode"] == "pooled":
        print(f"global threshold on the per-example statistic '{settings['statistic']}'")
    header = (
        f"{'shots':>10} {'fpr':>9} {'tpr':>12} {'advantage':>12} {'log10 adv':>10} "
        f"{'slope':>7} {'log10 asym':>11}"
    )
    print(header)
    print("-" * len(header))
    for k, p in enumerate(points):
        slope = None
        if k % n_shots and p["log10_advantage"] is not None:
            prev = points[k - 1]
            if prev["log10_advantage"] is not None and p["shots"] != prev["shots"]:
                slope = (p["log10_advantage"] - prev["log10_advantage"]) / (
                    math.log10(p["shots"]) - math.log10(prev["shots"])
                )
        print(
            f"{p['shots']:>10g} {p['fpr']:>9g} {p['tpr']:>12.6g} {_fmt(p['advantage'], 12, '.4e')} "
            f"{_fmt(p['log10_advantage'], 10, '.4f')} {_fmt(slope, 7, '.3f')} "
            f"{_fmt(p['log10_asymptote'], 11, '.4f')}"
        )
        if (k + 1) % n_shots == 0 and k + 1 < len(points):
            print()
    print(
        "advantage = TPR - FPR; slope = local d log10(adv)/d log10(S) (theorem: -> -1/2); "
        "asym = the theorem's large-S value"
    )


# --------------------------------------------------------------------------- dp-shots
def _dp_shots(args) -> int:
    for eps in args.epsilon:  # e^ε must be a finite number
        if not 0 <= eps <= MAX_EPSILON:
            raise ValueError(f"--epsilon must lie in [0, {MAX_EPSILON}]; got {eps!r}")
    rows = []
    model = None
    x = None
    if args.power_law is None:
        model = model_for(args)
        if args.target:
            x = _load_target(args.target, args.dim)
    for fpr in args.fpr:
        for eps in args.epsilon:
            if args.power_law is not None:
                res = dp.dp_shots_from_power_law(*args.power_law, eps, args.delta, fpr)
            else:
                res = dp.dp_shots(model, eps, args.delta, fpr, test=args.test, x=x)
            rows.append(res.to_dict())
    settings = {
        "source": "power law" if args.power_law else ("target" if x is not None else "average"),
        "power_law": None
        if args.power_law is None
        else {"slope": args.power_law[0], "intercept": args.power_law[1]},
        "dim": None if args.power_law else args.dim,
        "sigma": None if args.power_law else args.sigma,
        "classes": None if args.power_law else args.classes,
        "test": None if args.power_law else args.test,
        "target": args.target,
        "delta": args.delta,
    }
    if args.json:
        print(json.dumps({**settings, "rows": rows}))
        return 0
    if args.power_law:
        print(f"power law log10(TPR - FPR) = {args.power_law[0]:g}·log10 S + {args.power_law[1]:g}")
    else:
        what = "one target" if x is not None else "E_x TPR at per-example FPR"
        print(
            f"Gaussian membership model: d = {args.dim}, sigma = {args.sigma:g}, "
            f"C = {args.classes}; test {args.test}; {what}"
        )
    print(f"smallest shots per class S with TPR <= e^eps·FPR + delta (delta = {args.delta:g})")
    header = f"{'epsilon':>8} {'fpr':>9} {'TPR bound':>11} {'shots':>14} {'shots (int)':>12}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['epsilon']:>8g} {r['fpr']:>9g} {r['tpr_bound']:>11.5g} {r['shots']:>14.6g} "
            f"{r['shots_ceil']:>12d}"
        )
    return 0


# --------------------------------------------------------------------------- derive
def _derive(args) -> int:
    from mialaw.theory.derivation import main

    return int(main(latex=args.latex) or 0)
