"""One interface over the two implementations of the game: Numba kernels or plain numpy.

An ``Engine`` is built from a seed and hands out the three random ingredients of a run (targets,
keep matrix, statistics) and the oracle's scores. Each ingredient uses its own stream of the seed,
so e.g. the same targets are drawn whatever the attack.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mialaw.theory.model import GaussianModel

ENGINES = ("numba", "numpy")
SAMPLERS = ("fast", "full")


@dataclass(frozen=True)
class Targets:
    """Targets (all of class 0) as the features the game depends on; ``x`` when drawn in d-D."""

    proj: np.ndarray  # (n, C): <x, m_c>
    sqnorm: np.ndarray  # (n,): |x|²
    quad: np.ndarray  # (n,): xᵀΣx
    x: np.ndarray | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return self.sqnorm.shape[0]

    @classmethod
    def from_points(cls, model: GaussianModel, x) -> Targets:
        """Features of explicit targets x (n, d) of class 0."""
        x = np.ascontiguousarray(np.atleast_2d(np.asarray(x, dtype=np.float64)))
        proj = np.ascontiguousarray(x @ model.means.T)
        return cls(proj=proj, sqnorm=np.einsum("ij,ij->i", x, x), quad=model.quad(x), x=x)


def derive_seed(seed: int, *key: int) -> int:
    """An independent 64-bit seed for sub-task ``key`` of ``seed`` (numpy's SeedSequence)."""
    return int(
        np.random.SeedSequence(int(seed), spawn_key=tuple(key)).generate_state(1, np.uint64)[0]
    )


def _chol(model: GaussianModel) -> np.ndarray:
    return np.ascontiguousarray(np.linalg.cholesky(model.covariance))


class Engine:
    """Random ingredients of one run under ``seed``; ``name`` is "numba" or "numpy"."""

    def __init__(self, name: str, seed: int):
        if name not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}; got {name!r}")
        self.name = name
        self.seed = int(seed)

    def _rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(stream,)))

    def targets(self, model: GaussianModel, n: int, sampler: str) -> Targets:
        """n targets of class 0: features only (fast, isotropic) or explicit points in d-D."""
        explicit = sampler == "full" or not model.isotropic
        if self.name == "numba":
            from . import samplers

            if explicit:
                x = samplers.draw_full_targets(n, model.means, _chol(model), np.uint64(self.seed))
                return Targets.from_points(model, x)
            proj, sqnorm, quad = samplers.draw_isotropic_targets(
                n, model.classes, model.dim, model.sigma, np.uint64(self.seed)
            )
            return Targets(proj, sqnorm, quad)
        from . import numpy_engine

        rng = self._rng(1)
        if explicit:
            return Targets.from_points(
                model, numpy_engine.draw_full_targets(rng, n, model.means, _chol(model))
            )
        proj, sqnorm, quad = numpy_engine.draw_isotropic_targets(
            rng, n, model.classes, model.dim, model.sigma
        )
        return Targets(proj, sqnorm, quad)

    def keep(self, models: int, targets: int, *, pairs: bool = False) -> np.ndarray:
        """Balanced keep matrix (models × targets): every target IN for exactly half the models.

        ``pairs=True``: in complementary model pairs (row 2k+1 = not row 2k), as the pair
        rotation needs; otherwise each column is a uniformly random balanced arrangement.
        """
        if models < 2 or models % 2:
            raise ValueError(f"a balanced keep matrix needs an even number of models; got {models}")
        if self.name == "numba":
            from . import samplers

            draw = samplers.draw_pair_keep if pairs else samplers.draw_keep
            return draw(models, targets, np.uint64(self.seed))
        from . import numpy_engine

        draw = numpy_engine.draw_pair_keep if pairs else numpy_engine.draw_keep
        return draw(self._rng(2), models, targets)

    def stats(
        self,
        model: GaussianModel,
        targets: Targets,
        keep: np.ndarray,
        shots: int,
        statistic: int,
        sampler: str,
    ) -> np.ndarray:
        """Statistics (models × targets) that the released models give on the targets."""
        keep = np.ascontiguousarray(keep, dtype=bool)
        if self.name == "numba":
            from . import samplers

            if sampler == "full":
                return samplers.full_stats(
                    targets.x,
                    model.means,
                    _chol(model),
                    keep,
                    int(shots),
                    statistic,
                    np.uint64(self.seed),
                )
            return samplers.fast_stats(
                targets.proj,
                targets.sqnorm,
                targets.quad,
                keep,
                int(shots),
                statistic,
                np.uint64(self.seed),
            )
        from . import numpy_engine

        rng = self._rng(3)
        if sampler == "full":
            return numpy_engine.full_stats(
                rng, targets.x, model.means, _chol(model), keep, int(shots), statistic
            )
        return numpy_engine.fast_stats(
            rng, targets.proj, targets.sqnorm, targets.quad, keep, int(shots), statistic
        )

    def oracle(self, stats: np.ndarray, targets: Targets, shots: int):
        """(log LR, NP p-value) of one statistic per target."""
        from . import oracle

        args = (
            np.ascontiguousarray(stats, dtype=np.float64),
            np.ascontiguousarray(targets.proj[:, 0]),
            targets.sqnorm,
            targets.quad,
            int(shots),
        )
        if self.name == "numba":
            return oracle.oracle_kernel(*args)
        return oracle.oracle_numpy(*args)
