"""``mialaw audit``: how exposed is your fine-tuning data, and how many shots would make it safe.

Examples::

    mialaw audit --features X.npy --labels y.npy --out audit/ --target-advantage 0.01
    mialaw audit --images photos/ --backbone efficientnet-lite0 --out audit/ --epsilon 1

``X.npy`` is an N × D float array (one row of features per example), ``y.npy`` N integer labels
0..C-1; ``--images DIR`` is a folder per class (DIR/<class>/*.png|jpg), embedded once by a
registered backbone (cached). Writes report.md, report.html and report.json into ``--out`` (and the
sweep's cells into ``--out``/run, so an interrupted audit resumes) and prints the headline. Bad
input exits with status 2 and one line saying what was wrong. See ``mialaw.empirical.audit``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mialaw.empirical.audit import audit
from mialaw.empirical.datasets import IMAGE_SUFFIXES
from mialaw.empirical.features import get_features
from mialaw.paper.lock import writing
from mialaw.paper.resources import BASE_BYTES, check_memory, npy_bytes

NPY_MAGIC = b"\x93NUMPY"  # the first bytes of every .npy file (numpy.lib.format)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("your data (features and labels, or an image folder)")
    data.add_argument("--features", metavar="X.npy", help="N × D float array (.npy)")
    data.add_argument("--labels", metavar="y.npy", help="N integer labels 0..C-1 (.npy)")
    data.add_argument("--images", metavar="DIR", help="a folder per class: DIR/<class>/*.png|jpg")
    data.add_argument(
        "--backbone", default="efficientnet-lite0", help="for --images: efficientnet-lite0, pixels…"
    )
    data.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="PX",
        help="for --images of different sizes: resize all to PX × PX",
    )
    data.add_argument("--cache-dir", default=None, help="feature cache (default ~/.cache/mialaw)")
    parser.add_argument("--out", required=True, help="report and run directory (resumed)")
    parser.add_argument(
        "--shots",
        type=int,
        nargs="+",
        default=None,
        metavar="S",
        help="S per class to measure (default: a log2 grid up to what the data allow)",
    )
    parser.add_argument(
        "--train-shots",
        type=int,
        default=None,
        metavar="S",
        help="the S per class you train with (default: the smallest class)",
    )
    parser.add_argument("--fpr", type=float, nargs="+", default=[0.1, 0.01, 0.001], metavar="A")
    parser.add_argument("--shadows", type=int, default=16, metavar="M")
    parser.add_argument("--seeds", type=int, default=1, metavar="K")
    parser.add_argument(
        "--target-advantage",
        type=float,
        nargs="+",
        default=None,
        metavar="A",
        help="report the S per class that brings TPR − FPR under A",
    )
    parser.add_argument(
        "--epsilon",
        type=float,
        nargs="+",
        default=None,
        metavar="E",
        help="report the S per class inside the (ε, δ)-DP bound",
    )
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01, help="λ on the mean loss")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--json", action="store_true", help="print report.json instead")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(handler=_run)


def _load_npy(path: str, what: str):
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(NPY_MAGIC))
    except FileNotFoundError:
        raise ValueError(f"--{what} {path} does not exist") from None
    except OSError as err:
        raise ValueError(f"--{what} {path} cannot be read ({err.strerror})") from None
    if head != NPY_MAGIC:
        raise ValueError(
            f"--{what} {path} is not a NumPy .npy file (it does not begin with the .npy header); "
            "save the array with numpy.save"
        )
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err) or "Object arrays" in str(err):
            raise ValueError(
                f"--{what} {path} holds Python objects (ragged rows?); save a rectangular "
                "numeric array with numpy.save"
            ) from None
        raise ValueError(f"--{what} {path} is not a .npy array ({err})") from None
    except MemoryError:
        raise
    except Exception as err:  # numpy's header parser raises several kinds (TokenError too)
        raise ValueError(f"--{what} {path} is not a readable .npy file ({err})") from None


def _image_names(root) -> list[str]:
    """File paths in the order the imagefolder loader reads them (sorted classes, then files)."""

    root = Path(root)
    if (root / "train").is_dir():
        root = root / "train"
    names = []
    for cls in sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        for path in sorted((root / cls).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                names.append(str(path.relative_to(root)))
    return names


def _run(args) -> int:
    if args.images is not None:
        if args.features is not None or args.labels is not None:
            raise ValueError("give --images DIR, or --features X.npy with --labels y.npy, not both")

        options = {} if args.image_size is None else {"image_size": args.image_size}
        fs = get_features(
            "imagefolder",
            args.backbone,
            data_dir=args.images,
            cache_dir=args.cache_dir,
            device=args.device,
            progress=not args.no_progress,
            **options,
        )
        features, labels, backbone = fs.features, fs.labels, fs.backbone
        names = _image_names(args.images)
        names = names if len(names) == len(labels) else None
    elif args.features is not None and args.labels is not None:
        needed = 4 * (npy_bytes(args.features, itemsize=8) + npy_bytes(args.labels, itemsize=8))
        check_memory(BASE_BYTES + needed, f"auditing {args.features}", "audit fewer examples")
        features = _load_npy(args.features, "features")
        labels = _load_npy(args.labels, "labels")
        backbone, names = "given", None
    else:
        raise ValueError("give --features X.npy and --labels y.npy, or --images DIR")

    with writing(args.out):
        report = _audit(args, features, labels, names, backbone)
    return _print_report(args, report)


def _audit(args, features, labels, names, backbone):

    return audit(
        features,
        labels,
        shots=args.shots,
        fpr=tuple(args.fpr),
        shadows=args.shadows,
        seeds=args.seeds,
        target_advantage=args.target_advantage,
        epsilon=args.epsilon,
        delta=args.delta,
        out=args.out,
        train_shots=args.train_shots,
        weight_decay=args.weight_decay,
        names=names,
        backbone=backbone,
        device=args.device,
        progress=not args.no_progress,
    )


def _print_report(args, report) -> int:

    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print("\n".join(report.headline()))
        print(f"reports: {args.out}/report.md, report.html, report.json")
    return 0
