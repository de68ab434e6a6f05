"""onnxruntime: the fast CPU engine of ``TorchBackbone`` (``mialaw.empirical.backbones``).

The network and its preprocessing are exported to ONNX once per image shape and checked against
the torch path (:class:`OnnxRuntimeEngine`); the features equal the torch path's to float
rounding (about 1e-6 relative), 2-4x faster. torch and onnxruntime are imported inside functions.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import io
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mialaw.empirical.backbone_images import images_to_array

#: Engines of :class:`TorchBackbone` ("auto": onnxruntime on CPU when installed, else torch).
ENGINES = ("auto", "torch", "onnxruntime")
#: A freshly exported graph must match the torch path to this relative difference
#: (max |a - b| / max |b| over a probe batch); measured: about 1e-6.
ENGINE_CHECK_RTOL = 1e-4
#: Images per onnxruntime call. At 224 px, 1-8 ran within 10 % of each other; 4 keeps the
#: activations of one call in a core's cache while amortising the per-call overhead.
ONNX_MICRO_BATCH = 4
_ONNX_PACKAGES = ("onnxruntime", "onnx")  # onnx: torch's exporter serialises through it


def onnxruntime_available() -> bool:
    """Whether the optional packages of the onnxruntime engine are installed (nothing imported)."""
    return all(importlib.util.find_spec(name) is not None for name in _ONNX_PACKAGES)


def check_engine(engine, device) -> str:
    """The engine to build for ``device`` (a torch.device): "torch" or "onnxruntime"."""
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if engine == "auto":
        return "onnxruntime" if device.type == "cpu" and onnxruntime_available() else "torch"
    if engine == "onnxruntime":
        if device.type != "cpu":
            raise ValueError(f"engine 'onnxruntime' runs on cpu only; the device is {device}")
        if not onnxruntime_available():
            raise ImportError("engine 'onnxruntime' needs `pip install onnxruntime onnx`")
    return engine


def resize_matrix(size_in: int, size_out: int):
    """The (size_out, size_in) matrix of ``resize`` along one axis.

    The antialiased bilinear resize is linear and separable, so resizing identity columns gives
    its matrix, and ``rows @ x @ cols.T`` is the same arithmetic: for upsampling (two taps per
    output pixel, the other products exact zeros) it reproduces ``resize`` bit for bit. The
    columns are 2 pixels wide because torch's antialiased kernel mishandles 1-pixel-wide images.
    """
    import torch
    import torch.nn.functional as F

    eye = torch.eye(size_in)[None, :, :, None].expand(1, size_in, size_in, 2).contiguous()
    out = F.interpolate(
        eye, size=(size_out, 2), mode="bilinear", antialias=True, align_corners=False
    )
    return out[0, :, :, 0].T.contiguous()


@functools.cache
def _pipeline_class():
    import torch

    class Pipeline(torch.nn.Module):
        """uint8 images (b, H, W[, C]) -> features: ``TorchBackbone.extract_reference`` as one
        traceable module (resize by matrix products, see ``resize_matrix``)."""

        def __init__(self, backbone, rows, cols):
            super().__init__()
            self.net = backbone.module
            self.forward_net = backbone._forward
            self.register_buffer("mean", backbone._mean.to("cpu"))
            self.register_buffer("std", backbone._std.to("cpu"))
            self.resize = rows is not None
            if self.resize:
                self.register_buffer("rows", rows)
                self.register_buffer("cols_t", cols.T.contiguous())

        def forward(self, images):
            x = images.float()
            x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
            if self.resize:
                x = torch.matmul(torch.matmul(self.rows, x), self.cols_t)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            x = (x - self.mean) / self.std
            return self.forward_net(self.net, x).float()

    return Pipeline


def _export_onnx(backbone, image_shape) -> bytes:
    """The ONNX graph (bytes) of ``backbone`` for uint8 images of ``image_shape`` (H, W[, C])."""
    import torch

    h, w = image_shape[:2]
    r = backbone.resolution
    resize = (h, w) != (r, r)  # as in resize: an image at the resolution is used as it is
    rows, cols = (resize_matrix(h, r), resize_matrix(w, r)) if resize else (None, None)
    pipeline = _pipeline_class()(backbone, rows, cols).eval()
    options = dict(
        input_names=["images"],
        output_names=["features"],
        dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
        opset_version=17,
    )
    # torch >= 2.5 defaults to the dynamo exporter (which needs onnxscript); the TorchScript
    # exporter handles this static network and is the one older torch versions have.
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False
    buffer = io.BytesIO()
    example = torch.zeros((2, *image_shape), dtype=torch.uint8)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation and constant-folding notes
        torch.onnx.export(pipeline, (example,), buffer, **options)
    return buffer.getvalue()


def _onnx_session(model: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Single-threaded sessions: the engine runs micro-batches on parallel workers instead, which
    # scales better than splitting one small convolution over cores and never spins idle threads.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _module_state(module) -> tuple:
    """Changes when the module's tensors are replaced or modified in place (torch's version
    counters), so that a stale export is never used."""
    tensors = [*module.parameters(), *module.buffers()]
    return tuple((id(t), getattr(t, "_version", 0)) for t in tensors)


def relative_difference(a, b) -> float:
    """max |a - b| / max |b|: the difference of two feature matrices relative to their scale
    (max |a| where b is all zeros)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / scale) if scale > 0 else float(np.abs(a).max())


class OnnxRuntimeEngine:
    """A TorchBackbone's preprocessing and network as one ONNX graph run by onnxruntime on CPU.

    Why: on CPU the torch path spends much of its time outside the convolutions' arithmetic
    (padding copies before most convolutions, separate ReLU6 passes, 1x1 convolutions on a slow
    kernel at small batches, OpenMP threads spinning on a shared machine); onnxruntime folds the
    padding and activations into its convolutions and runs them in a blocked layout.

    One graph per image shape (H, W[, C]), exported on first use and taking the uint8 images:
    cast, resize by two matrix products (``resize_matrix``), grayscale replicated, normalised,
    the network, pooling. Each new graph is checked against the torch path on seeded random
    images before use; an export error or a difference over ENGINE_CHECK_RTOL warns once and
    leaves the backbone on torch (``failed``). Images larger than the resolution run on torch:
    downsampling a large image by dense matrices could cost as much as the network. A module
    modified in place or replaced after export is exported again.

    Parallelism: ``torch.get_num_threads()`` workers, each running micro-batches of
    ONNX_MICRO_BATCH images through a single-threaded session. Work is split between images,
    never inside one image's arithmetic, so an image's features do not depend on the thread
    count, the batch or the scheduling.
    """

    def __init__(self, backbone):
        self.backbone = backbone
        self.failed = False
        self._sessions = {}
        self._module = None
        self._state = None

    def extract(self, images):
        """Features (b, feature_dim) as a float32 numpy array, or None where torch must run."""
        import torch

        array = images_to_array(images)
        n, h, w = array.shape[:3]
        if n == 0 or max(h, w) > self.backbone.resolution:
            return None
        session = self._session(array.shape[1:])
        if session is None:
            return None
        starts = range(0, n, ONNX_MICRO_BATCH)

        def run(start):
            return session.run(None, {"images": array[start : start + ONNX_MICRO_BATCH]})[0]

        workers = min(torch.get_num_threads(), len(starts))
        if workers <= 1:
            parts = [run(start) for start in starts]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                parts = list(pool.map(run, starts))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _session(self, image_shape):
        module = self.backbone.module
        state = _module_state(module)
        if module is not self._module or state != self._state:
            self._sessions.clear()
            self._module, self._state = module, state
        key = tuple(int(d) for d in image_shape)
        if key not in self._sessions:
            try:
                session = _onnx_session(_export_onnx(self.backbone, key))
                self._check(session, key)
            except Exception as exc:  # an optional accelerator must never break extraction
                self.failed = True
                warnings.warn(
                    f"onnxruntime engine for {self.backbone.name} disabled, using torch: "
                    f"{type(exc).__name__}: {str(exc)[:300]}",
                    RuntimeWarning,
                    stacklevel=4,
                )
                return None
            self._sessions[key] = session
        return self._sessions[key]

    def _check(self, session, image_shape) -> None:
        probe = np.random.default_rng(0).integers(0, 256, size=(3, *image_shape), dtype=np.uint8)
        expected = self.backbone.extract_reference(probe).cpu().numpy()
        got = session.run(None, {"images": probe})[0]
        difference = relative_difference(got, expected)
        if not difference <= ENGINE_CHECK_RTOL:
            raise ValueError(
                f"exported graph differs from torch by {difference:.1e} relative "
                f"(tolerance {ENGINE_CHECK_RTOL:g})"
            )
