"""Counter-based random streams for Numba kernels, deterministic whatever the thread count.

Every kernel splits its work into fixed-size blocks and runs the blocks in ``prange``. Block b
draws from its own xoshiro256** stream whose state is derived from (seed, stream, b) by splitmix64,
so what a block draws never depends on which thread runs it or in which order: the same seed gives
bit-identical results with 1 or 32 threads. Normals come from a 256-layer ziggurat (Marsaglia and
Tsang 2000), the same family as numpy's ``Generator.standard_normal``; gammas from Marsaglia and
Tsang's squeeze method. numba's own ``np.random`` is not used: its state is per thread.

The state is a length-4 uint64 array that the draw functions update in place.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

BLOCK = 4096  # trials per random stream; fixed, so results do not depend on the thread count

_U64 = nb.uint64
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


def _ziggurat_tables(layers: int = 256, r: float = 3.6541528853610088, v: float = 0.00492867323399):
    """Layer edges x[0..layers] and densities f(x) = exp(-x²/2) of the normal ziggurat.

    Layer 0 is the base strip [0, v/f(r)] × [0, f(r)] (its part beyond r stands for the tail);
    layer i >= 1 is [0, x[i]] × [f(x[i]), f(x[i+1])]; every layer has area v.
    """
    x = np.zeros(layers + 1)
    x[1] = r
    x[0] = v / math.exp(-0.5 * r * r)
    for i in range(1, layers - 1):
        x[i + 1] = math.sqrt(-2.0 * math.log(v / x[i] + math.exp(-0.5 * x[i] * x[i])))
    x[layers] = 0.0
    return x, np.exp(-0.5 * x * x)


_ZX, _ZF = _ziggurat_tables()
_R = 3.6541528853610088


@nb.njit(inline="always")
def _rotl(x, k):
    return (x << _U64(k)) | (x >> _U64(64 - k))


@nb.njit(inline="always")
def _splitmix(z):
    z = z + _GOLDEN
    z = (z ^ (z >> _U64(30))) * _MIX1
    z = (z ^ (z >> _U64(27))) * _MIX2
    return z ^ (z >> _U64(31))


@nb.njit(cache=True)
def seed_state(state, seed, stream, block):
    """Fill ``state`` (4 uint64) for block ``block`` of stream ``stream`` under ``seed``."""
    z = _splitmix(_U64(seed))
    z = _splitmix(z ^ _U64(stream))
    z = _splitmix(z ^ _U64(block))
    for i in range(4):
        z = z + _GOLDEN
        state[i] = _splitmix(z)


@nb.njit(inline="always")
def next_u64(state):
    """xoshiro256**: the next 64 random bits."""
    result = _rotl(state[1] * _U64(5), 7) * _U64(9)
    t = state[1] << _U64(17)
    state[2] ^= state[0]
    state[3] ^= state[1]
    state[1] ^= state[2]
    state[0] ^= state[3]
    state[2] ^= t
    state[3] = _rotl(state[3], 45)
    return result


@nb.njit(inline="always")
def uniform(state):
    """Uniform on [0, 1) with 53 random bits."""
    return float(next_u64(state) >> _U64(11)) * _TO_UNIT


@nb.njit(inline="always")
def _uniform_open(state):
    """Uniform on (0, 1), safe for logarithms."""
    return (float(next_u64(state) >> _U64(11)) + 0.5) * _TO_UNIT


@nb.njit(cache=True)
def _normal_slow(state, i, z, sign):
    """The rare ziggurat branches: the tail beyond r (layer 0) and the wedges."""
    zx = _ZX
    zf = _ZF
    while True:
        if i == 0:
            # Marsaglia's tail method: r + a with a ~ Exp(r) accepted with prob exp(-a²/2).
            while True:
                a = -math.log(_uniform_open(state)) / _R
                b = -math.log(_uniform_open(state))
                if 2.0 * b > a * a:
                    return sign * (_R + a)
        if zf[i] + uniform(state) * (zf[i + 1] - zf[i]) < math.exp(-0.5 * z * z):
            return sign * z
        # Rejected: start a fresh draw.
        bits = next_u64(state)
        i = int(bits & _U64(0xFF))
        sign = 1.0 if (bits >> _U64(8)) & _U64(1) else -1.0
        z = float(bits >> _U64(11)) * _TO_UNIT * zx[i]
        if z < zx[i + 1]:
            return sign * z


@nb.njit(inline="always")
def normal(state):
    """A standard normal draw (ziggurat; about 99 % of draws cost one 64-bit word)."""
    bits = next_u64(state)
    i = int(bits & _U64(0xFF))
    sign = 1.0 if (bits >> _U64(8)) & _U64(1) else -1.0
    z = float(bits >> _U64(11)) * _TO_UNIT * _ZX[i]
    if z < _ZX[i + 1]:
        return sign * z
    return _normal_slow(state, i, z, sign)


@nb.njit(cache=True)
def gamma(state, shape):
    """Gamma(shape, 1) by Marsaglia and Tsang; shape < 1 by the boost Gamma(shape+1)·U^(1/shape)."""
    if shape <= 0.0:
        return 0.0
    boost = 1.0
    k = shape
    if k < 1.0:
        boost = _uniform_open(state) ** (1.0 / k)
        k += 1.0
    d = k - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = normal(state)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = _uniform_open(state)
        if u < 1.0 - 0.0331 * x * x * x * x:
            return boost * d * v
        if math.log(u) < 0.5 * x * x + d * (1.0 - v + math.log(v)):
            return boost * d * v


@nb.njit(cache=True)
def chisquare(state, dof):
    """Chi-square with ``dof`` >= 0 degrees of freedom (0 gives 0)."""
    return 2.0 * gamma(state, 0.5 * dof)


@nb.njit(parallel=True, cache=True)
def fill_normal(out, seed, stream):
    """Fill ``out`` (1-D) with standard normals, block by block (thread-count independent)."""
    n = out.shape[0]
    blocks = (n + BLOCK - 1) // BLOCK
    for b in nb.prange(blocks):
        state = np.empty(4, dtype=np.uint64)
        seed_state(state, seed, stream, b)
        for j in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            out[j] = normal(state)


@nb.njit(parallel=True, cache=True)
def fill_chisquare(out, dof, seed, stream):
    """Fill ``out`` (1-D) with chi-square draws of ``dof`` degrees of freedom."""
    n = out.shape[0]
    blocks = (n + BLOCK - 1) // BLOCK
    for b in nb.prange(blocks):
        state = np.empty(4, dtype=np.uint64)
        seed_state(state, seed, stream, b)
        for j in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            out[j] = chisquare(state, dof)


def standard_normal(n: int, seed: int, stream: int = 0) -> np.ndarray:
    """n standard normals from the block streams of (seed, stream); for tests and benchmarks."""
    out = np.empty(int(n))
    fill_normal(out, np.uint64(seed), np.uint64(stream))
    return out


def chisquare_draws(n: int, dof: float, seed: int, stream: int = 0) -> np.ndarray:
    """n chi-square(dof) draws from the block streams of (seed, stream); for tests."""
    out = np.empty(int(n))
    fill_chisquare(out, float(dof), np.uint64(seed), np.uint64(stream))
    return out
