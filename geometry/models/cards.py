"""What a model file says about itself: model cards (JSON beside the weights) and architecture metadata (inside them).

A card records how a model was made and what it expects (architecture and options, input shape, normalisation, class
names, accuracy, the command that trained it); `read_card` / `check_card` check one against its schema and say in a
sentence what is wrong. `save_model` writes a weights file whose safetensors metadata records the architecture and
every option, so a file alone loads as the same function (`geometry.models.loading`). Also: where models live
(built-in ones in assets/models, trained ones in `$BOUNDARY_ATLAS_MODELS`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geometry.models.architectures import (
    ARCHITECTURES,
    FUNCTION_OPTIONS,
    architecture_options,
    infer_width_options,
    option_choices,
)
from geometry.runtime.errors import os_error_sentence

METADATA_KEY = "boundary_atlas"
"""The safetensors metadata key under which `save_model` records the architecture and its options (JSON)."""
METADATA_FORMAT = 1

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
    """Names of the models trained on this machine (`python -m geometry train` or the Train view) that are not
    shadowed by a built-in model of the same name."""
    builtin = set(builtin_models())
    return [n for n in _models_in(user_models_dir()) if n not in builtin]


def _models_in(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if (folder / f"{p.stem}.safetensors").exists())


def model_card(name: str) -> dict[str, Any]:
    """The model card (json) of a built-in model, or of a model in `user_models_dir()`, checked by `read_card`."""
    for folder in (ASSETS, user_models_dir()):
        path = folder / f"{name}.json"
        if path.exists() and (folder / f"{name}.safetensors").exists():
            return read_card(path)
    known = builtin_models() + user_models()
    raise ValueError(f"unknown model {name!r}; built-in and trained models are: {', '.join(known)}")


CARD_FIELDS: dict[str, str] = {
    "name": "a name (text)",
    "architecture": f"one of the built-in architectures ({', '.join(sorted(ARCHITECTURES))})",
    "input_shape": "the input's shape, a list of positive integers such as [1, 8, 8] or [2]",
    "class_names": "a list of at least two class names",
}
"""The fields a model card must have, and what each must be (`read_card`)."""


def read_card(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A model card read and checked: a JSON object with `CARD_FIELDS`, and where present ``mean``/``std`` (lists of
    numbers, std > 0), ``input_range`` ([low, high]) and ``architecture_options`` (an object).

    Raises ValueError with a sentence naming the file and the problem (not JSON, not an object, a missing or wrong
    field) instead of a KeyError or AttributeError later.
    """
    return check_card(_card_object(Path(path)), Path(path).name)


def _card_object(path: Path) -> dict[str, Any]:
    """The JSON object in the card file ``path``, or ValueError saying why there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"the model card {path.name} is not a text file (expected JSON)") from None
    except OSError as err:
        raise ValueError(os_error_sentence(err, "read the model card", path.name)) from None
    try:
        card = json.loads(text)
    except ValueError as err:
        raise ValueError(f"the model card {path.name} is not valid JSON ({err})") from None
    if not isinstance(card, dict):
        raise ValueError(f"the model card {path.name} is a JSON {type(card).__name__}, expected an object {{...}}")
    return card


def check_card(card: dict[str, Any], source: str) -> dict[str, Any]:
    """``card`` if it has every field of `CARD_FIELDS` in the right form (see `read_card`), else a ValueError naming
    ``source`` (the card's file name) and the problem."""
    missing = [f for f in CARD_FIELDS if f not in card]
    if missing:
        raise ValueError(
            f"the model card {source} lacks {', '.join(missing)}: "
            + "; ".join(f"{f} is {CARD_FIELDS[f]}" for f in missing)
        )
    problems = _card_problems(card)
    if problems:
        raise ValueError(f"the model card {source} is damaged: {'; '.join(problems)}")
    return card


def _card_problems(card: Mapping[str, Any]) -> list[str]:
    """What is wrong with the fields of a card that has all of `CARD_FIELDS` (empty: nothing)."""

    def numbers(value: Any) -> bool:
        return isinstance(value, list) and bool(value) and all(_is_number(v) for v in value)

    problems = []
    if not isinstance(card["name"], str) or not card["name"].strip():
        problems.append(f"name is {card['name']!r}, expected {CARD_FIELDS['name']}")
    if card["architecture"] not in ARCHITECTURES:
        problems.append(f"architecture is {card['architecture']!r}, expected {CARD_FIELDS['architecture']}")
    shape = card["input_shape"]
    if not (numbers(shape) and all(float(v).is_integer() and v > 0 for v in shape) and len(shape) in (1, 3)):
        problems.append(f"input_shape is {shape!r}, expected {CARD_FIELDS['input_shape']} ((C, H, W) or (D,))")
    names = card["class_names"]
    if not (isinstance(names, list) and len(names) >= 2 and all(isinstance(n, str) for n in names)):
        problems.append(f"class_names is {_short(names)}, expected {CARD_FIELDS['class_names']}")
    for key in ("mean", "std"):
        if card.get(key) is not None and not numbers(card[key]):
            problems.append(f"{key} is {_short(card[key])}, expected a list of numbers (one per channel)")
    if numbers(card.get("std")) and min(card["std"]) <= 0:
        problems.append(f"std is {card['std']!r}, expected positive numbers")
    rng = card.get("input_range")
    if rng is not None and not (numbers(rng) and len(rng) == 2 and rng[0] < rng[1]):
        problems.append(f"input_range is {_short(rng)}, expected [low, high] with low < high, or null")
    if not isinstance(card.get("architecture_options", {}), dict):
        problems.append(f"architecture_options is {_short(card['architecture_options'])}, expected an object")
    return problems


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def architecture_metadata(
    arch: str,
    options: Mapping[str, Any] | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    input_range: Sequence[float] | None = (0.0, 1.0),
) -> dict[str, str]:
    """The safetensors metadata that makes a weights file of a built-in architecture describe itself:
    ``{"boundary_atlas": JSON}`` with the architecture, EVERY option (defaults written out), and where given the
    input shape, class names, mean/std and input range. Pass it as ``save_file(state, path, metadata=...)``."""
    doc: dict[str, Any] = {
        "format": METADATA_FORMAT,
        "architecture": arch,
        "architecture_options": architecture_options(arch, options),
    }
    for key, value in (
        ("input_shape", input_shape),
        ("class_names", class_names),
        ("mean", mean),
        ("std", std),
        ("input_range", input_range),
    ):
        if value is not None:
            doc[key] = [str(v) for v in value] if key == "class_names" else [_number(v) for v in value]
    return {METADATA_KEY: json.dumps(doc, sort_keys=True)}


def card_metadata(card: Mapping[str, Any]) -> dict[str, str]:
    """`architecture_metadata` of a model card (``architecture``, ``architecture_options``, ``input_shape``,
    ``class_names``, ``mean``, ``std``, ``input_range``): what a weights file written beside the card records."""
    return architecture_metadata(
        card["architecture"],
        card.get("architecture_options"),
        input_shape=card.get("input_shape"),
        class_names=card.get("class_names"),
        mean=card.get("mean"),
        std=card.get("std"),
        input_range=card.get("input_range"),
    )


def _number(v: Any) -> int | float:
    v = float(v)
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


def save_model(
    network: nn.Module,
    path: str | os.PathLike,
    *,
    arch: str,
    options: Mapping[str, Any] | None = None,
    input_shape: Sequence[int],
    class_names: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    input_range: Sequence[float] | None = (0.0, 1.0),
) -> Path:
    """Write ``network``'s weights (a built-in architecture) to a ``.safetensors`` file that records its
    architecture options and input pipeline (`architecture_metadata`), so `load_model(path)` rebuilds the same
    function. Written to a temp file and renamed, so a crash never leaves half a file."""
    import tempfile

    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"save_model writes .safetensors files, got {path.name!r}")
    metadata = architecture_metadata(
        arch, options, input_shape=input_shape, class_names=class_names, mean=mean, std=std, input_range=input_range
    )
    state = {k: v.detach().contiguous().cpu() for k, v in network.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_architecture_metadata(path: str | os.PathLike) -> dict[str, Any] | None:
    """What `save_model` recorded in a ``.safetensors`` file (architecture, options, pipeline), or None."""
    from safetensors import safe_open

    path = Path(path)
    if path.suffix != ".safetensors":
        return None
    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for any malformed file
        raise ValueError(f"{path.name} is not a readable safetensors checkpoint ({err})") from None
    if METADATA_KEY not in metadata:
        return None
    try:
        doc = json.loads(metadata[METADATA_KEY])
        if not isinstance(doc, dict) or doc.get("architecture") not in ARCHITECTURES:
            raise ValueError("no known architecture")
        doc["architecture_options"] = architecture_options(doc["architecture"], doc.get("architecture_options"))
    except ValueError as err:
        raise ValueError(f"{path.name}: its {METADATA_KEY!r} metadata is damaged ({err})") from None
    return doc


def _options_from_weights(
    arch: str, state: Mapping[str, torch.Tensor], stated: Mapping[str, Any] | None, source: str
) -> dict[str, Any]:
    """A built-in architecture's options for a state dict that records none: widths from the weights, the options
    that change the function without changing shapes from the caller, else a ValueError naming them."""
    stated = dict(stated or {})
    missing = [name for name in FUNCTION_OPTIONS[arch] if name not in stated]
    if missing:
        wanted = ", ".join(f"{name!r}: one of {', '.join(option_choices(name))}" for name in missing)
        raise ValueError(
            f"{source} holds weights of the built-in architecture {arch!r} but does not record its "
            f"{' and '.join(missing)}; a wrong guess would load without error and compute another function. "
            f"State them: arch_options={{{wanted}}} (in the app: the architecture option fields)"
        )
    return architecture_options(arch, {**infer_width_options(arch, state), **stated})
