"""Content fingerprints of tensors, state dicts and modules.

A fingerprint is a sha256 hex digest (64 chars) of the dtype, shape and raw bytes of each tensor,
so equal weights give equal fingerprints on any device and any changed element changes it. The
cache keys results by these strings; never hash tensors anywhere else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["module_fingerprint", "state_dict_fingerprint", "tensor_fingerprint"]

_CHUNK = 1 << 24  # bytes hashed per update, so huge tensors do not need a second copy


def _update_with_tensor(h: hashlib._Hash, t: torch.Tensor) -> None:
    """Feed dtype, shape and the raw bytes of a contiguous CPU copy of ``t`` into ``h``."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(t).__name__}")
    t = t.detach()
    if t.is_sparse or t.layout != torch.strided:
        t = t.to_dense()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    t = t.to("cpu").contiguous()
    header = f"{t.dtype}|{tuple(t.shape)}|".encode()
    h.update(len(header).to_bytes(8, "little"))
    h.update(header)
    # Reinterpret as bytes (works for every dtype, including bfloat16 and bool).
    flat = t.reshape(-1).view(torch.uint8) if t.numel() else torch.empty(0, dtype=torch.uint8)
    data = flat.numpy()
    h.update(len(data).to_bytes(8, "little"))
    for start in range(0, len(data), _CHUNK):
        h.update(memoryview(data[start : start + _CHUNK]))


def tensor_fingerprint(*tensors: torch.Tensor) -> str:
    """Sha256 hex digest (64 chars) of the dtype, shape and bytes of each tensor, in order."""
    h = hashlib.sha256(b"boundary-atlas/tensors/v1")
    h.update(len(tensors).to_bytes(8, "little"))
    for t in tensors:
        _update_with_tensor(h, t)
    return h.hexdigest()


def state_dict_fingerprint(arch_name: str, state_dict: Mapping[str, torch.Tensor]) -> str:
    """Sha256 hex digest of an architecture name and a state dict (sorted keys and tensor bytes).

    Non-tensor entries (e.g. ``_extra_state`` objects) are rejected with a TypeError.
    """
    if not isinstance(arch_name, str):
        raise TypeError(f"arch_name must be a str, got {type(arch_name).__name__}")
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of str -> Tensor, got {type(state_dict).__name__}")
    h = hashlib.sha256(b"boundary-atlas/state-dict/v1")
    name = arch_name.encode()
    h.update(len(name).to_bytes(8, "little"))
    h.update(name)
    keys = list(state_dict.keys())
    for k in keys:
        if not isinstance(k, str):
            raise TypeError(f"state_dict keys must be str, got {type(k).__name__}: {k!r}")
    for k in sorted(keys):
        v = state_dict[k]
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"state_dict[{k!r}] must be a torch.Tensor, got {type(v).__name__}")
        kb = k.encode()
        h.update(len(kb).to_bytes(8, "little"))
        h.update(kb)
        _update_with_tensor(h, v)
    return h.hexdigest()


def module_fingerprint(name: str, module: nn.Module) -> str:
    """Fingerprint of ``module``'s parameters and persistent buffers under architecture ``name``."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    sd = {k: v for k, v in module.state_dict(keep_vars=False).items() if isinstance(v, torch.Tensor)}
    return state_dict_fingerprint(name, sd)
