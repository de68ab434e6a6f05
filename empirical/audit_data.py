"""What the user's data and options allow: checked before anything runs, with the reason."""

from __future__ import annotations

import math

import numpy as np

MIN_HELD_OUT = 10  # per class, as the sweep requires (prepare_features)
FIT_OCTAVES = 3.0  # the law is fitted over the usable points within this many octaves of the top


def check_data(features, labels) -> tuple[np.ndarray, np.ndarray]:
    """(features float32 N × D, labels int64 N) or ValueError saying what is wrong and allowed."""
    try:
        x = np.asarray(features)
    except ValueError as err:  # numpy refuses ragged nested sequences
        raise ValueError(
            f"features must be a rectangular N × D array of numbers (rows of one length); {err}"
        ) from None
    if x.dtype == object or not (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        raise ValueError(
            f"features must be a rectangular N × D array of numbers; got dtype {x.dtype} "
            "(ragged rows or non-numeric values)"
        )
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"features must be 2-D (N examples × D features); got shape {x.shape}")
    bad = ~np.all(np.isfinite(x), axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"features contain NaN or inf in {rows.size} of {x.shape[0]} rows (first: "
            f"{rows[:5].tolist()}); only finite values are allowed"
        )
    try:
        y = np.asarray(labels)
    except ValueError as err:
        raise ValueError(f"labels must be a 1-D array of N integers; {err}") from None
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D (one integer per example); got shape {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"features and labels disagree: {x.shape[0]} feature rows but {y.shape[0]} labels "
            "(one label per row is required)"
        )
    if y.dtype == bool or not (np.issubdtype(y.dtype, np.integer) or _whole(y)):
        raise ValueError(
            f"labels must be integers 0..C-1; got dtype {y.dtype}"
            + (" with non-integer values" if np.issubdtype(y.dtype, np.floating) else "")
            + " (map class names to 0..C-1 first)"
        )
    y = y.astype(np.int64)
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(
            f"labels hold one class only ({classes.tolist()}); membership of a classifier "
            "needs at least 2 classes"
        )
    if classes[0] != 0 or classes[-1] != classes.size - 1:
        raise ValueError(
            f"labels must be 0..C-1 with every class present; got values {classes[:10].tolist()}"
            + ("..." if classes.size > 10 else "")
        )
    return np.ascontiguousarray(x, dtype=np.float32), y


def _whole(y: np.ndarray) -> bool:
    return (
        np.issubdtype(y.dtype, np.floating)
        and bool(np.all(np.isfinite(y)))
        and bool(np.all(y == np.round(y)))
    )


def largest_shots(counts) -> int:
    """The largest S a sweep cell allows: 2·S candidates plus MIN_HELD_OUT per class."""
    return (int(np.min(counts)) - MIN_HELD_OUT) // 2


def default_shots(counts) -> tuple[int, ...]:
    """A log2 grid 1, 2, 4, ... and the largest S that leaves a quarter of the smallest class
    held out (the most informative cell; the held-out examples standardise the features and are
    RMIA's population, which a bare 10 per class would make coarse)."""
    n = int(np.min(counts))
    top = (n - max(MIN_HELD_OUT, n // 4)) // 2
    if top < 1:
        return ()
    # Octaves below the fitted tail, then half-octaves across it: more points where the law is
    # fitted (residual degrees of freedom) for 1.6x the cost of a plain log2 grid.
    low = top / 2**FIT_OCTAVES
    grid = {2**k for k in range(int(math.log2(top)) + 1) if 2**k < low / 2**0.5}
    grid |= {max(1, round(top / 2 ** (k / 2))) for k in range(int(2 * FIT_OCTAVES) + 1)}
    return tuple(sorted(grid))


def check_ints(name, values, minimum=1) -> tuple[int, ...]:
    vals = (values,) if isinstance(values, (int, np.integer)) else tuple(values)
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise ValueError(f"{name} must be integers >= {minimum}; got {values!r}")
        out.append(int(v))
    return tuple(sorted(set(out)))


def check_positive(name, values, upper=None) -> tuple[float, ...]:
    if values is None:
        return ()
    vals = (values,) if np.isscalar(values) else tuple(values)
    out = []
    for v in vals:
        f = float(v)
        if not (math.isfinite(f) and f > 0 and (upper is None or f < upper)):
            bound = "" if upper is None else f" and < {upper:g}"
            raise ValueError(f"{name} must be numbers > 0{bound}; got {values!r}")
        out.append(f)
    return tuple(out)


def check_shots(shots, counts) -> tuple[tuple[int, ...], int]:
    """The S grid to measure (default: ``default_shots``) and the largest S the data allow."""
    n_min = int(np.min(counts))
    if shots is None:
        shots = default_shots(counts)
        if len(shots) < 2:
            raise ValueError(
                f"the smallest class has {n_min} examples; an audit needs S = 1 and 2 at least, "
                f"i.e. >= {2 * 2 + MIN_HELD_OUT} examples per class (2·S candidates and "
                f">= {MIN_HELD_OUT} held out)"
            )
    else:
        shots = check_ints("shots", shots)
        if len(shots) < 2:
            raise ValueError(f"shots must hold >= 2 distinct values for a fit; got {shots!r}")
    top_s = largest_shots(counts)
    if max(shots) > top_s:
        smallest = int(np.argmin(counts))
        raise ValueError(
            f"S = {max(shots)} needs {2 * max(shots) + MIN_HELD_OUT} examples per class (2·S "
            f"candidates and >= {MIN_HELD_OUT} held out), but class {smallest} has {n_min}; "
            f"allowed: S <= {top_s}"
            + ("" if top_s >= 1 else f" (no S is possible: every class needs >= {2 + 10})")
        )
    return shots, top_s


def check_train_shots(train_shots, counts) -> tuple[int, str]:
    """The user's S per class and where it comes from (default: all of the smallest class)."""
    if train_shots is None:
        return int(np.min(counts)), "the smallest class: training on all your data"
    return check_ints("train_shots", train_shots)[0], "as given"


def check_delta(delta) -> float:
    delta = float(delta)
    if not (math.isfinite(delta) and 0 <= delta < 1):
        raise ValueError(f"delta must lie in [0, 1); got {delta!r}")
    return delta


def check_fit_options(fit_octaves, top) -> None:
    """``fit_octaves``: a number >= 1 or None; ``top`` (vulnerable examples listed): int >= 0."""
    if fit_octaves is not None and not (
        isinstance(fit_octaves, (int, float))
        and not isinstance(fit_octaves, bool)
        and fit_octaves >= 1
    ):
        raise ValueError(f"fit_octaves must be a number >= 1 or None; got {fit_octaves!r}")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 0:
        raise ValueError(f"top must be an integer >= 0; got {top!r}")


def check_names(names, examples: int) -> list[str] | None:
    if names is None:
        return None
    names = [str(n) for n in names]
    if len(names) != examples:
        raise ValueError(f"names must hold one name per example ({examples}); got {len(names)}")
    return names
