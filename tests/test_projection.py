"""Features projected on principal components fitted outside the sweep (the capacity experiment)."""

import numpy as np
import pytest

from mialaw.empirical.projection import pca_basis, project, split_options


def test_basis_is_orthonormal_and_spans_the_largest_variance():
    rng = np.random.default_rng(0)
    scales = np.array([10.0, 5.0, 1.0, 0.5, 0.1])
    x = rng.standard_normal((4000, 5)) * scales + 3.0
    mean, basis = pca_basis(x, 2)
    np.testing.assert_allclose(basis.T @ basis, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(mean, x.mean(0))
    # the top directions are the first two axes (variances 100 and 25), up to sign
    np.testing.assert_allclose(np.abs(basis[:2]), np.eye(2), atol=0.02)
    projected = project(x, mean, basis)
    assert projected.dtype == np.float32
    np.testing.assert_allclose(projected.var(0), scales[:2] ** 2, rtol=0.1)


def test_bad_projection_settings_are_refused():
    assert split_options({"max_per_class": 10}) == ({"max_per_class": 10}, None)
    assert split_options({"project": 16, "max_per_class": 10}) == ({"max_per_class": 10}, 16)
    with pytest.raises(ValueError, match="'project' must be an integer >= 1"):
        split_options({"project": 0})
    with pytest.raises(ValueError, match="needs 1 <= d <= min"):
        pca_basis(np.zeros((10, 4)), 5)


def test_feature_space_and_given_features_cannot_be_projected():
    from mialaw.empirical.experiment import RunConfig
    from mialaw.empirical.head_learner import named_features, prepare_features
    from mialaw.empirical.projection import fitting_features

    config = RunConfig(dataset="gaussian", backbone="identity", dataset_options={"project": 4})
    with pytest.raises(ValueError, match="lives in feature space"):
        fitting_features(config, {}, named_features)

    class Given:
        features = np.zeros((100, 8), np.float32)
        labels = np.repeat([0, 1], 50)

    with pytest.raises(ValueError, match="applies to named datasets"):
        prepare_features(config, Given())
