"""Benchmark the Feature space view: feature extraction, 2D embeddings, painted and exact region maps, hull tests.

Run: ``python bench/bench_features.py`` (about 20-35 min on 2 CPU cores; ``--quick`` for a smoke run).
Prints markdown tables. Embeddings are timed on real features: the digits-cnn-silu model's 128-d
penultimate features of up to 50,000 digits (scikit-learn's 1,797 images with seeded random one-pixel
shifts and a little noise). "First" = computed (through a fresh disk cache), "cached" = the same call again.
t-SNE stops at 10,000 samples by default (50,000 takes about 30 min on 2 cores; ``--tsne-max 50000`` to run it).
UMAP's cost in a new process (import + numba compilation) is measured in fresh subprocesses, with an empty
numba cache (the first process on a machine) and with the cache the first one left (every later process).
The hover-image sprite sheets of the Feature space page are measured for 2,000 digits and 2,000 shapes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

import geometry
from geometry.features import embedding as emb
from geometry.features.extract import compute_features, extract_features, find_head
from geometry.features.hull import hull_report
from geometry.features.regions import exact_region_map, paint_regions, plane_through_features
from geometry.runtime.cache import DiskCache


def _timed(fn: object) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()  # type: ignore[operator]
    return time.perf_counter() - start, out


def _best(fn: object, repeat: int) -> float:
    return min(_timed(fn)[0] for _ in range(repeat))


def augmented_digits(n: int, seed: int = 0) -> torch.Tensor:
    """n digits images (1, 8, 8) in [0, 1]: the 1,797 originals, shifted by up to one pixel, with noise 0.03."""
    data = geometry.load_dataset("digits", "all")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(data), (n,), generator=g)
    padded = torch.nn.functional.pad(data.images[idx], (1, 1, 1, 1))
    dx, dy = torch.randint(0, 3, (n,), generator=g), torch.randint(0, 3, (n,), generator=g)
    rows = (dy[:, None] + torch.arange(8)[None]).view(n, 1, 8, 1).expand(n, 1, 8, 10)
    shifted = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(8)[None]).view(n, 1, 1, 8).expand(n, 1, 8, 8)
    shifted = shifted.gather(3, cols)
    return (shifted + 0.03 * torch.randn(shifted.shape, generator=g)).clamp_(0, 1)


def bench_extraction(repeat: int) -> None:
    print("\n### Feature extraction (input of the final linear layer, fp32, CPU)\n")
    print("| model | images | feature dim | extract_features (s) | images/s | compute_features first / cached (s) |")
    print("|---|---:|---:|---:|---:|---|")
    cases = [("digits-cnn-silu", augmented_digits(10_000), "digits")]
    if "shapes-resnet-silu" in geometry.builtin_models():
        cases.append(("shapes-resnet-silu", geometry.load_dataset("shapes", "test").images, "shapes"))
    for name, images, dataset in cases:
        handle = geometry.load_model(name, device="cpu")
        extract_features(handle, images[:64])  # warm-up
        t = _best(lambda h=handle, x=images: extract_features(h, x), repeat)
        dim = extract_features(handle, images[:2])[0].shape[1]
        data = geometry.load_dataset(dataset, "test")
        with tempfile.TemporaryDirectory() as tmp:
            cache = DiskCache(tmp)
            first, _ = _timed(lambda h=handle, d=data, c=cache: compute_features(h, d, cache=c))
            cached, _ = _timed(lambda h=handle, d=data, c=cache: compute_features(h, d, cache=c))
        print(
            f"| {name} | {len(images):,} | {dim} | {t:.2f} | {len(images) / t:,.0f} | "
            f"{first:.2f} / {cached:.3f} ({len(data):,} {dataset} test) |"
        )


def bench_embeddings(sizes: list[int], tsne_max: int, umap_max: int) -> dict[tuple[str, int], np.ndarray]:
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    feats, _ = extract_features(handle, augmented_digits(max(sizes), seed=1))
    feats = feats.numpy()
    emb.make_embedding("pca").fit(feats[:60])  # import scikit-learn's modules outside the timings
    emb.make_embedding("tsne", max_iter=250).fit(feats[:60])
    t_warm = emb.warm_up_umap()
    print(
        f"\n### 2D embeddings of {feats.shape[1]}-d features (UMAP warm-up in this process: import + numba "
        f"compile/load {t_warm:.1f} s, not included below)\n"
    )
    print("| method | samples | first (s) | cached (s) |")
    print("|---|---:|---:|---:|")
    coords: dict[tuple[str, int], np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = DiskCache(tmp, unlimited=True)
        for method, limit in (("pca", max(sizes)), ("umap", umap_max), ("tsne", tsne_max)):
            for n in sizes:
                if n > limit:
                    print(f"| {method.upper()} | {n:,} | skipped (> --{method}-max {limit:,}) | |")
                    continue
                x = feats[:n]
                first, result = _timed(lambda x=x, m=method, c=cache: emb.embed(x, m, cache=c))
                cached, _ = _timed(lambda x=x, m=method, c=cache: emb.embed(x, m, cache=c))
                coords[(method, n)] = result.coords  # type: ignore[attr-defined]
                print(f"| {method.upper()} | {n:,} | {first:.2f} | {cached:.3f} |", flush=True)
    coords[("features", 0)] = feats
    return coords


def real_features(n: int) -> np.ndarray:
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    return extract_features(handle, augmented_digits(n, seed=1))[0].numpy()


_COLD_UMAP = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    import numpy as np
    from geometry.features import embedding as emb
    out = {"python_start": time.perf_counter() - t0}
    t = time.perf_counter(); emb._import_umap(); out["import_umap"] = time.perf_counter() - t
    if sys.argv[2] in ("warm", "small"):  # both compile phases, or only the one for sets below 4,096
        t = time.perf_counter(); emb.warm_up_umap(large=sys.argv[2] == "warm"); out["warm_up"] = time.perf_counter() - t
    x = np.load(sys.argv[1])
    t = time.perf_counter(); emb.UMAPEmbedding(seed=0).fit_transform(x); out["first_fit"] = time.perf_counter() - t
    t = time.perf_counter(); emb.UMAPEmbedding(seed=1).fit_transform(x); out["second_fit"] = time.perf_counter() - t
    print(json.dumps(out))
""")


def bench_umap_cold(feats: np.ndarray, n: int) -> None:
    """UMAP in a new Python process: importing umap, the warm-up, and the first fit of ``n`` real features."""
    print(f"\n### UMAP in a new process ({n:,} samples of {feats.shape[1]}-d features; seconds)\n")
    print("| numba cache | warm-up | import umap | warm-up fits | first fit | second fit | total to first result |")
    print("|---|---|---:|---:|---:|---:|---:|")
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "features.npy")
        np.save(path, np.ascontiguousarray(feats[:n]))
        for mode in ("warm", "small", "none"):  # each with its own numba cache: empty, then as the first run left it
            numba_dir = os.path.join(tmp, f"numba-{mode}")
            for cache_state in ("empty", "filled"):
                env = {**os.environ, "NUMBA_CACHE_DIR": numba_dir}  # `-c` in cwd=root imports this checkout
                proc = subprocess.run(
                    [sys.executable, "-c", _COLD_UMAP, path, mode],
                    env=env,
                    cwd=root,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                warm = r.get("warm_up")
                total = r["import_umap"] + (warm or 0.0) + r["first_fit"]
                what = {"warm": "both paths", "small": "small path", "none": "none"}[mode]
                print(
                    f"| {cache_state} | {what} | {r['import_umap']:.1f} | "
                    f"{'' if warm is None else f'{warm:.1f}'} | {r['first_fit']:.1f} | {r['second_fit']:.1f} | "
                    f"{total:.1f} |",
                    flush=True,
                )


def bench_hover_sprites() -> None:
    """Size and build time of the Feature space page's hover-image sprite sheets (one PNG per scatter)."""
    from ui.hover_images import hover_html, sprite_sheet

    print("\n### Hover images: one sprite sheet per scatter\n")
    print("| images | thumbnail | PNG | colours | PNG bytes | page payload (data URI + ids + script) | build (s) |")
    print("|---|---|---|---|---:|---:|---:|")
    cases = [
        ("2,000 digits (augmented, noisy)", augmented_digits(2_000, seed=2)),
        ("1,797 digits (all of them)", geometry.load_dataset("digits", "all").images),
        ("2,000 shapes (test split)", geometry.load_dataset("shapes", "test").images[:2_000]),
    ]
    for name, images in cases:
        t, sheet = _timed(lambda x=images: sprite_sheet(x))
        html = hover_html("chart", sheet, list(range(sheet.count)))  # type: ignore[attr-defined]
        kind = "grey" if images.shape[1] == 1 else "RGB"
        print(
            f"| {name} | {sheet.tile_width}x{sheet.tile_height} {kind} | {sheet.columns}x{sheet.rows} tiles | "  # type: ignore[attr-defined]
            f"{'exact' if sheet.exact else '256 (median cut)'} | {len(sheet.png):,} | {len(html):,} | {t:.2f} |"
        )  # type: ignore[attr-defined]


def bench_painting(coords: dict[tuple[str, int], np.ndarray], n: int, resolution: int) -> None:
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    head = find_head(handle)
    feats = coords[("features", 0)][:n]
    print(f"\n### Regions painted behind an embedding of {n:,} samples ({resolution}x{resolution} grid)\n")
    print("| embedding | back-map | time (s) | agreement | held-out agreement | trusted grid |")
    print("|---|---|---:|---:|---:|---:|")
    for method in ("pca", "umap", "tsne"):
        if (method, n) not in coords:
            continue
        for backmap in ("knn", "rbf"):
            t, pr = _timed(
                lambda m=method, b=backmap: paint_regions(coords[(m, n)], feats, head, resolution=resolution, method=b)
            )
            print(
                f"| {method.upper()} | {backmap} | {t:.2f} | {pr.agreement:.1%} | "  # type: ignore[attr-defined]
                f"{pr.heldout_agreement:.1%} | {pr.trusted_share:.0%} |"
            )  # type: ignore[attr-defined]


def bench_exact_and_hull(hull_n: int) -> None:
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    test = compute_features(handle, geometry.load_dataset("digits", "test"), cache=DiskCache(tempfile.mkdtemp()))
    train = compute_features(handle, geometry.load_dataset("digits", "train"), cache=DiskCache(tempfile.mkdtemp()))
    plane = plane_through_features(*test.features[:3])
    print("\n### Exact feature-plane region maps and convex-hull tests (digits-cnn-silu, 128-d)\n")
    print("| task | size | time (s) |")
    print("|---|---|---:|")
    for r in (300, 1000):
        t = _best(lambda r=r: exact_region_map(test.head, plane, resolution=r), 3)
        print(f"| exact region map (grid + exact polygons) | {r}x{r} | {t:.3f} |")
    classes = test.labels[:hull_n]
    t, rep = _timed(lambda: hull_report(train.features, train.labels, test.features[:hull_n], classes, num_classes=10))
    print(
        f"| hull tests, overall + own class | {hull_n} test vs {len(train):,} train | {t:.2f} "
        f"({rep.share_outside:.0%} outside) |"
    )  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 10_000, 50_000])
    parser.add_argument("--tsne-max", type=int, default=10_000, help="largest sample size timed for t-SNE")
    parser.add_argument("--umap-max", type=int, default=50_000, help="largest sample size timed for UMAP")
    parser.add_argument("--resolution", type=int, default=200, help="painting grid")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hull", type=int, default=100, help="test samples in the hull benchmark")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["extraction", "embeddings", "umap-cold", "sprites", "exact"],
        help="run only these parts (painting runs with embeddings)",
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.tsne_max, args.umap_max, args.repeat, args.hull = [500, 2_000], 2_000, 2_000, 1, 20
    torch.set_num_threads(max(1, min(os.cpu_count() or 1, torch.get_num_threads())))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Feature space benchmark: {platform.machine()} CPU, {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}, load average {load:.1f} at start"
    )
    parts = set(args.only or ["extraction", "embeddings", "umap-cold", "sprites", "exact"])
    if "umap-cold" in parts:  # first: this process has not imported umap yet (the subprocesses never share it)
        bench_umap_cold(real_features(2_000), 2_000)
    if "sprites" in parts:
        bench_hover_sprites()
    if "extraction" in parts:
        bench_extraction(args.repeat)
    if "embeddings" in parts:
        coords = bench_embeddings(sorted(args.sizes), args.tsne_max, args.umap_max)
        bench_painting(coords, min(args.sizes, key=lambda s: abs(s - 2_000)), args.resolution)
    if "exact" in parts:
        bench_exact_and_hull(args.hull)


if __name__ == "__main__":
    main()
