"""``mialaw empirical run|fit``: LiRA and RMIA against real fine-tuned heads, and their power law.

Examples::

    mialaw empirical run --dataset digits --backbone pixels --classes 10 --shots 1 2 4 8 16 \\
        --shadows 16 --seeds 2 --fpr 0.1 0.01 --out runs/digits
    mialaw empirical run --dataset fashion-mnist --backbone efficientnet-lite0 --classes 2 5 10 \\
        --shots 1 2 4 8 16 32 64 128 256 --shadows 64 --seeds 3 --out runs/fmnist --json
    mialaw empirical run --dataset gaussian --backbone identity --option dim=32 \\
        --option n_per_class=2000 --option seed=0 --classes 2 --shots 1 4 16 64 --out runs/g
    mialaw empirical fit runs/digits runs/fmnist --json

Python API (also used by ``mialaw reproduce``)::

    from mialaw.empirical.experiment import RunConfig, run_sweep
    from mialaw.empirical.analysis import fit_runs
    from mialaw.empirical.cell_summary import load_run
    result = run_sweep(RunConfig(dataset="digits", backbone="pixels", classes=(10,),
                                 shots=(1, 2, 4, 8), shadows=16, seeds=1), "runs/digits")
    result.points, result.fit            # the same as --json prints
    fit_runs(["runs/digits", "runs/fmnist"])  # regression across runs, held-out R²

A run directory holds settings.json, the cells' content-addressed store cells/ (keep, stats,
labels, indices, population_stats, grad_norm, atypicality, ...; scores are derived from the stats
by the analysis, never stored), summary.json and the plots
advantage.png and roc.png. Re-running into the same --out resumes (finished cells are reused) when
the cell-defining settings match, and fails otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path

from mialaw.empirical.analysis import fit_runs
from mialaw.empirical.attacks import ATTACK_FAMILIES
from mialaw.empirical.experiment import RunConfig, run_sweep
from mialaw.empirical.learners import get_learner, learner_names
from mialaw.empirical.plots import plot_run
from mialaw.paper import bridge_cli, interchange_cli
from mialaw.paper.cli_options import (
    DEFAULT_FPR,
    add_classes,
    add_data_dir,
    add_fpr,
    add_json,
    add_no_progress,
    add_out,
    add_shots,
    key_value,
)
from mialaw.paper.executors import add_executor_arguments, executor_for
from mialaw.paper.lock import writing
from mialaw.paper.resources import check_memory, empirical_run_bytes
from mialaw.paper.run_reading import reading


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(
        dest="empirical_command", metavar="{run,fit,bridge,score,import,export}"
    )
    sub.required = True

    run = sub.add_parser(
        "run",
        help="train shadow heads on cached features and attack them, per (C, S, seed)",
        description="Train the target and M shadow heads per (C, S, seed) and attack them.",
    )
    run.add_argument("--dataset", required=True, help="fashion-mnist, digits, gaussian, cifar10…")
    run.add_argument("--backbone", default="pixels", help="efficientnet-lite0, pixels, identity…")
    add_classes(run, required=True)
    add_shots(run, required=True)
    run.add_argument(
        "--shadows",
        type=int,
        default=16,
        metavar="M",
        help="shadow models per target (even, >= 4); M + 2 models are trained per cell",
    )
    run.add_argument("--seeds", type=int, default=1, metavar="K")
    add_fpr(run, default=DEFAULT_FPR)
    run.add_argument(
        "--attack",
        nargs="+",
        choices=tuple(ATTACK_FAMILIES),
        default=None,
        help="attack families to report (default: every registered one)",
    )
    run.add_argument("--head", choices=["linear", "mlp"], default="linear")
    run.add_argument("--hidden", type=int, default=128, help="MLP hidden units")
    run.add_argument(
        "--weight-decay",
        type=float,
        default=0.01,
        help="λ in mean(CE) + λ/2·||W||² (on the mean loss: the same head at every S)",
    )
    run.add_argument("--rmia-gamma", type=float, default=2.0, help="RMIA's γ")
    run.add_argument(
        "--rmia-population", type=int, default=1000, help="held-out population size for RMIA"
    )
    run.add_argument("--flip", action="store_true", help="add the flipped image as a query")
    run.add_argument("--variance", choices=["per-example", "global"], default="per-example")
    run.add_argument("--centre", choices=["mean", "median"], default="mean")
    run.add_argument(
        "--option",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra feature options, e.g. dim=32 n_per_class=2000 seed=0 (gaussian), "
        "max_per_class=2000, resolution=224",
    )
    # Every registered learner that trains (an imported run is read, never trained).
    trainable = [name for name in learner_names() if get_learner(name).trains]
    run.add_argument("--learner", choices=trainable, default="head")
    run.add_argument(
        "--learner-setting",
        "--film",  # the first learner with settings; kept as an alias
        dest="learner_settings",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the chosen learner (repeatable; e.g. FiLM's epochs=3)",
    )
    run.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_data_dir(run)
    run.add_argument("--cache-dir", default=None)
    add_out(run, required=True, help="run directory (resumed if it exists)")
    add_json(run)
    add_no_progress(run)
    add_executor_arguments(run)
    run.set_defaults(handler=_run)

    _add_fit(sub)
    for extra in (bridge_cli.add_subcommand, interchange_cli.add_subcommands):
        extra(sub)  # real curves from per-example Gaussians; the reference code's results


def _add_fit(sub) -> None:
    fit = sub.add_parser(
        "fit",
        help="fit the power law and the regression over run directories",
        description="Pool run directories: TPR at FPR, power laws, regression with held-out R².",
    )
    fit.add_argument("dirs", nargs="+", metavar="DIR")
    add_fpr(fit)
    fit.add_argument("--attack", nargs="+", choices=tuple(ATTACK_FAMILIES), default=None)
    fit.add_argument("--plot-dir", default=None, help="also write the plots here")
    add_json(fit)
    fit.set_defaults(handler=_fit)


def _print(result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_json()))
    else:
        print(result.table())


def _run(args) -> int:
    options = dict(args.option)
    config = RunConfig(
        dataset=args.dataset,
        backbone=args.backbone,
        classes=tuple(args.classes),
        shots=tuple(args.shots),
        shadows=args.shadows,
        seeds=args.seeds,
        fpr=tuple(args.fpr),
        attacks=None if args.attack is None else tuple(args.attack),
        head=args.head,
        hidden=args.hidden,
        weight_decay=args.weight_decay,
        flip=args.flip,
        variance=args.variance,
        centre=args.centre,
        rmia_gamma=args.rmia_gamma,
        rmia_population=args.rmia_population,
        dataset_options=options,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        device=args.device,
        learner=args.learner,
        learner_settings=dict(args.learner_settings),
    )
    needed = empirical_run_bytes(
        classes=config.classes,
        shots=config.shots,
        seeds=config.seeds,
        shadows=config.shadows,
        population=config.rmia_population,
        queries=2 if config.flip else 1,
        options=options,
        workers=args.workers,
    )
    check_memory(needed, "this run", "lower --shots, --classes, --shadows, --seeds or --workers")

    # The folder's lock before anything is written or any worker started (one run per folder).
    with writing(args.out), _quiet(args.no_progress), executor_for(args) as executor:
        out = args.out
        if executor is not None:  # workers may run in another folder: they need the full path
            out = Path(out).absolute()
        result = run_sweep(config, out, progress=not args.no_progress, executor=executor)
    _print(result, args.json)
    return 0


@contextlib.contextmanager
def _quiet(quiet: bool):
    """``--no-progress`` for the feature extraction too (its workers inherit the variable)."""
    previous = os.environ.get("MIALAW_NO_PROGRESS")
    if quiet:
        os.environ["MIALAW_NO_PROGRESS"] = "1"
    try:
        yield
    finally:
        if quiet and previous is None:
            os.environ.pop("MIALAW_NO_PROGRESS", None)


def _fit(args) -> int:
    with reading(args.dirs):  # a read command: a damaged cell is reported, never removed
        result = fit_runs(args.dirs, attacks=args.attack, fpr=args.fpr)
    if args.plot_dir:
        plot_run(result, args.plot_dir)
    _print(result, args.json)
    return 0
