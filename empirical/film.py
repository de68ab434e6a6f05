"""FiLM fine-tuning of a frozen EfficientNet-Lite, K models of a cell trained as one problem.

FiLM (Perez et al. 2018) modulates every normalisation layer of the frozen backbone with a learnt
per-channel scale γ and shift β: ``y = γ ⊙ BN(conv(x)) + β``, before the activation. When
BatchNorm is folded into the convolutions (``backbones.fuse_batchnorm``) the folded conv already
ends with the normalisation, so FiLM applies to its output channels; the two forms agree to float
rounding. γ starts at 1 and β at 0 (the pretrained network); a linear softmax head on the pooled
features is trained together with them. Backbone weights never change.

Every model m minimises, one minibatch at a time,

    mean_i CE(logits_m(x_i), y_i) + (λ/2)·(||γ_m − 1||² + ||β_m||² + ||W_m||²)

(the head bias is not penalised, as in :mod:`mialaw.empirical.heads`; λ = ``weight_decay``).
Over the full training set (batch >= n_m) this is Σ_i CE + (n_m·λ/2)·||·||², i.e.
``train_linear_heads(weight_decay = n_m·λ)`` when only the head is trained.

All K models (the targets and shadows of a cell; ``keep`` K × N says which of the N candidates
each trains on) share the frozen backbone, so a step of all models is ONE forward/backward pass
over the models' minibatches stacked along the batch axis: the convolutions run once on K·b
images and only the FiLM affine (a broadcast ``addcmul`` with per-model γ, β) and the head differ
per model. ``torch.func.vmap`` over the one-model forward gives bit-identical gradients at the
same speed (it folds the model axis into the batch of the shared convolutions too); folding γ
into per-model weights of grouped convolutions was 2× slower on CPU (weight gradients and grouped
kernels; 17 models × 16 images at 64 px). The stacked batch is processed in micro-batches of
whole models (gradients accumulate exactly, each model's rows are its own) so that, on CPU,
activations stay in cache. The FiLM affine and ReLU6 are one autograd node per layer
(``film_net``), and symmetric 'same' padding is done by the convolutions: both cut the cost
of a step by ~20% on CPU, in either mode, with bit-identical gradients.

On CPU the gain over one model at a time is small and cannot reach 3×: the frozen trunk's
arithmetic per image (~62 M multiply-adds per 64-px image-step: forward and input gradient) is
the same whether a pass holds one model's minibatch or many, and a pass of 16 images already
keeps a core busy (convolutions ~50% of the time, the per-image FiLM/ReLU6 elementwise work and
its backward ~35%). Stacking only amortises a pass's fixed cost (Python, dispatch, autograd
bookkeeping: ~18 ms at 64 px on one thread, against ~3.2 ms per image), so at most ~1.35× over
16-image passes; measured 1.0-1.15× (``python -m mialaw.empirical.bench_film passes batching``
prints both). On a GPU the stacked batch is what fills the device.

Each model's minibatch order comes from its own generator ``numpy.random.default_rng([seed,
model_id])`` and its optimiser state (Adam moments, step count, learning-rate schedule) is its
own, so training K models together equals training each alone with the same ``model_ids`` (up to
the rounding of convolutions over different batch sizes), and results are bit-identical for the
same seed on CPU (same thread count). Models with fewer training examples take fewer steps per
epoch; they are simply left out of the later steps of an epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mialaw.empirical.film_net import FilmNet
from mialaw.empirical.film_settings import FilmSettings, is_int
from mialaw.empirical.heads import cpu_settings

__all__ = ["FilmResult", "film_cpu_settings", "micro_batch_size", "train_film"]

# Images per forward/backward micro-batch on CPU at 224 px (scaled by 224²/R² at resolution R):
# at 64 px on one core, passes of 32-48 images ran fastest per CPU second (~150 images/s against
# ~100 for 8 and 96 images), and 192+ images were 3-7× slower once activations left the cache.
_CPU_IMAGES_224 = 3
# On a GPU a micro-batch is limited by memory only: FiLM training saves ~85 MB of activations
# per 224-px image (measured), so 256 images need ~22 GB.
_GPU_IMAGES_224 = 256
_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


# --------------------------------------------------------------------------- training
@dataclass(frozen=True)
class FilmResult:
    """K FiLM-tuned models and their outputs.

    ``logits`` (K, Q, C) and ``logits_flipped`` (K, Q, C): float64 logits of every model on the
    query images and on their horizontal mirror images (LiRA's augmentation query).
    ``train_loss`` (K, epochs): mean minibatch cross-entropy per epoch. ``gamma``, ``beta``
    (K, L): the FiLM parameters of all L channels of all sites, in network order. ``head_weights``
    (K, C, F), ``head_bias`` (K, C). ``model_ids`` (K,). ``image_steps``: images that went through
    a training forward/backward (the sum over steps of every model's minibatch size).
    ``train_seconds``/``query_seconds``: wall time of training and of the query logits;
    ``train_cpu_seconds``: CPU time of this process while training (all threads).
    """

    logits: np.ndarray
    logits_flipped: np.ndarray
    train_loss: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    head_weights: np.ndarray
    head_bias: np.ndarray
    model_ids: np.ndarray
    settings: FilmSettings
    image_steps: int
    train_seconds: float
    train_cpu_seconds: float
    query_seconds: float

    @property
    def models(self) -> int:
        return self.logits.shape[0]


def film_cpu_settings(device, threads: int | None):
    """``heads.cpu_settings``: denormals flushed, ``threads`` (if given) for torch. Small passes
    (the tiny test network) run faster on one thread, and on a busy machine idle-spinning
    threads were measured 10-50× slower than one thread (12 images at 32 px: 36 ms on 1 thread,
    0.5-1.8 s on 2)."""

    return cpu_settings(device, threads)


def _threads(threads, device, resolution: int, pass_images: int) -> int | None:
    """The thread count to use on CPU: as given, else 1 for small passes, else torch's own."""
    if threads is not None:
        if not is_int(threads) or threads < 1:
            raise ValueError(f"threads must be None or an integer >= 1; got {threads!r}")
        return int(threads)
    # Lite0's forward pass is ~0.8 GFLOP per 224-px image; below ~2 GFLOP per pass (30 images at
    # 64 px) thread synchronisation costs more than it saves.
    flops = 0.8e9 * (resolution / 224) ** 2 * pass_images
    return 1 if device.type == "cpu" and flops < 2e9 else None


def _check_inputs(backbone, images, labels, keep, classes, settings, model_ids):
    if not isinstance(settings, FilmSettings):
        raise ValueError(f"settings must be a FilmSettings; got {type(settings).__name__}")
    module = getattr(backbone, "module", None)
    if module is None or not hasattr(backbone, "preprocess"):
        raise ValueError(
            "backbone must be an EfficientNet-Lite TorchBackbone "
            "(get_backbone('efficientnet-liteK', resolution=...) or tiny_lite_backbone())"
        )
    if backbone.resolution != settings.resolution:
        raise ValueError(
            f"the backbone was built for {backbone.resolution} px but settings.resolution is "
            f"{settings.resolution}: build it with get_backbone(..., resolution="
            f"{settings.resolution}) (its convolutions pad statically for one size)"
        )
    n = len(images)
    y = np.asarray(labels)
    k = np.asarray(keep)
    if n == 0:
        raise ValueError("images must not be empty")
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({n},); got {y.shape} {y.dtype}")
    if not is_int(classes) or classes < 2 or y.min() < 0 or y.max() >= classes:
        raise ValueError(f"labels must lie in [0, classes) with classes >= 2; got {classes!r}")
    if k.ndim != 2 or k.shape[1] != n or k.dtype != np.bool_ or k.shape[0] == 0:
        raise ValueError(f"keep must be a bool array (models, {n}); got {k.shape} {k.dtype}")
    if not k.any(1).all():
        raise ValueError("every model must train on at least one example (a row of keep is empty)")
    ids = np.arange(k.shape[0]) if model_ids is None else np.asarray(model_ids)
    if (
        ids.shape != (k.shape[0],)
        or not np.issubdtype(ids.dtype, np.integer)
        or (ids < 0).any()
        or np.unique(ids).size != ids.size
    ):
        raise ValueError(
            f"model_ids must be {k.shape[0]} distinct integers >= 0; got {model_ids!r}"
        )
    return y.astype(np.int64), k, ids.astype(np.int64)


def _preprocess(backbone, images, chunk: int = 256):
    """All images resized and normalised once (n, 3, R, R) on the backbone's device."""
    with torch.no_grad():
        parts = [backbone.preprocess(images[i : i + chunk]) for i in range(0, len(images), chunk)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def micro_batch_size(device, resolution: int, micro_batch) -> int:
    if micro_batch is not None:
        if not is_int(micro_batch) or micro_batch < 1:
            raise ValueError(f"micro_batch must be an integer >= 1; got {micro_batch!r}")
        return int(micro_batch)
    per_224 = _CPU_IMAGES_224 if device.type == "cpu" else _GPU_IMAGES_224
    return max(1, round(per_224 * 224 * 224 / resolution**2))


def _chunks(models: int, width: int, budget: int) -> Iterator[tuple[slice, slice]]:
    """Split a (models × width) minibatch into micro-batches of whole models, or, when one
    model's minibatch exceeds the budget, into column blocks of one model at a time."""
    if width <= budget:
        per = max(1, budget // width)
        for a in range(0, models, per):
            yield slice(a, min(a + per, models)), slice(0, width)
    else:
        for a in range(models):
            for c in range(0, width, budget):
                yield slice(a, a + 1), slice(c, min(c + budget, width))


class _Optimizer:
    """Per-model Adam or SGD over the rows of θ (K, P); only the models stepped move.

    Each model has its own step count (bias correction) and its own learning-rate schedule over
    its own total number of steps, so its trajectory does not depend on the other models.
    """

    def __init__(self, settings: FilmSettings, theta, total_steps, penalised):
        self.s = settings
        self.total = torch.as_tensor(total_steps, dtype=theta.dtype, device=theta.device)
        self.steps = torch.zeros(theta.shape[0], dtype=theta.dtype, device=theta.device)
        self.penalised = penalised  # (P,) 1 where the L2 penalty applies
        self.m = torch.zeros_like(theta)
        self.v = torch.zeros_like(theta) if settings.optimizer == "adam" else None

    def step(self, theta, idx, grad, trainable):
        s = self.s
        t = self.steps[idx]
        lr = torch.full_like(t, s.learning_rate)
        if s.schedule == "cosine":
            lr = lr * 0.5 * (1.0 + torch.cos(math.pi * t / self.total[idx]))
        g = grad + s.weight_decay * self.penalised * theta[idx]
        if s.optimizer == "adam":
            b1, b2 = _ADAM_BETAS
            m = self.m[idx].mul_(b1).add_(g, alpha=1 - b1)
            v = self.v[idx].mul_(b2).addcmul_(g, g, value=1 - b2)
            self.m[idx], self.v[idx] = m, v
            t1 = (t + 1)[:, None]
            update = (m / (1 - b1**t1)) / ((v / (1 - b2**t1)).sqrt() + _ADAM_EPS)
        else:
            update = self.m[idx].mul_(s.momentum).add_(g)
            self.m[idx] = update
        theta[idx] -= lr[:, None] * update * trainable
        self.steps[idx] += 1


def _schedules(keep, ids, settings):
    """Per model: its training indices, its generator and its steps per epoch."""
    members = [np.flatnonzero(row) for row in keep]
    rngs = [np.random.default_rng([settings.seed, int(i)]) for i in ids]
    steps = np.array([math.ceil(m.size / settings.batch_size) for m in members])
    return members, rngs, steps


def _identity_features(net, x, budget) -> torch.Tensor:
    """Pooled features (n, F) of the unmodulated backbone (γ = 1, β = 0), in micro-batches."""
    identity = net.initial_params(1, device=x.device)
    with torch.no_grad():
        parts = [net.features(x[a : a + budget], identity)[0] for a in range(0, len(x), budget)]
    return torch.cat(parts)


def _minibatches(orders, steps, j: int, batch_size: int):
    """Step j of an epoch: the models still stepping, their example indices (padded to one
    width) and per-example loss weights (1/b for a model's b examples, 0 for padding)."""
    active = np.flatnonzero(steps > j)
    batches = [orders[a][j * batch_size : (j + 1) * batch_size] for a in active]
    width = max(b.size for b in batches)
    # A model whose training set is not a multiple of the batch size, next to a larger one, has
    # a shorter minibatch: pad it with its own examples at weight 0.
    index = np.stack([np.resize(b, width) for b in batches])
    weight = np.zeros(index.shape, dtype=np.float32)
    for r, b in enumerate(batches):
        weight[r, : b.size] = 1.0 / b.size
    return active, index, weight, sum(b.size for b in batches)


def _train(net, x, y, keep, ids, settings, *, tune_film, budget):
    """The training loop: returns θ (K, P), the loss history (K, epochs) and image-steps."""
    device = x.device
    k_models = keep.shape[0]
    lay = net.layout
    theta = net.initial_params(k_models, device=device)
    penalised = torch.ones(lay.size, dtype=theta.dtype, device=device)
    penalised[lay.bias] = 0.0
    trainable = torch.ones(lay.size, dtype=theta.dtype, device=device)
    if tune_film:
        forward = lambda index, sub: net(x[index.reshape(-1)], sub)
    else:
        # A linear probe: the backbone's output does not change, so compute it once (the same
        # function as the per-step forward pass at the identity, to rounding) and train the
        # heads on it in one pass.
        trainable[: 2 * lay.film] = 0.0
        features = _identity_features(net, x, budget)
        forward = lambda index, sub: net.head(features[index], sub)
        budget = 1 << 62
    members, rngs, steps = _schedules(keep, ids, settings)
    opt = _Optimizer(settings, theta, steps * settings.epochs, penalised)
    yt = torch.as_tensor(y, device=device)
    history = np.zeros((k_models, settings.epochs))
    image_steps = 0
    for epoch in range(settings.epochs):
        orders = [m[rng.permutation(m.size)] for m, rng in zip(members, rngs)]
        for j in range(int(steps.max())):
            active, index, weight, count = _minibatches(orders, steps, j, settings.batch_size)
            index_t = torch.as_tensor(index, device=device)
            weight_t = torch.as_tensor(weight, device=device)
            idx = torch.as_tensor(active, device=device)
            sub_theta = theta[idx]
            grad = torch.zeros_like(sub_theta)
            losses = torch.zeros(active.size, dtype=theta.dtype, device=device)
            for rows, cols in _chunks(active.size, index.shape[1], budget):
                sub = sub_theta[rows].detach().requires_grad_(True)
                chunk = index_t[rows, cols]
                logits = forward(chunk, sub)
                ce = F.cross_entropy(
                    logits.reshape(-1, lay.classes), yt[chunk.reshape(-1)], reduction="none"
                ).view(chunk.shape)
                per_model = (ce * weight_t[rows, cols]).sum(1)
                per_model.sum().backward()
                grad[rows] += sub.grad
                losses[rows] += per_model.detach()
            with torch.no_grad():
                opt.step(theta, idx, grad, trainable)
            history[active, epoch] += losses.double().cpu().numpy()
            image_steps += count
    history /= steps[:, None]
    return theta, history, image_steps


def _query_logits(net, x, theta, budget, *, tune_film: bool) -> np.ndarray:
    """Logits (K, Q, C) float64 of every model on every query image, in micro-batches."""
    k_models, q = theta.shape[0], x.shape[0]
    if not tune_film:  # one backbone pass serves every linear probe
        features = _identity_features(net, x, budget)
        with torch.no_grad():
            logits = net.head(features.expand(k_models, *features.shape), theta)
        return logits.double().cpu().numpy()
    out = torch.empty(k_models, q, net.layout.classes, dtype=torch.float64, device=x.device)
    width = min(q, budget)
    per = max(1, budget // width)
    with torch.inference_mode():
        for a in range(0, k_models, per):
            rows = slice(a, min(a + per, k_models))
            k = rows.stop - rows.start
            for c in range(0, q, width):
                xs = x[c : c + width]
                # The same images for every model of the micro-batch, stacked model-major.
                stacked = xs.unsqueeze(0).expand(k, *xs.shape).reshape(-1, *xs.shape[1:])
                if xs.is_contiguous(memory_format=torch.channels_last):
                    stacked = stacked.contiguous(memory_format=torch.channels_last)
                out[rows, c : c + width] = net(stacked, theta[rows]).double()
    return out.cpu().numpy()


def train_film(
    backbone,
    images,
    labels,
    keep,
    *,
    classes: int,
    settings: FilmSettings | None = None,
    query=None,
    model_ids=None,
    tune_film: bool = True,
    micro_batch: int | None = None,
    threads: int | None = None,
) -> FilmResult:
    """Fine-tune K FiLM models on a frozen EfficientNet-Lite at once; logits on the queries.

    Parameters
    ----------
    backbone : an EfficientNet-Lite ``TorchBackbone`` (``get_backbone("efficientnet-lite0",
        device=..., resolution=settings.resolution)`` or :func:`tiny_lite_backbone`); training
        runs on its device and leaves its weights unchanged.
    images : (N, H, W) or (N, H, W, 3) uint8 candidate images; labels : (N,) ints in [0, classes).
    keep : (K, N) bool; model k trains on the images with keep[k] True (at least one).
    settings : :class:`FilmSettings` (default: ``FilmSettings()``).
    query : uint8 images (Q, ...) to score (default: the N candidates).
    model_ids : K distinct integers >= 0 naming the models' minibatch streams (default 0..K-1);
        training rows of ``keep`` alone with their ids reproduces them.
    tune_film : False keeps γ = 1, β = 0 and trains only the head (a linear probe).
    micro_batch : images per forward/backward pass (default: the device's sweet spot, 37 at
        64 px on CPU); changes only the rounding, not the maths.
    threads : CPU threads for this call (default: one for tiny passes, else torch's setting).
    """
    settings = FilmSettings() if settings is None else settings
    y, keep, ids = _check_inputs(backbone, images, labels, keep, classes, settings, model_ids)
    device = backbone.device
    budget = micro_batch_size(device, settings.resolution, micro_batch)
    net = FilmNet(backbone.module, int(classes))
    pass_images = min(budget, keep.shape[0] * settings.batch_size)
    threads = _threads(threads, device, settings.resolution, pass_images)
    with film_cpu_settings(device, threads):
        x = _preprocess(backbone, images)
        start, cpu_start = time.perf_counter(), time.process_time()
        theta, history, image_steps = _train(
            net, x, y, keep, ids, settings, tune_film=bool(tune_film), budget=budget
        )
        train_seconds = time.perf_counter() - start
        train_cpu_seconds = time.process_time() - cpu_start
        start = time.perf_counter()
        xq = x if query is None else _preprocess(backbone, query)
        xf = torch.flip(xq, dims=(3,))
        if xq.is_contiguous(memory_format=torch.channels_last):
            xf = xf.contiguous(memory_format=torch.channels_last)
        logits = _query_logits(net, xq, theta, budget, tune_film=bool(tune_film))
        flipped = _query_logits(net, xf, theta, budget, tune_film=bool(tune_film))
        query_seconds = time.perf_counter() - start
    lay = net.layout
    th = theta.cpu().numpy()
    return FilmResult(
        logits=logits,
        logits_flipped=flipped,
        train_loss=history,
        gamma=th[:, : lay.film] + 1.0,
        beta=th[:, lay.film : 2 * lay.film],
        head_weights=th[:, lay.weights].reshape(-1, lay.classes, lay.features),
        head_bias=th[:, lay.bias],
        model_ids=ids,
        settings=settings,
        image_steps=int(image_steps),
        train_seconds=train_seconds,
        train_cpu_seconds=train_cpu_seconds,
        query_seconds=query_seconds,
    )
