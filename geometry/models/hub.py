"""Models from the two hubs people use: timm architectures (``timm:<name>``) and Hugging Face ``transformers`` image
classifiers (``hf:<folder or hub id>``).

Each library states its own preprocessing (timm's data config, the Hugging Face image processor); we fold its mean
and std into the handle the way torchvision presets are folded, so the handle takes [0, 1] images at the model's
input resolution and every distance stays L2 in [0, 1] pixels of that resolution. How to bring an image of another
size to that resolution (interpolation, crop) is recorded in ``handle.card["image_pipeline"]`` and the pipeline note;
nothing is resized inside the handle unless ``resize`` is asked for.

Nothing downloads unless asked (``weights="pretrained"`` for timm, a hub id that is not a local folder for Hugging
Face), and offline that fails with a sentence saying what to do instead.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geometry.models.handle import ModelHandle
from geometry.models.loading import load_state_dict_checked, read_state_dict

TIMM_PREFIX = "timm:"
HF_PREFIX = "hf:"


def hub_offline() -> bool:
    """Whether the Hugging Face hub (which also serves timm's weights) is switched off: ``HF_HUB_OFFLINE=1``."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


# ---------------------------------------------------------------------------------------------------- timm


def load_timm(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    input_shape: Sequence[int] | None = None,
    resize: tuple[int, int] | None = None,
    device: torch.device | str | None = None,
) -> ModelHandle:
    """A timm architecture as a `ModelHandle` on [0, 1] images of its data config's input size ``(3, H, W)``.

    ``weights``: None (random init), a local ``.safetensors`` / ``torch.save`` state dict (read without unpickling
    objects), or ``"pretrained"`` (timm downloads them; needs internet). ``num_classes`` defaults to the
    checkpoint's classifier size, else ``len(class_names)``, else timm's default (1000). Class names: as given,
    else the ImageNet names timm ships when the model has 1000 classes, else "class 0".."class K-1".
    """
    import timm
    import timm.data

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"{name!r} is not a timm architecture{hint} (timm.list_models() lists them)")
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    if weights is not None and os.fspath(weights) == "pretrained":
        network, source = _timm_pretrained(name, num_classes), "timm pretrained"
    else:
        state = None
        if weights is not None:
            state = read_state_dict(weights)
            if num_classes is None:
                num_classes = _timm_classifier_size(name, state)
        kwargs = {"num_classes": num_classes} if num_classes is not None else {}
        network = timm.create_model(name, pretrained=False, **kwargs)
        if state is not None:
            load_state_dict_checked(network, state, source=Path(weights).name)  # type: ignore[arg-type]
            source = Path(weights).name  # type: ignore[arg-type]
        else:
            source = "random init"
    config = timm.data.resolve_data_config({}, model=network)
    k = int(network.num_classes)
    if class_names is None:
        class_names = _timm_imagenet_names(network, k)
    shape = tuple(input_shape) if input_shape is not None else tuple(int(v) for v in config["input_size"])
    pipeline = {
        "library": "timm",
        "input_size": list(config["input_size"]),
        "interpolation": config.get("interpolation"),
        "crop_pct": config.get("crop_pct"),
        "crop_mode": config.get("crop_mode"),
    }
    handle = ModelHandle.from_module(
        network,
        input_shape=shape,
        class_names=class_names,
        num_classes=k,
        mean=config["mean"],
        std=config["std"],
        resize=resize,
        name=f"timm {name} ({source})",
        device=device,
        card={"architecture": f"timm {name}", "weights": source, "image_pipeline": pipeline},
        normalisation_note=_pipeline_note("timm data config", pipeline),
    )
    return _card_says_smooth(handle)


def _timm_pretrained(name: str, num_classes: int | None) -> nn.Module:
    import timm

    if hub_offline():
        raise ValueError(
            f"timm's pretrained weights for {name} come from the Hugging Face hub, which is offline here "
            "(HF_HUB_OFFLINE is set); save the weights file and pass its path as weights=..."
        )
    kwargs = {"num_classes": num_classes} if num_classes is not None else {}
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as err:  # network and hub errors come in many types
        raise ValueError(
            f"could not download timm's pretrained weights for {name} ({_first_line(err)}); offline, save the "
            "weights file and pass its path as weights=..."
        ) from None


def _timm_classifier_size(name: str, state: Mapping[str, torch.Tensor]) -> int | None:
    """Number of classes a checkpoint was trained for, from the classifier the architecture's config names."""
    import timm

    classifier = timm.create_model(name, pretrained=False).pretrained_cfg.get("classifier")
    names = [classifier] if isinstance(classifier, str) else list(classifier or [])
    for head in names:
        weight = state.get(f"{head}.weight")
        if weight is not None:
            return int(weight.shape[0])
    return None


def _timm_imagenet_names(network: nn.Module, k: int) -> tuple[str, ...] | None:
    """Readable ImageNet class names timm ships (offline) when the model has an ImageNet head of size ``k``."""
    import timm.data

    try:
        subset = timm.data.infer_imagenet_subset(network) or ("imagenet-1k" if k == 1000 else None)
        if subset is None:
            return None
        names = timm.data.ImageNetInfo(subset).label_descriptions(as_dict=False)
    except Exception:  # an older timm or a missing info file: fall back to numbered classes
        return None
    return tuple(names) if len(names) == k else None


# ---------------------------------------------------------------------------------------------------- Hugging Face


class LogitsOf(nn.Module):
    """A ``transformers`` classifier as a plain module: ``pixel_values (N, 3, H, W) -> logits (N, K)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


def load_hf(
    source: str,
    *,
    class_names: Sequence[str] | None = None,
    input_shape: Sequence[int] | None = None,
    resize: tuple[int, int] | None = None,
    device: torch.device | str | None = None,
) -> ModelHandle:
    """A Hugging Face image classifier (``AutoModelForImageClassification`` + ``AutoImageProcessor``) as a
    `ModelHandle` on [0, 1] images ``(3, H, W)`` of the processor's model size.

    ``source``: a folder written by ``save_pretrained`` (works offline), or a hub id such as ``google/vit-base-
    patch16-224`` (downloads; needs internet). Class names from the config's ``id2label``; mean and std from the
    processor (its ``rescale_factor`` of 1/255 is what [0, 1] inputs already are).
    """
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    folder = Path(source).expanduser()
    is_folder = folder.is_dir()
    if not is_folder and _looks_like_path(source):
        raise ValueError(f"no such folder: {source} (a Hugging Face model folder is written by save_pretrained)")
    where = str(folder) if is_folder else source
    # a folder never goes online; with the hub switched off, a hub id loads only from the local cache
    local_only = is_folder or hub_offline()
    try:
        model = AutoModelForImageClassification.from_pretrained(where, local_files_only=local_only)
        processor = AutoImageProcessor.from_pretrained(where, local_files_only=local_only)
    except Exception as err:  # OSError, ValueError, hub errors: all say "could not load" to a user
        if is_folder:
            raise ValueError(
                f"{source} is not a Hugging Face image classifier folder with its image processor "
                f"({_first_line(err)}); write one with model.save_pretrained(folder) and "
                "processor.save_pretrained(folder)"
            ) from None
        raise ValueError(
            f"could not load {source!r} from the Hugging Face hub ({_first_line(err)}); it is not a folder here, "
            "and a hub id needs internet (or the model in the local cache): offline, download it elsewhere, "
            "save_pretrained it to a folder and give that folder"
        ) from None
    model.eval()
    id2label = getattr(model.config, "id2label", None) or {}
    k = int(model.config.num_labels)
    if class_names is None and len(id2label) == k:
        class_names = tuple(str(id2label[i]) for i in range(k))
    mean, std = _processor_normalisation(processor)
    size = _processor_size(processor, model)
    shape = tuple(input_shape) if input_shape is not None else (int(getattr(model.config, "num_channels", 3)), *size)
    pipeline = {
        "library": "transformers",
        "processor": type(processor).__name__,
        "input_size": [shape[0], *size],
        "interpolation": _resample_name(getattr(processor, "resample", None)),
        "size": dict(getattr(processor, "size", {}) or {}),
        "crop_size": dict(getattr(processor, "crop_size", None) or {}) or None,
    }
    handle = ModelHandle.from_module(
        LogitsOf(model),
        input_shape=shape,
        class_names=class_names,
        num_classes=k,
        mean=mean,
        std=std,
        resize=resize,
        name=f"hf {type(model).__name__} ({folder.name if is_folder else source})",
        device=device,
        card={
            "architecture": type(model).__name__,
            "activation": str(getattr(model.config, "hidden_act", "?")),
            "image_pipeline": pipeline,
        },
        normalisation_note=_pipeline_note("image processor", pipeline),
    )
    return _card_says_smooth(handle)


def _card_says_smooth(handle: ModelHandle) -> ModelHandle:
    """Views read smoothness from a non-empty card as well as from the handle: keep the two the same."""
    handle.card["smooth"] = handle.smooth
    return handle


def _looks_like_path(source: str) -> bool:
    """A hub id is ``name`` or ``owner/name``; anything else (absolute, ``./``, ``~``, deeper) means a folder."""
    return source.startswith(("/", ".", "~")) or source.count("/") > 1 or os.sep in source.replace("/", "")


def _processor_normalisation(processor: Any) -> tuple[Sequence[float] | None, Sequence[float] | None]:
    """Mean and std on [0, 1] inputs; a processor whose rescale is not 1/255 would need its factor folded in too."""
    if not getattr(processor, "do_normalize", True):
        return None, None
    rescale = getattr(processor, "rescale_factor", 1 / 255) if getattr(processor, "do_rescale", True) else 1.0
    if abs(float(rescale) * 255 - 1) > 1e-6:
        raise ValueError(
            f"the image processor rescales pixels by {rescale} (not 1/255): Boundary Atlas cannot yet fold that "
            "into [0, 1] inputs"
        )
    mean, std = processor.image_mean, processor.image_std
    as_list = lambda v: [float(v)] if isinstance(v, (int, float)) else [float(x) for x in v]  # noqa: E731
    return as_list(mean), as_list(std)


def _processor_size(processor: Any, model: nn.Module) -> tuple[int, int]:
    """(H, W) the network sees: the crop when the processor crops, else its fixed size, else the config's."""
    crop = getattr(processor, "crop_size", None) or {}
    if getattr(processor, "do_center_crop", False) and "height" in crop:
        return int(crop["height"]), int(crop["width"])
    size = getattr(processor, "size", None) or {}
    if "height" in size and "width" in size:
        return int(size["height"]), int(size["width"])
    if "shortest_edge" in size:
        return int(size["shortest_edge"]), int(size["shortest_edge"])
    image_size = getattr(model.config, "image_size", 224)
    return (int(image_size), int(image_size)) if isinstance(image_size, int) else tuple(image_size)  # type: ignore


def _resample_name(resample: Any) -> str | None:
    if resample is None:
        return None
    return getattr(resample, "name", str(resample)).lower()


def _pipeline_note(origin: str, pipeline: Mapping[str, Any]) -> str:
    """Where the normalisation came from and how the library brings other image sizes to the model's."""
    extra = [str(pipeline["interpolation"])] if pipeline.get("interpolation") else []
    if pipeline.get("crop_pct"):
        extra.append(f"crop {pipeline['crop_pct']:g}")
    return f"{origin}" + (f"; other sizes: {', '.join(extra)}" if extra else "")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
