"""The `mialaw` command: a thin dispatcher over the subcommands' command-line modules.

Each subcommand module (``SUBCOMMANDS``, all in this command-line layer) exposes
``add_arguments(parser)``, which adds its options (or nested subcommands) and sets ``handler`` with
``parser.set_defaults(handler=fn)``; ``fn(args) -> int``. Only the module of the subcommand named on
the line is loaded (the table names each by string; tests/test_structure.py follows such strings),
so ``mialaw --help`` loads none and ``mialaw theory ...`` never loads torch.
A handler reports bad input by raising ``ValueError``; every error ends as one line and an exit
status (``mialaw.paper.errors``: 2 for bad input and the environment, 130/143 when interrupted),
with a traceback only under ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import exiting, guarded

# subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "theory": ("mialaw.paper.theory_cli", "exact theory of the Gaussian membership model"),
    "simulate": (
        "mialaw.paper.simulate_cli",
        "Monte Carlo of the membership game (oracle and LiRA)",
    ),
    "empirical": ("mialaw.paper.empirical_cli", "LiRA/RMIA against real fine-tuned classifiers"),
    "reproduce": ("mialaw.paper.reproduce", "run the whole study and write every figure and table"),
    "audit": ("mialaw.paper.audit_cli", "audit your own data: exposure now, shots needed"),
    "predict": ("mialaw.paper.predict_cli", "predict TPR at (S, C, FPR) from a fitted law"),
}


class Parser(argparse.ArgumentParser):
    """argparse's parser, but a usage error is one line (status 2) pointing to ``--help``; the
    subcommands' parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def named_command(argv: list[str]) -> str | None:
    """The subcommand on the line: its first word that is not an option (``None`` if none)."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the full options of the subcommand ``argv`` names (every other
    subcommand is listed with its help line only; ``argv=None``: every subcommand in full)."""
    command = named_command(argv) if argv is not None else None
    parser = Parser(
        prog="mialaw",
        description="Membership-inference vulnerability as a power law of shots per class.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (anywhere on the line)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if argv is None or name == command:
            importlib.import_module(module).add_arguments(sp)
    return parser


def main(argv: list[str] | None = None) -> int:
    entry = argv is None  # the process's entry point (not a call from Python)
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted before or after the subcommand
    parsed: dict = {"command": "", "out": None}

    def run() -> int:
        # Parsing too is inside the boundary: a Ctrl-C while the subcommands load is one line.
        words = [a for a in argv if a != "--debug"]
        args = build_parser(words).parse_args(words)
        parsed.update(command=args.command, out=getattr(args, "out", None))
        return int(args.handler(args) or 0)

    # One error boundary for every subcommand (mialaw.paper.errors): bad input, files in the way,
    # a full disk, memory, interrupts: one line and an exit status; a traceback only with --debug.
    try:
        return guarded(lambda: parsed["command"], run, debug=debug, where=lambda: parsed["out"])
    finally:
        if entry:
            exiting()


if __name__ == "__main__":
    sys.exit(main())
