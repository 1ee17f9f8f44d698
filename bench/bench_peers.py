"""Our DeepFool against the reference implementations: foolbox 3, torchattacks and ART, side by side.

Run: ``python bench/bench_peers.py [--threads 1] [--seeds 0 1 2]`` (the peers are in requirements-bench.txt;
torchattacks is installed with ``--no-deps``). Every method runs L2 DeepFool in this one process on the same model and
the same test images, with the same settings where it has them: overshoot 0.02, at most 50 steps, the 10 classes with
the highest logits at x as candidates (foolbox ``candidates``, ART ``nb_grads``; torchattacks always uses every class).
Cases: digits-cnn-silu (200 test images) and shapes-resnet-silu (100), clipped to [0, 1] and not; each over
``--seeds`` random choices of the test images. A peer that cannot run a case (torchattacks always clips) is "n/a";
foolbox unclipped runs with bounds (-1e6, 1e6).

Per method, pooled over the seeds: the median margin ``||x_adv - x||_2`` of the successful runs (success: x_adv is
classified otherwise than x), the success rate, images per second (wall time, all seeds), and the per-image ratio
``ours / peer`` over the images both fooled: its median and 90th percentile (below 1: our margin is the smaller).
Our margin is ``||r||`` of `geometry.deepfool` (the overshot perturbation, as the peers report theirs).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import logging
import os
import platform
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

import geometry
from geometry.boundary.deepfool import deepfool

OVERSHOOT = 0.02
STEPS = 50
CANDIDATES = 10
CASES = (("digits-cnn-silu", "digits", 200), ("shapes-resnet-silu", "shapes", 100))

Attack = Callable[[geometry.ModelHandle, torch.Tensor, torch.Tensor, bool], torch.Tensor | None]


def ours(handle: geometry.ModelHandle, x: torch.Tensor, pred: torch.Tensor, clip: bool) -> torch.Tensor:
    del pred
    res = deepfool(handle, x, overshoot=OVERSHOOT, max_iter=STEPS, candidates=CANDIDATES, clip=clip)
    return x + res.perturbation


def foolbox(handle: geometry.ModelHandle, x: torch.Tensor, pred: torch.Tensor, clip: bool) -> torch.Tensor:
    import foolbox as fb

    bounds = handle.input_range if clip else (-1e6, 1e6)  # foolbox always clips: "unclipped" is a far-away box
    model = fb.PyTorchModel(handle.module.eval(), bounds=bounds, device=handle.device)
    attack = fb.attacks.L2DeepFoolAttack(steps=STEPS, candidates=CANDIDATES, overshoot=OVERSHOOT)
    _, adv, _ = attack(model, x.to(handle.device), fb.criteria.Misclassification(pred.to(handle.device)), epsilons=None)
    return adv.detach().cpu()


def torchattacks(handle: geometry.ModelHandle, x: torch.Tensor, pred: torch.Tensor, clip: bool) -> torch.Tensor | None:
    if not clip:
        return None  # torchattacks clamps every step to [0, 1]
    import torchattacks as ta

    attack = ta.DeepFool(handle.module.eval(), steps=STEPS, overshoot=OVERSHOOT)
    return attack(x.to(handle.device), pred.to(handle.device)).detach().cpu()


def art(handle: geometry.ModelHandle, x: torch.Tensor, pred: torch.Tensor, clip: bool) -> torch.Tensor:
    from art.attacks.evasion import DeepFool
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(
        model=handle.module.eval(),
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(handle.input_shape),
        nb_classes=handle.num_classes,
        clip_values=tuple(handle.input_range) if clip else None,
        device_type="gpu" if handle.device.type == "cuda" else "cpu",
    )
    attack = DeepFool(
        classifier, max_iter=STEPS, epsilon=OVERSHOOT, nb_grads=CANDIDATES, batch_size=len(x), verbose=False
    )
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        adv = attack.generate(x.numpy())
    return torch.from_numpy(adv)


METHODS: dict[str, Attack] = {"ours": ours, "foolbox": foolbox, "torchattacks": torchattacks, "ART": art}


def _images(dataset: str, count: int, seed: int) -> torch.Tensor:
    data = geometry.load_dataset(dataset, split="test")
    order = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(seed))
    return data.images[order[:count]]


def run_case(name: str, dataset: str, count: int, clip: bool, seeds: list[int]) -> list[str]:
    """Markdown rows, one per method, for one model and clip setting."""
    handle = geometry.load_model(name)
    margins: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    success: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    seconds = dict.fromkeys(METHODS, 0.0)
    warm = _images(dataset, 4, 99)
    for attack in METHODS.values():  # first calls (lazy imports, allocator) are not timed
        attack(handle, warm, handle.predict(warm), clip)
    for seed in seeds:
        x = _images(dataset, count, seed)
        pred = handle.predict(x)
        for method, attack in METHODS.items():
            start = time.perf_counter()
            adv = attack(handle, x, pred, clip)
            seconds[method] += time.perf_counter() - start
            if adv is None:
                continue
            margins[method].append((adv - x).flatten(1).norm(dim=1).numpy())
            success[method].append((handle.predict(adv) != pred).numpy())
    rows = []
    ours_m, ours_ok = np.concatenate(margins["ours"]), np.concatenate(success["ours"])
    for method in METHODS:
        if not margins[method]:
            rows.append(f"| {name} | {'on' if clip else 'off'} | {method} | n/a | n/a | n/a | n/a |")
            continue
        m, ok = np.concatenate(margins[method]), np.concatenate(success[method])
        both = ok & ours_ok
        ratio = ours_m[both] / m[both]
        ratio_text = "1 (itself)" if method == "ours" else f"{np.median(ratio):.3f} ({np.percentile(ratio, 90):.3f})"
        rows.append(
            f"| {name} | {'on' if clip else 'off'} | {method} | {np.median(m[ok]):.4f} | {ok.mean():.1%} | "
            f"{len(ok) / seconds[method]:.0f} | {ratio_text} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the image choice")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the images per case (quick runs)")
    args = parser.parse_args()
    logging.getLogger("art").setLevel(logging.ERROR)  # ART warns that unclipped DeepFool does not clip
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"Machine: {platform.node()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, device {geometry.default_device()}; "
        f"{datetime.date.today().isoformat()}."
    )
    print(
        f"Settings: L2 DeepFool, overshoot {OVERSHOOT}, at most {STEPS} steps, {CANDIDATES} candidate classes "
        f"(torchattacks: all), seeds of the image choice {args.seeds}.\n"
    )
    print("| model | clip | method | median margin | success | images/s | ours / method: median (p90) |")
    print("|---|---|---|---|---|---|---|")
    for name, dataset, count in CASES:
        for clip in (True, False):
            for row in run_case(name, dataset, max(1, round(count * args.scale)), clip, args.seeds):
                print(row, flush=True)


if __name__ == "__main__":
    main()
