"""Loading classifiers: built-in models, torchvision / timm / Hugging Face architectures, state dicts, TorchScript and
``torch.export`` archives.

Nothing here unpickles arbitrary objects: state dicts go through safetensors or
``torch.load(weights_only=True)``, and a file that needs more is refused with an explanation.
TorchScript archives are the exception that must be named: an archive is a program, and loading
it runs the code inside it (``allow_code=False`` refuses them; the app does so for uploads unless
the operator sets ``BOUNDARY_ATLAS_ALLOW_CODE=1``). A ``torch.export`` archive (``.pt2``) is a graph of
tensor operations, not arbitrary Python, but loading one still deserialises what its author wrote, so it is
treated the same way. timm and Hugging Face models load through `geometry.models.hub`.

The model measured is the model given: a weights file of a built-in architecture records every
architecture option in its safetensors metadata (`save_model`, `architecture_metadata`), and one
that does not is refused until the caller states the options its weights cannot reveal
(activation, pooling); nothing is resized unless asked, and `ModelHandle.pipeline` says what is done.
"""

from __future__ import annotations

import difflib
import os
import pickle
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geometry.models.architectures import (
    ARCHITECTURES,
    architecture_options,
    build_architecture,
)
from geometry.models.cards import (
    ASSETS,
    METADATA_KEY,
    _card_object,
    _options_from_weights,
    builtin_models,
    check_card,
    model_card,
    read_architecture_metadata,
    user_models,
    user_models_dir,
)
from geometry.models.handle import ModelHandle
from geometry.runtime.errors import os_error_sentence
from geometry.runtime.paths import ALLOW_CODE_ENV

IMAGENET_PRESET_NOTE = "torchvision's ImageNet preset, not stated"


def torchvision_architectures() -> list[str]:
    """Classification architectures torchvision provides (``resnet18``, ``vgg11``, ...)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def load_model(
    source: str | os.PathLike,
    *,
    arch: str | None = None,
    weights: str | os.PathLike | None = None,
    input_shape: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    num_classes: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    device: torch.device | str | None = None,
    arch_options: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
    resize: int | Sequence[int] | None = None,
    allow_code: bool = True,
) -> ModelHandle:
    """Load a classifier as a `ModelHandle` that takes [0, 1] images.

    - ``load_model("digits-cnn-silu")``: a built-in model (see `builtin_models`), or one you trained
      (see `user_models`).
    - ``load_model("resnet18", weights="resnet18.pth")``: a torchvision architecture with local weights;
      ``weights="DEFAULT"`` asks torchvision to download its pretrained weights (needs internet).
    - ``load_model("model.safetensors", arch="resnet18")`` / ``.pt`` / ``.pth``: a state dict for an architecture
      (torchvision or built-in). For a built-in architecture (``mlp``, ``cnn``, ``resnet-small``) the options
      come from the file's metadata (`save_model`), a model card beside it (``model.json``), or
      ``arch_options`` (e.g. ``{"activation": "silu", "pool": "avg"}``); layer widths are read from the weights.
    - ``load_model("model.ts", input_shape=(3, 32, 32), mean=..., std=...)``: a TorchScript archive. Loading one
      RUNS THE CODE INSIDE IT; pass ``allow_code=False`` for files you did not choose yourself.
    - ``load_model("model.pt2", mean=..., std=...)``: a ``torch.export`` archive (``torch.export.save``); its input
      shape is ``input_shape`` or that of the example input it was exported with. Refused with ``allow_code=False``
      like TorchScript.
    - ``load_model("timm:resnet18", weights="resnet18.safetensors")``: a timm architecture (weights: a local state
      dict, None for random init, or ``"pretrained"`` to download); preprocessing from timm's data config.
    - ``load_model("hf:path/to/folder")``: a Hugging Face image classifier saved with ``save_pretrained`` and its
      image processor (a hub id such as ``hf:google/vit-base-patch16-224`` downloads; needs internet).

    ``input_shape``, ``mean`` and ``std`` as stated win over presets; ``resize`` (an int or (H, W)) bilinearly
    resizes inputs to what the network expects, and happens only when given. A model card or recorded metadata
    fixes input shape and normalisation itself. ``handle.pipeline`` says what is done to an input.
    """
    source_str = os.fspath(source)
    if source_str.startswith(("timm:", "hf:")):
        return _load_from_hub(
            source_str,
            weights=weights,
            num_classes=num_classes,
            class_names=class_names,
            input_shape=input_shape,
            resize=_resize_hw(resize),
            device=device,
            stated={"arch": arch, "mean": mean, "std": std, "arch_options": arch_options},
        )
    if source_str in builtin_models() and weights is None:
        return _load_builtin(source_str, device)
    if weights is None and os.sep not in source_str and source_str in user_models():
        return _load_with_card(model_card(source_str), user_models_dir() / f"{source_str}.safetensors", device)
    path = Path(source_str).expanduser()
    resize_hw = _resize_hw(resize)
    arch_options = dict(arch_options) if arch_options is not None else None  # also (name, value) pairs
    if arch_options is not None and arch is not None and arch not in ARCHITECTURES:
        raise ValueError(
            f"arch_options are the options of a built-in architecture ({', '.join(sorted(ARCHITECTURES))}); "
            f"{arch!r} takes none"
        )
    try:
        is_file = path.is_file()
    except OSError as err:  # e.g. a path through a folder the server may not enter
        raise ValueError(os_error_sentence(err, "open the model file", source_str)) from None
    if is_file:
        options = dict(
            arch=arch,
            input_shape=input_shape,
            class_names=class_names,
            num_classes=num_classes,
            mean=mean,
            std=std,
            device=device,
            arch_options=arch_options,
            resize=resize_hw,
            allow_code=allow_code,
        )
        return _load_file_once(path, options)
    if path.suffix in (".pt", ".pth", ".ckpt", ".safetensors", ".ts", ".pt2", ".bin") or os.sep in source_str:
        raise FileNotFoundError(f"no such model file: {source_str}")
    return _load_torchvision(
        source_str,
        weights=weights,
        input_shape=input_shape,
        class_names=class_names,
        num_classes=num_classes,
        mean=mean,
        std=std,
        device=device,
        resize=resize_hw,
    )


def _load_from_hub(
    source: str,
    *,
    weights: str | os.PathLike | None,
    num_classes: int | None,
    class_names: Sequence[str] | None,
    input_shape: Sequence[int] | None,
    resize: tuple[int, int] | None,
    device: torch.device | str | None,
    stated: Mapping[str, Any],
) -> ModelHandle:
    """``timm:<name>`` / ``hf:<folder or hub id>``: the library states the preprocessing, so options that would
    contradict it are refused rather than silently ignored."""
    from geometry.models import hub

    contradicting = [name for name, value in stated.items() if value is not None]
    if contradicting:
        raise ValueError(
            f"{source}: the model's library states its architecture and normalisation; leave out "
            f"{', '.join(contradicting)}"
        )
    if source.startswith(hub.TIMM_PREFIX):
        name = source.removeprefix(hub.TIMM_PREFIX).strip()
        return hub.load_timm(
            name,
            weights=weights,
            num_classes=num_classes,
            class_names=class_names,
            input_shape=input_shape,
            resize=resize,
            device=device,
        )
    if weights is not None or num_classes is not None:
        raise ValueError(f"{source}: a Hugging Face folder holds its own weights and classes; leave out weights=")
    return hub.load_hf(
        source.removeprefix(hub.HF_PREFIX).strip(),
        class_names=class_names,
        input_shape=input_shape,
        resize=resize,
        device=device,
    )


_FAILED_LOADS: OrderedDict[tuple[Any, ...], str] = OrderedDict()
_FAILED_LOADS_KEPT = 64
_failed_lock = threading.Lock()


def _load_file_once(path: Path, options: dict[str, Any]) -> ModelHandle:
    """`_load_file`, remembering a file that failed to load with these options (by path, size and mtime), so asking
    again (a page rerun) answers with the same sentence at once instead of reading a large file again.

    A changed file (other size or mtime) or other options load afresh.
    """
    try:
        st = path.stat()
        key: tuple[Any, ...] | None = (str(path.resolve()), st.st_size, st.st_mtime_ns, repr(sorted(options.items())))
    except (OSError, TypeError, ValueError):
        key = None
    if key is not None:
        with _failed_lock:
            message = _FAILED_LOADS.get(key)
        if message is not None:
            raise ValueError(message)
    try:
        return _load_file(path, **options)
    except ValueError as err:  # bad input, said in a sentence: the same file will fail the same way
        if key is not None:
            with _failed_lock:
                _FAILED_LOADS[key] = str(err)
                while len(_FAILED_LOADS) > _FAILED_LOADS_KEPT:
                    _FAILED_LOADS.popitem(last=False)
        raise
    except OSError as err:
        raise ValueError(os_error_sentence(err, "read the model file", path.name)) from None


def _resize_hw(resize: int | Sequence[int] | None) -> tuple[int, int] | None:
    if resize is None:
        return None
    hw = (int(resize),) if isinstance(resize, int) else tuple(int(v) for v in resize)
    hw = hw * 2 if len(hw) == 1 else hw  # one number: a square
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"resize must be a size in pixels or (height, width), got {resize!r}")
    return hw  # type: ignore[return-value]


def _load_builtin(name: str, device: torch.device | str | None) -> ModelHandle:
    return _load_with_card(model_card(name), ASSETS / f"{name}.safetensors", device)


def _load_with_card(
    card: Mapping[str, Any],
    weights_path: Path,
    device: torch.device | str | None,
    stated: Mapping[str, Any] | None = None,
) -> ModelHandle:
    from safetensors.torch import load_file

    input_shape = tuple(card["input_shape"])
    options = architecture_options(card["architecture"], card.get("architecture_options", {}))
    _check_stated_options(options, stated, weights_path.name)
    network = build_architecture(
        card["architecture"],
        input_shape=input_shape,
        num_classes=len(card["class_names"]),
        **options,
    )
    state = _read_safetensors(weights_path, load_file)
    load_state_dict_checked(network, state, source=weights_path.name)
    return ModelHandle.from_module(
        network,
        input_shape=input_shape,
        class_names=card["class_names"],
        mean=card.get("mean"),
        std=card.get("std"),
        name=card["name"],
        device=device,
        input_range=tuple(card["input_range"]) if card.get("input_range") else None,
        card=dict(card),
    )


def _check_stated_options(recorded: Mapping[str, Any], stated: Mapping[str, Any] | None, source: str) -> None:
    """A stated option that contradicts what the file records is an error, not a silent choice."""
    for name, value in (stated or {}).items():
        value = tuple(value) if isinstance(value, list) else value
        if name in recorded and recorded[name] != value:
            raise ValueError(
                f"{source} records {name}={recorded[name]!r} but arch_options says {value!r}; "
                f"leave it out to use what the file records"
            )


def _read_safetensors(path: Path, load_file: Any) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for any malformed file
        raise ValueError(f"{path.name} is not a readable safetensors checkpoint ({err})") from None


def _load_file(
    path: Path,
    *,
    arch: str | None,
    input_shape: Sequence[int] | None,
    class_names: Sequence[str] | None,
    num_classes: int | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    device: torch.device | str | None,
    arch_options: Mapping[str, Any] | None = None,
    resize: tuple[int, int] | None = None,
    allow_code: bool = True,
) -> ModelHandle:
    card_path = path.with_suffix(".json")
    if path.suffix == ".safetensors" and card_path.exists():
        card = _card_object(card_path)
        # the card also when the caller names its architecture: only the card knows the activation and widths
        # (a SiLU checkpoint loaded as a default "cnn" would load without error and compute a ReLU network);
        # a JSON file of the same name that is not about a built-in architecture is someone else's, and ignored
        if card.get("architecture") in ARCHITECTURES and arch in (None, card["architecture"]):
            return _load_with_card(check_card(card, card_path.name), path, device, arch_options)
    recorded = read_architecture_metadata(path)
    if recorded is not None and arch in (None, recorded["architecture"]):
        return _load_recorded(path, recorded, arch_options, class_names, device)
    if _is_exported_program(path):
        return _load_exported_program(
            path,
            input_shape=input_shape,
            class_names=class_names,
            mean=mean,
            std=std,
            device=device,
            resize=resize,
            allow_code=allow_code,
        )
    if _is_torchscript(path):
        return _load_torchscript(
            path,
            input_shape=input_shape,
            class_names=class_names,
            mean=mean,
            std=std,
            device=device,
            resize=resize,
            allow_code=allow_code,
        )
    state = read_state_dict(path)
    if arch is None:
        raise ValueError(
            f"{path.name} holds a state dict (weights only): say which architecture it belongs to with "
            f"arch=... (a torchvision name such as 'resnet18', or a built-in one: {', '.join(sorted(ARCHITECTURES))})"
        )
    if arch in ARCHITECTURES:
        if input_shape is None:
            raise ValueError(f"built-in architecture {arch!r} needs input_shape, e.g. (1, 8, 8)")
        options = _options_from_weights(arch, state, arch_options, path.name)
        k = num_classes or (len(class_names) if class_names else None)
        if k is None and "head.weight" in state:
            k = int(state["head.weight"].shape[0])  # every built-in architecture ends in `head`
        if k is None:
            raise ValueError(f"{path.name}: give num_classes or class_names for architecture {arch!r}")
        network = build_architecture(arch, input_shape=tuple(input_shape), num_classes=k, **options)
        load_state_dict_checked(network, state, source=path.name)
        return ModelHandle.from_module(
            network,
            input_shape=input_shape,
            class_names=class_names,
            num_classes=k,
            mean=mean,
            std=std,
            resize=resize,
            name=f"{arch} ({path.name})",
            device=device,
        )
    return _load_torchvision(
        arch,
        weights=None,
        state=state,
        source=path.name,
        input_shape=input_shape,
        class_names=class_names,
        num_classes=num_classes,
        mean=mean,
        std=std,
        device=device,
        resize=resize,
    )


def _load_recorded(
    path: Path,
    recorded: Mapping[str, Any],
    stated: Mapping[str, Any] | None,
    class_names: Sequence[str] | None,
    device: torch.device | str | None,
) -> ModelHandle:
    """A weights file that describes itself (`save_model`): its architecture, options and pipeline."""
    arch, options = recorded["architecture"], recorded["architecture_options"]
    _check_stated_options(options, stated, path.name)
    state = read_state_dict(path)
    if "input_shape" not in recorded:
        raise ValueError(f"{path.name}: its {METADATA_KEY!r} metadata has no input_shape")
    input_shape = tuple(int(v) for v in recorded["input_shape"])
    k = int(state["head.weight"].shape[0]) if "head.weight" in state else len(recorded.get("class_names", ()))
    network = build_architecture(arch, input_shape=input_shape, num_classes=k, **options)
    load_state_dict_checked(network, state, source=path.name)
    input_range = recorded.get("input_range")
    return ModelHandle.from_module(
        network,
        input_shape=input_shape,
        class_names=recorded.get("class_names") or class_names,
        num_classes=k,
        mean=recorded.get("mean"),
        std=recorded.get("std"),
        name=f"{arch} ({path.name})",
        device=device,
        input_range=tuple(input_range) if input_range else None,
    )


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save`` file, never unpickling arbitrary objects.

    Unwraps ``{"state_dict": ...}`` / ``{"model": ...}`` checkpoints and a DataParallel ``module.`` prefix.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = _read_safetensors(path, load_file)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            # weights_only refuses a pickle that names a Python global (a class or function to call);
            # any other unpickling error means the bytes are not a checkpoint at all.
            if "global" in str(err).lower():
                raise ValueError(
                    f"{path.name} contains Python objects beyond tensors, and Boundary Atlas never unpickles "
                    "arbitrary objects (they can run code). Save the model's state_dict() instead "
                    "(torch.save(model.state_dict(), ...) or safetensors), or export it with TorchScript."
                ) from None
            raise ValueError(f"{path.name} is not a PyTorch checkpoint ({_torch_reason(err)})") from None
        except Exception as err:  # torch.load raises many kinds (IndexError, EOFError, RuntimeError) on junk
            raise ValueError(f"{path.name} is not a PyTorch checkpoint ({_torch_reason(err)})") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path.name} is not a state dict: expected a mapping from parameter names to tensors")
    if all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return dict(state)


def _torch_reason(err: BaseException) -> str:
    """torch.load's complaint in one line, without its advice to load with ``weights_only=False`` (never safe here)."""
    text = str(err).strip()
    if text.startswith("Weights only load failed"):
        return "it is a pickle that holds more than tensors, or not a torch.save file"
    first = text.splitlines()[0] if text else type(err).__name__
    return first[:300]


def load_state_dict_checked(network: nn.Module, state: Mapping[str, torch.Tensor], *, source: str) -> None:
    """``network.load_state_dict(state)`` with errors that name the missing, unexpected and mis-shaped keys."""
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches (e.g. {'; '.join(mismatched[:3])})")
    if problems:
        raise ValueError(f"{source} does not match the architecture {type(network).__name__}: " + "; ".join(problems))
    network.load_state_dict(state, strict=True)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name or name.endswith("constants.pkl") for name in archive.namelist())


def _is_exported_program(path: Path) -> bool:
    """A ``torch.export.save`` archive: a zip with ``<name>/archive_format`` and a serialised graph."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(n.endswith("/archive_format") for n in names) and any("/models/" in n for n in names)


def _load_exported_program(
    path: Path,
    *,
    input_shape: Sequence[int] | None,
    class_names: Sequence[str] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    device: torch.device | str | None,
    resize: tuple[int, int] | None = None,
    allow_code: bool = True,
) -> ModelHandle:
    """Load a ``torch.export`` archive: a graph of tensor operations (no Python source), with its weights.

    The input shape is ``input_shape`` as stated, else that of the example input the model was exported with
    (minus its batch dimension). Export with a dynamic batch dimension (``torch.export.Dim``) so that batches of
    any size run.
    """
    if not allow_code:
        raise ValueError(
            f"{path.name} is a torch.export archive: a graph of tensor operations rather than Python code, but "
            f"loading one deserialises what its author wrote, so archives from uploads are refused unless the "
            f"operator sets {ALLOW_CODE_ENV}=1. Load it from a path on the server instead, or upload its state "
            "dict (.safetensors or .pt) with the name of its architecture"
        )
    try:
        program = torch.export.load(str(path))
        module = program.module()
    except Exception as err:  # torch raises many kinds on a damaged or newer-format archive
        raise ValueError(f"{path.name} could not be loaded as a torch.export archive ({err})") from None
    if input_shape is None:
        input_shape = _example_input_shape(program)
        if input_shape is None:
            raise ValueError(f"{path.name} records no example input: give its input_shape, e.g. (3, 32, 32)")
    handle = ModelHandle.from_module(
        ExportedGraph(module),
        input_shape=input_shape,
        class_names=class_names,
        mean=mean,
        std=std,
        resize=resize,
        name=f"{path.name} (torch.export)",
        device=device,
    )
    handle.smooth = _graph_smooth(module)  # a graph has no nn.ReLU modules to look for: read its operations
    return handle


class ExportedGraph(nn.Module):
    """The module of a ``torch.export`` program, which has its train/eval mode fixed at export (it refuses
    ``.train()`` / ``.eval()``): the wrapper takes the mode calls and leaves the graph as exported."""

    def __init__(self, graph_module: nn.Module) -> None:
        super().__init__()
        self.graph_module = graph_module

    def train(self, mode: bool = True) -> ExportedGraph:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph_module(x)


_PIECEWISE_LINEAR_OPS = ("relu", "hardtanh", "max_pool", "threshold", "clamp", "leaky_relu", "prelu")


def _graph_smooth(module: nn.Module) -> bool | None:
    """False if an exported graph calls a piecewise-linear operation (ReLU, max-pool, ...); None when it cannot
    be told (no graph, or none of those operations, which does not prove smoothness of every operation)."""
    graph = getattr(module, "graph", None)
    if graph is None:
        return None
    for node in graph.nodes:
        if node.op == "call_function" and any(op in str(node.target) for op in _PIECEWISE_LINEAR_OPS):
            return False
    return None


def _example_input_shape(program: Any) -> tuple[int, ...] | None:
    """Shape of one input (no batch dimension) from the example inputs an exported program was saved with."""
    example = getattr(program, "example_inputs", None)
    args = example[0] if example else ()
    if len(args) >= 1 and isinstance(args[0], torch.Tensor) and args[0].dim() >= 2:
        return tuple(int(s) for s in args[0].shape[1:])
    return None


def _load_torchscript(
    path: Path,
    *,
    input_shape: Sequence[int] | None,
    class_names: Sequence[str] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    device: torch.device | str | None,
    resize: tuple[int, int] | None = None,
    allow_code: bool = True,
) -> ModelHandle:
    """Load a TorchScript archive: a program, whose code runs when it is loaded and called."""
    if not allow_code:
        raise ValueError(
            f"{path.name} is a TorchScript archive, and loading one runs the code inside it; archives from "
            f"uploads are refused unless the operator sets {ALLOW_CODE_ENV}=1. Load it from a path on the server "
            f"instead, or upload its state dict (.safetensors or .pt) with the name of its architecture"
        )
    if input_shape is None:
        raise ValueError(f"{path.name} is a TorchScript archive: give its input_shape, e.g. (3, 32, 32)")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:  # torch raises RuntimeError subclasses with C++ messages
        raise ValueError(f"{path.name} could not be loaded as TorchScript ({err})") from None
    return ModelHandle.from_module(
        module,
        input_shape=input_shape,
        class_names=class_names,
        mean=mean,
        std=std,
        resize=resize,
        name=path.name,
        device=device,
    )


def _load_torchvision(
    arch: str,
    *,
    weights: str | os.PathLike | None,
    state: Mapping[str, torch.Tensor] | None = None,
    source: str | None = None,
    input_shape: Sequence[int] | None,
    class_names: Sequence[str] | None,
    num_classes: int | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    device: torch.device | str | None,
    resize: tuple[int, int] | None = None,
) -> ModelHandle:
    """A torchvision architecture. Its input is ``input_shape`` as stated (default: the preset's crop size), resized
    only when ``resize`` is given; mean/std as stated, else the ImageNet preset, named as such in the pipeline."""
    import torchvision

    known = torchvision_architectures()
    if arch not in known:
        close = difflib.get_close_matches(arch, known + builtin_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown model or architecture {arch!r}: not a built-in model ({', '.join(builtin_models())}), "
            f"not a torchvision architecture and not an existing file{hint}"
        )
    meta_weights = torchvision.models.get_model_weights(arch).DEFAULT
    preset = meta_weights.transforms()
    if weights is not None and os.fspath(weights) == "DEFAULT":
        try:
            network = torchvision.models.get_model(arch, weights=meta_weights)
        except Exception as err:  # network errors surface as URLError/OSError/RuntimeError
            raise ValueError(
                f"could not download torchvision's weights for {arch} ({err}); offline, save the weights file "
                f"and pass its path as weights=..."
            ) from None
        source = f"torchvision {meta_weights}"
    else:
        if weights is not None:
            state = read_state_dict(weights)
            source = Path(weights).name
        if state is None:
            raise ValueError(
                f"{arch}: give weights=<path to a state dict> or weights='DEFAULT' (downloads, needs internet)"
            )
        if num_classes is not None:
            k = num_classes
        elif class_names is not None:
            k = len(class_names)
        else:
            k = _head_size(torchvision.models.get_model(arch, weights=None), state) or 1000
        network = torchvision.models.get_model(arch, weights=None, num_classes=k)
        load_state_dict_checked(network, state, source=source or arch)
    k = _output_size(network)
    if class_names is None and k == len(meta_weights.meta["categories"]):
        class_names = meta_weights.meta["categories"]
    crop = int(preset.crop_size[0])
    stated_norm = mean is not None or std is not None
    return ModelHandle.from_module(
        network,
        input_shape=tuple(input_shape) if input_shape is not None else (3, crop, crop),
        class_names=class_names,
        num_classes=k,
        mean=mean if mean is not None else (None if std is not None else preset.mean),
        std=std if std is not None else (None if mean is not None else preset.std),
        resize=resize,
        name=f"{arch} ({source})",
        device=device,
        normalisation_note=None if stated_norm else IMAGENET_PRESET_NOTE,
    )


def _last_linear(network: nn.Module) -> tuple[str, nn.Linear] | None:
    linears = [(n, m) for n, m in network.named_modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def _head_size(template: nn.Module, state: Mapping[str, torch.Tensor]) -> int | None:
    """Number of classes the checkpoint was trained for, read from its final linear layer."""
    last = _last_linear(template)
    if last is not None and f"{last[0]}.weight" in state:
        return int(state[f"{last[0]}.weight"].shape[0])
    return None


def _output_size(network: nn.Module) -> int:
    last = _last_linear(network)
    return int(last[1].out_features) if last is not None else 1000
