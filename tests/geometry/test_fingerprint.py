"""Fingerprints: equal content -> equal string, any changed weight, dtype or shape -> different."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from geometry.runtime.fingerprint import module_fingerprint, state_dict_fingerprint, tensor_fingerprint


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))


def test_tensor_fingerprint_is_hex_and_content_based() -> None:
    a = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    fp = tensor_fingerprint(a)
    assert len(fp) >= 16 and all(c in "0123456789abcdef" for c in fp)
    assert fp == tensor_fingerprint(a.clone())
    # a non-contiguous view hashes like its contiguous copy
    assert tensor_fingerprint(a.t()) == tensor_fingerprint(a.t().contiguous())
    assert tensor_fingerprint(a.requires_grad_(True)) == fp


def test_tensor_fingerprint_sees_values_dtype_shape_and_order() -> None:
    a = torch.arange(12, dtype=torch.float32)
    b = a.clone()
    b[5] = torch.nextafter(b[5], torch.tensor(100.0))  # one ulp
    assert tensor_fingerprint(a) != tensor_fingerprint(b)
    assert tensor_fingerprint(a) != tensor_fingerprint(a.double())
    assert tensor_fingerprint(a) != tensor_fingerprint(a.reshape(3, 4))
    x, y = torch.zeros(2), torch.ones(2)
    assert tensor_fingerprint(x, y) != tensor_fingerprint(y, x)
    assert tensor_fingerprint(x, y) != tensor_fingerprint(torch.cat([x, y]))


def test_tensor_fingerprint_odd_dtypes() -> None:
    for t in (
        torch.randn(3).bfloat16(),
        torch.tensor([True, False]),
        torch.randn(2, dtype=torch.complex64).conj(),
        torch.tensor(3.0),
        torch.empty(0, 5),
    ):
        assert tensor_fingerprint(t) == tensor_fingerprint(t.clone())
    assert tensor_fingerprint(torch.empty(0, 5)) != tensor_fingerprint(torch.empty(5, 0))


def test_state_dict_fingerprint_same_weights_same_key_order_free() -> None:
    net = _net()
    sd = net.state_dict()
    reordered = dict(reversed(list(sd.items())))
    assert state_dict_fingerprint("net", sd) == state_dict_fingerprint("net", reordered)
    assert state_dict_fingerprint("net", sd) != state_dict_fingerprint("other", sd)
    renamed = {("x." + k): v for k, v in sd.items()}
    assert state_dict_fingerprint("net", sd) != state_dict_fingerprint("net", renamed)


def test_module_fingerprint_changes_with_one_weight_and_buffers() -> None:
    net = _net()
    fp = module_fingerprint("net", net)
    twin = copy.deepcopy(net)
    assert module_fingerprint("net", twin) == fp
    with torch.no_grad():
        twin[3].weight[1, 2] += 1e-6
    assert module_fingerprint("net", twin) != fp
    other = copy.deepcopy(net)
    other[1].running_mean[0] += 0.5  # a buffer, not a parameter
    assert module_fingerprint("net", other) != fp
    assert module_fingerprint("net", net) == fp  # the original was left as it was


def test_fingerprint_bad_input() -> None:
    with pytest.raises(TypeError, match="expected a torch.Tensor, got ndarray"):
        tensor_fingerprint(torch.zeros(2).numpy())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"state_dict\['w'\] must be a torch.Tensor, got list"):
        state_dict_fingerprint("net", {"w": [1.0]})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="arch_name must be a str"):
        state_dict_fingerprint(3, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a torch.nn.Module, got dict"):
        module_fingerprint("net", {})  # type: ignore[arg-type]
