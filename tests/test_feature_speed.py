"""The fast CPU feature engine (onnxruntime) against the reference torch path, and the benchmark.

The engine must give the reference path's features to float rounding (max |a - b| / max |b| <=
1e-4, measured about 3e-6) on real images, be bit-identical across runs, batches and thread
counts, and fall back to torch (with a warning) whenever it cannot be trusted.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from mialaw.empirical import backbone_onnx
from mialaw.empirical.backbone_images import resize
from mialaw.empirical.backbone_onnx import relative_difference, resize_matrix
from mialaw.empirical.backbones import get_backbone
from mialaw.empirical.datasets import load_dataset
from mialaw.empirical.features import extract_features, get_features

RTOL = 1e-4
needs_onnxruntime = pytest.mark.skipif(
    not backbone_onnx.onnxruntime_available(),
    reason="the fast engine needs `pip install onnxruntime onnx`",
)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One thread unless a test asks for more (a shared 2-core runner; see the features tests)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fashion():
    ds = load_dataset("fashion-mnist")
    idx = np.concatenate([np.flatnonzero(ds.labels == c)[:3] for c in range(10)])
    return ds.images[idx]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits").images[:24]


@pytest.fixture(scope="module")
def lite64():
    return get_backbone("efficientnet-lite0", device="cpu", resolution=64)


def _fast_and_reference(backbone, images):
    fast = extract_features(backbone, images, progress=False)
    reference = extract_features(backbone, images, progress=False, fast=False)
    return fast, reference


# ------------------------------------------------------------------ equal to the reference


@needs_onnxruntime
def test_fast_features_equal_the_reference_at_224px(fashion, digits):
    """The study's setting: EfficientNet-Lite0 at 224 px on Fashion-MNIST and digits images."""
    backbone = get_backbone("efficientnet-lite0", device="cpu")
    assert backbone.resolution == 224
    for images in (fashion[::5], digits[:4]):  # 6 Fashion-MNIST (28 px), 4 digits (8 px)
        fast, reference = _fast_and_reference(backbone, images)
        assert backbone.engine_name == "onnxruntime"
        assert fast.shape == reference.shape == (len(images), 1280)
        assert relative_difference(fast, reference) <= RTOL
        assert not np.array_equal(fast, reference)  # really the other engine


@needs_onnxruntime
def test_fast_features_equal_the_reference_at_low_resolution(lite64, fashion, digits):
    for images in (fashion, digits):
        fast, reference = _fast_and_reference(lite64, images)
        assert lite64.engine_name == "onnxruntime"
        assert relative_difference(fast, reference) <= RTOL
        # Elementwise too, where a feature is not near zero (>= 10 % of the largest).
        big = np.abs(reference) > 0.1 * np.abs(reference).max()
        assert (np.abs(fast - reference)[big] / np.abs(reference[big])).max() <= RTOL


@needs_onnxruntime
def test_fast_colour_images_equal_the_reference():
    backbone = get_backbone("efficientnet-lite0", device="cpu", resolution=32)
    images = np.random.default_rng(3).integers(0, 256, size=(5, 20, 24, 3), dtype=np.uint8)
    fast, reference = _fast_and_reference(backbone, images)
    assert backbone.engine_name == "onnxruntime"
    assert relative_difference(fast, reference) <= RTOL


def test_resize_matrices_reproduce_torch_resize():
    """Upsampling by two matrix products is torch's antialiased bilinear resize, bit for bit."""
    import torch

    x = torch.randint(0, 256, (3, 2, 28, 20)).float()
    rows, cols = resize_matrix(28, 64), resize_matrix(20, 64)
    assert rows.shape == (64, 28) and cols.shape == (64, 20)
    torch.testing.assert_close(rows @ x @ cols.T, resize(x, 64), rtol=0, atol=0)
    np.testing.assert_allclose(rows.sum(1).numpy(), 1.0, atol=1e-6)  # weights sum to one


# ---------------------------------------------------------------------------- determinism


@needs_onnxruntime
def test_fast_features_are_bit_identical_across_runs_batches_and_threads(lite64, fashion):
    import torch

    first = extract_features(lite64, fashion, progress=False)
    assert np.array_equal(extract_features(lite64, fashion, progress=False), first)
    pieces = extract_features(lite64, fashion, batch_size=7, progress=False)
    singles = np.concatenate([lite64.extract(image[None]).numpy() for image in fashion[:5]])
    torch.set_num_threads(2)  # two workers on micro-batches
    parallel = extract_features(lite64, fashion, progress=False)
    assert np.array_equal(pieces, first)
    assert np.array_equal(singles, first[:5])
    assert np.array_equal(parallel, first)


# -------------------------------------------------------------------------- fallbacks


def test_without_onnxruntime_the_torch_path_runs(monkeypatch, fashion):
    monkeypatch.setattr(backbone_onnx, "onnxruntime_available", lambda: False)
    backbone = get_backbone("efficientnet-lite0", device="cpu", resolution=32)
    assert backbone.engine_name == "torch"
    fast, reference = _fast_and_reference(backbone, fashion[:6])
    np.testing.assert_array_equal(fast, reference)
    with pytest.raises(ImportError, match="pip install onnxruntime onnx"):
        get_backbone("efficientnet-lite0", device="cpu", resolution=32, engine="onnxruntime")


def test_engine_names_are_validated(fashion):
    with pytest.raises(ValueError, match="engine must be one of auto, torch, onnxruntime"):
        get_backbone("efficientnet-lite0", device="cpu", engine="fast")
    torch_only = get_backbone("efficientnet-lite0", device="cpu", resolution=32, engine="torch")
    assert torch_only.engine_name == "torch"
    with pytest.raises(ValueError, match="engine apply to a backbone name"):
        get_features("digits", torch_only, engine="torch", use_cache=False)
    with pytest.raises(ValueError, match="fast must be True or False"):
        extract_features(torch_only, fashion[:2], fast="no", progress=False)


@needs_onnxruntime
def test_export_failure_warns_and_falls_back_to_torch(monkeypatch, fashion):
    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(backbone_onnx, "_export_onnx", broken)
    backbone = get_backbone("efficientnet-lite0", device="cpu", resolution=32)
    with pytest.warns(RuntimeWarning, match="disabled, using torch: RuntimeError: exporter"):
        fast = backbone.extract(fashion[:4]).numpy()
    assert backbone.engine_name == "torch"
    np.testing.assert_array_equal(fast, backbone.extract_reference(fashion[:4]).numpy())


@needs_onnxruntime
def test_a_graph_that_disagrees_with_torch_is_rejected(monkeypatch, fashion):
    """The check on export can fail: with a tolerance below float rounding it must."""
    monkeypatch.setattr(backbone_onnx, "ENGINE_CHECK_RTOL", 1e-12)
    backbone = get_backbone("efficientnet-lite0", device="cpu", resolution=32)
    with pytest.warns(RuntimeWarning, match="differs from torch"):
        backbone.extract(fashion[:2])
    assert backbone.engine_name == "torch"


@needs_onnxruntime
def test_a_modified_module_is_exported_again(fashion):
    import torch

    backbone = get_backbone("efficientnet-lite0", device="cpu", resolution=32)
    before = backbone.extract(fashion[:4]).numpy()
    with torch.no_grad():
        backbone.module._conv_head.weight.mul_(1.5)  # in place: the exported graph is stale
    after, reference = _fast_and_reference(backbone, fashion[:4])
    assert relative_difference(after, before) > 1e-2
    assert relative_difference(after, reference) <= RTOL
    assert backbone.engine_name == "onnxruntime"


@needs_onnxruntime
def test_images_larger_than_the_resolution_run_on_torch(fashion):
    backbone = get_backbone("efficientnet-lite0", device="cpu", resolution=24)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast, reference = _fast_and_reference(backbone, fashion[:3])  # 28 px > 24 px
    np.testing.assert_array_equal(fast, reference)
    assert backbone.engine_name == "onnxruntime"  # still the engine for smaller images


# ----------------------------------------------------------------------------- benchmark


def _bench(*args, tiny_env=False):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("MIALAW_BENCH_TINY", None)
    if tiny_env:
        env["MIALAW_BENCH_TINY"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "mialaw.empirical.bench", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_bench_runs_without_arguments():
    """No arguments: heads and lira (argparse used to reject its own default list)."""
    done = _bench(tiny_env=True)
    assert done.returncode == 0, done.stderr
    assert "[heads]" in done.stdout and "[lira]" in done.stdout
    assert "[features]" not in done.stdout


def test_bench_runs_with_tiny_arguments():
    done = _bench("features", "cells", "--tiny", "--images", "4")
    assert done.returncode == 0, done.stderr
    assert "[cells]" in done.stdout
    lines = [line for line in done.stdout.splitlines() if "max |fast - ref| / max |ref|" in line]
    assert len(lines) == 1 and "bit-identical across runs: True" in lines[0]
    rel = float(lines[0].split("max |ref|:")[1].split(";")[0])
    assert rel <= RTOL
    assert "speed-up:" in done.stdout and "reference:" in done.stdout


def test_bench_rejects_unknown_benchmarks(capsys):
    """In this process: the check comes before any benchmark runs (the command line itself is
    exercised by the subprocess tests above)."""
    from mialaw.empirical import bench

    with pytest.raises(SystemExit) as exc:
        bench.main(["nonsense", "--tiny"])
    assert exc.value.code == 2 and "unknown benchmark nonsense" in capsys.readouterr().err
