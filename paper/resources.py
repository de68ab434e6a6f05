"""Memory a command will need, estimated from its arguments before anything is allocated.

Every command that allocates arrays sized by its arguments (``theory``, ``simulate``, ``empirical
run|score|import``, ``audit``) calls ``check_memory`` first with an estimate made from the
arguments (and from the headers of the ``.npy`` files it will read, ``npy_bytes``) and refuses
with one line, the estimate and what is available, what does not fit, instead of growing until
the OS kills it. The estimates are deliberately generous upper bounds of the peak resident
memory, measured on the commands (see each function).

Available memory is the smallest of: the system's ``MemAvailable``, the cgroup's limit less its
use, the address-space limit (``ulimit -v``), and ``$MIALAW_MEMORY_LIMIT`` (bytes, or with a
K/M/G/T suffix), which lets a shared machine set a bound of its own.

This module imports nothing from mialaw and nothing heavy.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

__all__ = [
    "available_bytes",
    "check_memory",
    "empirical_run_bytes",
    "format_bytes",
    "npy_bytes",
    "npy_shape",
    "simulate_bytes",
    "theory_bytes",
]

BASE_BYTES = 400e6  # the interpreter with numpy, scipy, numba and matplotlib loaded
_SUFFIX = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def format_bytes(n: float) -> str:
    if not math.isfinite(n):
        return "an unbounded amount"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError("unreachable")


def _parse_limit(text: str) -> float | None:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1:] if text[-1:] in _SUFFIX else ""
    try:
        value = float(text[: len(text) - len(unit)]) * _SUFFIX[unit]
    except ValueError:
        return None
    return value if value > 0 else None


def _meminfo_available() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> float | None:
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return float(limit) - float((root / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def _rlimit_available() -> float | None:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else float(soft)


def available_bytes() -> float:
    """The memory this process may still allocate (see the module docstring); inf if unknown."""
    found = [_meminfo_available(), _cgroup_available(), _rlimit_available()]
    env = os.environ.get("MIALAW_MEMORY_LIMIT")
    if env:
        found.append(_parse_limit(env))
    known = [v for v in found if v is not None]
    return max(min(known), 0.0) if known else math.inf


def check_memory(needed: float, what: str, hint: str) -> None:
    """ValueError (one line: the estimate, what is available, ``hint``) when ``needed`` bytes do
    not fit in the available memory."""
    available = available_bytes()
    if not needed <= available:  # also refuses a NaN estimate
        raise ValueError(
            f"{what} needs about {format_bytes(needed)} of memory, more than the "
            f"{format_bytes(available)} available; {hint}"
        )


# --------------------------------------------------------------------------- files
def npy_shape(path) -> tuple[tuple[int, ...], int] | None:
    """(shape, item size) from the header of a ``.npy`` file, without reading its data; None if
    the file is missing or is not a ``.npy`` file (the reader then says what is wrong)."""
    try:
        with open(path, "rb") as fh:
            return _header(fh)
    except (OSError, ValueError, EOFError):
        return None


def _header(fh) -> tuple[tuple[int, ...], int] | None:
    """(shape, item size) from an open ``.npy`` stream's header (any format version)."""
    import ast
    import struct

    import numpy as np

    magic = fh.read(8)
    if len(magic) != 8 or magic[:6] != b"\x93NUMPY" or magic[6] not in (1, 2, 3):
        return None
    width = 2 if magic[6] == 1 else 4
    raw = fh.read(width)
    if len(raw) != width:
        return None
    length = struct.unpack("<H" if width == 2 else "<I", raw)[0]
    if length > 100_000:
        return None
    try:
        header = ast.literal_eval(fh.read(length).decode("utf-8" if magic[6] == 3 else "latin1"))
        shape = tuple(int(n) for n in header["shape"])
        itemsize = np.dtype(header["descr"]).itemsize
    except (ValueError, TypeError, SyntaxError, KeyError, UnicodeDecodeError, MemoryError):
        return None
    if any(n < 0 for n in shape):
        return None
    return shape, max(int(itemsize), 1)


def npy_bytes(path, *, itemsize: int | None = None) -> float:
    """Bytes the arrays in ``path`` take in memory, from their headers: one ``.npy`` file, the
    members of an ``.npz`` file, or every ``.npy`` file under a folder. ``itemsize`` counts each
    element at that size instead (e.g. 8 for a conversion to float64). 0 for anything unreadable
    (its reader reports it)."""
    path = Path(path)
    if path.is_dir():
        return sum(npy_bytes(p, itemsize=itemsize) for p in sorted(path.rglob("*.np[yz]")))
    if path.suffix == ".npz":
        return _npz_bytes(path, itemsize)
    found = npy_shape(path)
    return 0.0 if found is None else _nbytes(found, itemsize)


def _nbytes(found, itemsize) -> float:
    shape, size = found
    return float(math.prod(shape)) * max(size, itemsize or 0)


def _npz_bytes(path: Path, itemsize) -> float:
    total = 0.0
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(".npy"):
                    with archive.open(name) as fh:
                        found = _header(fh)
                    total += 0.0 if found is None else _nbytes(found, itemsize)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return 0.0
    return total


# --------------------------------------------------------------------------- estimates
def theory_bytes(dim: int, sigma: float = 1.0, classes: int = 2) -> float:
    """Peak memory of the exact theory of the isotropic Gaussian model: its 1-D quadrature over
    the target's projection grows with d (measured 0.17, 0.87, 2.9 and 11.3 GB at d = 1e3, 1e5,
    1e6 and 1e7, whatever the number of (S, FPR) points; bounded by 11.5 GB · (d / 1e7)^0.6)
    and like 1/σ for σ < 1 (0.49 and 4.1 GB at σ = 1e-2 and 1e-3; bounded by 4.5 GB · 1e-3/σ);
    plus the class means (C × d floats)."""
    dim, classes = max(int(dim), 1), max(int(classes), 1)
    small_sigma = 4.5e9 * 1e-3 / sigma if 0 < sigma < 1 else 0.0
    return BASE_BYTES + 11.5e9 * (dim / 1e7) ** 0.6 + small_sigma + 8.0 * classes * dim


def simulate_bytes(
    *,
    dim: int,
    sigma: float,
    classes: int,
    targets: int,
    attack: str,
    shadows: int,
    target_models: int,
    resamples: int = 1000,
    workers: int = 1,
) -> float:
    """Peak memory of ``mialaw simulate``: the theory for every point plus one S-point's games
    per process (measured about 160 bytes per oracle game and 130 per LiRA model and target,
    bootstrap included; bounded here by 250 and 200), and the bootstrap's replicates (measured
    about 110 bytes per resample at 5e7 resamples; bounded by 128)."""
    if attack == "oracle":
        per_point = 250.0 * targets
    else:
        per_point = 200.0 * targets * (shadows + target_models)
    per_process = per_point + 128.0 * max(int(resamples), 0)  # bootstrap replicates
    workers = max(int(workers or 1), 1)
    interpreters = workers * BASE_BYTES if workers > 1 else 0.0  # this one is in the theory's
    return theory_bytes(dim, sigma, classes) + interpreters + workers * per_process


def empirical_run_bytes(
    *,
    classes,
    shots,
    seeds: int,
    shadows: int,
    population: int,
    queries: int,
    options: dict,
    workers: int = 1,
) -> float:
    """A lower bound of the peak memory of ``mialaw empirical run``, from what its arguments fix
    (the features' width is known only once they are read): per cell, the M + 2 models' arrays
    over the 2·S·C candidates and the population (about 16 float64 per model, example and query),
    per process; the task list (about 10 kB a cell); a Gaussian data set's features."""
    c, s = max(classes), max(shots)
    per_cell = 16 * 8.0 * (shadows + 2) * (2.0 * s * c + population) * queries
    cells = float(len(classes)) * len(shots) * seeds
    features = 0.0
    dim, per_class = options.get("dim"), options.get("n_per_class")
    if isinstance(dim, int) and isinstance(per_class, int):
        features = 8.0 * dim * per_class * c
    return features + 1e4 * cells + max(int(workers or 1), 1) * (BASE_BYTES + per_cell)
