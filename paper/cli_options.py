"""The options that several subcommands share, defined once: the same name, type, metavar and
wording wherever they appear (``--shots``, ``--classes``, ``--fpr``, ``--out``, ``--json``,
``--no-progress``, ``--data-dir``), and the argparse types that read them.

Each ``add_*`` takes the parser (or subparser) and only what differs between subcommands
(required or not, the default, a help line of its own); argparse and the standard library only.
"""

from __future__ import annotations

import argparse
import math

__all__ = [
    "DEFAULT_FPR",
    "add_classes",
    "add_data_dir",
    "add_fpr",
    "add_json",
    "add_no_progress",
    "add_out",
    "add_shots",
    "key_value",
    "whole_number",
]

#: The target false-positive rates reported when ``--fpr`` is not given.
DEFAULT_FPR = (0.1, 0.01, 0.001)


def whole_number(text: str) -> int:
    """An argparse type: a whole number written as an integer or in float notation ("1e6")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number is needed; got {text!r}") from None
    if not math.isfinite(value) or value != int(value):
        raise argparse.ArgumentTypeError(f"a whole number is needed; got {text!r}")
    # Integer notation keeps every digit (float would round beyond 2^53).
    return int(text) if text.strip().lstrip("+-").isdigit() else int(value)


def key_value(text: str) -> tuple[str, int | float | str]:
    """An argparse type: ``KEY=VALUE``, the value read as an int, else a float, else text."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"KEY=VALUE is needed; got {text!r}")
    key, value = text.split("=", 1)
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, value


def add_shots(parser, *, type=int, required: bool = False, default=None, help: str | None = None):
    """``--shots S [S ...]``: examples per class (``type`` float where 1e6 is written)."""
    parser.add_argument(
        "--shots",
        type=type,
        nargs="+",
        required=required,
        default=default,
        metavar="S",
        help=help or "examples per class S",
    )


def add_classes(parser, *, many: bool = True, required: bool = False, default=None, help=None):
    """``--classes C [C ...]`` (``many``) or ``--classes C``: numbers of classes."""
    parser.add_argument(
        "--classes",
        type=int,
        nargs="+" if many else None,
        required=required,
        default=default,
        metavar="C",
        help=help,
    )


def add_fpr(parser, *, required: bool = False, default=None, help: str | None = None):
    """``--fpr A [A ...]``: target false-positive rates in (0, 1)."""
    parser.add_argument(
        "--fpr",
        type=float,
        nargs="+",
        required=required,
        default=tuple(default) if default is not None else None,  # immutable: shared by parses
        metavar="A",
        help=help or "target false-positive rates in (0, 1)",
    )


def add_out(parser, *, required: bool = False, default=None, help: str | None = None):
    """``--out DIR``: the folder a command writes (locked while it runs)."""
    parser.add_argument(
        "--out", required=required, default=default, metavar="DIR", help=help or "output folder"
    )


def add_json(parser, *, help: str = "print one JSON object"):
    parser.add_argument("--json", action="store_true", help=help)


def add_no_progress(parser):
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def add_data_dir(parser):
    """``--data-dir DIR``: where datasets are read from (default: each dataset's own place)."""
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="folder of the datasets (default: each dataset's installed or cached copy)",
    )
