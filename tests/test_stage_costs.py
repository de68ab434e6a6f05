"""The plan's estimates (`mialaw reproduce` prints them before it starts) follow the work."""

import pytest

from mialaw.paper import stage_costs as cost
from mialaw.paper.profiles import PROFILES

FILM = dict(
    dataset="fashion-mnist",
    backbone="efficientnet-lite0",
    classes=(2,),
    shots=(1, 2, 4, 8, 16, 32, 64),
    shadows=16,
    seeds=2,
    learner="film",
    dataset_options={"resolution": 64, "max_per_class": 512},
)


def _seconds(**changes):
    return cost.empirical(FILM | changes)[0]


def test_film_costs_what_training_the_network_costs():
    """FiLM passes images through the network (epochs, area, models, images) where the head only
    multiplies features: the same cells cost far more, and twice the epochs nearly twice."""
    film, head = _seconds(), _seconds(learner="head")
    assert film > 50 * head
    base = cost.RUN_S + 14 * cost.CELL_S
    # (3·epochs + 2) forwards per image: 17 at 5 epochs, 32 at 10.
    doubled = _seconds(learner_settings={"epochs": 10})
    assert (doubled - base) / (film - base) == pytest.approx(32 / 17)
    larger = _seconds(dataset_options={"resolution": 128})
    assert (larger - base) / (film - base) == pytest.approx(4)
    assert cost.empirical(FILM)[1] == (14, "cells (C, S, seed)")


def test_the_full_profile_plans_film_at_minutes_not_seconds():
    """The full profile's FiLM stage took 17.6 min beside other work; the plan used to say 5 s."""
    (film,) = [e for e in PROFILES["full"].empirical if e.options.get("learner") == "film"]
    assert 5 * 60 < cost.empirical(film.options)[0] < 30 * 60


def test_class_means_cost_less_than_trained_heads():
    """The class-mean learner averages features; the plan no longer prices it as training."""
    head = dict(FILM, learner="head")
    base = cost.RUN_S + 14 * cost.CELL_S
    class_mean = cost.empirical(head | {"learner": "class-mean"})[0]
    assert class_mean - base == pytest.approx(
        cost.CLASS_MEAN_SHARE * (_seconds(learner="head") - base)
    )
