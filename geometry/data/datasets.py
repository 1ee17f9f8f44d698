"""Datasets: the built-in ones (digits, shapes, 2D toy sets), image folders, uploads, torchvision.

Every loader returns a :class:`Dataset`: images as float32 ``(N, C, H, W)`` in [0, 1] (or
``(N, 2)`` points for the 2D toy sets) with int64 labels. Built-in datasets need nothing from the
internet and are the same on every run (fixed splits and seeds).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from geometry.data.shapes import SHAPE_NAMES, render_shapes, sample_factors
from geometry.data.toy2d import TOY2D_DEFAULT_CLASSES, TOY2D_NAMES, make_toy2d
from geometry.runtime.errors import os_error_sentence

__all__ = [
    "DATASET_DESCRIPTIONS",
    "DATA_ENV_VAR",
    "Dataset",
    "available_datasets",
    "builtin_datasets",
    "default_data_root",
    "load_dataset",
    "load_image_folder",
    "load_uploaded_images",
]

Split = Literal["train", "test", "all"]

DATA_ENV_VAR = "BOUNDARY_ATLAS_DATA"
"""Environment variable naming the root folder of torchvision datasets."""

SHAPES_TRAIN_SEED, SHAPES_TRAIN_N = 1000, 12_000
SHAPES_TEST_SEED, SHAPES_TEST_N = 2000, 2_000
SHAPES_SIZE = 32
TOY_TRAIN_SEED, TOY_TRAIN_N = 0, 800
TOY_TEST_SEED, TOY_TEST_N = 1, 400
DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED = 0.25, 0

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGE_PIXELS = 40_000_000
"""The largest image (width x height) decoded: a bigger one is refused from its header, before its pixels are
decoded (a 144-Mpx PNG costs about 400 MB to decode; a "decompression bomb" far more)."""

DATASET_DESCRIPTIONS: dict[str, str] = {
    "digits": "scikit-learn's 8x8 grey handwritten digits, 10 classes, 1,797 images (fixed 75/25 split).",
    "shapes": "procedural 32x32 RGB shapes (circle, square, triangle, star, cross, ring) on 4 kinds of "
    "background; 12,000 train / 2,000 test.",
    "moons": "2D toy set: two interleaving half circles, 2 classes.",
    "circles": "2D toy set: a small circle inside a large one, 2 classes.",
    "spirals": "2D toy set: interleaved spiral arms, 2..5 classes (spirals-3 for 3 arms; default 2).",
    "blobs": "2D toy set: Gaussian blobs on a circle, 2..5 classes (blobs-4 for 4; default 3).",
    "mnist": "MNIST 28x28 grey handwritten digits (torchvision; local files or download).",
    "fashion-mnist": "Fashion-MNIST 28x28 grey clothing images, 10 classes (torchvision; local files or download).",
    "cifar10": "CIFAR-10 32x32 RGB photos, 10 classes (torchvision; local files or download).",
    "cifar100": "CIFAR-100 32x32 RGB photos, 100 classes (torchvision; local files or download).",
}
"""One line per known dataset name; image folders are loaded as "folder:<path>"."""

_BUILTIN = ("digits", "shapes", *TOY2D_NAMES)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled set of images (or 2D points) in memory."""

    name: str  # e.g. "digits", "shapes", "blobs-4", "folder:/path", "upload"
    split: str  # "train" | "test" | "all" | "upload"
    images: torch.Tensor  # (N, C, H, W) float32 in [0, 1]; 2D toy sets: (N, 2) float32, unbounded
    labels: torch.Tensor  # (N,) int64 class indices, -1 where unknown (uploads)
    class_names: tuple[str, ...]  # index = label
    input_range: tuple[float, float] | None  # (0.0, 1.0) for images, None for 2D toy sets
    warnings: tuple[str, ...] = ()  # what the user should know about the labels (e.g. unmatched folder names)

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor) or self.images.dtype != torch.float32:
            raise TypeError(f"expected images as a float32 tensor, got {_describe(self.images)}")
        if not isinstance(self.labels, torch.Tensor) or self.labels.dtype != torch.int64:
            raise TypeError(f"expected labels as an int64 tensor, got {_describe(self.labels)}")
        expected_dim = 4 if self.input_range is not None else 2
        if self.images.dim() != expected_dim:
            raise ValueError(f"expected images with {expected_dim} dimensions, got shape {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"expected labels of shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}")
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"input_shape={self.input_shape}, classes={len(self.class_names)})"
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input: (C, H, W) for images, (2,) for 2D toy sets."""
        return tuple(int(s) for s in self.images.shape[1:])

    @cached_property
    def fingerprint(self) -> str:
        """16 hex chars of sha256 over the name, the images' and the labels' shapes and bytes."""
        h = hashlib.sha256()
        h.update(self.name.encode())
        for t in (self.images, self.labels):
            h.update(f"|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(memoryview(np.ascontiguousarray(t.detach().cpu().numpy())).cast("B"))
        return h.hexdigest()[:16]

    def subset(self, index: int | slice | Sequence[int] | np.ndarray | torch.Tensor) -> Dataset:
        """The examples at ``index`` (ints, a slice or a boolean mask), as a new Dataset."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        if isinstance(index, slice):
            images, labels = self.images[index], self.labels[index]
        else:
            idx = torch.as_tensor(np.asarray(index))
            if idx.dtype == torch.bool:
                if idx.shape != (len(self),):
                    raise ValueError(f"expected a boolean mask of shape ({len(self)},), got {tuple(idx.shape)}")
                idx = torch.nonzero(idx).flatten()
            elif idx.numel() == 0:
                idx = idx.to(torch.int64)
            elif idx.dtype.is_floating_point or idx.dtype.is_complex:
                raise TypeError(f"expected integer indices or a boolean mask, got dtype {idx.dtype}")
            idx = idx.to(torch.int64).flatten()
            if idx.numel() and (idx.min() < -len(self) or idx.max() >= len(self)):
                raise ValueError(f"expected indices in [0, {len(self)}), got {idx.min()}..{idx.max()}")
            images, labels = self.images[idx], self.labels[idx]
        return Dataset(self.name, self.split, images, labels, self.class_names, self.input_range, self.warnings)

    def indices_of_class(self, c: int) -> np.ndarray:
        """Indices (int64, ascending) of the examples labelled ``c``."""
        return np.flatnonzero(self.labels.numpy() == int(c)).astype(np.int64)


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


# --------------------------------------------------------------------------------------------
# Names


def builtin_datasets() -> list[str]:
    """Names of the datasets that need nothing from the internet."""
    return list(_BUILTIN)


def default_data_root() -> Path:
    """Root folder of torchvision datasets: $BOUNDARY_ATLAS_DATA or ~/.cache/boundary-atlas/data."""
    env = os.environ.get(DATA_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "boundary-atlas" / "data"


def available_datasets(root: str | os.PathLike[str] | None = None) -> list[str]:
    """The built-in names plus the torchvision datasets whose files are present under ``root``."""
    base = Path(root).expanduser() if root is not None else default_data_root()
    found = [name for name, spec in _TORCHVISION.items() if all((base / f).exists() for f in spec.files)]
    return builtin_datasets() + found


def _known_names() -> str:
    return ", ".join([*DATASET_DESCRIPTIONS, "folder:<path>"])


def _parse_name(name: str) -> tuple[str, int | None]:
    """'blobs-4' -> ('blobs', 4); 'shapes' -> ('shapes', None)."""
    base, sep, count = name.rpartition("-")
    if sep and base in TOY2D_NAMES and count.isdigit():
        return base, int(count)
    return name, None


# --------------------------------------------------------------------------------------------
# Loading


def load_dataset(
    name: str,
    split: Split = "test",
    *,
    n: int | None = None,
    seed: int = 0,
    root: str | os.PathLike[str] | None = None,
    image_size: int | None = None,
    download: bool = True,
) -> Dataset:
    """Load dataset ``name`` (see DATASET_DESCRIPTIONS, or "folder:<path>").

    split: "train", "test" or "all" (train then test); image folders have one split, "all".
    n: for generated sets (shapes, toy 2D) the number to generate instead of the default
        (shapes: 12,000 train / 2,000 test from seeds 1000 / 2000; toy sets: 800 / 400 from
        seeds 0 / 1); for stored sets the most to keep, a random subset drawn with ``seed``
        (kept in dataset order).
    root: folder of torchvision datasets (default: default_data_root()).
    image_size: render (shapes) or resize (other image sets) to image_size x image_size.
    download: let torchvision download missing files (only tried when they are not local).
    """
    if not isinstance(name, str):
        raise TypeError(f"expected a dataset name as a str, got {type(name).__name__}")
    if split not in ("train", "test", "all"):
        raise ValueError(f"expected split 'train', 'test' or 'all', got {split!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"expected n as an int >= 1 or None, got {n!r}")
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1
    ):
        raise ValueError(f"expected image_size as an int >= 1 or None, got {image_size!r}")

    if name.startswith("folder:"):
        data = load_image_folder(name[len("folder:") :], image_size=image_size)
        return _take(data, n, seed)
    key = name.strip().lower()
    base, count = _parse_name(key)
    if base in TOY2D_NAMES:
        if image_size is not None:
            raise ValueError(f"expected image_size=None for the 2D toy set {name!r}, got {image_size}")
        return _load_toy(base, count, split, n)
    if base == "shapes":
        return _load_shapes(split, n, image_size or SHAPES_SIZE)
    if base == "digits":
        data = _load_digits(split)
    elif base in _TORCHVISION:
        data = _load_torchvision(base, split, n, seed, root, download)
    else:
        raise ValueError(f"expected a dataset name among {_known_names()}; got {name!r}")
    data = _take(data, n, seed)
    return _resize_dataset(data, image_size) if image_size is not None else data


def _splits(split: str) -> tuple[str, ...]:
    return ("train", "test") if split == "all" else (split,)


def _take(data: Dataset, n: int | None, seed: int) -> Dataset:
    """At most n examples: a seeded random subset, in dataset order."""
    if n is None or n >= len(data):
        return data
    keep = np.sort(np.random.default_rng(seed).permutation(len(data))[:n])
    return data.subset(keep)


def _load_toy(base: str, count: int | None, split: str, n: int | None) -> Dataset:
    classes = TOY2D_DEFAULT_CLASSES[base] if count is None else count
    parts = []
    for s in _splits(split):
        seed, default_n = (TOY_TRAIN_SEED, TOY_TRAIN_N) if s == "train" else (TOY_TEST_SEED, TOY_TEST_N)
        parts.append(make_toy2d(base, n or default_n, seed=seed, classes=classes))
    points = np.concatenate([p for p, _ in parts])
    labels = np.concatenate([y for _, y in parts])
    name = base if count is None else f"{base}-{count}"
    return Dataset(
        name=name,
        split=split,
        images=torch.from_numpy(points),
        labels=torch.from_numpy(labels),
        class_names=tuple(f"class {i}" for i in range(classes)),
        input_range=None,
    )


def _load_shapes(split: str, n: int | None, size: int) -> Dataset:
    if size < 8:
        raise ValueError(f"expected image_size >= 8 for shapes, got {size}")
    factors = []
    for s in _splits(split):
        seed, default_n = (SHAPES_TRAIN_SEED, SHAPES_TRAIN_N) if s == "train" else (SHAPES_TEST_SEED, SHAPES_TEST_N)
        factors += sample_factors(n or default_n, seed=seed)
    return Dataset(
        name="shapes",
        split=split,
        images=render_shapes(factors, size=size),
        labels=torch.tensor([f.shape for f in factors], dtype=torch.int64),
        class_names=SHAPE_NAMES,
        input_range=(0.0, 1.0),
    )


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(images (N,1,8,8) float32 in [0,1], labels int64, train indices, test indices), read-only."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    train, test = train_test_split(
        np.arange(len(y)), test_size=DIGITS_TEST_FRACTION, stratify=y, random_state=DIGITS_SPLIT_SEED
    )
    arrays = (x, y, np.sort(train), np.sort(test))
    for a in arrays:
        a.setflags(write=False)
    return arrays


def _load_digits(split: str) -> Dataset:
    x, y, train, test = _digits_arrays()
    idx = {"train": train, "test": test, "all": np.concatenate([train, test])}[split]
    return Dataset(
        name="digits",
        split=split,
        images=torch.from_numpy(x[idx].copy()),
        labels=torch.from_numpy(y[idx].copy()),
        class_names=tuple(str(i) for i in range(10)),
        input_range=(0.0, 1.0),
    )


def _resize_dataset(data: Dataset, size: int) -> Dataset:
    if data.input_range is None or tuple(data.images.shape[2:]) == (size, size):
        return data
    images = torch.nn.functional.interpolate(
        data.images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    ).clamp_(0.0, 1.0)
    return Dataset(data.name, data.split, images, data.labels, data.class_names, data.input_range, data.warnings)


# --------------------------------------------------------------------------------------------
# torchvision datasets


@dataclass(frozen=True)
class _TorchvisionSpec:
    cls: str  # class name in torchvision.datasets
    files: tuple[str, ...]  # paths relative to root that torchvision needs (download=False)
    archive: str  # where to get them


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_TORCHVISION: dict[str, _TorchvisionSpec] = {
    "mnist": _TorchvisionSpec(
        "MNIST",
        tuple(f"MNIST/raw/{f}" for f in _MNIST_FILES),
        "the four MNIST files (from yann.lecun.com/exdb/mnist, gunzipped)",
    ),
    "fashion-mnist": _TorchvisionSpec(
        "FashionMNIST",
        tuple(f"FashionMNIST/raw/{f}" for f in _MNIST_FILES),
        "the four Fashion-MNIST files (from github.com/zalandoresearch/fashion-mnist, gunzipped)",
    ),
    "cifar10": _TorchvisionSpec(
        "CIFAR10",
        tuple(
            f"cifar-10-batches-py/{f}"
            for f in (
                "data_batch_1",
                "data_batch_2",
                "data_batch_3",
                "data_batch_4",
                "data_batch_5",
                "test_batch",
                "batches.meta",
            )
        ),
        "the files of cifar-10-python.tar.gz (from www.cs.toronto.edu/~kriz/cifar.html, extracted)",
    ),
    "cifar100": _TorchvisionSpec(
        "CIFAR100",
        tuple(f"cifar-100-python/{f}" for f in ("train", "test", "meta")),
        "the files of cifar-100-python.tar.gz (from www.cs.toronto.edu/~kriz/cifar.html, extracted)",
    ),
}


def _missing_message(name: str, root: Path, reason: str) -> str:
    spec = _TORCHVISION[name]
    folders = sorted({str(root / Path(f).parent) for f in spec.files})
    files = sorted({Path(f).name for f in spec.files})
    return (
        f"dataset {name!r} is not available under {root} and could not be downloaded ({reason}). "
        f"Put {spec.archive} into {' and '.join(folders)} so that it holds: {', '.join(files)}; "
        f"or point root (or ${DATA_ENV_VAR}) at the folder that already holds {Path(spec.files[0]).parts[0]}/."
    )


def _open_torchvision(name: str, root: Path, train: bool, download: bool) -> object:
    import torchvision.datasets as tvd

    cls = getattr(tvd, _TORCHVISION[name].cls)
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError as missing:
        if not download:
            raise FileNotFoundError(_missing_message(name, root, f"download=False; {missing}")) from None
    try:
        return cls(str(root), train=train, download=True)
    except Exception as failed:  # offline, proxy, checksum, disk: all mean "put the files there"
        reason = " ".join(str(failed).split())[:300] or type(failed).__name__
        raise FileNotFoundError(_missing_message(name, root, reason)) from failed


def _load_torchvision(
    name: str, split: str, n: int | None, seed: int, root: str | os.PathLike[str] | None, download: bool
) -> Dataset:
    base = Path(root).expanduser() if root is not None else default_data_root()
    datas, targets, classes = [], [], None
    for s in _splits(split):
        ds = _open_torchvision(name, base, s == "train", download)
        data = torch.as_tensor(np.asarray(ds.data))  # type: ignore[attr-defined]  # uint8 (N,H,W[,3])
        datas.append(data)
        targets.append(torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64))  # type: ignore[attr-defined]
        classes = tuple(ds.classes)  # type: ignore[attr-defined]
    data, labels = torch.cat(datas), torch.cat(targets)
    if n is not None and n < len(labels):  # subsample before converting to float
        keep = torch.from_numpy(np.sort(np.random.default_rng(seed).permutation(len(labels))[:n]))
        data, labels = data[keep], labels[keep]
    images = data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2)
    return Dataset(
        name=name,
        split=split,
        images=images.contiguous().to(torch.float32).div_(255.0),
        labels=labels,
        class_names=classes or (),
        input_range=(0.0, 1.0),
    )


# --------------------------------------------------------------------------------------------
# Image folders and uploads


def _size_hw(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        hw = (int(image_size), int(image_size))
    else:
        try:
            hw = tuple(int(s) for s in image_size)  # type: ignore[union-attr]
        except TypeError:
            raise TypeError(f"expected image_size as an int or (height, width), got {image_size!r}") from None
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"expected image_size as an int >= 1 or (height, width), got {image_size!r}")
    return hw  # type: ignore[return-value]


def _channels_mode(channels: int | None) -> str:
    if channels in (None, 3):
        return "RGB"
    if channels == 1:
        return "L"
    raise ValueError(f"expected channels 1 (grey) or 3 (RGB), got {channels!r}")


def _check_pixels(image: object, name: str) -> None:
    """ValueError when the (not yet decoded) image is larger than `MAX_IMAGE_PIXELS`."""
    width, height = image.size  # type: ignore[attr-defined]
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(
            f"{name!r} is {width}x{height} pixels ({width * height / 1e6:.0f} Mpx); images of up to "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} Mpx are read: shrink it first"
        )


def _open_image(source: object, name: str, mode: str, hw: tuple[int, int] | None) -> np.ndarray:
    """Decode one image file (a path or a file object) with `_to_array`; ValueError with a sentence otherwise."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # `_check_pixels` says it in words
            with Image.open(source) as img:  # type: ignore[arg-type]
                _check_pixels(img, name)
                return _to_array(img, mode, hw)
    except Image.DecompressionBombError:  # so large that PIL refuses to open it at all
        raise ValueError(
            f"{name!r} has far more than {MAX_IMAGE_PIXELS / 1e6:.0f} Mpx (the most that is read): shrink it first"
        ) from None
    except ValueError as err:
        if str(err).startswith(repr(name)):
            raise
        raise ValueError(f"could not read {name!r} as an image: {err}") from None
    except OSError as err:
        if err.errno is not None:  # the file itself could not be read (PIL's own errors carry no errno)
            raise ValueError(os_error_sentence(err, "read the image", name)) from None
        raise ValueError(f"could not read {name!r} as an image: {err}") from None
    except Exception as err:  # PIL raises many kinds on damaged files, and a DecompressionBomb* on huge ones
        raise ValueError(f"could not read {name!r} as an image: {err}") from None


def _to_array(image: object, mode: str, hw: tuple[int, int] | None) -> np.ndarray:
    """A PIL image -> float32 (C, H, W) in [0, 1], converted to ``mode``, resized to hw=(H, W)."""
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(image)  # type: ignore[arg-type]
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greys: scale to 8 bit first
        img = Image.fromarray((np.asarray(img, dtype=np.float64) / 257.0).clip(0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "P", "PA") and mode == "RGB":
        img = img.convert("RGBA")  # composite transparency over white rather than black
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img)
    img = img.convert(mode)
    if hw is not None and (img.height, img.width) != hw:
        img = img.resize((hw[1], hw[0]), Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_image_folder(
    path: str | os.PathLike[str],
    *,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    class_names: Sequence[str] | None = None,
    label_map: Mapping[str, str | int | None] | None = None,
) -> Dataset:
    """Images in ``path/<class name>/*.png|jpg|jpeg``.

    Without ``class_names`` the classes are the sorted subfolder names, labels their positions. With
    ``class_names`` (the model's classes) the labels are indices into them, matched BY NAME (case and
    surrounding spaces aside), never by position: a folder whose name is not a class of the model is
    unlabelled (-1) and ``Dataset.warnings`` says so, unless ``label_map`` maps it to one of
    ``class_names`` (a name or index), or to None to leave it unlabelled on purpose.

    Images are converted to RGB (channels None or 3) or grey (channels=1) and resized to
    image_size (int or (H, W)) if given; otherwise they must all have one size. Returns a
    Dataset named "folder:<path>", split "all", images (N, C, H, W) float32 in [0, 1].
    """
    folder = Path(path).expanduser()
    try:
        return _load_image_folder(folder, image_size, channels, class_names, label_map)
    except OSError as err:  # a folder the server may not read, a path through a file: a sentence, never a listing
        raise ValueError(os_error_sentence(err, "read the image folder", folder)) from None


def _load_image_folder(
    folder: Path,
    image_size: int | tuple[int, int] | None,
    channels: int | None,
    class_names: Sequence[str] | None,
    label_map: Mapping[str, str | int | None] | None,
) -> Dataset:
    if not folder.is_dir():
        raise ValueError(f"expected a folder with one subfolder per class, got {str(folder)!r} (not a folder)")
    hw = _size_hw(image_size)
    mode = _channels_mode(channels)
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"expected one subfolder per class in {str(folder)!r}, found no subfolders")
    if class_names is None:
        if label_map is not None:
            raise ValueError("label_map maps folders to the model's classes: pass class_names too")
        label_of, warnings = {cls: i for i, cls in enumerate(classes)}, ()
    else:
        label_of, warnings = _labels_by_name(classes, tuple(class_names), dict(label_map or {}))
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    first: tuple[str, tuple[int, ...]] | None = None
    for cls in classes:
        label = label_of[cls]
        files = sorted(f for f in (folder / cls).iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        for f in files:
            rel = f"{cls}/{f.name}"
            arr = _open_image(f, rel, mode, hw)
            if first is None:
                first = (rel, arr.shape)
            elif arr.shape != first[1]:
                raise ValueError(
                    f"expected images of one size, got {first[0]!r} of {_hw(first[1])} and {rel!r} of "
                    f"{_hw(arr.shape)}; pass image_size to resize them to one size"
                )
            arrays.append(arr)
            labels.append(label)
    if not arrays:
        raise ValueError(
            f"expected .png/.jpg/.jpeg images in the class subfolders of {str(folder)!r} "
            f"({', '.join(classes)}), found none"
        )
    return Dataset(
        name=f"folder:{folder}",
        split="all",
        images=torch.from_numpy(np.stack(arrays)),
        labels=torch.tensor(labels, dtype=torch.int64),
        class_names=tuple(classes) if class_names is None else tuple(class_names),
        input_range=(0.0, 1.0),
        warnings=warnings,
    )


def _labels_by_name(
    folders: Sequence[str], class_names: tuple[str, ...], label_map: dict[str, str | int | None]
) -> tuple[dict[str, int], tuple[str, ...]]:
    """Each folder's label: its ``label_map`` entry, else the class of the same name (case-insensitive), else -1;
    plus a warning naming the folders that matched no class."""
    index = {}
    for i, name in enumerate(class_names):
        index.setdefault(name.strip().casefold(), i)
    unknown_keys = sorted(set(label_map) - set(folders))
    if unknown_keys:
        raise ValueError(f"label_map names {', '.join(map(repr, unknown_keys))}, which are not subfolders here")
    label_of, unmatched = {}, []
    for folder in folders:
        if folder in label_map:
            target = label_map[folder]
            if target is None:
                label_of[folder] = -1
            elif isinstance(target, (int, np.integer)) and not isinstance(target, bool):
                if not 0 <= int(target) < len(class_names):
                    raise ValueError(f"label_map maps {folder!r} to class {target}, outside 0..{len(class_names) - 1}")
                label_of[folder] = int(target)
            elif str(target).strip().casefold() in index:
                label_of[folder] = index[str(target).strip().casefold()]
            else:
                raise ValueError(f"label_map maps {folder!r} to {target!r}, which is not one of the model's classes")
        elif folder.strip().casefold() in index:
            label_of[folder] = index[folder.strip().casefold()]
        else:
            label_of[folder] = -1
            unmatched.append(folder)
    if not unmatched:
        return label_of, ()
    shown = ", ".join(class_names[:8]) + (", …" if len(class_names) > 8 else "")
    return label_of, (
        f"{len(unmatched)} of {len(folders)} folders match none of the model's classes by name "
        f"({', '.join(map(repr, unmatched))}; the model's classes: {shown}): their images are unlabelled. "
        f"Map them with label_map={{folder: class}} (in the app: the 'Folder = model class' field) if they are "
        f"the same classes under other names.",
    )


def _hw(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[2]} pixels (HxW)"


def load_uploaded_images(
    files: Sequence[tuple[str, bytes]],
    *,
    input_shape: tuple[int, int, int],
    class_names: Sequence[str] = (),
) -> Dataset:
    """Uploaded PNG/JPEG files ``(filename, bytes)`` as a Dataset shaped for a model.

    Each image is converted to C channels (1: grey, 3: RGB) and resized to (H, W) from
    ``input_shape = (C, H, W)``. Returns name "upload", split "upload", labels -1, images
    (N, C, H, W) float32 in [0, 1]; ``class_names`` (e.g. the model's) is carried along.
    """
    try:
        c, h, w = (int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"expected input_shape as (C, H, W), got {input_shape!r}") from None
    mode = _channels_mode(c)
    if h < 1 or w < 1:
        raise ValueError(f"expected input_shape with H, W >= 1, got {input_shape!r}")
    if isinstance(files, (bytes, str)) or not files:
        raise ValueError("expected a non-empty sequence of (filename, bytes) uploads, got none")
    arrays = []
    for item in files:
        try:
            filename, content = item
        except (TypeError, ValueError):
            raise TypeError(f"expected uploads as (filename, bytes) pairs, got {type(item).__name__}") from None
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise TypeError(f"expected the bytes of {filename!r}, got {type(content).__name__}")
        arrays.append(_open_image(io.BytesIO(bytes(content)), str(filename), mode, (h, w)))
    return Dataset(
        name="upload",
        split="upload",
        images=torch.from_numpy(np.stack(arrays)),
        labels=torch.full((len(arrays),), -1, dtype=torch.int64),
        class_names=tuple(class_names),
        input_range=(0.0, 1.0),
    )
