"""Bad inputs to the library, as a table: each input -> the sentence it must get (issue 14, items 4 and 5).

Every case must raise the named error (ValueError unless said) whose message matches the expected pattern, names
what is wrong in words, and carries no traceback text, errno or Python-internal exception (KeyError, IndexError,
AttributeError, JSONDecodeError) instead.
"""

from __future__ import annotations

import io
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import geometry
from geometry.models.handle import ModelHandle, NonFiniteOutputError
from geometry.runtime.budget import OverBudgetError
from geometry.runtime.paths import check_allowed_path
from geometry.slices.planes import random_plane
from tests.reliability import inputs as make


@dataclass(frozen=True)
class Case:
    run: Callable[[Path], object]  # does the bad thing with files made in the folder it gets
    expected: str  # a regex the message must match
    error: type[Exception] = ValueError


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _load(path_of: Callable[[Path], Path], **options: object) -> Callable[[Path], object]:
    return lambda d: geometry.load_model(path_of(d), device="cpu", **options)


def _digits_logits(x: torch.Tensor) -> Callable[[Path], object]:
    return lambda d: geometry.load_model(make.DIGITS, device="cpu").logits(x)


def _upload(*files: tuple[str, object], shape: tuple[int, int, int] = (1, 8, 8)) -> Callable[[Path], object]:
    return lambda d: geometry.load_uploaded_images(list(files), input_shape=shape)


def _folder(classes: dict[str, list[bytes]], **options: object) -> Callable[[Path], object]:
    return lambda d: geometry.load_image_folder(make.image_folder(d, classes), **options)


def _handle(kind: str, **options: object) -> Callable[[Path], object]:
    return lambda d: ModelHandle.from_module(make.module(kind), input_shape=(1, 8, 8), device="cpu", **options)


class _SlowLinear(torch.nn.Module):
    """A linear classifier taking 1 ms per input: its time estimates are over any budget on any machine."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(1e-3 * len(x))
        return self.linear(x.flatten(1))


def _slow(shape: tuple[int, int, int] = (1, 8, 8)) -> ModelHandle:
    return ModelHandle.from_module(_SlowLinear(math.prod(shape)), input_shape=shape, device="cpu")


CASES: dict[str, Case] = {
    # -- checkpoints ---------------------------------------------------------------------------------------------
    "truncated safetensors": Case(
        _load(lambda d: make.truncated(make.builtin_weights(d)), arch="cnn"), r"is not a readable safetensors"
    ),
    "empty safetensors": Case(
        _load(lambda d: _write(d / "empty.safetensors", b""), arch="cnn"),
        r"empty\.safetensors is not a readable safetensors checkpoint",
    ),
    "garbage .pt": Case(
        _load(lambda d: _write(d / "junk.pt", os.urandom(256)), arch="cnn"),
        r"junk\.pt is not a PyTorch checkpoint",
    ),
    "truncated .pt": Case(
        _load(lambda d: make.truncated(make.state_dict_pt(d)), arch="cnn"), r"weights\.pt is not a PyTorch checkpoint"
    ),
    "pickle with a payload": Case(
        _load(make.pickle_with_payload, arch="cnn"), r"evil\.pt contains Python objects beyond tensors.*never unpickles"
    ),
    "a pickle that is no state dict": Case(
        _load(make.plain_pickle, arch="cnn"), r"plain\.pkl\.pt is not a PyTorch checkpoint \(it is a pickle"
    ),
    "weights of another architecture": Case(
        _load(make.builtin_weights, arch="mlp", input_shape=(1, 8, 8), arch_options={"activation": "relu"}),
        r"does not match the architecture MLP: 10 unexpected keys",
    ),
    "built-in architecture, options not stated": Case(
        _load(make.builtin_weights, arch="cnn", input_shape=(1, 8, 8)), r"does not record its activation"
    ),
    "state dict without an architecture": Case(
        _load(make.builtin_weights), r"holds a state dict \(weights only\): say which architecture"
    ),
    "torchvision weights that do not fit": Case(
        _load(make.state_dict_pt, arch="resnet18"), r"does not match the architecture ResNet"
    ),
    "no such file": Case(_load(lambda d: d / "missing.safetensors"), r"no such model file", FileNotFoundError),
    "unknown model name": Case(
        lambda d: geometry.load_model("resnet-19", device="cpu"), r"unknown model or architecture 'resnet-19'"
    ),
    "arch_options for a torchvision model": Case(
        _load(make.builtin_weights, arch="resnet18", arch_options={"activation": "silu"}),
        r"arch_options are the options of a built-in architecture",
    ),
    "resize of zero pixels": Case(_load(make.builtin_weights, arch="cnn", resize=0), r"resize must be a size"),
    # -- model cards ---------------------------------------------------------------------------------------------
    "card without input_shape": Case(
        _load(lambda d: make.with_card(d, make.card_without("input_shape"))),
        r"model card carded\.json lacks input_shape: input_shape is the input's shape",
    ),
    "card without class_names": Case(
        _load(lambda d: make.with_card(d, make.card_without("class_names"))), r"carded\.json lacks class_names"
    ),
    "card that is a JSON list": Case(
        _load(lambda d: make.with_card(d, [1, 2, 3])), r"carded\.json is a JSON list, expected an object"
    ),
    "card that is not JSON": Case(
        _load(lambda d: make.with_card(d, None, raw=b"{input_shape: [1, 8, 8]")), r"carded\.json is not valid JSON"
    ),
    "card that is binary": Case(
        _load(lambda d: make.with_card(d, None, raw=b"\xff\xfe\x00\x81" * 8)), r"carded\.json is not a text file"
    ),
    "card with a zero in input_shape": Case(
        _load(lambda d: make.with_card(d, make.card_with(input_shape=[1, 0, 8]))),
        r"damaged: input_shape is \[1, 0, 8\]",
    ),
    "card with class_names as text": Case(
        _load(lambda d: make.with_card(d, make.card_with(class_names="0123456789"))), r"damaged: class_names is"
    ),
    "card with a zero std": Case(
        _load(lambda d: make.with_card(d, make.card_with(std=[0.0]))), r"std is \[0\.0\], expected positive numbers"
    ),
    "card with a reversed input_range": Case(
        _load(lambda d: make.with_card(d, make.card_with(input_range=[1, 0]))), r"input_range is \[1, 0\]"
    ),
    "card with options that are a list": Case(
        _load(lambda d: make.with_card(d, make.card_with(architecture_options=["silu"]))),
        r"architecture_options is \['silu'\], expected an object",
    ),
    # -- what a model returns ------------------------------------------------------------------------------------
    "TorchScript with a 1-D output": Case(
        _load(lambda d: make.torchscript(d, "1d"), input_shape=(1, 8, 8)),
        r"1d\.ts is not a classifier .*returned a tensor of shape \(10,\), expected logits of shape \(2, K\)",
    ),
    "TorchScript with a 0-D output": Case(
        _load(lambda d: make.torchscript(d, "0d"), input_shape=(1, 8, 8)), r"returned a tensor of shape \(\)"
    ),
    "TorchScript with a 3-D output": Case(
        _load(lambda d: make.torchscript(d, "3d"), input_shape=(1, 8, 8)), r"returned a tensor of shape \(2, 10, 2\)"
    ),
    "a module with one logit": Case(_handle("one"), r"returned a tensor of shape \(2, 1\), expected .*K >= 2"),
    "TorchScript refused for uploads": Case(
        _load(lambda d: make.torchscript(d, "ok"), input_shape=(1, 8, 8), allow_code=False),
        r"ok\.ts is a TorchScript archive, and loading one runs the code inside it",
    ),
    "TorchScript without input_shape": Case(
        _load(lambda d: make.torchscript(d, "ok")), r"TorchScript archive: give its input_shape"
    ),
    "TorchScript given the wrong input shape": Case(
        _load(lambda d: make.torchscript(d, "ok"), input_shape=(3, 32, 32)),
        r"does not accept inputs of shape \(N, 3, 32, 32\)",
    ),
    "class names that do not match the logits": Case(
        _handle("ok", class_names=("a", "b", "c")), r"returns 10 logits per input, but 3 classes were given"
    ),
    "a model that returns NaN": Case(
        lambda d: ModelHandle.from_module(make.module("nan"), input_shape=(1, 8, 8), device="cpu").logits(
            torch.rand(2, 1, 8, 8)
        ),
        r"returned NaN or infinite logits for 2 of 2 inputs",
        NonFiniteOutputError,
    ),
    # -- inputs --------------------------------------------------------------------------------------------------
    "uint8 images": Case(
        _digits_logits(torch.full((2, 1, 8, 8), 200, dtype=torch.uint8)), r"torch\.uint8 values up to 200 \(0-255"
    ),
    "float images in 0-255": Case(
        _digits_logits(torch.randint(0, 256, (2, 1, 8, 8)).float()), r"whole numbers up to .*divide them by 255"
    ),
    "images of the wrong size": Case(
        _digits_logits(torch.rand(2, 3, 32, 32)), r"expects inputs of shape \(N, 1, 8, 8\), got \(2, 3, 32, 32\)"
    ),
    "a list instead of a tensor": Case(
        lambda d: geometry.load_model(make.DIGITS, device="cpu").logits([[0.0]]), r"expected a torch\.Tensor", TypeError
    ),
    # -- uploads and folders -------------------------------------------------------------------------------------
    "an upload that is not an image": Case(
        _upload(("notes.png", b"hello")), r"could not read 'notes\.png' as an image"
    ),
    "a truncated PNG": Case(
        _upload(("cut.png", make.png_bytes(64, 64)[:60])), r"could not read 'cut\.png' as an image"
    ),
    "a 144-Mpx decompression bomb": Case(
        _upload(("bomb.png", make.png_claiming(12000, 12000))), r"'bomb\.png' is 12000x12000 pixels \(144 Mpx\)"
    ),
    "a 50-Mpx image": Case(_upload(("big.png", make.png_claiming(10000, 5000))), r"\(50 Mpx\); images of up to 40"),
    "a 1-Gpx decompression bomb": Case(
        _upload(("huge.png", make.png_claiming(40000, 25000))), r"'huge\.png' has far more than 40 Mpx"
    ),
    "an upload that is not bytes": Case(_upload(("x.png", 42)), r"expected the bytes of 'x\.png'", TypeError),
    "no uploads": Case(_upload(), r"expected a non-empty sequence of \(filename, bytes\) uploads"),
    "a folder without class folders": Case(_folder({}), r"found no subfolders"),
    "a folder of images of two sizes": Case(
        _folder({"a": [make.png_bytes(8, 8)], "b": [make.png_bytes(9, 9)]}), r"expected images of one size"
    ),
    "a folder with a broken image": Case(_folder({"a": [b"junk"]}), r"could not read 'a/0\.png' as an image"),
    "a file named as a folder": Case(
        lambda d: geometry.load_image_folder(make.builtin_weights(d)), r"expected a folder .*\(not a folder\)"
    ),
    "a path outside the allowed roots": Case(
        lambda d: check_allowed_path("/etc/ssl"), r"'/etc/ssl' is outside the folders this server lets the app read"
    ),
    "a link the server may not follow": Case(
        lambda d: check_allowed_path("/proc/1/cwd"),
        r"'/proc/1/cwd'( is outside the folders this server lets|: the server may not read it)",
    ),
    # -- options -------------------------------------------------------------------------------------------------
    "curvature k of 0": Case(lambda d: geometry.CurvatureOptions(k=0), r"expected k as an int >= 1, got 0"),
    "a slice of 1 point": Case(lambda d: geometry.SliceOptions(extent=1.0, resolution=1), r"resolution"),
    "an unknown data set": Case(lambda d: geometry.load_dataset("digitz"), r"expected a dataset name among"),
    "an unknown split": Case(lambda d: geometry.load_dataset("digits", split="val"), r"expected split 'train'"),
    # -- requests over the budget (checked before any work; geometry.runtime.budget) --------------------------------
    "a dense 4096 x 4096 slice": Case(
        lambda d: geometry.evaluate_slice(
            _slow(), random_plane(torch.rand(1, 8, 8), seed=0), extent=1.0, resolution=4096, adaptive=False
        ),
        r"a dense slice of 4096 x 4096 points needs 16\.8 M model evaluations, about [\d.]+ h here, more than the "
        r"budget of 10 min .*: lower the resolution or turn on adaptive refinement",
        OverBudgetError,
    ),
    "shapes at 4096 pixels": Case(
        lambda d: geometry.load_dataset("shapes", split="test", image_size=4096),
        r"2,000 shape images of 4096 x 4096 pixels needs 375 GiB of memory, more than .*lower the image size",
        OverBudgetError,
    ),
    "ten million random directions for curvature": Case(
        lambda d: geometry.boundary_curvature(_slow((3, 32, 32)), torch.rand(1, 3, 32, 32), num_random=10**7),
        r"curvature along 10,000,000 random directions at 1 image of 3,072 dimensions needs 30\.0 M model "
        r"evaluations, about [\d.]+ h here.*: ask for fewer random directions",
        OverBudgetError,
    ),
    "frequency margins of 20,000 images x 8 subspaces": Case(
        lambda d: geometry.frequency_margins(_slow(), torch.rand(20_000, 1, 8, 8), num_random=1, full=False),
        r"frequency margins of 20,000 images in 8 subspaces \(7 bands, 1 random\) needs 5\.3 M model evaluations, "
        r"about .* here, more than the budget of 10 min .*: use fewer images, bands or random subspaces",
        OverBudgetError,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_input_gets_a_sentence(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    with pytest.raises(case.error) as caught:
        case.run(tmp_path)
    message = str(caught.value)
    assert type(caught.value) is case.error or isinstance(caught.value, case.error)
    assert re.search(case.expected, message, flags=re.S), message
    assert "Traceback" not in message and "[Errno" not in message
    assert "PAYLOAD RAN" not in capsys.readouterr().out, "a pickle's payload never runs"


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 30


def test_a_folder_the_server_may_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc/1/cwd in the issue; here a folder whose listing the OS refuses (tests may run as root)."""
    folder = make.image_folder(tmp_path, {"secret-class": [make.png_bytes()]})

    def refuse(self: Path):  # noqa: ANN202
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", refuse)
    with pytest.raises(ValueError) as caught:
        geometry.load_image_folder(folder)
    message = str(caught.value)
    assert message == f"could not read the image folder {str(folder)!r}: the server may not read it (permission denied)"
    assert "secret-class" not in message


def test_an_error_never_lists_a_folder_outside_the_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = make.image_folder(tmp_path, {"private-name": [make.png_bytes()]})
    monkeypatch.setenv("BOUNDARY_ATLAS_ALLOWED_ROOTS", str(tmp_path / "allowed"))
    with pytest.raises(ValueError) as caught:
        check_allowed_path(outside / "private-name")
    assert "private-name/" not in str(caught.value).replace(str(outside / "private-name"), "")
    assert "0.png" not in str(caught.value)


def test_a_failed_load_is_remembered_until_the_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from geometry.models import loading

    path = make.with_card(tmp_path, make.card_without("input_shape"))
    calls: list[Path] = []
    real = loading._load_file
    monkeypatch.setattr(loading, "_load_file", lambda p, **kw: calls.append(p) or real(p, **kw))
    for _ in range(3):
        with pytest.raises(ValueError, match="lacks input_shape"):
            geometry.load_model(path, device="cpu")
    assert len(calls) == 1, "a rerun does not read the same failing file again"
    path.with_suffix(".json").write_text(io.StringIO().getvalue() or '{"fixed": false}')  # the card changes
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # and the weights file is touched
    with pytest.raises(ValueError):
        geometry.load_model(path, device="cpu")
    assert len(calls) == 2, "a changed file is read again"
