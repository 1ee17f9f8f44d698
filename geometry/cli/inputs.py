"""What every command reads first: the model (`--model`, `--arch`, `--input-shape`) and its data set."""

from __future__ import annotations

import argparse
from typing import Any


def input_shape(text: str) -> tuple[int, ...]:
    """``--input-shape`` as a tuple of ints ("3,32,32" or "3x32x32")."""
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise ValueError(f"expected --input-shape as comma-separated ints, e.g. 3,32,32; got {text!r}") from None


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `load_model` options the arguments state (``--arch``, ``--input-shape``)."""
    options: dict[str, Any] = {}
    if args.arch:
        options["arch"] = args.arch
    if args.input_shape:
        options["input_shape"] = input_shape(args.input_shape)
    return options


def model_and_dataset(args: argparse.Namespace, data: str | None, flag: str) -> tuple[Any, Any]:
    """The model the arguments name and the data set ``data`` (else the one its model card names; ``flag`` is the
    option the user would pass, for the message)."""
    import geometry

    handle = geometry.load_model(args.model, device=args.device, **load_options(args))
    name = data or handle.card.get("dataset")
    if not name:
        raise ValueError(f"expected {flag}: {handle.name!r} has no model card naming its data set")
    return handle, geometry.load_dataset(name, split=args.split)
