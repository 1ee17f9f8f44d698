"""Bad inputs of every kind, made on the fly in a folder: checkpoints, model cards, TorchScript archives, images.

Shared by the library table (test_library_cases.py) and the UI table (test_ui_cases.py): each maker writes its file
into ``folder`` and returns its path.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import torch
from torch import nn

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "models"
DIGITS = "digits-cnn-relu"  # a small built-in model: 1x8x8 inputs, 10 classes


def builtin_weights(folder: Path, name: str = "weights.safetensors") -> Path:
    """A copy of the built-in digits CNN's weights, without its card."""
    path = folder / name
    shutil.copy(ASSETS / f"{DIGITS}.safetensors", path)
    return path


def with_card(folder: Path, card: object, *, raw: bytes | None = None) -> Path:
    """The digits CNN's weights with a model card beside them (``card`` as JSON, or ``raw`` bytes)."""
    weights = builtin_weights(folder, "carded.safetensors")
    text = raw if raw is not None else json.dumps(card).encode()
    weights.with_suffix(".json").write_bytes(text)
    return weights


def good_card() -> dict:
    return json.loads((ASSETS / f"{DIGITS}.json").read_text())


def card_without(field: str) -> dict:
    card = good_card()
    del card[field]
    return card


def card_with(**changes: object) -> dict:
    return {**good_card(), **changes}


def truncated(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def state_dict_pt(folder: Path, name: str = "weights.pt") -> Path:
    from safetensors.torch import load_file

    path = folder / name
    torch.save(load_file(str(ASSETS / f"{DIGITS}.safetensors")), path)
    return path


class _Payload:
    """Unpickling this would run ``print``: a stand-in for a malicious pickle."""

    def __reduce__(self):  # noqa: ANN204
        return (print, ("PAYLOAD RAN",))


def pickle_with_payload(folder: Path) -> Path:
    path = folder / "evil.pt"
    torch.save({"weight": torch.zeros(2), "extra": _Payload()}, path)
    return path


def plain_pickle(folder: Path) -> Path:
    path = folder / "plain.pkl.pt"
    path.write_bytes(pickle.dumps({"a": [1, 2, 3]}))
    return path


class _Returns(nn.Module):
    """A network whose output is ``kind``: "1d" (K,), "0d" (), "3d" (N, K, 2), "one" (N, 1), "nan", "ok"."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.lin = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lin(x.flatten(1))
        if self.kind == "1d":
            return z.sum(0)
        if self.kind == "0d":
            return z.sum()
        if self.kind == "3d":
            return torch.stack([z, z], dim=2)
        if self.kind == "one":
            return z[:, :1]
        if self.kind == "nan":
            return z * float("nan")
        return z


def torchscript(folder: Path, kind: str) -> Path:
    """A TorchScript archive of `_Returns` (``kind``) for 1x8x8 inputs."""
    path = folder / f"{kind}.ts"
    torch.jit.save(torch.jit.script(_Returns(kind).eval()), str(path))
    return path


def module(kind: str) -> nn.Module:
    return _Returns(kind).eval()


def png_bytes(width: int = 8, height: int = 8, mode: str = "L") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, (width, height), 128).save(buf, format="PNG")
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's header; the pixel data
    is tiny and would not decode: only the size check must refuse it)."""
    data = bytearray(png_bytes(8, 8))
    # IHDR: 8-byte signature, 4-byte length, b"IHDR", width, height, ... then the chunk's CRC
    struct.pack_into(">II", data, 16, width, height)
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF
    struct.pack_into(">I", data, 29, crc)
    return bytes(data)


def image_folder(folder: Path, classes: dict[str, list[bytes]]) -> Path:
    root = folder / "images"
    for cls, images in classes.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(images):
            (root / cls / f"{i}.png").write_bytes(data)
    root.mkdir(exist_ok=True)
    return root
