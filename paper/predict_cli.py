"""``mialaw predict``: TPR at (S, C, FPR) from a fitted regression, or the S for a target advantage.

Examples::

    mialaw predict --shots 10 100 --classes 2 --fpr 0.01
    mialaw predict --target-advantage 0.01 --classes 2 --fpr 0.01
    mialaw predict --list                     # the default fit, every fit and how each transfers
    mialaw predict --shots 64 --classes 10 --fpr 0.1 --fit my_fits.json --source user

The fits are the project's own (shipped with the package, see ``mialaw.empirical.predict``) or a
user's fit JSON (``--fit``: this format, a stage JSON or ``mialaw empirical fit --json`` output).
By default the interval is for a data set that is not one of the fit's (it includes the
between-task spread of the intercept); ``--same-task`` drops that for the fit's own tasks.
"""

from __future__ import annotations

import argparse
import json
import math

from mialaw.empirical.fit_file import ATTACKS
from mialaw.empirical.predict import (
    check_prediction_fpr,
    load_fit_set,
    predict,
    select_fit,
    shots_for,
)


def _fpr(text: str) -> float:
    """argparse type: a float in (0, 1), else one line that says so."""
    try:
        return check_prediction_fpr(float(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


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
    parser.add_argument("--fpr", type=_fpr, default=0.01, metavar="A", help="in (0, 1)")
    parser.add_argument("--attack", default=ATTACKS[0], choices=ATTACKS)
    parser.add_argument(
        "--source",
        default=None,
        help="which fit (default: the file's default, the one that transfers best; "
        "e.g. 'all tasks', fashion-mnist-lite0, digits-pixels)",
    )
    parser.add_argument("--fit", default=None, metavar="FILE", help="a fit JSON instead")
    parser.add_argument(
        "--same-task",
        action="store_true",
        help="your data are one of the fit's tasks: leave out the between-task spread",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_run)


def _fmt(v) -> str:
    return "∞" if math.isinf(v) else f"{v:.3g}"


def _r2(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _list(fit_set, as_json: bool) -> int:
    if as_json:
        print(
            json.dumps(
                {
                    "default": {"source": fit_set.default_source, "why": fit_set.default_reason},
                    "fits": [f.to_dict() for f in fit_set.fits],
                }
            )
        )
        return 0
    default = fit_set.default_source
    if default:
        mine = [f for f in fit_set.fits if f.source == default]
        scores = ", ".join(
            f"{f.attack} {f.fpr:g}: {_r2(f.task_r2)}" for f in mine if f.task_r2 is not None
        )
        print(f"default fit: {default} ({fit_set.default_reason})")
        print(f"  its held-out-by-task R² (mean over tasks it was not fitted on): {scores}")
    for f in fit_set.fits:
        prov = f.provenance
        cov = "covariance" if f.covariance is not None else "no covariance"
        tau = "" if f.intercept_spread is None else f" τ={f.intercept_spread:.2f}"
        if f.transfer_rmse is not None:
            tau += f" held-out RMSE={f.transfer_rmse:.2f}"
        print(
            f"{f.source:<26}{f.attack:<14}fpr={f.fpr:<7g}β_S={f.coef[1]:+.3f} "
            f"β_C={f.coef[2]:+.3f} n={f.n:<3} held-out R² ({f.held_out_by}) "
            f"{_r2(f.held_out_r2)}, by task {_r2(f.task_r2)}{tau} "
            f"S {prov.get('shots_range')} C {prov.get('classes')} ({cov})"
        )
        warning = f.warning()
        if warning:
            print(f"  {warning}")
    return 0


def _run(args) -> int:
    fit_set = load_fit_set(args.fit)
    if args.list:
        return _list(fit_set, args.json)
    fit = select_fit(fit_set, fpr=args.fpr, attack=args.attack, source=args.source)
    new_task = not args.same_task
    if args.shots is not None:
        found = predict(args.shots, args.classes, args.fpr, fit=fit, new_task=new_task)
    else:
        found = tuple(
            shots_for(a, args.classes, args.fpr, fit=fit, new_task=new_task)
            for a in args.target_advantage
        )
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
            print(f"{p} at FPR {p.fpr:g}, C={p.classes}{note}")
    prov = fit.provenance
    print(
        f"fit {fit.id}: {', '.join(prov.get('datasets', []))} on "
        f"{', '.join(prov.get('backbones', []))}, S {prov.get('shots_range')}, C "
        f"{prov.get('classes')}, n={fit.n}, R² {_r2(fit.r2)}, held-out R² ({fit.held_out_by}) "
        f"{_r2(fit.held_out_r2)}, held-out-by-task R² {_r2(fit.task_r2)}; interval: "
        f"{found[0].method}"
    )
    if fit.warning():
        print(fit.warning())
    return 0
