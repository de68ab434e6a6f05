"""Batched heads against independent one-at-a-time solvers; gradient norms against autograd."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from mialaw.empirical.backbone_images import resolve_device
from mialaw.empirical.experiment import paired_keep
from mialaw.empirical.heads import train_linear_heads, train_mlp_heads
from mialaw.empirical.statistics import attack_stats, linear_gradient_norms


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(x), 300, replace=False)
    return x[idx], y[idx].astype(np.int64)


def _objective(w, b, x, y, lam):
    """Σ CE + λ/2 ||W||², in float64, independent of the package."""
    z = x @ w.T + b
    z = z - z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -logp[np.arange(len(y)), y].sum() + 0.5 * lam * np.sum(w * w)


@pytest.mark.parametrize("lam", [1.0, 10.0])
def test_batched_linear_heads_equal_sklearn_one_at_a_time(digits, lam):
    x, y = digits
    keep = paired_keep(8, np.zeros(len(y)), seed=1)
    heads = train_linear_heads(x, y, keep, classes=10, weight_decay=lam, dtype="float64", gtol=1e-7)
    for m in range(keep.shape[0]):
        ref = LogisticRegression(C=1.0 / lam, tol=1e-10, max_iter=20000).fit(x[keep[m]], y[keep[m]])
        scale = np.abs(ref.coef_).max()
        assert np.abs(heads.weights[m] - ref.coef_).max() < 1e-5 * scale
        assert np.abs(heads.bias[m] - ref.intercept_).max() < 1e-4
        f_ref = _objective(ref.coef_, ref.intercept_, x[keep[m]], y[keep[m]], lam)
        f_ours = _objective(heads.weights[m], heads.bias[m], x[keep[m]], y[keep[m]], lam)
        assert f_ours <= f_ref * (1 + 1e-9)
        assert heads.objective[m] == pytest.approx(f_ours, rel=1e-9)


def test_float32_reaches_the_same_optimum(digits):
    x, y = digits
    keep = paired_keep(6, np.zeros(len(y)), seed=2)
    h32 = train_linear_heads(x, y, keep, classes=10, dtype="float32")
    h64 = train_linear_heads(x, y, keep, classes=10, dtype="float64", gtol=1e-7)
    for m in range(5):
        f32 = _objective(h32.weights[m].astype(float), h32.bias[m], x[keep[m]], y[keep[m]], 1.0)
        f64 = _objective(h64.weights[m], h64.bias[m], x[keep[m]], y[keep[m]], 1.0)
        assert abs(f32 - f64) <= 1e-4 * f64
    rel = np.abs(h32.weights - h64.weights).max() / np.abs(h64.weights).max()
    assert rel < 2e-3


def test_fewer_examples_than_features_uses_the_span_exactly():
    # N < F: the solver works in the span of the examples; compare with a full-space sklearn fit.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((36, 80))
    y = np.arange(36) % 3
    keep = paired_keep(4, np.zeros(36), seed=0)
    for m in range(3):  # every model sees all three classes (multinomial in sklearn too)
        assert set(y[keep[m]]) == {0, 1, 2}
    heads = train_linear_heads(x, y, keep, classes=3, weight_decay=2.0, dtype="float64", gtol=1e-9)
    for m in range(3):
        ref = LogisticRegression(C=0.5, tol=1e-12, max_iter=20000).fit(x[keep[m]], y[keep[m]])
        assert np.allclose(heads.weights[m], ref.coef_, atol=1e-6)
        assert np.allclose(heads.bias[m], ref.intercept_, atol=1e-6)


def test_training_is_deterministic_and_logits_match_parameters(digits):
    x, y = digits
    keep = paired_keep(6, np.zeros(len(y)), seed=4)
    a = train_linear_heads(x, y, keep, classes=10)
    b = train_linear_heads(
        x, y, keep, classes=10, device="auto" if not torch.cuda.is_available() else "cpu"
    )
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
    logits = a.logits(x)
    direct = np.einsum("nf,mcf->mnc", x, a.weights.astype(float)) + a.bias[:, None, :]
    assert np.allclose(logits, direct, atol=1e-3)


def test_mlp_heads_fit_and_are_seeded(digits):
    x, y = digits
    keep = paired_keep(4, np.zeros(len(y)), seed=5)
    a = train_mlp_heads(x, y, keep, classes=10, hidden=16, seed=7, max_iter=150)
    b = train_mlp_heads(x, y, keep, classes=10, hidden=16, seed=7, max_iter=150)
    c = train_mlp_heads(x, y, keep, classes=10, hidden=16, seed=8, max_iter=150)
    assert np.array_equal(a.w1, b.w1) and not np.array_equal(a.w1, c.w1)
    logits = a.logits(x)
    assert logits.shape == (4, len(y), 10)
    for m in range(4):
        train_acc = np.mean(logits[m][keep[m]].argmax(1) == y[keep[m]])
        assert train_acc > 0.95
        # the objective the optimiser reports is the one of the returned parameters
        z = torch.tensor(logits[m][keep[m]], dtype=torch.float64)
        ce = torch.nn.functional.cross_entropy(z, torch.tensor(y[keep[m]]), reduction="sum")
        pen = 0.5 * (np.sum(a.w1[m].astype(float) ** 2) + np.sum(a.w2[m].astype(float) ** 2))
        assert float(ce) + pen == pytest.approx(a.objective[m], rel=1e-3)


def test_gradient_norm_closed_form_matches_autograd(digits):
    x, y = digits
    keep = paired_keep(4, np.zeros(len(y)), seed=6)
    heads = train_linear_heads(x, y, keep, classes=10, dtype="float64", gtol=1e-8)
    logits = np.einsum("nf,mcf->mnc", x, heads.weights) + heads.bias[:, None, :]
    closed = linear_gradient_norms(logits, x, y)
    for m in range(3):
        for n in (0, 17, 123, 299):
            w = torch.tensor(heads.weights[m], requires_grad=True)
            b = torch.tensor(heads.bias[m], requires_grad=True)
            z = torch.tensor(x[n]) @ w.T + b
            loss = torch.nn.functional.cross_entropy(z[None], torch.tensor([y[n]]))
            gw, gb = torch.autograd.grad(loss, (w, b))
            norm = float(torch.sqrt((gw**2).sum() + (gb**2).sum()))
            assert closed[m, n] == pytest.approx(norm, rel=1e-10)


def test_attack_stats_is_stable_logit_confidence():
    # Huge logits: log(p/(1-p)) in float64 would give inf/-inf; the margin form stays exact.
    logits = np.array([[[800.0, 0.0, -5.0], [0.0, 0.0, 0.0]]])
    stats = attack_stats([logits, logits - 1.0], np.array([0, 2]))
    assert stats.shape == (1, 2, 2)
    assert stats[0, 0, 0] == pytest.approx(800.0 - np.log1p(np.exp(-5.0)), rel=1e-15)
    assert stats[0, 1, 0] == pytest.approx(np.log(1 / 3) - np.log(2 / 3))


def test_bad_inputs_raise():
    x = np.zeros((4, 3))
    y = np.array([0, 1, 0, 1])
    keep = paired_keep(4, np.zeros(4), seed=0)
    with pytest.raises(ValueError, match="NaN"):
        train_linear_heads(np.full((4, 3), np.nan), y, keep, classes=2)
    with pytest.raises(ValueError, match="weight_decay"):
        train_linear_heads(x, y, keep, classes=2, weight_decay=0.0)
    with pytest.raises(ValueError, match="keep"):
        train_linear_heads(x, y, keep.astype(int), classes=2)
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")


def test_paired_keep():
    for models, shots, classes in [(18, 3, 4), (16, 5, 2), (66, 1, 10)]:
        labels = np.repeat(np.arange(classes), 2 * shots)[::-1].copy()
        keep = paired_keep(models, labels, seed=0)
        for c in range(classes):  # every model trains on exactly S examples of every class
            assert np.all(keep[:, labels == c].sum(1) == shots)
        assert np.all(keep.sum(0) == models // 2)  # every example IN for exactly half
        assert np.all(keep[1::2] == ~keep[0::2])  # complementary pairs
        assert np.array_equal(keep, paired_keep(models, labels, seed=0))
        assert not np.array_equal(keep, paired_keep(models, labels, seed=1))
    with pytest.raises(ValueError, match="odd"):
        paired_keep(6, np.array([0, 0, 1]), seed=0)
    with pytest.raises(ValueError, match="even"):
        paired_keep(5, np.array([0, 0, 1, 1]), seed=0)
