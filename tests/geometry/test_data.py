from __future__ import annotations

import io
import struct
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geometry.data.datasets import (
    DATASET_DESCRIPTIONS,
    Dataset,
    available_datasets,
    builtin_datasets,
    load_dataset,
    load_image_folder,
    load_uploaded_images,
)
from geometry.data.shapes import SHAPE_NAMES


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every URL fails at once, as on a machine without internet (and never touches the network)."""

    def fail(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", fail)


# ---------------------------------------------------------------------------------------- names


def test_builtin_names_load_offline_and_are_described() -> None:
    names = builtin_datasets()
    assert names == ["digits", "shapes", "moons", "circles", "spirals", "blobs"]
    for name in names:
        assert DATASET_DESCRIPTIONS[name]
        assert len(load_dataset(name, n=12)) > 0


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(
        ValueError, match=r"expected a dataset name among digits, shapes, .*folder:<path>; got 'imagenet'"
    ):
        load_dataset("imagenet")


def test_bad_split() -> None:
    with pytest.raises(ValueError, match="expected split 'train', 'test' or 'all', got 'val'"):
        load_dataset("digits", "val")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- digits


def test_digits_fixed_stratified_split() -> None:
    from sklearn.datasets import load_digits

    train, test, all_ = (load_dataset("digits", s) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(all_)) == (1347, 450, 1797)
    assert train.input_shape == (1, 8, 8) and train.images.dtype == torch.float32
    assert float(all_.images.min()) == 0.0 and float(all_.images.max()) == 1.0
    assert train.class_names == tuple(str(i) for i in range(10))
    # train + test is exactly the whole data set (a partition: nothing shared, nothing lost).
    bunch = load_digits()
    ours = np.concatenate([all_.images.reshape(-1, 64).numpy() * 16, all_.labels.numpy()[:, None]], 1)
    ref = np.concatenate([bunch.data, bunch.target[:, None]], 1)
    assert torch.equal(all_.images, torch.cat([train.images, test.images]))
    np.testing.assert_array_equal(ours[np.lexsort(ours.T)], ref[np.lexsort(ref.T)])
    # stratified: each class is about 25% test
    share = np.bincount(test.labels.numpy()) / np.bincount(all_.labels.numpy())
    assert np.all(np.abs(share - 0.25) < 0.01)
    # fixed across calls
    again = load_dataset("digits", "test")
    assert torch.equal(again.images, test.images) and again.fingerprint == test.fingerprint


def test_digits_subset_n_is_seeded() -> None:
    a, b, c = load_dataset("digits", n=50, seed=1), load_dataset("digits", n=50, seed=1), load_dataset("digits", n=50)
    assert len(a) == 50 and torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)


def test_digits_resized() -> None:
    d = load_dataset("digits", n=5, image_size=16)
    assert d.input_shape == (1, 16, 16) and float(d.images.min()) >= 0.0 and float(d.images.max()) <= 1.0


# --------------------------------------------------------------------------------------- shapes


def test_shapes_default_sizes_and_disjoint_splits() -> None:
    test = load_dataset("shapes", "test")
    assert len(test) == 2000 and test.input_shape == (3, 32, 32) and test.class_names == SHAPE_NAMES
    assert test.input_range == (0.0, 1.0)
    counts = np.bincount(test.labels.numpy())
    assert counts.max() - counts.min() <= 1
    train = load_dataset("shapes", "train", n=300)
    flat_train = {row.tobytes() for row in train.images.numpy()}
    assert not any(row.tobytes() in flat_train for row in test.images.numpy())
    assert torch.equal(load_dataset("shapes", "test").images, test.images)


def test_shapes_n_and_image_size() -> None:
    d = load_dataset("shapes", "train", n=30, image_size=64)
    assert d.images.shape == (30, 3, 64, 64)
    assert len(load_dataset("shapes", "all", n=10)) == 20


# -------------------------------------------------------------------------------------- toy 2D


def test_toy_sets() -> None:
    train, test = load_dataset("moons", "train"), load_dataset("moons", "test")
    assert (len(train), len(test)) == (800, 400)
    assert train.input_shape == (2,) and train.input_range is None
    assert train.class_names == ("class 0", "class 1")
    assert not torch.equal(train.images[:400], test.images)
    blobs = load_dataset("blobs-4")
    assert blobs.name == "blobs-4" and len(blobs.class_names) == 4
    assert len(load_dataset("blobs").class_names) == 3
    assert len(load_dataset("spirals-3").class_names) == 3


def test_toy_class_count_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"expected 2\.\.5 classes for 'blobs', got 9"):
        load_dataset("blobs-9")


def test_toy_with_image_size() -> None:
    with pytest.raises(ValueError, match="expected image_size=None for the 2D toy set 'moons'"):
        load_dataset("moons", image_size=32)


# -------------------------------------------------------------------------------------- Dataset


def test_dataset_subset_fingerprint_and_classes() -> None:
    d = load_dataset("digits", "test")
    sub = d.subset([3, 1, 2])
    assert torch.equal(sub.images, d.images[[3, 1, 2]]) and sub.class_names == d.class_names
    mask = d.labels == 4
    assert len(d.subset(mask.numpy())) == int(mask.sum()) == len(d.indices_of_class(4))
    assert np.all(d.labels.numpy()[d.indices_of_class(4)] == 4)
    assert len(d.subset(slice(0, 10))) == 10
    assert d.fingerprint == load_dataset("digits", "test").fingerprint
    assert d.fingerprint != sub.fingerprint and len(d.fingerprint) == 16


def test_dataset_rejects_wrong_dtype() -> None:
    with pytest.raises(TypeError, match="expected images as a float32 tensor, got a torch.float64 tensor"):
        Dataset(
            "x",
            "all",
            torch.zeros(2, 1, 4, 4, dtype=torch.float64),
            torch.zeros(2, dtype=torch.int64),
            ("a",),
            (0.0, 1.0),
        )


def test_dataset_rejects_label_count() -> None:
    with pytest.raises(ValueError, match=r"expected labels of shape \(2,\), got \(3,\)"):
        Dataset("x", "all", torch.zeros(2, 1, 4, 4), torch.zeros(3, dtype=torch.int64), ("a",), (0.0, 1.0))


# ---------------------------------------------------------------------------------- image folder


def _write_folder(root: Path, sizes: dict[str, tuple[int, int]]) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    written: dict[str, list[np.ndarray]] = {}
    for cls, (h, w) in sizes.items():
        (root / cls).mkdir(parents=True)
        written[cls] = []
        for i in range(2):
            arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"img{i}.png")
            written[cls].append(arr)
    (root / "notes.txt").write_text("not a class")
    return written


def test_image_folder_round_trip(tmp_path: Path) -> None:
    written = _write_folder(tmp_path, {"zebra": (10, 12), "apple": (10, 12), "mango": (10, 12)})
    d = load_image_folder(tmp_path)
    assert d.class_names == ("apple", "mango", "zebra")
    assert d.images.shape == (6, 3, 10, 12) and d.labels.tolist() == [0, 0, 1, 1, 2, 2]
    expected = np.stack([a for c in d.class_names for a in written[c]]).transpose(0, 3, 1, 2) / 255.0
    np.testing.assert_allclose(d.images.numpy(), expected, atol=1e-6)
    grey = load_dataset(f"folder:{tmp_path}", image_size=8)
    assert grey.images.shape == (6, 3, 8, 8) and grey.name == f"folder:{tmp_path}"
    assert load_image_folder(tmp_path, channels=1).images.shape == (6, 1, 10, 12)


def test_image_folder_labels_follow_the_models_class_names_not_positions(tmp_path: Path) -> None:
    # sorted folders are circle, square, triangle; the model's classes come in another order and another case
    _write_folder(tmp_path, {"triangle": (6, 6), "Circle": (6, 6), "square": (6, 6)})
    model_classes = ("square", "triangle", "star", "circle")
    d = load_image_folder(tmp_path, class_names=model_classes)
    assert d.class_names == model_classes
    # files are read folder by folder in sorted order: Circle, square, triangle
    assert d.labels.tolist() == [3, 3, 0, 0, 1, 1]
    assert d.warnings == ()


def test_image_folder_names_the_model_does_not_know_are_unlabelled_and_said(tmp_path: Path) -> None:
    _write_folder(tmp_path, {"cat": (6, 6), "dog": (6, 6)})
    d = load_image_folder(tmp_path, class_names=("tench", "goldfish", "cat"))
    assert d.labels.tolist() == [2, 2, -1, -1]
    (warning,) = d.warnings
    assert "'dog'" in warning and "unlabelled" in warning and "label_map" in warning
    mapped = load_image_folder(tmp_path, class_names=("tench", "goldfish", "cat"), label_map={"dog": "goldfish"})
    assert mapped.labels.tolist() == [2, 2, 1, 1] and mapped.warnings == ()
    assert mapped.subset([2, 3]).labels.tolist() == [1, 1]
    unlabelled = load_image_folder(tmp_path, class_names=("tench", "goldfish", "cat"), label_map={"cat": None})
    assert unlabelled.labels.tolist() == [-1, -1, -1, -1]
    with pytest.raises(ValueError, match=r"label_map maps 'dog' to 'wolf', which is not one of the model's classes"):
        load_image_folder(tmp_path, class_names=("cat",), label_map={"dog": "wolf"})


def test_image_folder_mixed_sizes(tmp_path: Path) -> None:
    _write_folder(tmp_path, {"a": (10, 12), "b": (8, 8)})
    with pytest.raises(ValueError, match=r"'a/img0.png' of 10x12 .*'b/img0.png' of 8x8.*pass image_size"):
        load_image_folder(tmp_path)


def test_image_folder_mixed_sizes_resized(tmp_path: Path) -> None:
    _write_folder(tmp_path, {"a": (10, 12), "b": (8, 8)})
    assert load_image_folder(tmp_path, image_size=(6, 7)).images.shape == (4, 3, 6, 7)


def test_image_folder_without_subfolders(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected one subfolder per class"):
        load_image_folder(tmp_path)


def test_image_folder_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="could not read 'cat/broken.png' as an image"):
        load_image_folder(tmp_path)


# --------------------------------------------------------------------------------------- uploads


def test_uploads_converted_and_resized() -> None:
    rgb = np.zeros((20, 30, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    d = load_uploaded_images(
        [("red.png", _png(rgb)), ("grey.png", _png(np.full((5, 5), 128, np.uint8)))], input_shape=(1, 8, 8)
    )
    assert d.images.shape == (2, 1, 8, 8) and d.split == "upload"
    assert d.labels.tolist() == [-1, -1]
    np.testing.assert_allclose(d.images[1].numpy(), 128 / 255, atol=1e-6)
    assert float(d.images[0].std()) < 1e-6  # pure red is one grey level
    rgb_set = load_uploaded_images([("red.png", _png(rgb))], input_shape=(3, 4, 4))
    np.testing.assert_allclose(rgb_set.images[0, :, 0, 0].numpy(), [1.0, 0.0, 0.0], atol=1e-6)


def test_unreadable_upload_names_the_file() -> None:
    with pytest.raises(ValueError, match="could not read 'x.png' as an image: "):
        load_uploaded_images(
            [("ok.png", _png(np.zeros((4, 4), np.uint8))), ("x.png", b"\x89PNG garbage")], input_shape=(1, 4, 4)
        )


def test_upload_bad_channel_count() -> None:
    with pytest.raises(ValueError, match="expected channels 1 .grey. or 3 .RGB., got 4"):
        load_uploaded_images([("ok.png", _png(np.zeros((4, 4), np.uint8)))], input_shape=(4, 4, 4))


# ----------------------------------------------------------------------------------- torchvision


def test_torchvision_offline_error_says_where_to_put_files(tmp_path: Path, offline: None) -> None:
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=r"Put .*into .*MNIST/raw so that it holds: t10k-images-idx3-ubyte"):
        load_dataset("mnist", root=tmp_path)
    assert time.perf_counter() - start < 10


def test_cifar_offline_error(tmp_path: Path, offline: None) -> None:
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py so that it holds: batches.meta, data_batch_1"):
        load_dataset("cifar10", "train", root=tmp_path)


def test_torchvision_no_download(tmp_path: Path, offline: None) -> None:
    with pytest.raises(FileNotFoundError, match=r"'fashion-mnist' is not available .*download=False"):
        load_dataset("fashion-mnist", root=tmp_path, download=False)


def _write_idx(path: Path, array: np.ndarray) -> None:
    dims = struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + dims + array.astype(np.uint8).tobytes())


def test_mnist_from_local_files(tmp_path: Path, offline: None, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train_x = rng.integers(0, 256, (5, 28, 28))
    _write_idx(raw / "train-images-idx3-ubyte", train_x)
    _write_idx(raw / "train-labels-idx1-ubyte", np.array([0, 1, 2, 3, 9]))
    _write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (3, 28, 28)))
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.array([4, 5, 6]))
    monkeypatch.setenv("BOUNDARY_ATLAS_DATA", str(tmp_path))
    assert "mnist" in available_datasets() and "cifar10" not in available_datasets()
    d = load_dataset("mnist", "train")
    assert d.images.shape == (5, 1, 28, 28) and d.images.dtype == torch.float32
    np.testing.assert_allclose(d.images[:, 0].numpy(), train_x / 255.0, atol=1e-6)
    assert d.labels.tolist() == [0, 1, 2, 3, 9] and len(d.class_names) == 10
    assert len(load_dataset("mnist", "all")) == 8
