"""``mialaw predict``: TPR at (S, C, FPR) from a fitted regression, or the S for a target advantage.

Examples::

    mialaw predict --shots 10 100 --classes 2 --fpr 0.01
    mialaw predict --target-advantage 0.01 --classes 2 --fpr 0.01
    mialaw predict --list                                   # the shipped fits and their provenance
    mialaw predict --shots 64 --classes 10 --fpr 0.1 --fit my_fits.json --source user

The fits are the project's own (shipped with the package, see ``mialaw.empirical.predict``) or a
user's fit JSON (``--fit``: this format, a stage JSON or ``mialaw empirical fit --json`` output).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--shots", type=float, nargs="+", metavar="S", help="S per class to predict")
    what.add_argument(
        "--target-advantage",
        type=float,
        nargs="+",
        metavar="A",
        help="find the S per class at which TPR − FPR falls to A",
    )
    what.add_argument("--list", action="store_true", help="list the available fits")
    parser.add_argument("--classes", type=int, default=2, metavar="C")
    parser.add_argument("--fpr", type=float, default=0.01, metavar="A")
    parser.add_argument(
        "--attack", default="lira_online", choices=["lira_online", "lira_offline", "rmia"]
    )
    parser.add_argument(
        "--source",
        default=None,
        help="which fit (e.g. fashion-mnist-lite0, digits-pixels, 'all datasets')",
    )
    parser.add_argument("--fit", default=None, metavar="FILE", help="a fit JSON instead")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_run)


def _fmt(v) -> str:
    import math

    if math.isinf(v):
        return "∞"
    return f"{v:.3g}"


def _shots(v) -> str:
    import math

    if math.isinf(v):
        return "∞"
    return f"{math.ceil(v):,}" if v < 1e7 else f"{v:.1e}"


def _run(args) -> int:
    import json

    from mialaw.empirical.predict import load_fits, predict, select_fit, shots_for

    fits = load_fits(args.fit)
    if args.list:
        rows = [f.to_dict() for f in fits]
        if args.json:
            print(json.dumps({"fits": rows}))
            return 0
        for f in fits:
            prov = f.provenance
            cov = "covariance" if f.covariance is not None else "no covariance"
            print(
                f"{f.source:<22}{f.attack:<14}fpr={f.fpr:<7g}β_S={f.coef[1]:+.3f} "
                f"β_C={f.coef[2]:+.3f} n={f.n:<3} held-out R²={_r2(f.held_out_r2)} "
                f"S {prov.get('shots_range')} C {prov.get('classes')} ({cov})"
            )
        return 0
    fit = select_fit(fits, fpr=args.fpr, attack=args.attack, source=args.source)
    if args.shots is not None:
        found = predict(args.shots, args.classes, args.fpr, fit=fit)
    else:
        found = tuple(shots_for(a, args.classes, args.fpr, fit=fit) for a in args.target_advantage)
    if args.json:
        print(json.dumps({"fit": fit.to_dict(), "predictions": [p.to_dict() for p in found]}))
        return 0
    for p in found:
        note = " (extrapolated beyond the fit's S or C)" if p.extrapolated else ""
        if args.shots is not None:
            lo, est, hi = p.tpr
            alo, aest, ahi = p.advantage
            print(
                f"S={p.shots:g} C={p.classes} FPR={p.fpr:g}: TPR {_fmt(est)} [{_fmt(lo)}, "
                f"{_fmt(hi)}], TPR − FPR {_fmt(aest)} [{_fmt(alo)}, {_fmt(ahi)}]{note}"
            )
        else:
            lo, est, hi = p.shots
            print(
                f"TPR − FPR <= {p.target_advantage:g} at FPR {p.fpr:g}, C={p.classes}: "
                f"S >= {_shots(est)} per class [{_shots(lo)}, {_shots(hi)}]{note}"
            )
    prov = fit.provenance
    print(
        f"fit {fit.id}: {', '.join(prov.get('datasets', []))} on "
        f"{', '.join(prov.get('backbones', []))}, S {prov.get('shots_range')}, C "
        f"{prov.get('classes')}, n={fit.n}, R² {_r2(fit.r2)}, held-out R² ({fit.held_out_by}) "
        f"{_r2(fit.held_out_r2)}; interval: {found[0].method}"
    )
    return 0


def _r2(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"
