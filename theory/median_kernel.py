"""Compiled medians for LiRA's median centre (``mialaw.theory.lira``, ``centre="median"``).

A target removes at most one value of each example's IN (resp. OUT) list (pair rotation: the
target or its partner, whichever is on that side; leave-one-out: the target, if it is). The
median of the K member values less one value x is read off a window of at most three order
statistics of all K values, found once per example by selection (no sort, no per-target work
over the models):

* ``block_windows``: per example and query, for the IN and the OUT values, the order statistics
  v[b], v[b + 1], v[b + 2] of the K values, b = max((K − 2) // 2, 0) (positions past K − 1 hold
  +inf and are never read), from a block of examples already laid out by model (``lira``'s sums
  over models read the same block, so the statistics are read once);
* ``rotated_medians``: per target, k = K − 1 values remain when a member value x is removed, and
  the sorted remainder w has w[j] = v[j + 1] if v[j] >= x else v[j] (v[j] >= x exactly when j is
  at or past x's rank; among ties either copy leaves the same values), so the median
  0.5·(w[(k − 1) // 2] + w[k // 2]) needs only the window and x; with nothing removed, w = v.

The values are order statistics of the inputs, so the medians are the same bits as sorting
every target's list (``tests/test_lira.py`` holds them equal to ``np.median``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

# Serial kernels: the work is one pass over the statistics, and a parallel launch costs more than
# it saves on a busy machine (and compiles several times slower).


@nb.njit(inline="always")
def _median_of_three(x, y, z):
    return max(min(x, y), min(max(x, y), z))


@nb.njit(inline="always")
def _select(a, lo, hi, k):
    """Rearrange a[lo..hi] so that a[k] holds its k-th smallest value, with values <= it before
    and >= it after: quickselect with a median-of-three pivot and branch-free partitions (random
    data would mispredict every other branch), in two passes (< pivot, then == pivot) so that
    repeated values cost linear time."""
    while hi > lo:
        pivot = _median_of_three(a[lo], a[(lo + hi) >> 1], a[hi])
        split = lo
        for i in range(lo, hi + 1):  # values < pivot to the front
            x = a[i]
            a[i] = a[split]
            a[split] = x
            split += x < pivot
        if k < split:
            hi = split - 1
            continue
        end = split
        for i in range(split, hi + 1):  # then values == pivot (none is smaller here)
            x = a[i]
            a[i] = a[end]
            a[end] = x
            end += x <= pivot
        if k < end:  # a[split..end-1] == pivot
            return
        lo = end


@nb.njit(inline="always")
def _two_smallest(a, lo, hi):
    first = np.inf
    second = np.inf
    for i in range(lo, hi):
        x = a[i]
        if x < first:
            second = first
            first = x
        elif x < second:
            second = x
    return first, second


@nb.njit(inline="always")
def _read_window(a, count, base, out):
    """out[0..2] = a[base] and the two smallest of a[base+1..count-1] (+inf past the end), for
    a partitioned at ``base`` (nothing before it larger, nothing after it smaller)."""
    out[0] = a[base]
    out[1], out[2] = _two_smallest(a, base + 1, count)


_NEAR = 8  # the window is read off at most this many values next to the split


@nb.njit(inline="always")
def _near_split(a, lo, hi, j, sign, out, skip, buf):
    """The j values of a[lo..hi-1] nearest the split, in order away from it (the j largest if
    ``sign`` is -1, the j smallest if +1), kept in a small sorted buffer; the values at distance
    ``skip`` onwards go to out (the lower side: out[0] gets the j-th largest, the farthest);
    ``buf`` is scratch of length >= j."""
    for i in range(j):
        buf[i] = np.inf
    for i in range(lo, hi):
        x = sign * a[i]  # the nearest values are then the smallest of x
        if x < buf[j - 1]:
            k = j - 1
            while k > 0 and buf[k - 1] > x:
                buf[k] = buf[k - 1]
                k -= 1
            buf[k] = x
    if sign < 0:  # out: the j largest ascending, from the j-th largest
        for i in range(min(j, 3)):
            out[i] = -buf[j - 1 - i]
    else:
        for i in range(3):
            out[i] = buf[skip + i] if skip + i < j else np.inf


@nb.njit(inline="always")
def _fill(out, j, first, second):
    """After the j values of the lower side (j < 3) come the upper side's two smallest."""
    if j == 1:
        out[1] = first
        out[2] = second
    elif j == 2:
        out[2] = first


@nb.njit(inline="always")
def _window_of(a, count, base, out, tmp, near):
    """out[0..2] = order statistics base, base + 1, base + 2 of a[0..count-1] (+inf past the
    end); a and the scratch tmp are overwritten.

    The list is first split at its mean, branch-free, into values below it and the rest. The
    middle order statistics lie near the split: when the window is within ``_NEAR`` values of
    it, one pass over a side keeps those nearest values in a small sorted buffer (its branches
    rarely taken); otherwise the side holding position ``base`` is searched by selection."""
    out[0] = np.inf
    out[1] = np.inf
    out[2] = np.inf
    if count == 0:
        return
    total = 0.0
    for i in range(count):
        total += a[i]
    pivot = total / count
    below = 0
    rest = 0
    for i in range(count):  # tmp[:below] < pivot <= tmp[below:count], no branch
        x = a[i]
        less = x < pivot
        tmp[below] = x
        tmp[count - 1 - rest] = x
        below += less
        rest += 1 - less
    if below == 0 or below == count:  # all equal, or a mean rounded past the values
        _select(a, 0, count - 1, base)
        _read_window(a, count, base, out)
    elif base < below and below - base <= _NEAR:  # the window starts among the top of the lower
        _near_split(tmp, 0, below, below - base, -1.0, out, 0, near)
        first, second = _two_smallest(tmp, below, count)
        _fill(out, below - base, first, second)
    elif base >= below and base + 3 - below <= _NEAR:  # among the bottom of the upper side
        _near_split(tmp, below, count, base + 3 - below, 1.0, out, base - below, near)
    elif base < below:
        _select(tmp, 0, below - 1, base)
        _read_window(tmp, count, base, out)
    else:
        _select(tmp, below, count - 1, base)
        _read_window(tmp, count, base, out)


@nb.njit(cache=True, nogil=True)
def block_windows(values, keep_t, window_in, base_in, window_out, base_out):
    """The IN and the OUT windows of a block of examples, written into the outputs: ``values``
    (n, Q, M) every model's statistics of each example (contiguous: the block as ``lira``'s
    sums lay it out), ``keep_t`` (n, M) bool; windows (n, Q, 3) and bases (n,)."""
    width, queries, models = values.shape
    row = np.empty(models)
    tmp = np.empty(models)
    near = np.empty(_NEAR)
    for j in range(width):
        k_in = 0
        for m in range(models):
            k_in += keep_t[j, m]
        k_out = models - k_in
        base_in[j] = max((k_in - 2) // 2, 0)
        base_out[j] = max((k_out - 2) // 2, 0)
        for q in range(queries):
            c = 0  # IN values to the front, OUT values to the back (no branch)
            for m in range(models):
                member = keep_t[j, m]
                row[c if member else models - 1 - (m - c)] = values[j, q, m]
                c += member
            _window_of(row[:k_in], k_in, base_in[j], window_in[j, q], tmp, near)
            _window_of(row[k_in:], k_out, base_out[j], window_out[j, q], tmp, near)


@nb.njit(cache=True)
def rotated_medians(window, base, stats, keep, side, removed, counts):
    """Medians (T, N, Q) of each target's values on ``side`` (True: IN, where ``keep``; False:
    OUT) from that side's window: ``removed`` (R, T) are the models each target removes (one
    counts where it is on ``side``), ``counts`` (T, N) the values left."""
    targets = removed.shape[1]
    examples, queries = window.shape[0], window.shape[1]
    out = np.empty((targets, examples, queries))
    for t in range(targets):
        for n in range(examples):
            gone = -1
            for r in range(removed.shape[0]):
                if keep[removed[r, t], n] == side:
                    gone = removed[r, t]
            k = counts[t, n]
            if k < 1:  # no value left: no median (callers require k >= 1)
                out[t, n, :] = np.nan
                continue
            lo = (k - 1) // 2 - base[n]
            hi = k // 2 - base[n]
            if gone < 0:
                for q in range(queries):
                    out[t, n, q] = 0.5 * (window[n, q, lo] + window[n, q, hi])
                continue
            for q in range(queries):
                x = stats[gone, n, q]
                a = window[n, q, lo + np.int64(window[n, q, lo] >= x)]
                b = window[n, q, hi + np.int64(window[n, q, hi] >= x)]
                out[t, n, q] = 0.5 * (a + b)
    return out
