"""Datasets: IDX parsing, local loaders, class subsets, stratified shots, Gaussian draws."""

import gzip
import json
import pickle
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from mialaw.empirical.datasets import (
    DATASETS,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_GROUPS,
    FASHION_MNIST_SYSTEM_DIR,
    DatasetNotFoundError,
    first_per_class,
    gaussian_features,
    load_dataset,
    parse_idx,
    read_idx,
    stratified_shots,
)


def _idx_bytes(type_code: int, shape, payload: bytes) -> bytes:
    """An IDX file written by hand: magic (0, 0, type, ndim), big-endian dims, payload."""
    header = bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape)
    return header + payload


# ------------------------------------------------------------------------------------ IDX


def test_parse_idx_ubyte_layout_is_row_major():
    payload = bytes(range(24))
    array = parse_idx(_idx_bytes(0x08, (2, 3, 4), payload))
    assert array.shape == (2, 3, 4)
    assert array.dtype == np.uint8
    # Element [i, j, k] is byte 12 i + 4 j + k.
    assert array[1, 2, 3] == 23 and array[0, 1, 0] == 4 and array[1, 0, 2] == 14


def test_parse_idx_big_endian_types():
    shorts = struct.pack(">3h", -2, 300, 7)
    assert parse_idx(_idx_bytes(0x0B, (3,), shorts)).tolist() == [-2, 300, 7]
    doubles = struct.pack(">2d", 1.5, -0.25)
    assert parse_idx(_idx_bytes(0x0E, (2,), doubles)).tolist() == [1.5, -0.25]
    ints = struct.pack(">2i", -70000, 5)
    assert parse_idx(_idx_bytes(0x0C, (1, 2), ints)).tolist() == [[-70000, 5]]


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x00\x08\x01\x00\x00\x00\x02ab",  # bad magic
        _idx_bytes(0x08, (2, 3), bytes(5)),  # truncated payload
        _idx_bytes(0x08, (2,), bytes(3)),  # trailing garbage
        _idx_bytes(0x07, (2,), bytes(2)),  # unknown type
        b"\x00\x00\x08\x03\x00\x00",  # truncated header
    ],
)
def test_parse_idx_rejects_bad_files(data):
    with pytest.raises(ValueError):
        parse_idx(data)


def _write_fake_fashion(directory, n_train=12, n_test=5):
    rng = np.random.default_rng(0)
    out = {}
    for part, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        with gzip.open(directory / f"{part}-images-idx3-ubyte.gz", "wb") as f:
            f.write(_idx_bytes(0x08, images.shape, images.tobytes()))
        # Labels uncompressed: the loader must accept both.
        (directory / f"{part}-labels-idx1-ubyte").write_bytes(
            _idx_bytes(0x08, labels.shape, labels.tobytes())
        )
        out[part] = (images, labels)
    return out


def test_read_idx_gzip_and_plain(tmp_path):
    written = _write_fake_fashion(tmp_path)
    np.testing.assert_array_equal(
        read_idx(tmp_path / "train-images-idx3-ubyte.gz"), written["train"][0]
    )
    np.testing.assert_array_equal(read_idx(tmp_path / "t10k-labels-idx1-ubyte"), written["t10k"][1])


def test_fashion_mnist_from_data_dir_splits(tmp_path, monkeypatch):
    monkeypatch.delenv("MIALAW_DATA", raising=False)
    written = _write_fake_fashion(tmp_path)
    train = load_dataset("fashion-mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(train.images, written["train"][0])
    assert train.labels.dtype == np.int64 and train.num_classes == 10
    test = load_dataset("fashion-mnist", data_dir=tmp_path, split="test")
    np.testing.assert_array_equal(test.labels, written["t10k"][1])
    both = load_dataset("fashion-mnist", split="all", data_dir=tmp_path)
    assert len(both) == 17
    # The environment variable is the second place searched.
    monkeypatch.setenv("MIALAW_DATA", str(tmp_path))
    assert len(load_dataset("fashion-mnist", data_dir=tmp_path / "nothing-here")) == 12


def test_real_fashion_mnist_from_debian_package():
    ds = load_dataset("fashion-mnist")
    assert ds.images.shape == (60000, 28, 28) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(ds.labels), np.full(10, 6000))
    assert ds.class_names[9] == "Ankle boot"
    assert ds.source == str(FASHION_MNIST_SYSTEM_DIR)
    test = load_dataset("fashion-mnist", split="test", classes=["Bag", "Trouser"])
    assert test.class_ids == (8, 1) and test.class_names == ("Bag", "Trouser")
    np.testing.assert_array_equal(np.bincount(test.labels), [1000, 1000])


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MIALAW_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist", data_dir=tmp_path)
    assert isinstance(info.value, FileNotFoundError)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)
    assert "--data-dir" in str(info.value)


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "imagefolder"])
def test_missing_local_datasets_say_how_to_get_them(name, tmp_path, monkeypatch):
    monkeypatch.delenv("MIALAW_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        load_dataset(name, data_dir=tmp_path if name != "imagefolder" else None)


def test_unknown_names_list_allowed():
    with pytest.raises(ValueError, match="fashion-mnist.*digits"):
        load_dataset("mnist-fashion")
    with pytest.raises(ValueError, match="train, test, all"):
        load_dataset("digits", split="validation")
    with pytest.raises(ValueError, match="get_features"):
        load_dataset("gaussian")
    assert {"fashion-mnist", "digits", "cifar10", "cifar100", "imagefolder", "gaussian"} <= set(
        DATASETS
    )


def test_digits_scaled_to_uint8():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits")
    raw = load_digits().images
    assert ds.images.shape == (1797, 8, 8) and ds.images.dtype == np.uint8
    assert ds.images.max() == 255
    np.testing.assert_allclose(ds.images / 255.0, raw / 16.0, atol=0.5 / 255 + 1e-12)


@pytest.mark.parametrize("classes", [1, 11, 0, [3], [2, 2], [0, 10], ["Nope", 1], True, "0,1"])
def test_bad_class_subsets(classes):
    with pytest.raises(ValueError):
        load_dataset("digits", classes=classes)


def test_class_subset_renumbers_labels():
    full = load_dataset("digits")
    sub = load_dataset("digits", classes=[7, 3])
    assert sub.class_ids == (7, 3) and sub.num_classes == 2
    expected = full.images[(full.labels == 7) | (full.labels == 3)]
    np.testing.assert_array_equal(sub.images, expected)
    original = np.where(sub.labels == 0, 7, 3)
    np.testing.assert_array_equal(original, full.labels[(full.labels == 7) | (full.labels == 3)])
    first_three = load_dataset("digits", classes=3)
    assert first_three.class_ids == (0, 1, 2) and set(first_three.labels.tolist()) == {0, 1, 2}


def test_cifar10_pickles_decode_to_hwc(tmp_path, monkeypatch):
    monkeypatch.delenv("MIALAW_DATA", raising=False)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    # One marked pixel per image: channel c, row r, column k in CIFAR's planar (3, 32, 32) layout.
    marks = []
    for batch in range(1, 7):
        data = np.zeros((2, 3072), dtype=np.uint8)
        for i in range(2):
            c, r, k = (batch + i) % 3, batch * 3 + i, 31 - batch
            data[i, c * 1024 + r * 32 + k] = 200 + batch
            marks.append((c, r, k, 200 + batch))
        name = f"data_batch_{batch}" if batch <= 5 else "test_batch"
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [batch % 10, (batch + 1) % 10]}, f)
    names = [f"class{i}".encode() for i in range(10)]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names}, f)
    ds = load_dataset("cifar10", data_dir=tmp_path, split="all")
    assert ds.images.shape == (12, 32, 32, 3)
    for image, (c, r, k, value) in zip(ds.images, marks, strict=True):
        assert image[r, k, c] == value and image.sum() == value
    train = load_dataset("cifar10", data_dir=folder)
    assert len(train) == 10 and train.labels[:2].tolist() == [1, 2]
    assert train.class_names[3] == "class3"


def test_imagefolder_reads_class_folders(tmp_path):
    from PIL import Image

    colours = {"cats": (255, 0, 0), "dogs": (0, 0, 255)}
    for cls, colour in colours.items():
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (6, 4), colour).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    ds = load_dataset("imagefolder", data_dir=tmp_path)
    assert ds.class_names == ("cats", "dogs") and ds.images.shape == (6, 4, 6, 3)
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.images[0, 0, 0].tolist() == [255, 0, 0] and ds.images[5, 3, 5].tolist() == [0, 0, 255]
    resized = load_dataset("imagefolder", data_dir=tmp_path, image_size=8)
    assert resized.images.shape == (6, 8, 8, 3)


def test_fashion_mnist_groups_partition_the_classes(tmp_path):
    """Each group is Fashion-MNIST restricted to its classes by name (the class-subset path, an
    independent selection), and the three groups split the ten classes exactly once."""
    written = _write_fake_fashion(tmp_path, n_train=40)
    seen = []
    for group, names in FASHION_MNIST_GROUPS.items():
        ds = load_dataset(f"fashion-mnist-{group}", data_dir=tmp_path)
        direct = load_dataset("fashion-mnist", data_dir=tmp_path, classes=list(names))
        assert ds.class_names == names == direct.class_names
        np.testing.assert_array_equal(ds.images, direct.images)
        np.testing.assert_array_equal(ds.labels, direct.labels)
        # by hand: the written images of each class, in file order
        images, labels = written["train"]
        for k, name in enumerate(names):
            mine = images[labels == FASHION_MNIST_CLASSES.index(name)]
            np.testing.assert_array_equal(ds.images[ds.labels == k], mine)
        assert (
            load_dataset(f"fashion-mnist-{group}", data_dir=tmp_path, classes=2).class_names
            == (names[:2])
        )
        seen += names
    assert sorted(seen) == sorted(FASHION_MNIST_CLASSES)
    assert FASHION_MNIST_GROUPS["tops"] == ("T-shirt/top", "Pullover", "Coat", "Shirt")
    with pytest.raises(ValueError, match="takes no options"):
        load_dataset("fashion-mnist-shoes", data_dir=tmp_path, image_size=8)


def _png_folder(root, classes=("ants", "bees"), per_class=20, seed=0):
    """Small PNGs, one folder per class, whose classes differ in brightness."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k, cls in enumerate(classes):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 128, size=(8, 8, 3)) + 100 * k
            Image.fromarray(pixels.astype(np.uint8)).save(root / cls / f"{i:03d}.png")
    return root


def test_imagefolder_runs_through_the_sweep_with_data_dir(tmp_path, capsys):
    """`mialaw empirical run --dataset imagefolder --data-dir DIR` trains on the folder's images."""
    from mialaw.paper.cli import main

    folder = _png_folder(tmp_path / "pictures")
    argv = [
        "empirical", "run", "--dataset", "imagefolder", "--backbone", "pixels",
        "--classes", "2", "--shots", "4", "--shadows", "4", "--fpr", "0.1", "--attack", "lira",
        "--data-dir", str(folder), "--out", str(tmp_path / "run"), "--no-progress", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    points = json.loads(capsys.readouterr().out)["points"]
    assert {(p["dataset"], p["classes"], p["shots"]) for p in points} == {("imagefolder", 2, 4)}
    # the pixels the run read are the folder's (the bright class is label 1)
    ds = load_dataset("imagefolder", data_dir=folder)
    assert ds.class_names == ("ants", "bees") and len(ds) == 40
    assert ds.images[ds.labels == 1].min() >= 100 > ds.images[ds.labels == 0].max() - 28


def test_digits_reach_a_pretrained_backbone_as_fashion_mnist_does(tmp_path):
    """8 × 8 digits go through the same preprocessing as 28 × 28 Fashion-MNIST (grayscale
    replicated, resized to the backbone's resolution), and the sweep's features are the backbone
    applied to the first images of each class."""
    from mialaw.empirical.backbones import get_backbone
    from mialaw.empirical.features import get_features

    backbone = get_backbone("efficientnet-lite0", device="cpu", resolution=32)
    digits = load_dataset("digits", classes=2)
    x_digits = backbone.normalised(digits.images[:3]).numpy()
    x_fashion = backbone.normalised(np.zeros((3, 28, 28), dtype=np.uint8)).numpy()
    assert x_digits.shape == x_fashion.shape == (3, 3, 32, 32)
    assert np.array_equal(x_digits[:, 0], x_digits[:, 1])  # grayscale on every channel
    features = get_features(
        "digits", backbone, classes=2, max_per_class=3, cache_dir=tmp_path, progress=False
    )
    pool = digits.images[first_per_class(digits.labels, 3)]
    np.testing.assert_allclose(features.features, backbone.extract(pool).numpy(), rtol=1e-5)


def test_imagefolder_without_data_dir_says_so(tmp_path):
    from mialaw.empirical.experiment import RunConfig, run_sweep

    config = RunConfig(dataset="imagefolder", backbone="pixels", shots=(2,), shadows=4)
    with pytest.raises(DatasetNotFoundError, match="needs --data-dir"):
        run_sweep(config, tmp_path / "run", progress=False, plots=False)


# ------------------------------------------------------------------------------- sampling


def test_stratified_shots_counts_and_reproducibility():
    labels = np.repeat(np.arange(5), [40, 50, 60, 70, 80])
    rng = np.random.default_rng(1)
    labels = labels[rng.permutation(labels.size)]
    idx = stratified_shots(labels, 8, classes=[4, 1, 2], seed=3)
    assert idx.size == 3 * 16 and np.unique(idx).size == idx.size
    # Grouped by class in the given order, sorted inside each class.
    assert labels[idx].tolist() == [4] * 16 + [1] * 16 + [2] * 16
    for block in np.split(idx, 3):
        assert np.all(np.diff(block) > 0)
    np.testing.assert_array_equal(idx, stratified_shots(labels, 8, classes=[4, 1, 2], seed=3))
    assert not np.array_equal(idx, stratified_shots(labels, 8, classes=[4, 1, 2], seed=4))
    same = stratified_shots(labels, 8, classes=[4, 1, 2], seed=np.random.default_rng(3))
    np.testing.assert_array_equal(idx, same)


def test_stratified_shots_nested_and_exact_counts():
    labels = np.repeat(np.arange(3), 100)
    small = stratified_shots(labels, 4, classes=None, seed=0)
    large = stratified_shots(labels, 16, classes=None, seed=0)
    assert set(small.tolist()) <= set(large.tolist())
    exact = stratified_shots(labels, classes=2, n_per_class=7, seed=0)
    np.testing.assert_array_equal(np.bincount(labels[exact]), [7, 7])
    # exclude keeps a held-out set disjoint from the draw.
    held = stratified_shots(labels, 10, classes=None, seed=1)
    rest = stratified_shots(labels, 20, classes=None, seed=2, exclude=held)
    assert not set(held.tolist()) & set(rest.tolist())


def test_stratified_shots_rejects_bad_requests():
    labels = np.repeat(np.arange(2), [10, 30])
    with pytest.raises(ValueError, match="S too large for class size"):
        stratified_shots(labels, 6, classes=None, seed=0)
    for shots in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            stratified_shots(labels, shots, classes=None, seed=0)
    with pytest.raises(ValueError):
        stratified_shots(labels, 2, classes=[0, 5], seed=0)
    with pytest.raises(ValueError):
        stratified_shots(labels, 2, classes=None, seed=None)
    with pytest.raises(ValueError):
        stratified_shots(labels, 2, classes=None, seed=0, n_per_class=3)


@given(
    counts=st.lists(st.integers(0, 30), min_size=2, max_size=6),
    shots=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_stratified_shots_property(counts, shots, seed):
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts))
    classes = [c for c, n in enumerate(counts) if n > 0]
    if not classes:
        return
    if min(counts[c] for c in classes) < 2 * shots:
        with pytest.raises(ValueError, match="S too large"):
            stratified_shots(labels, shots, classes=classes, seed=seed)
        return
    idx = stratified_shots(labels, shots, classes=classes, seed=seed)
    assert np.unique(idx).size == idx.size == 2 * shots * len(classes)
    for c in classes:
        assert np.sum(labels[idx] == c) == 2 * shots


def test_first_per_class_matches_a_plain_loop():
    labels = np.random.default_rng(5).integers(0, 4, size=200)
    seen = {}
    expected = []
    for i, y in enumerate(labels):
        seen[y] = seen.get(y, 0) + 1
        if seen[y] <= 9:
            expected.append(i)
    np.testing.assert_array_equal(first_per_class(labels, 9), expected)
    with pytest.raises(ValueError):
        first_per_class(labels, 0)


# ------------------------------------------------------------------------------- gaussian


def test_gaussian_reproducible_and_seeded():
    a = gaussian_features(dim=6, classes=3, sigma=0.7, n_per_class=50, seed=11)
    b = gaussian_features(dim=6, classes=3, sigma=0.7, n_per_class=50, seed=11)
    c = gaussian_features(dim=6, classes=3, sigma=0.7, n_per_class=50, seed=12)
    np.testing.assert_array_equal(a.features, b.features)
    assert not np.array_equal(a.features, c.features)
    assert a.labels.tolist() == [0] * 50 + [1] * 50 + [2] * 50
    assert a.model.dim == 6 and a.model.classes == 3
    with pytest.raises(ValueError):
        gaussian_features(dim=2, classes=3, n_per_class=5, seed=0)
    with pytest.raises(ValueError):
        gaussian_features(dim=4, classes=2, n_per_class=0, seed=0)


def test_gaussian_moments_isotropic():
    n, dim, sigma = 4000, 5, 0.6
    sample = gaussian_features(dim=dim, classes=2, sigma=sigma, n_per_class=n, seed=2)
    for c in range(2):
        x = sample.features[sample.labels == c].astype(np.float64)
        # Mean: e_c within 5 standard errors in every coordinate.
        np.testing.assert_array_less(np.abs(x.mean(0) - np.eye(dim)[c]), 5 * sigma / np.sqrt(n))
        # Variance: each coordinate's sample variance within a two-sided 1e-4 chi-square band.
        lo, hi = stats.chi2.ppf([1e-4, 1 - 1e-4], n - 1) / (n - 1) * sigma**2
        var = x.var(0, ddof=1)
        assert np.all((lo < var) & (var < hi)), var
        # Independence of coordinates: off-diagonal correlations at the 1/sqrt(n) scale.
        corr = np.corrcoef(x.T)[np.triu_indices(dim, 1)]
        assert np.all(np.abs(corr) < 5 / np.sqrt(n))


def test_gaussian_general_covariance():
    cov = np.array([[1.0, 0.6, 0.0], [0.6, 2.0, -0.3], [0.0, -0.3, 0.5]])
    n = 20000
    sample = gaussian_features(dim=3, classes=2, cov=cov, n_per_class=n, seed=4)
    x = sample.features[sample.labels == 1].astype(np.float64)
    np.testing.assert_allclose(x.mean(0), [0, 1, 0], atol=5 * np.sqrt(2.0 / n))
    # Standard error of a covariance entry is sqrt((s_ii s_jj + s_ij^2) / n) for Gaussians.
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(np.cov(x.T) - cov) < 5 * se)
