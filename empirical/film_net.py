"""The FiLM network: a frozen EfficientNet-Lite whose every normalisation is modulated per model
(γ ⊙ y + β, then the activation) and a linear head, K models in one pass (``FilmNet``); and a
seeded random Lite0 at a small resolution for tests (``tiny_lite_backbone``).

The maths, the stacking of models along the batch axis and why the FiLM affine is one autograd
node are described in :mod:`mialaw.empirical.film`, which trains it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mialaw.empirical.backbones import (
    LITE_MEAN,
    LITE_STD,
    TorchBackbone,
    fuse_batchnorm,
    lite_forward,
    resolve_device,
)
from mialaw.empirical.film_settings import is_int

__all__ = ["FilmNet", "Layout", "tiny_lite_backbone"]


@dataclass(frozen=True)
class Layout:
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
        if not is_int(classes) or classes < 2:
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
        self.layout = Layout(tuple(int(c) for c in channels), int(classes), int(channels[-1]))

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

    if not is_int(resolution) or resolution < 8:
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
        fuse_batchnorm(model)
    return TorchBackbone(
        name="efficientnet-lite0-random",
        module=model,
        forward=lite_forward,
        resolution=int(resolution),
        mean=LITE_MEAN,
        std=LITE_STD,
        feature_dim=int(model._fc.in_features),
        device=resolve_device(device),
        key=f"efficientnet-lite0-random|seed={int(seed)}|fuse={bool(fuse)}",
    )
