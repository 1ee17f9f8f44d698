"""The dataset atlas on the local engine: rows that match the library's own measurements and closed-form answers,
resuming an interrupted run, Parquet, R(eps), and the ``python -m geometry atlas`` command."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import geometry
import geometry.atlas.shards as shards_module
from geometry.atlas import (
    AtlasOptions,
    LocalEngine,
    atlas_status,
    build_atlas,
    cached_atlas,
    compare_atlases,
    read_atlas,
    robustness_curve,
    write_atlas,
)
from geometry.boundary.curvature import boundary_curvature
from geometry.boundary.deepfool import deepfool
from geometry.boundary.options import CurvatureOptions
from geometry.cli import main
from geometry.inspection.options import DetectionOptions
from geometry.runtime.cache import DiskCache
from geometry.runtime.compute import Cancelled, CancelToken
from tests.geometry.analytic import ball_handle

N, SHARD = 28, 8  # 4 shards, the last one short
# every analysis, small settings (the tests run on a shared 2-core machine)
OPTIONS = AtlasOptions(
    analyses=("margin", "curvature", "frequency", "detection"),
    curvature=CurvatureOptions(k=2, num_random=8),
    detection=DetectionOptions(num_directions=8),
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: the machine's two cores are shared, and two threads each then run far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> geometry.Dataset:
    return geometry.load_dataset("digits", "test")


@pytest.fixture
def store(tmp_path) -> DiskCache:
    return DiskCache(tmp_path / "cache")


@pytest.fixture(scope="module")
def full(silu, digits, tmp_path_factory) -> pd.DataFrame:
    """Every analysis on the first N digits, computed once for the module."""
    return build_atlas(
        silu,
        digits,
        options=OPTIONS,
        limit=N,
        shard_size=SHARD,
        cache=DiskCache(tmp_path_factory.mktemp("atlas-full")),
    )


def test_rows_are_the_images_in_order_with_the_models_predictions(silu, digits, full):
    assert len(full) == N and full["index"].tolist() == list(range(N))
    assert full["label"].tolist() == digits.labels[:N].tolist()
    logits = silu.logits(digits.images[:N]).double()
    assert full["prediction"].tolist() == logits.argmax(1).tolist()
    np.testing.assert_allclose(full["confidence"], logits.softmax(1).max(1).values.numpy(), rtol=1e-6)
    top2 = logits.topk(2, dim=1).values
    np.testing.assert_allclose(full["logit_margin"], (top2[:, 0] - top2[:, 1]).numpy(), rtol=1e-5)
    assert (full["correct"] == (full["prediction"] == full["label"])).all()
    for name in ("model", "model_fingerprint", "dataset", "split", "data_fingerprint", "parameters", "code_version"):
        assert full[name].nunique() == 1, name
    assert full["model_fingerprint"].iloc[0] == silu.fingerprint
    assert full["data_fingerprint"].iloc[0] == digits.fingerprint
    assert '"curvature"' in full["parameters"].iloc[0]


def test_margin_column_is_deepfools_boundary_distance(silu, digits, full):
    shard = slice(2 * SHARD, 3 * SHARD)  # the same batch as the atlas's third shard: equal to the bit
    df = deepfool(silu, digits.images[shard])
    assert np.array_equal(full["margin"].to_numpy()[shard], df.boundary_distance.numpy(), equal_nan=True)
    assert full["boundary_class"].to_numpy()[shard].tolist() == df.boundary_class.tolist()
    for i in (0, 7, 19, 27):  # any batch: the same distance to DeepFool's bisection tolerance
        one = deepfool(silu, digits.images[i : i + 1])
        assert full["margin"][i] == pytest.approx(float(one.boundary_distance[0]), abs=1e-4)
        assert bool(full["converged"][i]) == bool(one.converged[0])


def test_curvature_columns_are_the_ends_of_the_principal_spectrum(silu, digits, full):
    k = OPTIONS.curvature.k
    top = full[[f"curvature_top_{i + 1}" for i in range(k)]].to_numpy()
    bottom = full[[f"curvature_bottom_{i + 1}" for i in range(k)]].to_numpy()
    assert (np.diff(top, axis=1) <= 0).all() and (np.diff(bottom, axis=1) >= 0).all()
    np.testing.assert_array_equal(full["curvature_max_abs"], np.maximum(np.abs(top[:, 0]), np.abs(bottom[:, 0])))
    shard = slice(SHARD, 2 * SHARD)
    res = boundary_curvature(silu, digits.images[shard], options=OPTIONS.curvature)
    np.testing.assert_allclose(top[shard, 0], res.curvatures[:, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(bottom[shard, 0], res.curvatures[:, -1].numpy(), rtol=1e-6)
    rand = res.random_curvatures.double().numpy()
    np.testing.assert_allclose(full["curvature_random_mean"].to_numpy()[shard], rand.mean(1), rtol=1e-6)
    assert (full["curvature_random_min"] <= full["curvature_random_max"]).all()
    bands = [c for c in full.columns if c.startswith("freq_margin_")]
    assert len(bands) == 7 and (full[bands].to_numpy() > 0).all()  # 7 DCT bands of an 8x8 image
    assert np.isfinite(full["detection_score"]).all()


def test_a_ball_has_known_margins_and_curvatures(store):
    """Class 1 inside a ball of radius R: an image at distance r from the centre has margin R - r, and the boundary
    bends around its region with curvature 1/R in every direction."""
    center, radius = torch.full((1, 4, 4), 0.5), 0.3
    handle = ball_handle(center, radius)
    gen = torch.Generator().manual_seed(0)
    directions = torch.randn(10, 16, generator=gen)
    directions /= directions.norm(dim=1, keepdim=True)
    r = torch.linspace(0.02, 0.25, 10)  # not the centre, where the normal is undefined
    images = (center.flatten() + r[:, None] * directions).reshape(10, 1, 4, 4)
    data = geometry.Dataset("ball", "test", images, torch.ones(10, dtype=torch.int64), ("out", "in"), (0.0, 1.0))
    options = AtlasOptions(analyses="curvature", curvature=CurvatureOptions(k=2, num_random=8))
    df = build_atlas(handle, data, options=options, shard_size=4, cache=store)
    assert df["prediction"].tolist() == [1] * 10 and df["correct"].all()
    np.testing.assert_allclose(df["margin"], radius - r.numpy(), atol=1e-4)
    for name in ("curvature_top_1", "curvature_bottom_1", "curvature_random_mean"):
        np.testing.assert_allclose(df[name], 1 / radius, rtol=1e-3)


def test_an_interrupted_run_resumes_with_the_missing_shards_only(silu, digits, store, monkeypatch, full):
    calls: list[int] = []
    cancel = CancelToken()
    real = shards_module.shard_rows

    def counting(handle, images, labels, indices, options, **kw):
        calls.append(int(indices[0]))
        rows = real(handle, images, labels, indices, options, **kw)
        if len(calls) == 2:
            cancel.cancel()  # "Ctrl-C" after the second shard: the engine stops before the third
        return rows

    monkeypatch.setattr(shards_module, "shard_rows", counting)
    options = OPTIONS
    with pytest.raises(Cancelled):
        build_atlas(silu, digits, options=options, limit=N, shard_size=SHARD, cache=store, cancel=cancel)
    assert calls == [0, SHARD]
    assert atlas_status(silu, digits, options=options, limit=N, shard_size=SHARD, cache=store) == (2, 4)
    assert cached_atlas(silu, digits, options=options, limit=N, shard_size=SHARD, cache=store) is None
    calls.clear()
    seen: list[str] = []
    df = build_atlas(
        silu, digits, options=options, limit=N, shard_size=SHARD, cache=store, progress=lambda f, t: seen.append(t)
    )
    assert calls == [2 * SHARD, 3 * SHARD]  # the two missing shards, nothing else
    pd.testing.assert_frame_equal(df, full)  # the same rows as one uninterrupted run
    assert seen[-1].startswith("4/4 shards") and "images/s" in seen[-1]
    calls.clear()
    again = cached_atlas(silu, digits, options=options, limit=N, shard_size=SHARD, cache=store)
    pd.testing.assert_frame_equal(again, full)
    assert calls == []
    # a longer --limit reuses the full shards it shares and computes the rest
    build_atlas(silu, digits, options=options, limit=N + 4, shard_size=SHARD, cache=store)
    assert calls == [3 * SHARD]  # the old short last shard [24, 28) is now [24, 32)


def test_parquet_round_trip(full, tmp_path):
    path = write_atlas(full, tmp_path / "atlas.parquet")
    back = read_atlas(path)
    pd.testing.assert_frame_equal(back, full)
    assert back.attrs["model"] == "digits-cnn-silu" and back.attrs["class_names"][3] == "3"
    import pyarrow.parquet as pq  # readable by anyone: plain columns

    assert pq.read_schema(path).field("margin").type == "float"
    with pytest.raises(ValueError, match=r"\.parquet"):
        write_atlas(full, tmp_path / "atlas.csv")


def test_robustness_curve_counts_correct_images_beyond_eps():
    df = pd.DataFrame(
        {
            "label": [0, 0, 1, 1, 1],
            "correct": [True, True, True, False, True],
            "margin": [0.1, 0.3, 0.2, 0.5, math.nan],
        }
    )
    curve = robustness_curve(df, [0.0, 0.15, 0.25, 0.4])
    np.testing.assert_allclose(curve["all"], [3 / 5, 2 / 5, 1 / 5, 0.0])  # wrong / NaN rows never count
    np.testing.assert_allclose(curve["0"], [1.0, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(curve["1"], [1 / 3, 1 / 3, 0.0, 0.0])


def test_compare_atlases_image_by_image(full):
    other = full.copy()
    other["margin"] = other["margin"] * 0.5
    joined = compare_atlases(full, other)
    np.testing.assert_allclose(joined["margin_change"], -0.5 * full["margin"])
    assert joined["index"].tolist() == full["index"].tolist()


def test_bad_input_says_what_was_expected(silu, digits):
    with pytest.raises(ValueError, match="expected analyses among"):
        build_atlas(silu, digits, analyses="margin,nonsense", cache=False)
    with pytest.raises(ValueError, match="expected engine"):
        build_atlas(silu, digits, engine="spark", cache=False)
    shapes = geometry.load_dataset("shapes", "test")
    with pytest.raises(ValueError, match="expects inputs of shape"):
        build_atlas(silu, shapes, cache=False)
    with pytest.raises(ValueError, match="workers"):
        build_atlas(silu, digits, workers=0, cache=False, limit=2)
    assert len(build_atlas(silu, digits, engine=LocalEngine(threads=1), cache=False, limit=2)) == 2


def test_command_line_writes_the_parquet(tmp_path, capsys, digits):
    out = tmp_path / "a.parquet"
    status = main(
        [
            "atlas",
            "--model",
            "digits-cnn-silu",
            "--data",
            "digits",
            "--limit",
            "20",
            "--shard-size",
            "8",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert status == 0
    df = read_atlas(out)
    assert len(df) == 20 and df["index"].tolist() == list(range(20)) and "margin" in df.columns
    assert "wrote" in capsys.readouterr().out
    assert main(["atlas", "--model", "digits-cnn-silu", "--analyses", "margin,bogus", "--out", str(out)]) == 2
    assert "expected analyses among" in capsys.readouterr().err
