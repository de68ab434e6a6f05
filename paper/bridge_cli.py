"""``mialaw empirical bridge RUN --from-shots S0``: real LiRA curves predicted from one S₀.

Prints predicted beside measured TPR (with intervals) at every S ≥ S₀ of the run, per attack and
FPR, and the error in log10 units of the advantage; ``--json`` prints one object whose ``points``
carry shots, fpr, attack, ``measured`` (tpr, tpr_ci), ``predicted`` and ``predicted_ci`` per scaling
rule, and ``log10_error`` (``mialaw.empirical.bridge``; ``science.md`` section 5).
"""

from __future__ import annotations

import json

from mialaw.empirical.bridge import bridge
from mialaw.paper.cli_options import add_classes, add_fpr, add_json
from mialaw.paper.run_reading import reading


def add_subcommand(sub) -> None:
    bridge = sub.add_parser(
        "bridge",
        help="predict a run's LiRA curves from its per-example Gaussians at one S0",
        description=(
            "Fit every example's IN and OUT Gaussian at S0, predict LiRA's pooled-threshold TPR "
            "at every S >= S0 (the theory's S^-1/2 scaling of each gap, the measured gap slopes, "
            "each cell's own fits, and, for class-mean runs, the features' moments) and set it "
            "beside the measurement."
        ),
    )
    bridge.add_argument("run", metavar="RUN", help="an empirical run directory")
    bridge.add_argument("--from-shots", type=int, required=True, metavar="S0")
    add_classes(bridge, many=False)
    add_fpr(bridge)
    bridge.add_argument(
        "--resamples",
        type=int,
        default=1000,
        help="bootstrap resamples of the measurement (>= 100)",
    )
    bridge.add_argument(
        "--intervals",
        type=int,
        default=100,
        help="bootstrap resamples of the S0 examples for the predictions' intervals (0: none)",
    )
    add_json(bridge)
    bridge.set_defaults(handler=_bridge)


def _bridge(args) -> int:
    if args.resamples < 100:
        raise ValueError(f"--resamples must be >= 100; got {args.resamples}")
    if args.intervals < 0 or 0 < args.intervals < 20:
        raise ValueError(f"--intervals must be 0 (none) or >= 20; got {args.intervals}")
    with reading([args.run]):
        result = bridge(
            args.run,
            args.from_shots,
            classes=args.classes,
            fpr=args.fpr,
            resamples=args.resamples,
            intervals=args.intervals,
        )
    print(json.dumps(result.to_json()) if args.json else result.table())
    return 0
