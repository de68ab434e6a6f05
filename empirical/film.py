"""FiLM fine-tuning of a frozen EfficientNet-Lite, K models of a cell trained as one problem.

FiLM (Perez et al. 2018) modulates every normalisation layer of the frozen backbone with a learnt
per-channel scale γ and shift β: ``y = γ ⊙ BN(conv(x)) + β``, before the activation. When
BatchNorm is folded into the convolutions (``backbones._fuse_batchnorm``) the folded conv already
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
(:class:`_Film`), and symmetric 'same' padding is done by the convolutions: both cut the cost
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

from mialaw.empirical.backbones import (
    LITE_MEAN,
    LITE_STD,
    TorchBackbone,
    _fuse_batchnorm,
    _lite_forward,
    resolve_device,
)
from mialaw.empirical.heads import cpu_settings

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "FilmNet",
    "FilmResult",
    "FilmSettings",
    "tiny_lite_backbone",
    "train_film",
]

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")

# Images per forward/backward micro-batch on CPU at 224 px (scaled by 224²/R² at resolution R):
# at 64 px on one core, passes of 32-48 images ran fastest per CPU second (~150 images/s against
# ~100 for 8 and 96 images), and 192+ images were 3-7× slower once activations left the cache.
_CPU_IMAGES_224 = 3
# On a GPU a micro-batch is limited by memory only: FiLM training saves ~85 MB of activations
# per 224-px image (measured), so 256 images need ~22 GB.
_GPU_IMAGES_224 = 256
_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


# --------------------------------------------------------------------------- settings
def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value) -> bool:
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
        if not _is_real(self.learning_rate) or not 0 < self.learning_rate < math.inf:
            raise ValueError(
                f"learning_rate must be a finite number > 0; got {self.learning_rate!r}"
            )
        if not _is_real(self.weight_decay) or not 0 <= self.weight_decay < math.inf:
            raise ValueError(
                f"weight_decay must be a finite number >= 0; got {self.weight_decay!r}"
            )
        if not _is_real(self.momentum) or not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be a number in [0, 1); got {self.momentum!r}")
        for name, minimum in (("epochs", 1), ("batch_size", 1), ("resolution", 8), ("seed", 0)):
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
        # Plain Python numbers, so that equal settings compare and print alike.
        for name in ("learning_rate", "weight_decay", "momentum"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("epochs", "batch_size", "resolution", "seed"):
            object.__setattr__(self, name, int(getattr(self, name)))


# --------------------------------------------------------------------------- the network
@dataclass(frozen=True)
class _Layout:
    """Where each part lives in a model's flat parameter vector θ (all zero at initialisation):
    [γ−1 of every FiLM site | β of every site | head weights (C·F) | head bias (C)]."""

    channels: tuple[int, ...]
    classes: int
    features: int

    @property
    def film(self) -> int:
        return sum(self.channels)

    @property
    def weights(self) -> slice:
        return slice(2 * self.film, 2 * self.film + self.classes * self.features)

    @property
    def bias(self) -> slice:
        return slice(self.weights.stop, self.weights.stop + self.classes)

    @property
    def size(self) -> int:
        return self.bias.stop


def _conv(conv, x):
    """``conv(x)`` for a convolution with TensorFlow's static 'same' padding
    (``Conv2dStaticSamePadding``: ``ZeroPad2d`` then an unpadded convolution), with a symmetric
    zero padding done by the convolution itself: the padded copy (and its backward) cost ~10% of
    a training step at 64 px. The asymmetric pads of stride-2 layers (one pixel more at the end)
    stay explicit: no symmetric padding and crop of the input or output reproduces them."""
    pad = getattr(conv, "static_padding", None)
    if not isinstance(pad, torch.nn.ZeroPad2d) or tuple(conv.padding) != (0, 0):
        return conv(x)
    left, right, top, bottom = pad.padding
    if left != right or top != bottom:
        return conv(x)
    return F.conv2d(x, conv.weight, conv.bias, conv.stride, (top, left), conv.dilation, conv.groups)


class _Film(torch.autograd.Function):
    """FiLM of k models' stacked activations, then ReLU6 in place if ``relu6``.

    ``y`` (k·b, C, H, W) holds the b images of each model in turn; ``gamma`` and ``beta`` are
    (k, C). Returns ``γ_m ⊙ y + β_m`` for each model's rows (one broadcast ``addcmul`` over the
    view (k, b, C, H, W), which keeps channels_last strides). The same function as ``addcmul``
    (+ ``hardtanh_``) under autograd, with a leaner backward: autograd's ``addcmul`` backward
    multiplies y by its scalar ``value`` (a full-size pass) before ``grad · y``, ``hardtanh_``
    adds a node of its own, and the views and unsqueezes around them add a dozen more nodes per
    layer (a third of a 16-image step's fixed cost). Here the backward is the ReLU6 mask of the
    saved output, ``grad · γ`` for y and the reductions of ``grad · y`` and ``grad``.
    """

    @staticmethod
    def forward(ctx, y, gamma, beta, relu6: bool):
        k = gamma.shape[0]
        y5 = y.view(k, y.shape[0] // k, *y.shape[1:])
        out = torch.addcmul(beta[:, None, :, None, None], y5, gamma[:, None, :, None, None])
        if relu6:
            out.clamp_(0.0, 6.0)
        ctx.relu6 = relu6
        ctx.save_for_backward(y5, gamma, out if relu6 else None)
        return out.view(y.shape)

    @staticmethod
    def backward(ctx, grad):
        y5, gamma, out = ctx.saved_tensors
        grad = grad.view(y5.shape)
        if ctx.relu6:  # zero where the activation clipped: out <= 0 or out >= 6
            grad = torch.ops.aten.hardtanh_backward(grad, out, 0.0, 6.0)
        dims = (1, 3, 4)
        need_y, need_gamma, need_beta, _ = ctx.needs_input_grad
        d_y = None
        if need_y:
            d_y = (grad * gamma[:, None, :, None, None]).view(-1, *y5.shape[2:])
        d_gamma = (grad * y5).sum(dims) if need_gamma else None
        d_beta = grad.sum(dims) if need_beta else None
        return d_y, d_gamma, d_beta, None


class FilmNet(torch.nn.Module):
    """A frozen EfficientNet-Lite with FiLM after every normalisation and a linear head.

    The parameters are not stored in the module: ``forward(x, theta)`` takes a matrix θ (k, P)
    of k models and images x (k·b, 3, R, R), the b images of model 0 first, and returns logits
    (k, b, C). ``initial_params(k)`` is the identity (γ = 1, β = 0) with a zero head.
    ``module`` is an ``efficientnet_lite_pytorch.EfficientNet`` (BatchNorm folded or not) or
    anything with its structure: ``_conv_stem``, ``_bn0``, ``_blocks``, ``_conv_head``, ``_bn1``,
    ``_swish``; squeeze-excitation blocks (EfficientNet-B) are not supported.
    """

    def __init__(self, module, classes: int):
        super().__init__()
        for name in ("_conv_stem", "_bn0", "_blocks", "_conv_head", "_bn1", "_swish"):
            if not hasattr(module, name):
                raise ValueError(
                    f"FiLM needs an EfficientNet-Lite module; {type(module).__name__} has no {name}"
                )
        if any(getattr(block, "has_se", False) for block in module._blocks):
            raise ValueError("FiLM supports EfficientNet-Lite blocks only (no squeeze-excitation)")
        if not _is_int(classes) or classes < 2:
            raise ValueError(f"classes must be an integer >= 2; got {classes!r}")
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        self.backbone = module
        channels = [module._conv_stem.out_channels]
        for block in module._blocks:
            if hasattr(block, "_expand_conv"):
                channels.append(block._expand_conv.out_channels)
            channels += [block._depthwise_conv.out_channels, block._project_conv.out_channels]
        channels.append(module._conv_head.out_channels)
        self.layout = _Layout(tuple(int(c) for c in channels), int(classes), int(channels[-1]))

    def train(self, mode: bool = True):
        # The backbone stays in eval mode: frozen BatchNorm statistics, no drop-connect.
        super().train(mode)
        self.backbone.eval()
        return self

    def initial_params(self, models: int, *, device="cpu") -> torch.Tensor:
        """θ of ``models`` models at the identity: γ = 1, β = 0, zero head (float32)."""
        return torch.zeros(models, self.layout.size, dtype=torch.float32, device=device)

    def features(self, x, theta) -> torch.Tensor:
        """Pooled features (k, b, F) of the FiLM-modulated backbone."""
        k = theta.shape[0]
        if x.shape[0] % k:
            raise ValueError(f"{x.shape[0]} images do not split evenly over {k} models")
        film = self.layout.film
        # One split per step (one backward node) rather than a slice of θ per site.
        gammas = iter(torch.split(theta[:, :film] + 1.0, self.layout.channels, dim=1))
        betas = iter(torch.split(theta[:, film : 2 * film], self.layout.channels, dim=1))

        def modulate(y, activation):
            relu6 = isinstance(activation, torch.nn.ReLU6)
            out = _Film.apply(y, next(gammas), next(betas), relu6)
            return out if relu6 or activation is None else activation(out)

        m = self.backbone
        x = modulate(m._bn0(_conv(m._conv_stem, x)), m._swish)
        for block in m._blocks:
            x = self._block(block, x, modulate)
        x = modulate(m._bn1(_conv(m._conv_head, x)), m._swish)
        return x.mean(dim=(2, 3)).view(k, x.shape[0] // k, -1)

    @staticmethod
    def _block(block, inputs, modulate):
        """``MBConvBlock.forward`` in eval mode with FiLM after each normalisation."""
        x = inputs
        if hasattr(block, "_expand_conv"):
            x = modulate(block._bn0(_conv(block._expand_conv, x)), block._swish)
        x = modulate(block._bn1(_conv(block._depthwise_conv, x)), block._swish)
        x = modulate(block._bn2(_conv(block._project_conv, x)), None)
        args = block._block_args
        if args.id_skip and args.stride == 1 and args.input_filters == args.output_filters:
            x = x + inputs
        return x

    def head(self, features, theta) -> torch.Tensor:
        """Logits (k, b, C) of each model's linear head on its features (k, b, F)."""
        lay = self.layout
        w = theta[:, lay.weights].view(-1, lay.classes, lay.features)
        return torch.baddbmm(theta[:, None, lay.bias], features, w.transpose(1, 2))

    def forward(self, x, theta, *, tune_film: bool = True) -> torch.Tensor:
        """Logits (k, b, C); with ``tune_film=False`` no gradient flows into the backbone."""
        if tune_film:
            return self.head(self.features(x, theta), theta)
        with torch.no_grad():
            features = self.features(x, theta.detach())
        return self.head(features, theta)


# --------------------------------------------------------------------------- a test stand-in
def tiny_lite_backbone(*, resolution: int = 32, seed: int = 0, fuse: bool = True, device="cpu"):
    """EfficientNet-Lite0 with random weights at a small resolution: a fast stand-in for tests.

    Convolutions get He-normal weights and BatchNorm random statistics and affine parameters (so
    that folding BN matters) from a seeded ``torch.Generator``; the global torch RNG is untouched.
    Returns a :class:`~mialaw.empirical.backbones.TorchBackbone` like ``get_backbone`` does.
    """
    from efficientnet_lite_pytorch import EfficientNet

    if not _is_int(resolution) or resolution < 8:
        raise ValueError(f"resolution must be an integer >= 8; got {resolution!r}")
    gen = torch.Generator().manual_seed(int(seed))
    model = EfficientNet.from_name("efficientnet-lite0", image_size=int(resolution))
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Conv2d):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) / fan_in**0.5)
            elif isinstance(mod, torch.nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(0.5 + torch.rand(n, generator=gen) * 1.5)
                mod.bias.copy_(0.1 * torch.randn(n, generator=gen))
                mod.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=gen))
    model.eval()
    if fuse:
        _fuse_batchnorm(model)
    return TorchBackbone(
        name="efficientnet-lite0-random",
        module=model,
        forward=_lite_forward,
        resolution=int(resolution),
        mean=LITE_MEAN,
        std=LITE_STD,
        feature_dim=int(model._fc.in_features),
        device=resolve_device(device),
        key=f"efficientnet-lite0-random|seed={int(seed)}|fuse={bool(fuse)}",
    )


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


def _cpu_settings(device, threads: int | None):
    """``heads.cpu_settings``: denormals flushed, ``threads`` (if given) for torch. Small passes
    (the tiny test network) run faster on one thread, and on a busy machine idle-spinning
    threads were measured 10-50× slower than one thread (12 images at 32 px: 36 ms on 1 thread,
    0.5-1.8 s on 2)."""

    return cpu_settings(device, threads)


def _threads(threads, device, resolution: int, pass_images: int) -> int | None:
    """The thread count to use on CPU: as given, else 1 for small passes, else torch's own."""
    if threads is not None:
        if not _is_int(threads) or threads < 1:
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
    if not _is_int(classes) or classes < 2 or y.min() < 0 or y.max() >= classes:
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


def _micro_batch(device, resolution: int, micro_batch) -> int:
    if micro_batch is not None:
        if not _is_int(micro_batch) or micro_batch < 1:
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
    budget = _micro_batch(device, settings.resolution, micro_batch)
    net = FilmNet(backbone.module, int(classes))
    pass_images = min(budget, keep.shape[0] * settings.batch_size)
    threads = _threads(threads, device, settings.resolution, pass_images)
    with _cpu_settings(device, threads):
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
