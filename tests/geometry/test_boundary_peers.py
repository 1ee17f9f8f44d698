"""Clipped DeepFool's margins are no larger than foolbox 3's on the same model and images (issue 11, item 5).

foolbox is a bench dependency (requirements-bench.txt); without it the test is skipped. bench/bench_peers.py makes
the full comparison (foolbox, torchattacks, ART; clipped and not; two models).
"""

from __future__ import annotations

import pytest
import torch

import geometry
from geometry.boundary.deepfool import deepfool

fb = pytest.importorskip("foolbox", reason="foolbox is not installed (pip install -r requirements-bench.txt)")


def test_clipped_margins_are_at_least_as_tight_as_foolbox():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    x = geometry.load_dataset("digits", split="test").images[:50]
    pred = handle.predict(x)
    ours = deepfool(handle, x, clip=True, overshoot=0.02, max_iter=50, candidates=10)
    model = fb.PyTorchModel(handle.module.eval(), bounds=(0.0, 1.0), device="cpu")
    attack = fb.attacks.L2DeepFoolAttack(steps=50, candidates=10, overshoot=0.02)
    _, adv, success = attack(model, x, fb.criteria.Misclassification(pred), epsilons=None)
    theirs = (adv - x).flatten(1).norm(dim=1)
    assert ours.converged.all() and success.all()
    assert ((x + ours.perturbation).min() >= 0) and ((x + ours.perturbation).max() <= 1)
    assert (handle.predict(x + ours.perturbation) != pred).all()
    ratio = ours.norm / theirs
    # "no larger": the median ratio at most 1.00 (to round-off), and within 1% at the 90th percentile
    assert float(ratio.median()) <= 1.0 + 1e-4, f"median ratio ours / foolbox {float(ratio.median()):.4f}"
    assert float(torch.quantile(ratio, 0.9)) <= 1.01, f"90th percentile {float(torch.quantile(ratio, 0.9)):.4f}"
