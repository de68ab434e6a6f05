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

from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from mialaw.empirical.backbone_images import resolve_device
from mialaw.empirical.lbfgs import batched_lbfgs

__all__ = [
    "HEAD_PARAMETERS",
    "TrainedHeads",
    "train_heads",
    "train_linear_heads",
    "train_mlp_heads",
]


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


# --------------------------------------------------------------------------- trained heads
#: The parameters of each head kind, in order (arrays with the models on the first axis).
HEAD_PARAMETERS = {"linear": ("weights", "bias"), "mlp": ("w1", "b1", "w2", "b2")}


@dataclass(frozen=True)
class TrainedHeads:
    """M trained heads of one kind and the optimiser's record.

    ``kind`` "linear": logits = x @ weights[m].T + bias[m], with ``weights`` (M, C, F) and
    ``bias`` (M, C). ``kind`` "mlp": one hidden ReLU layer, logits = relu(x W1 + b1) W2 + b2,
    with ``w1`` (M, F, H), ``b1`` (M, H), ``w2`` (M, H, C), ``b2`` (M, C). The parameters are
    read as attributes (``heads.weights``, ``heads.w1``) or in order from ``params()``.
    ``objective`` (M,) final penalised objective f_m, ``grad_max`` (M,) largest gradient component
    at the end, ``iterations`` (M,), ``converged`` (M,) bool, ``weight_decay`` λ.
    """

    kind: str
    parameters: Mapping[str, np.ndarray]
    objective: np.ndarray
    grad_max: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    weight_decay: float

    def __post_init__(self):
        names = HEAD_PARAMETERS.get(self.kind)
        if names is None:
            raise ValueError(f"kind must be one of {sorted(HEAD_PARAMETERS)}; got {self.kind!r}")
        if tuple(self.parameters) != names:
            raise ValueError(
                f"{self.kind} heads have parameters {names}; got {tuple(self.parameters)}"
            )
        object.__setattr__(self, "parameters", MappingProxyType(dict(self.parameters)))

    def __getattr__(self, name: str):
        parameters = self.__dict__.get("parameters", {})
        if name in parameters:
            return parameters[name]
        raise AttributeError(f"{type(self).__name__} ({self.__dict__.get('kind')}) has no {name!r}")

    @property
    def models(self) -> int:
        return self.params()[0].shape[0]

    def params(self) -> tuple[np.ndarray, ...]:
        return tuple(self.parameters.values())

    def logits(self, features, *, device="cpu") -> np.ndarray:
        """Logits of every head on every example: float32 array (M, n, C)."""
        import torch

        dev = resolve_device(device)
        x = torch.as_tensor(np.asarray(features, dtype=np.float32), device=dev)
        t = [torch.as_tensor(a, dtype=torch.float32, device=dev) for a in self.params()]
        forward = _linear_forward if self.kind == "linear" else _mlp_forward
        return forward(x, *t).cpu().numpy()


def _linear_forward(x, w, b):
    m, c, f = w.shape
    out = (x @ w.reshape(m * c, f).T).reshape(x.shape[0], m, c) + b[None]
    return out.permute(1, 0, 2).contiguous()


# --------------------------------------------------------------------------- linear heads
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
    pooled = batched_lbfgs(pooled_objective, x0[:1], gtol=gtol, **controls)
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
) -> TrainedHeads:
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
        res = batched_lbfgs(
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
    real = np.float32 if dtype == "float32" else np.float64
    return TrainedHeads(
        kind="linear",
        parameters={"weights": w.astype(real), "bias": params[:, :, r].astype(real)},
        objective=res.objective,
        grad_max=res.grad_max,
        iterations=res.iterations,
        converged=res.converged,
        weight_decay=lam,
    )


# --------------------------------------------------------------------------- MLP heads
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
) -> TrainedHeads:
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
        res = batched_lbfgs(
            fun_grad,
            x0,
            max_iter=max_iter,
            gtol=gtol * n_in.clamp_min(1.0).sqrt(),
            ftol=ftol,
            history=history,
        )
    w1, b1, w2, b2 = (t.detach().cpu().numpy() for t in _unflatten(res.params, shapes))
    return TrainedHeads(
        kind="mlp",
        parameters={"w1": w1, "b1": b1, "w2": w2, "b2": b2},
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
