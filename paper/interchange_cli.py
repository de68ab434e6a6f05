"""``mialaw empirical score|import|export``: LiRA results to and from the reference LiRA code.

Examples::

    mialaw empirical score exp/cifar10 --fpr 0.01 0.001            # reference layout or arrays
    mialaw empirical score exp/cifar10 --targets 15 --preset reference
    mialaw empirical import exp/s16 exp/s64 exp/s256 --shots 16 64 256 --classes 10 --out runs/mine
    mialaw empirical fit runs/mine                                 # the power law of imported runs
    mialaw empirical export runs/digits --out exchange/digits      # a run in the reference layout

See ``mialaw.empirical.interchange`` for the layouts and the scoring rules; ``--preset reference``
gives the reference LiRA code's own scores (``mialaw.empirical.reference_lira``).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from mialaw.empirical.interchange import PRESETS, export_run, import_runs, read_scores, score_arrays
from mialaw.empirical.store import read_only
from mialaw.paper.lock import writing
from mialaw.paper.resources import BASE_BYTES, check_memory, npy_bytes

COMMANDS = ("score", "import", "export")


def add_subcommands(sub) -> None:
    """Add score, import and export to the ``mialaw empirical`` subparsers ``sub``."""
    score = sub.add_parser(
        "score",
        help="LiRA/RMIA TPR at FPR of score arrays (reference LiRA layout or keep/stats)",
        description="Score a reference-layout folder, a keep.npy/stats.npy folder or an .npz.",
    )
    score.add_argument("path", metavar="DIR")
    _common(score)
    score.add_argument("--json", action="store_true", help="print one JSON object")
    score.set_defaults(handler=_score)

    imp = sub.add_parser(
        "import",
        help="turn score folders measured at several S into a run `empirical fit` reads",
        description="Import score folders (one per S) as a mialaw run directory.",
    )
    imp.add_argument("dirs", nargs="+", metavar="DIR")
    imp.add_argument(
        "--shots",
        type=int,
        nargs="+",
        default=None,
        metavar="S",
        help="S per class of each folder (read from folders that `export` wrote)",
    )
    imp.add_argument(
        "--classes",
        type=int,
        nargs="+",
        default=None,
        metavar="C",
        help="C of all folders, or one per folder",
    )
    imp.add_argument("--dataset", default="imported", help="a name for the fit's tables")
    imp.add_argument("--backbone", default="reference", help="a name for the fit's tables")
    imp.add_argument("--out", required=True, help="a new run directory")
    _common(imp)
    imp.set_defaults(handler=_import)

    exp = sub.add_parser(
        "export",
        help="write a run's cells in the reference LiRA layout",
        description="Write every cell of a run as experiment-*/keep.npy, scores/*.npy.",
    )
    exp.add_argument("run", metavar="RUN")
    exp.add_argument("--out", required=True)
    exp.set_defaults(handler=_export)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fpr", type=float, nargs="+", default=[0.1, 0.01, 0.001], metavar="A")
    p.add_argument(
        "--targets",
        type=int,
        nargs="+",
        default=None,
        metavar="M",
        help="dedicated target model indices (scored against all other models)",
    )
    p.add_argument(
        "--preset",
        default="mialaw",
        choices=list(PRESETS),
        help="LiRA's definition: mialaw (mean, sample variance, one-sided offline test) or the "
        "reference code's own scores (median, population spread, IN/OUT cut to the smallest "
        "count, two-sided offline log-density; reference-fixed: its fix_variance)",
    )
    p.add_argument(
        "--epoch", default=None, help="score file to take (default: the last by sorted name)"
    )


def _epoch(value):
    if value is None:
        return None
    return int(value) if str(value).isdigit() else value


def _warn_to_stderr():

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr)

    warnings.showwarning = show


def _check_memory(paths) -> None:
    """The score arrays under ``paths`` (from their .npy headers) fit in memory, read as float64
    and stacked (about three copies)."""

    needed = BASE_BYTES + 3 * sum(npy_bytes(p, itemsize=8) for p in paths)
    check_memory(
        needed, f"reading the score arrays under {', '.join(map(str, paths))}"[:200], "score less"
    )


def _score(args) -> int:

    _warn_to_stderr()
    _check_memory([args.path])
    arrays = read_scores(args.path, epoch=_epoch(args.epoch))
    scored = score_arrays(arrays, fpr=tuple(args.fpr), targets=args.targets, preset=args.preset)
    if args.json:
        out = scored.to_dict() | {"source": arrays.source, "layout": arrays.layout}
        print(json.dumps(out))
    else:
        m, n = arrays.keep.shape
        print(f"{arrays.source} ({arrays.layout} layout): {m} models × {n} examples")
        print(scored.table())
    return 0


def _import(args) -> int:

    _warn_to_stderr()
    _check_memory(args.dirs)
    with writing(args.out):
        out = _import_into(args)
    print(f"imported {len(args.dirs)} folder(s) into {out}; fit with: mialaw empirical fit {out}")
    return 0


def _import_into(args):

    return import_runs(
        args.dirs,
        args.out,
        shots=args.shots,
        classes=args.classes,
        dataset=args.dataset,
        backbone=args.backbone,
        targets=args.targets,
        fpr=tuple(args.fpr),
        preset=args.preset,
        epoch=_epoch(args.epoch),
    )


def _export(args) -> int:

    # The run is only read: a damaged cell is named (and left), not removed.
    with writing(args.out), read_only():
        written = export_run(args.run, args.out)
    print(f"wrote {len(written)} cell(s) in the reference layout under {args.out}")
    return 0
