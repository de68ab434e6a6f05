"""``mialaw simulate``: Monte Carlo of the membership game with the oracle or a shadow-model LiRA.

The command line builds the executor and holds the output folder's lock; the sweep
(``mialaw.simulate.sweep``) only takes the executor. The sweep (numba) is imported when the
command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import tempfile
from pathlib import Path

from mialaw.paper.cli_options import (
    add_classes,
    add_fpr,
    add_json,
    add_no_progress,
    add_out,
    add_shots,
    whole_number,
)
from mialaw.paper.executors import add_executor_arguments, executor_for
from mialaw.paper.lock import writing
from mialaw.paper.resources import check_memory, simulate_bytes
from mialaw.paper.theory_cli import check_sigma
from mialaw.simulate.plots import plot_sweep


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_game_arguments(parser)
    _add_attack_arguments(parser)
    add_json(parser, help="print one JSON object on stdout")
    add_no_progress(parser)
    add_out(parser, help="write points.csv, sweep.json and advantage.png to DIR")
    add_executor_arguments(parser)
    parser.set_defaults(handler=run)


def _add_game_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and the sizes of the game."""
    parser.add_argument("--dim", type=int, required=True, help="dimension d")
    parser.add_argument("--sigma", type=float, required=True, help="noise scale σ (Σ = σ²I)")
    add_shots(
        parser, type=float, required=True, help="examples per class (integers; 1e6 is accepted)"
    )
    add_fpr(parser, required=True)
    parser.add_argument(
        "--targets",
        type=float,
        required=True,
        metavar="N",
        help="games per S (oracle) or target examples (LiRA)",
    )
    parser.add_argument(
        "--shadows",
        type=int,
        default=64,
        metavar="M",
        help="models for LiRA, even, >= 6 (each target IN for half of them); default 64",
    )
    add_classes(parser, many=False, default=2, help="classes; default 2")
    parser.add_argument("--seed", type=int, default=0)


def _add_attack_arguments(parser: argparse.ArgumentParser) -> None:
    """The attack, how it is simulated, measured and fitted."""
    parser.add_argument(
        "--attack", default="oracle", choices=("oracle", "lira-online", "lira-offline")
    )
    parser.add_argument(
        "--sampler",
        default="fast",
        choices=("fast", "full"),
        help="sufficient statistics (fast) or every training example (full)",
    )
    parser.add_argument("--engine", default="numba", choices=("numba", "numpy"))
    parser.add_argument(
        "--variance",
        default="per-example",
        choices=("per-example", "global"),
        help="LiRA's scale estimate",
    )
    parser.add_argument(
        "--statistic",
        default="score",
        choices=("score", "logit"),
        help="LiRA statistic: true-class score or logit-scaled confidence",
    )
    parser.add_argument(
        "--evaluation",
        default="pairs",
        choices=("pairs", "loo", "dedicated"),
        help="LiRA: pair rotation over complementary model pairs (default, untilted), "
        "leave-one-out rotation (tilted; for old runs), or dedicated target models",
    )
    parser.add_argument(
        "--target-models",
        type=int,
        default=16,
        metavar="T",
        help="dedicated target models for --evaluation dedicated (even); default 16",
    )
    parser.add_argument(
        "--interval",
        default="bootstrap",
        choices=("bootstrap", "clopper-pearson"),
        help="pooled TPR interval: bootstrap of threshold-then-count (default) or "
        "Clopper-Pearson (ignores the threshold's noise; for comparison)",
    )
    parser.add_argument(
        "--resamples", type=int, default=1000, metavar="B", help="bootstrap replicates, 100 to 1e6"
    )
    parser.add_argument(
        "--fit-min-shots",
        type=whole_number,
        default=1,
        metavar="S",
        help="fit the power law only over S >= this (the law is asymptotic; default: all S)",
    )


def _table(result) -> str:
    def fmt(v, spec=".4g"):
        return "-" if v is None or v != v else format(v, spec)  # v != v: NaN

    head = (
        "S",
        "fpr",
        "tpr",
        "tpr_ci",
        "achieved_fpr",
        "advantage",
        "theory",
        "per_example",
        "theory_pe",
    )
    rows = [head]
    for p in result.points:
        if p.resolvable:
            tpr, ci = fmt(p.tpr, ".5f"), f"[{p.tpr_ci[0]:.5f}, {p.tpr_ci[1]:.5f}]"
            adv = fmt(p.advantage, ".3e") + ("" if p.detected else "*")
        else:
            tpr, ci, adv = "unresolvable", "-", "-"
        rows.append(
            (
                str(p.shots),
                fmt(p.fpr),
                tpr,
                ci,
                fmt(p.achieved_fpr, ".5f"),
                adv,
                fmt(p.theory_pooled, ".5f"),
                fmt(p.per_example_tpr, ".5f"),
                fmt(p.theory_per_example, ".5f"),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    methods = sorted({p.interval_method for p in result.points if p.resolvable})
    lines.append(f"tpr_ci ({result.config.level:.0%}): " + ("; ".join(methods) or "-"))
    lines.append(
        "(unresolvable: fewer than 1/fpr non-members, no TPR; * interval reaches fpr (not "
        "detected); both are left out of the fits. theory = exact pooled Neyman-Pearson TPR, "
        "theory_pe = E_x[TPR_NP(x)] at per-example FPR, per_example with Clopper-Pearson)"
    )
    for key, fit in result.fits().items():
        for name in ("pooled", "per_example", "theory_pooled"):
            f = fit.get(name)
            if f:
                lo, hi = f["slope_ci"]
                lo, hi = fmt(lo, ".4f"), fmt(hi, ".4f")
                weighted = "weighted, " if f.get("weighted") else ""
                lines.append(
                    f"fpr {key}: {name} slope {f['slope']:.4f} "
                    f"[{lo}, {hi}] ({weighted}{f['n']} points)"
                )
            elif name in fit:
                lines.append(f"fpr {key}: {name} slope: n/a (< 2 detected points or no theory)")
    return "\n".join(lines)


@contextlib.contextmanager
def _atomic(path):
    """A text file written whole or not at all: ``.NAME.<random>.tmp``, then renamed (removed on
    any error; one left by a killed run is swept when the folder is next locked)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            yield fh
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write(result, out: str) -> None:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    data = result.to_json()
    with _atomic(folder / "sweep.json") as fh:
        fh.write(json.dumps(data, indent=1))
    rows = data["points"]
    with _atomic(folder / "points.csv") as fh:
        keys = list(rows[0])
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (" ".join(map(str, v)) if isinstance(v, list) else v) for k, v in row.items()}
            )
    plot_sweep(result, folder / "advantage.png")


MAX_RESAMPLES = 10**6


def _check_memory(args) -> None:
    """σ in its range and the sweep's memory (estimated from the arguments) available, before
    anything is allocated."""
    sigma = check_sigma(args.sigma)
    if not 1 <= args.resamples <= MAX_RESAMPLES:  # below 100 the sweep says so
        raise ValueError(
            f"--resamples must lie in [100, {MAX_RESAMPLES:.0e}] (more replicates change the "
            f"interval by less than its Monte Carlo error); got {args.resamples}"
        )
    if args.dim < 1 or args.targets < 1 or args.shadows < 0 or args.target_models < 0:
        return  # the sweep's own checks say what is wrong
    dedicated = args.target_models if args.evaluation == "dedicated" else 0
    needed = simulate_bytes(
        dim=args.dim,
        sigma=sigma,
        classes=args.classes,
        targets=int(args.targets),
        attack=args.attack,
        shadows=args.shadows,
        target_models=dedicated,
        resamples=args.resamples,
        workers=args.workers or 1,
    )
    check_memory(
        needed,
        f"--targets {int(args.targets)} --dim {args.dim} --resamples {args.resamples} "
        f"({args.attack})",
        "lower --targets, --shadows, --resamples, --workers or --dim",
    )


def run(args) -> int:
    from mialaw.simulate.sweep import SweepConfig, run_sweep  # numba

    if not math.isfinite(args.targets) or args.targets != int(args.targets):
        raise ValueError(f"--targets must be an integer; got {args.targets!r}")
    _check_memory(args)
    config = SweepConfig(
        dim=args.dim,
        sigma=args.sigma,
        classes=args.classes,
        shots=tuple(args.shots),
        fpr=tuple(args.fpr),
        targets=int(args.targets),
        shadows=args.shadows,
        attack=args.attack,
        sampler=args.sampler,
        engine=args.engine,
        variance=args.variance,
        statistic=args.statistic,
        seed=args.seed,
        fit_min_shots=args.fit_min_shots,
        evaluation=args.evaluation,
        target_models=args.target_models,
        interval=args.interval,
        resamples=args.resamples,
    )
    # --out's lock (and its check: a folder, not a file) before anything is computed.
    with writing(args.out) if args.out else contextlib.nullcontext():
        with executor_for(args) as executor:
            result = run_sweep(config, progress=not args.no_progress, executor=executor)
        if args.out:
            _write(result, args.out)
    if args.json:
        print(result.dumps())
    else:
        print(_table(result))
    return 0
