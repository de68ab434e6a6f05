"""Batched training of many classification heads on shared features (torch).

All M heads (the target and its shadows) are trained at once as ONE optimisation problem: model m
minimises its own objective

    f_m(θ_m) = Σ_i keep[m, i] · CE(head(θ_m, x_i), y_i) + (λ/2)·||weights_m||²

(sum of cross-entropies over its training examples plus an L2 penalty on the weights, not on the
biases: scikit-learn's ``LogisticRegression(C=1/λ)``, i.e. λ is a Gaussian prior whose strength
relative to the data falls as 1/n). The stacked objective Σ_m f_m separates, so its gradient is the
stack of the per-model gradients and a batched quasi-Newton method with per-model curvature pairs
and per-model step sizes is exactly M independent L-BFGS runs advancing in lockstep. Every
evaluation is one large GEMM ``(N, F) @ (F, M·C)`` over all N candidate examples (non-members
get weight 0), which is far more efficient than M small problems.

For the linear head with fewer examples than features (N < F) the weights are solved in the span
of the N feature vectors (an SVD basis): by the representer theorem the penalised optimum lies
there, so the solution is identical and much cheaper.

Tensors are created on the requested device (``"auto"`` picks CUDA when available); nothing is
hard-coded to a device. Results are deterministic given the inputs (and ``seed`` for the MLP).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

__all__ = [
    "LinearHeads",
    "MlpHeads",
    "resolve_device",
    "train_heads",
    "train_linear_heads",
    "train_mlp_heads",
]


def resolve_device(device="auto"):
    """``"auto"`` -> CUDA when available else CPU; ``"cpu"``/``"cuda"``/``"cuda:1"`` as given."""
    import torch

    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or device.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:k]'; got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but torch sees no CUDA device")
    return torch.device(device)


@contextmanager
def cpu_settings(device, threads: int | None):
    """CPU settings for one solver call (heads here, FiLM in ``film.py``), restored afterwards.

    * Denormal floats are flushed to zero: softmax probabilities of well-separated classes
      underflow into the float32 denormal range, where CPU arithmetic is some 20× slower (a
      measured 297 s → 15 s for one Fashion-MNIST cell); their values are below 1e-38 and do
      not matter.
    * ``threads`` (if given) sets torch's thread count for the call.
    """
    import torch

    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    flushed = torch.set_flush_denormal(True)
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if flushed:
            torch.set_flush_denormal(False)


def _cpu_threads(device, flops_per_step: float):
    """``cpu_settings`` for a batched solver: small problems run single-threaded (one L-BFGS
    step is a handful of tiny kernels whose thread synchronisation costs more than the
    arithmetic, and on a busy machine idle-spinning threads make it many times slower); large
    problems keep torch's thread pool."""
    return cpu_settings(device, 1 if flops_per_step <= 2e8 else None)


# --------------------------------------------------------------------------- validation
def _check_problem(features, labels, keep, classes):
    x = np.asarray(features)
    y = np.asarray(labels)
    k = np.asarray(keep)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"features must be a non-empty 2-d array (examples, dim); got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("features contain NaN or infinite values")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({x.shape[0]},); got {y.shape}")
    if k.ndim != 2 or k.shape[1] != x.shape[0] or k.dtype != np.bool_:
        raise ValueError(f"keep must be a bool array (models, {x.shape[0]}); got {k.shape}")
    classes = int(classes)
    if classes < 2 or y.min() < 0 or y.max() >= classes:
        raise ValueError(
            f"labels must lie in [0, classes) with classes >= 2; got classes={classes}"
        )
    return x, y, k, classes


# --------------------------------------------------------------------------- batched L-BFGS
@dataclass(frozen=True)
class _LbfgsResult:
    params: object  # torch tensor (M, P)
    objective: np.ndarray  # (M,) float64
    grad_max: np.ndarray  # (M,) largest |gradient| component at the end
    iterations: np.ndarray  # (M,) iterations used per model
    converged: np.ndarray  # (M,) bool


def _batched_lbfgs(fun_grad, x0, *, max_iter, gtol, ftol, history=10, max_backtracks=40):
    """Minimise M separable objectives at once.

    ``fun_grad(params (k, P), idx (k,) long) -> (f (k,), g (k, P))`` evaluates models ``idx``.
    Each model keeps its own curvature pairs, its own initial scaling γ = sᵀy/yᵀy and its own
    backtracking (Armijo) step; models that have converged are frozen and no longer evaluated.
    A model stops when max|g| <= gtol_m, when its relative objective decrease stays below ftol
    for 5 iterations in a row (the rounding floor of the dtype), or when its line search fails.
    """
    import torch

    m_models = x0.shape[0]
    device = x0.device
    x = x0.clone()
    all_idx = torch.arange(m_models, device=device)
    f, g = fun_grad(x, all_idx)
    gtol = torch.as_tensor(gtol, dtype=x.dtype, device=device).expand(m_models)
    pairs = ([], [], [])  # s, y (M, P) and rho (M,) per iteration; rho = 0 marks a skipped pair
    iterations = torch.zeros(m_models, dtype=torch.long, device=device)
    stalled = torch.zeros(m_models, dtype=torch.long, device=device)
    active = g.abs().amax(1) > gtol
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        idx = active.nonzero().squeeze(1)
        ga, fa, xa = g[idx], f[idx], x[idx]
        d, slope = _lbfgs_direction(ga, idx, pairs)
        step, f_new, g_new, done = _backtrack(fun_grad, idx, xa, fa, ga, d, slope, max_backtracks)
        # models whose line search failed keep their point and stop
        step = torch.where(done, step, torch.zeros_like(step))
        s_new = step[:, None] * d
        _remember_pair(pairs, idx, s_new, g_new - ga, m_models, history)
        x[idx] = xa + s_new
        decrease = (fa - f_new) / torch.maximum(fa.abs(), f_new.abs()).clamp_min(1.0)
        f[idx] = f_new
        g[idx] = g_new
        iterations[idx] += 1
        stalled[idx] = torch.where(decrease > ftol, 0, stalled[idx] + 1)
        still = (g_new.abs().amax(1) > gtol[idx]) & (stalled[idx] < 5) & done
        active[idx] = still
    grad_max = g.abs().amax(1)
    return _LbfgsResult(
        params=x,
        objective=f.double().cpu().numpy(),
        grad_max=grad_max.double().cpu().numpy(),
        iterations=iterations.cpu().numpy(),
        # Converged means the gradient test passed; a stalled line search that stops early is not.
        converged=(grad_max <= gtol).cpu().numpy(),
    )


def _lbfgs_direction(ga, idx, pairs):
    """(direction, its slope gᵀd) of the active models ``idx`` with gradients ``ga``: the
    two-loop recursion over their stored curvature pairs."""
    import torch

    s_hist, y_hist, rho_hist = pairs
    q = -ga
    alphas = []
    for s_k, y_k, r_k in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist)):
        a = r_k[idx] * (s_k[idx] * q).sum(1)
        q = q - a[:, None] * y_k[idx]
        alphas.append(a)
    if s_hist:
        s_k, y_k = s_hist[-1][idx], y_hist[-1][idx]
        yy = (y_k * y_k).sum(1)
        gamma = torch.where(yy > 0, (s_k * y_k).sum(1) / yy.clamp_min(1e-30), 1.0)
    else:
        # first step: unit-length move in the steepest-descent direction
        gamma = 1.0 / ga.norm(dim=1).clamp_min(1.0)
    d = gamma[:, None] * q
    for s_k, y_k, r_k, a in zip(s_hist, y_hist, rho_hist, reversed(alphas)):
        b = r_k[idx] * (y_k[idx] * d).sum(1)
        d = d + (a - b)[:, None] * s_k[idx]
    slope = (ga * d).sum(1)
    bad = ~(slope < 0)
    if bool(bad.any()):  # not a descent direction (numerical trouble): steepest descent
        d[bad] = -ga[bad] * gamma[bad, None] if s_hist else -ga[bad]
        slope = (ga * d).sum(1)
    return d, slope


def _backtrack(fun_grad, idx, xa, fa, ga, d, slope, max_backtracks):
    """Per-model backtracking line search (Armijo, c1 = 1e-4), evaluating only pending models.
    Returns (step, objective, gradient, accepted) per active model."""
    import torch

    feps = 10.0 * torch.finfo(xa.dtype).eps
    step = torch.ones(idx.shape[0], dtype=xa.dtype, device=xa.device)
    f_new = fa.clone()
    g_new = ga.clone()
    done = torch.zeros(idx.shape[0], dtype=torch.bool, device=xa.device)
    for _ls in range(max_backtracks):
        pend = (~done).nonzero().squeeze(1)
        if pend.numel() == 0:
            break
        trial = xa[pend] + step[pend, None] * d[pend]
        ft, gt = fun_grad(trial, idx[pend])
        armijo = ft <= fa[pend] + 1e-4 * step[pend] * slope[pend]
        # Near the optimum the decrease drowns in rounding (float32): accept the approximate
        # Wolfe conditions of Hager & Zhang instead (objective within rounding, directional
        # derivative shrunk: 0.9·φ'(0) <= φ'(α) <= -0.9998·φ'(0)).
        dphi = (gt * d[pend]).sum(1)
        approx = (
            (ft <= fa[pend] + feps * fa[pend].abs())
            & (dphi >= 0.9 * slope[pend])
            & (dphi <= -0.9998 * slope[pend])
        )
        ok = torch.isfinite(ft) & (armijo | approx)
        acc = pend[ok]
        f_new[acc] = ft[ok]
        g_new[acc] = gt[ok]
        done[acc] = True
        step[pend[~ok]] *= 0.5
    return step, f_new, g_new, done


def _remember_pair(pairs, idx, s_new, y_new, m_models: int, history: int) -> None:
    """Store this iteration's curvature pair (zero for the inactive models), keeping the last
    ``history``; a pair with too little curvature gets rho = 0 and is skipped."""
    import torch

    s_hist, y_hist, rho_hist = pairs
    sy = (s_new * y_new).sum(1)
    rho_new = torch.where(
        sy > 1e-10 * s_new.norm(dim=1) * y_new.norm(dim=1), 1.0 / sy.clamp_min(1e-30), 0.0
    )
    full_s = s_new.new_zeros((m_models, s_new.shape[1]))
    full_y = torch.zeros_like(full_s)
    full_r = s_new.new_zeros(m_models)
    full_s[idx], full_y[idx], full_r[idx] = s_new, y_new, rho_new
    s_hist.append(full_s)
    y_hist.append(full_y)
    rho_hist.append(full_r)
    if len(s_hist) > history:
        s_hist.pop(0), y_hist.pop(0), rho_hist.pop(0)


# --------------------------------------------------------------------------- linear heads
@dataclass(frozen=True)
class LinearHeads:
    """M trained linear softmax heads: logits = x @ weights[m].T + bias[m].

    Attributes: ``weights`` (M, C, F) and ``bias`` (M, C) float arrays, ``objective`` (M,) final
    penalised objective f_m, ``grad_max`` (M,) largest gradient component at the end,
    ``iterations`` (M,), ``converged`` (M,) bool, ``weight_decay`` λ.
    """

    weights: np.ndarray
    bias: np.ndarray
    objective: np.ndarray
    grad_max: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    weight_decay: float

    @property
    def models(self) -> int:
        return self.weights.shape[0]

    def logits(self, features, *, device="cpu") -> np.ndarray:
        """Logits of every head on every example: float32 array (M, n, C)."""
        import torch

        dev = resolve_device(device)
        x = torch.as_tensor(np.asarray(features, dtype=np.float32), device=dev)
        w = torch.as_tensor(self.weights, device=dev, dtype=torch.float32)
        b = torch.as_tensor(self.bias, device=dev, dtype=torch.float32)
        m, c, f = w.shape
        out = (x @ w.reshape(m * c, f).T).reshape(x.shape[0], m, c) + b[None]
        return out.permute(1, 0, 2).contiguous().cpu().numpy()


def _linear_objective(z, onehot, weights, lam, n_classes):
    """Returns fun_grad for params (k, C·(r+1)) laid out as [W (C, r) | b (C)] per model."""
    import torch

    n, r = z.shape
    za = torch.cat([z, torch.ones(n, 1, dtype=z.dtype, device=z.device)], 1)  # (N, r+1)
    pen_mask = torch.ones(n_classes, r + 1, dtype=z.dtype, device=z.device)
    pen_mask[:, r] = 0.0  # biases are not penalised
    pen_mask = pen_mask.reshape(-1)

    def fun_grad(params, idx):
        k = params.shape[0]
        w = params.reshape(k * n_classes, r + 1)
        logits = (za @ w.T).reshape(n, k, n_classes)
        lse = torch.logsumexp(logits, 2)  # (N, k)
        wt = weights[:, idx]  # (N, k)
        true_logit = (logits * onehot[:, None, :]).sum(2)
        penalised = params * pen_mask
        f = (wt * (lse - true_logit)).sum(0) + 0.5 * lam * (penalised * params).sum(1)
        resid = (torch.softmax(logits, 2) - onehot[:, None, :]) * wt[:, :, None]
        g = (resid.reshape(n, k * n_classes).T @ za).reshape(k, -1) + lam * penalised
        return f, g

    return fun_grad


def _check_weight_decay(weight_decay) -> float:
    lam = float(weight_decay)
    if not np.isfinite(lam) or lam <= 0:
        raise ValueError(f"weight_decay must be a finite number > 0; got {weight_decay!r}")
    return lam


def _example_span(x):
    """(basis, coordinates): when there are fewer examples than features the heads are solved
    in the span of the examples (exact: the penalised optimum lies in it); basis (r, F) has
    orthonormal rows, or is None when the features are used as they are."""
    x64 = x.astype(np.float64)
    if x.shape[0] >= x.shape[1]:
        return None, x64
    _, sv, vt = np.linalg.svd(x64, full_matrices=False)
    rank = int(np.sum(sv > sv[0] * 1e-10)) if sv.size and sv[0] > 0 else 0
    basis = vt[: max(rank, 1)]
    return basis, x64 @ basis.T


def _warm_start(pooled_objective, x0, gtol, controls: dict):
    """Every model's start: the optimum of the average problem (each example weighted by the
    fraction of models that train on it). The models' optima scatter around it, so far fewer
    iterations are needed than from zero; the problem is strictly convex, so the start changes
    only the path, not the optimum."""
    pooled = _batched_lbfgs(pooled_objective, x0[:1], gtol=gtol, **controls)
    return pooled.params.expand(x0.shape[0], -1).clone()


def train_linear_heads(
    features,
    labels,
    keep,
    *,
    classes: int,
    weight_decay: float = 1.0,
    device="cpu",
    dtype="float32",
    max_iter: int = 1000,
    gtol: float = 1e-4,
    ftol: float = 0.0,
    history: int = 10,
    warm_start: bool = True,
) -> LinearHeads:
    """Train M L2-regularised linear softmax heads at once (batched L-BFGS).

    Parameters
    ----------
    features : (N, F) float array of the N candidate examples (already standardised).
    labels : (N,) int labels in [0, classes).
    keep : (M, N) bool; model m trains on the examples with keep[m] True.
    classes : number of classes C (>= 2).
    weight_decay : λ > 0 in f_m = Σ_i keep[m,i]·CE_i + (λ/2)||W_m||² (= sklearn C = 1/λ).
    device : "auto", "cpu" or "cuda"; dtype : "float32" (default) or "float64".
    max_iter, gtol, ftol, history : L-BFGS controls; a model stops when its largest gradient
        component is <= gtol·max(1, n_m)^(1/2) or its relative objective decrease stays <= ftol.
    warm_start : start all models from the solution of the averaged problem (same optimum,
        fewer iterations).
    """
    import torch

    x, y, k, classes = _check_problem(features, labels, keep, classes)
    lam = _check_weight_decay(weight_decay)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    tdtype = getattr(torch, dtype)
    dev = resolve_device(device)
    n = x.shape[0]
    m_models = k.shape[0]

    basis, z64 = _example_span(x)
    r = z64.shape[1]
    z = torch.as_tensor(z64, dtype=tdtype, device=dev)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(y, device=dev), classes).to(tdtype)
    weights = torch.as_tensor(k.T, dtype=tdtype, device=dev)  # (N, M)
    fun_grad = _linear_objective(z, onehot, weights, lam, classes)
    n_in = torch.as_tensor(k.sum(1), dtype=tdtype, device=dev)
    x0 = torch.zeros(m_models, classes * (r + 1), dtype=tdtype, device=dev)
    controls = {"max_iter": max_iter, "ftol": ftol, "history": history}
    with _cpu_threads(dev, 4.0 * n * (r + 1) * classes * m_models):
        if warm_start and m_models > 1:
            pooled = _linear_objective(z, onehot, weights.mean(1, keepdim=True), lam, classes)
            x0 = _warm_start(pooled, x0, gtol * n_in.mean().clamp_min(1.0).sqrt(), controls)
        res = _batched_lbfgs(
            fun_grad,
            x0,
            max_iter=max_iter,
            gtol=gtol * n_in.clamp_min(1.0).sqrt(),
            ftol=ftol,
            history=history,
        )
    params = res.params.double().cpu().numpy().reshape(m_models, classes, r + 1)
    w = params[:, :, :r]
    if basis is not None:
        w = w @ basis
    return LinearHeads(
        weights=w.astype(np.float32 if dtype == "float32" else np.float64),
        bias=params[:, :, r].astype(np.float32 if dtype == "float32" else np.float64),
        objective=res.objective,
        grad_max=res.grad_max,
        iterations=res.iterations,
        converged=res.converged,
        weight_decay=lam,
    )


# --------------------------------------------------------------------------- MLP heads
@dataclass(frozen=True)
class MlpHeads:
    """M one-hidden-layer ReLU MLPs trained from scratch: logits = relu(x W1 + b1) W2 + b2.

    ``w1`` (M, F, H), ``b1`` (M, H), ``w2`` (M, H, C), ``b2`` (M, C); plus the optimiser record.
    """

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    objective: np.ndarray
    grad_max: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    weight_decay: float

    @property
    def models(self) -> int:
        return self.w1.shape[0]

    def logits(self, features, *, device="cpu") -> np.ndarray:
        """Logits of every MLP on every example: float32 array (M, n, C)."""
        import torch

        dev = resolve_device(device)
        x = torch.as_tensor(np.asarray(features, dtype=np.float32), device=dev)
        t = [torch.as_tensor(a, dtype=torch.float32, device=dev) for a in self.params()]
        return _mlp_forward(x, *t).cpu().numpy()

    def params(self):
        return self.w1, self.b1, self.w2, self.b2


def _mlp_forward(x, w1, b1, w2, b2):
    import torch

    hidden = torch.relu(torch.matmul(x[None], w1) + b1[:, None, :])  # (M, N, H)
    return torch.matmul(hidden, w2) + b2[:, None, :]  # (M, N, C)


def _mlp_init(rng, m_models: int, f_dim: int, hidden: int, classes: int) -> np.ndarray:
    """He-uniform weights and zero biases of every model, flattened: (M, P) float64."""
    init = [
        rng.uniform(-1, 1, (m_models, f_dim, hidden)) * np.sqrt(6.0 / f_dim),
        np.zeros((m_models, hidden)),
        rng.uniform(-1, 1, (m_models, hidden, classes)) * np.sqrt(3.0 / hidden),
        np.zeros((m_models, classes)),
    ]
    return np.concatenate([a.reshape(m_models, -1) for a in init], 1)


def _unflatten(params, shapes):
    """(k, P) flat parameters -> one (k, *shape) view per shape."""
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(params[:, start : start + size].reshape(params.shape[0], *shape))
        start += size
    return out


def _mlp_objective(xt, yt, weights, lam: float, classes: int, shapes):
    """``fun_grad(params, idx)`` of the MLPs ``idx``: Σ_i keep·CE_i + (λ/2)(||W1||² + ||W2||²)
    and its gradient by autograd."""
    import torch

    n = xt.shape[0]

    def fun_grad(params, idx):
        params = params.detach().requires_grad_(True)
        w1, b1, w2, b2 = _unflatten(params, shapes)
        logits = _mlp_forward(xt, w1, b1, w2, b2)  # (k, N, C)
        ce = torch.nn.functional.cross_entropy(
            logits.reshape(-1, classes), yt.repeat(params.shape[0]), reduction="none"
        ).reshape(params.shape[0], n)
        f = (weights[idx] * ce).sum(1) + 0.5 * lam * ((w1 * w1).sum((1, 2)) + (w2 * w2).sum((1, 2)))
        (g,) = torch.autograd.grad(f.sum(), params)
        return f.detach(), g

    return fun_grad


def train_mlp_heads(
    features,
    labels,
    keep,
    *,
    classes: int,
    hidden: int = 128,
    weight_decay: float = 1.0,
    seed: int = 0,
    device="cpu",
    dtype="float32",
    max_iter: int = 500,
    gtol: float = 1e-4,
    ftol: float = 0.0,
    history: int = 10,
) -> MlpHeads:
    """Train M one-hidden-layer MLPs from scratch at once (batched L-BFGS, same objective form).

    f_m = Σ_i keep[m,i]·CE_i + (λ/2)(||W1_m||² + ||W2_m||²). Initialisation is He-uniform from
    ``numpy.random.default_rng(seed)`` (so it does not depend on the device) and independent per
    model. Non-convex: the optimiser finds a local optimum per model.
    """
    import torch

    x, y, k, classes = _check_problem(features, labels, keep, classes)
    lam = _check_weight_decay(weight_decay)
    if int(hidden) < 1:
        raise ValueError(f"hidden must be an integer >= 1; got {hidden!r}")
    hidden = int(hidden)
    tdtype = getattr(torch, dtype)
    dev = resolve_device(device)
    n, f_dim = x.shape
    m_models = k.shape[0]
    shapes = [(f_dim, hidden), (hidden,), (hidden, classes), (classes,)]
    x0 = torch.as_tensor(
        _mlp_init(np.random.default_rng(seed), m_models, f_dim, hidden, classes),
        dtype=tdtype,
        device=dev,
    )
    xt = torch.as_tensor(x, dtype=tdtype, device=dev)
    yt = torch.as_tensor(y, device=dev)
    weights = torch.as_tensor(k, dtype=tdtype, device=dev)  # (M, N)
    fun_grad = _mlp_objective(xt, yt, weights, lam, classes, shapes)
    n_in = torch.as_tensor(k.sum(1), dtype=tdtype, device=dev)
    with _cpu_threads(dev, 6.0 * n * (f_dim + classes) * hidden * m_models):
        res = _batched_lbfgs(
            fun_grad,
            x0,
            max_iter=max_iter,
            gtol=gtol * n_in.clamp_min(1.0).sqrt(),
            ftol=ftol,
            history=history,
        )
    w1, b1, w2, b2 = (t.detach().cpu().numpy() for t in _unflatten(res.params, shapes))
    return MlpHeads(
        w1=w1,
        b1=b1,
        w2=w2,
        b2=b2,
        objective=res.objective,
        grad_max=res.grad_max,
        iterations=res.iterations,
        converged=res.converged,
        weight_decay=lam,
    )


def train_heads(kind: str, features, labels, keep, *, classes: int, seed: int = 0, **options):
    """Dispatch on the head kind: ``"linear"`` or ``"mlp"`` (``seed`` only matters for the MLP)."""
    if kind == "linear":
        return train_linear_heads(features, labels, keep, classes=classes, **options)
    if kind == "mlp":
        return train_mlp_heads(features, labels, keep, classes=classes, seed=seed, **options)
    raise ValueError(f"head must be 'linear' or 'mlp'; got {kind!r}")
