"""The training settings of FiLM fine-tuning (``mialaw.empirical.film``), validated and plain.

Kept apart from the network and its training (torch): a run's configuration names and checks its
FiLM settings without loading torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["OPTIMIZERS", "SCHEDULES", "FilmSettings", "is_int", "is_real"]

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")


def is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclass(frozen=True)
class FilmSettings:
    """Training settings of FiLM fine-tuning (validated on construction; ValueError otherwise).

    optimizer : "adam" (β = 0.9, 0.999; ε = 1e-8) or "sgd" (heavy-ball ``momentum``).
    learning_rate : > 0, the peak step size; ``schedule`` "cosine" decays it to 0 over each
        model's own steps, "constant" keeps it.
    epochs : >= 1 passes over each model's training examples.
    batch_size : >= 1 examples per model and step (the last minibatch of an epoch is smaller).
    resolution : >= 8 pixels; the backbone must be built at this resolution (its convolutions pad
        statically for it).
    weight_decay : λ >= 0 on the mean minibatch loss, (λ/2)·(||γ−1||² + ||β||² + ||W||²).
    seed : integer >= 0; model m draws its minibatches from ``default_rng([seed, m])``.
    momentum : in [0, 1), used by "sgd" only.
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    epochs: int = 5
    batch_size: int = 16
    resolution: int = 64
    weight_decay: float = 1e-4
    seed: int = 0
    schedule: str = "cosine"
    momentum: float = 0.9

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}; got {self.schedule!r}")
        if not is_real(self.learning_rate) or not 0 < self.learning_rate < math.inf:
            raise ValueError(
                f"learning_rate must be a finite number > 0; got {self.learning_rate!r}"
            )
        if not is_real(self.weight_decay) or not 0 <= self.weight_decay < math.inf:
            raise ValueError(
                f"weight_decay must be a finite number >= 0; got {self.weight_decay!r}"
            )
        if not is_real(self.momentum) or not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be a number in [0, 1); got {self.momentum!r}")
        for name, minimum in (("epochs", 1), ("batch_size", 1), ("resolution", 8), ("seed", 0)):
            value = getattr(self, name)
            if not is_int(value) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
        # Plain Python numbers, so that equal settings compare and print alike.
        for name in ("learning_rate", "weight_decay", "momentum"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("epochs", "batch_size", "resolution", "seed"):
            object.__setattr__(self, name, int(getattr(self, name)))
