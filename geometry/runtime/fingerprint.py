"""Content fingerprints of tensors, state dicts and modules.

A fingerprint is a sha256 hex digest (64 chars) of the dtype, shape and raw bytes of each tensor,
so equal weights give equal fingerprints on any device and any changed element changes it. The
cache keys results by these strings; never hash tensors anywhere else.

A module's fingerprint covers its function, not only its weights: the class and configuration of
every submodule (a ReLU and a SiLU network with equal weights differ), the code of classes outside
torch and of TorchScript modules, and all buffers, also non-persistent ones (normalisation constants).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import textwrap
from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["module_fingerprint", "module_structure", "state_dict_fingerprint", "tensor_fingerprint"]

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
    """Fingerprint of what ``module`` computes under the name ``name``: `module_structure` (classes,
    configuration, code), parameters and all buffers (persistent or not)."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"arch_name must be a str, got {type(name).__name__}")
    sd = {k: v for k, v in module.state_dict(keep_vars=False).items() if isinstance(v, torch.Tensor)}
    for key, buffer in module.named_buffers():
        sd.setdefault(key, buffer)  # non-persistent buffers (e.g. mean/std) define the function too
    h = hashlib.sha256(b"boundary-atlas/module/v2")
    for part in (name, module_structure(module), state_dict_fingerprint(name, sd)):
        data = part.encode()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def module_structure(module: nn.Module) -> str:
    """One line per submodule: its path, class and configuration (``extra_repr``), plus a digest of its code
    where the code is not torch's own (classes defined elsewhere; TorchScript modules, whose code is in the file).

    Two networks with equal weights but another activation, pooling or softplus sharpness differ here.
    """
    lines = []
    for path, sub in module.named_modules():
        cls = type(sub)
        try:
            config = sub.extra_repr()
        except Exception:  # a scripted module without extra_repr
            config = ""
        line = f"{path or '.'}|{cls.__module__}.{cls.__qualname__}|{config}"
        if isinstance(sub, torch.jit.ScriptModule):
            line += f"|{sub.original_name}|{_script_code_digest(sub)}"
        elif not cls.__module__.split(".")[0].startswith("torch"):
            line += f"|{_class_code_digest(cls)}"
        lines.append(line)
    return "\n".join(lines)


def _script_code_digest(module: torch.jit.ScriptModule) -> str:
    try:
        code = module.code
    except Exception:  # a module without a forward of its own
        code = ""
    return hashlib.sha256(code.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=256)
def _class_code_digest(cls: type) -> str:
    """Digest of a class's source as syntax (formatting and comments aside); "" where there is no source."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
        return hashlib.sha256(ast.dump(ast.parse(source)).encode()).hexdigest()[:16]
    except (OSError, TypeError, SyntaxError):  # classes made at runtime or in a REPL
        return ""
