"""Loading classifiers: built-in models, torchvision architectures, state dicts, TorchScript archives.

Nothing here unpickles arbitrary objects: state dicts go through safetensors or
``torch.load(weights_only=True)``, and a file that needs more is refused with an explanation.
"""

from __future__ import annotations

import difflib
import json
import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geometry.models.architectures import ARCHITECTURES, build_architecture
from geometry.models.handle import ModelHandle

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "models"
"""Where the built-in models live: ``<name>.safetensors`` + ``<name>.json`` (the model card)."""


MODELS_ENV = "BOUNDARY_ATLAS_MODELS"


def builtin_models() -> list[str]:
    """Names of the shipped models, e.g. ``["digits-cnn-relu", "digits-cnn-silu", ...]``."""
    return _models_in(ASSETS)


def user_models_dir() -> Path:
    """Where models you train go: ``$BOUNDARY_ATLAS_MODELS``, else ``~/.cache/boundary-atlas/models``."""
    env = os.environ.get(MODELS_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "boundary-atlas" / "models"


def user_models() -> list[str]:
    """Names of the models trained on this machine (`python -m geometry.models.training` or the Train view) that are not
    shadowed by a built-in model of the same name."""
    builtin = set(builtin_models())
    return [n for n in _models_in(user_models_dir()) if n not in builtin]


def _models_in(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if (folder / f"{p.stem}.safetensors").exists())


def model_card(name: str) -> dict[str, Any]:
    """The model card (json) of a built-in model, or of a model in `user_models_dir()`."""
    for folder in (ASSETS, user_models_dir()):
        path = folder / f"{name}.json"
        if path.exists() and (folder / f"{name}.safetensors").exists():
            try:
                card = json.loads(path.read_text())
            except ValueError as err:
                raise ValueError(f"the model card {path} is not valid JSON: {err}") from None
            if not isinstance(card, dict):
                raise ValueError(f"the model card {path} is not a JSON object")
            return card
    known = builtin_models() + user_models()
    raise ValueError(f"unknown model {name!r}; built-in and trained models are: {', '.join(known)}")


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
) -> ModelHandle:
    """Load a classifier as a `ModelHandle` that takes [0, 1] images.

    - ``load_model("digits-cnn-silu")``: a built-in model (see `builtin_models`), or one you trained
      (see `user_models`).
    - ``load_model("resnet18", weights="resnet18.pth")``: a torchvision architecture with local weights;
      ``weights="DEFAULT"`` asks torchvision to download its pretrained weights (needs internet).
    - ``load_model("model.safetensors", arch="resnet18")`` / ``.pt`` / ``.pth``: a state dict for an architecture
      (torchvision or built-in; a built-in model card beside the file, ``model.json``, supplies everything).
    - ``load_model("model.ts", input_shape=(3, 32, 32), mean=..., std=...)``: a TorchScript archive.
    """
    source_str = os.fspath(source)
    if source_str in builtin_models() and weights is None:
        return _load_builtin(source_str, device)
    if weights is None and os.sep not in source_str and source_str in user_models():
        return _load_with_card(model_card(source_str), user_models_dir() / f"{source_str}.safetensors", device)
    path = Path(source_str).expanduser()
    if path.is_file():
        return _load_file(
            path,
            arch=arch,
            input_shape=input_shape,
            class_names=class_names,
            num_classes=num_classes,
            mean=mean,
            std=std,
            device=device,
        )
    if path.suffix in (".pt", ".pth", ".ckpt", ".safetensors", ".ts", ".bin") or os.sep in source_str:
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
    )


def _load_builtin(name: str, device: torch.device | str | None) -> ModelHandle:
    return _load_with_card(model_card(name), ASSETS / f"{name}.safetensors", device)


def _load_with_card(card: Mapping[str, Any], weights_path: Path, device: torch.device | str | None) -> ModelHandle:
    from safetensors.torch import load_file

    input_shape = tuple(card["input_shape"])
    network = build_architecture(
        card["architecture"],
        input_shape=input_shape,
        num_classes=len(card["class_names"]),
        **card.get("architecture_options", {}),
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
) -> ModelHandle:
    card_path = path.with_suffix(".json")
    if path.suffix == ".safetensors" and card_path.exists():
        card = json.loads(card_path.read_text())
        # the card also when the caller names its architecture: only the card knows the activation and widths
        # (a SiLU checkpoint loaded as a default "cnn" would load without error and compute a ReLU network)
        if card.get("architecture") in ARCHITECTURES and arch in (None, card["architecture"]):
            return _load_with_card(card, path, device)
    if _is_torchscript(path):
        return _load_torchscript(
            path, input_shape=input_shape, class_names=class_names, mean=mean, std=std, device=device
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
        k = num_classes or (len(class_names) if class_names else None)
        if k is None and "head.weight" in state:
            k = int(state["head.weight"].shape[0])  # every built-in architecture ends in `head`
        if k is None:
            raise ValueError(f"{path.name}: give num_classes or class_names for architecture {arch!r}")
        network = build_architecture(arch, input_shape=tuple(input_shape), num_classes=k)
        load_state_dict_checked(network, state, source=path.name)
        return ModelHandle.from_module(
            network,
            input_shape=input_shape,
            class_names=class_names,
            num_classes=k,
            mean=mean,
            std=std,
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
            raise ValueError(f"{path.name} is not a PyTorch checkpoint ({err})") from None
        except Exception as err:  # torch.load raises many kinds (IndexError, EOFError, RuntimeError) on junk
            raise ValueError(f"{path.name} is not a PyTorch checkpoint ({err})") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path.name} is not a state dict: expected a mapping from parameter names to tensors")
    if all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return dict(state)


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


def _load_torchscript(
    path: Path,
    *,
    input_shape: Sequence[int] | None,
    class_names: Sequence[str] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    device: torch.device | str | None,
) -> ModelHandle:
    if input_shape is None:
        raise ValueError(f"{path.name} is a TorchScript archive: give its input_shape, e.g. (3, 32, 32)")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:  # torch raises RuntimeError subclasses with C++ messages
        raise ValueError(f"{path.name} could not be loaded as TorchScript ({err})") from None
    return ModelHandle.from_module(
        module, input_shape=input_shape, class_names=class_names, mean=mean, std=std, name=path.name, device=device
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
) -> ModelHandle:
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
    return ModelHandle.from_module(
        network,
        input_shape=tuple(input_shape) if input_shape is not None else (3, crop, crop),
        class_names=class_names,
        num_classes=k,
        mean=mean if mean is not None else preset.mean,
        std=std if std is not None else preset.std,
        resize=(crop, crop),
        name=f"{arch} ({source})",
        device=device,
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
