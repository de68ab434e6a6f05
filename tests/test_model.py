"""The Gaussian membership model: validation and IN/OUT moments against brute force."""

import numpy as np
import pytest

from mialaw.theory.model import GaussianModel, check_fpr, check_shots


def brute_force_moments(model, x, shots, trials, rng):
    """Draw the other S-1 (IN) or S (OUT) training examples in full and form s = <x, m̂>."""
    chol = np.linalg.cholesky(model.covariance)
    m = model.mean(0)
    out = np.empty(trials)
    inn = np.empty(trials)
    for i in range(trials):
        others = m + rng.standard_normal((shots, model.dim)) @ chol.T
        out[i] = x @ others.mean(0)
        inn[i] = x @ np.vstack([others[: shots - 1], x]).mean(0)
    return out, inn


@pytest.mark.parametrize("cov", [None, "spd"])
def test_moments_match_brute_force(cov):
    rng = np.random.default_rng(7)
    d, shots = 4, 5
    if cov == "spd":
        a = rng.normal(size=(d, d))
        cov = a @ a.T / d + 0.5 * np.eye(d)
    model = GaussianModel(dim=d, sigma=0.8, cov=cov)
    x = model.mean(0) + rng.normal(size=d)
    out, inn = brute_force_moments(model, x, shots, 40_000, rng)
    mom = model.moments(x, shots)
    for sample, mean, var in ((out, mom.out_mean, mom.out_var), (inn, mom.in_mean, mom.in_var)):
        se_mean = np.sqrt(var / sample.size)
        assert abs(sample.mean() - mean) < 5 * se_mean
        assert abs(sample.var() - var) < 5 * var * np.sqrt(2 / sample.size)
    assert mom.gap == pytest.approx(model.gap(x) / shots)
    assert model.delta(x, shots) == pytest.approx(model.gap(x) / np.sqrt(shots * model.quad(x)))


def test_moments_broadcast_over_shots():
    model = GaussianModel(dim=3)
    x = np.array([1.5, -0.2, 0.3])
    mom = model.moments(x, np.array([1.0, 10.0, 1e12]))
    assert mom.in_var[0] == 0  # S = 1: the released mean is the target itself
    assert mom.out_var.shape == (3,)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dim": 0}, "dim must be an integer >= 1"),
        ({"dim": 2.5}, "dim must be an integer"),
        ({"dim": 3, "classes": 4}, "classes <= dim"),
        ({"dim": 3, "sigma": -1.0}, "sigma must be"),
        ({"dim": 2, "cov": [[1, 2], [2, 1]]}, "positive definite"),
        ({"dim": 2, "cov": [[1, 0.5], [0.4, 1]]}, "symmetric"),
        ({"dim": 2, "cov": np.eye(3)}, "shape"),
        ({"dim": 2, "classes": 2, "means": [[1, 0], [1, 0]]}, "orthonormal"),
    ],
)
def test_invalid_models_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianModel(**kwargs)


def test_invalid_shots_fpr_and_targets():
    with pytest.raises(ValueError, match=">= 1"):
        check_shots([0.5])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        check_fpr([1.0])
    model = GaussianModel(dim=3)
    with pytest.raises(ValueError, match="last dimension d=3"):
        model.quad(np.ones(4))
    with pytest.raises(ValueError, match="class y"):
        model.mean(2)


def test_model_is_immutable():
    model = GaussianModel(dim=3, cov=np.eye(3))
    with pytest.raises(AttributeError):
        model.dim = 4
    with pytest.raises(ValueError):
        model.cov[0, 0] = 2.0
