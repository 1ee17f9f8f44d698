"""The HTML report and the command line: every section with its readings, offline, atomic, cached, clear errors."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import geometry
from geometry.boundary.curvature import boundary_curvature, cached_curvature
from geometry.boundary.options import CurvatureOptions, DeepFoolOptions
from geometry.cli import ProgressBar, main
from geometry.inspection.robustness import ROTATION_SIZES, shapes_sweep
from geometry.report import (
    PAGE_CURVATURE,
    SECTION_KEYS,
    ReportConfig,
    build_report,
    report_html,
    report_images,
    write_report,
)
from geometry.report.sections import curvature_section

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits_report(tmp_path_factory):
    cache = geometry.DiskCache(tmp_path_factory.mktemp("report-cache"))
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    data = geometry.load_dataset("digits")
    calls = []
    report = build_report(handle, data, ReportConfig.quick(), cache=cache, progress=lambda f, t: calls.append((f, t)))
    return report, cache, handle, data, calls


def test_the_report_has_every_section_with_readings(digits_report):
    report, _, handle, data, calls = digits_report
    assert [s.key for s in report.sections] == list(SECTION_KEYS)
    for s in report.sections:
        assert s.applicable, s.key
        assert s.summary and s.items and all(item.reading for item in s.items)
    assert report.section("accuracy").summary.startswith(f"Accuracy {handle.accuracy(data.images, data.labels):.1%}")
    assert "digits-cnn-silu" in report.section("model").summary
    figures = [item.figure for s in report.sections for item in s.items if item.figure is not None]
    assert len(figures) >= 10
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_the_html_is_self_contained_and_shows_each_section(digits_report):
    report = digits_report[0]
    text = report_html(report)
    for key in SECTION_KEYS:
        assert f"id='sec-{key}'" in text
        assert report.section(key).title in text
    # plotly.js inline exactly once, no script or stylesheet fetched from anywhere
    assert text.count("<script type='text/javascript'>") == 1 and "Plotly" in text[:5_000_000]
    assert len(re.findall(r"plotly\.js v\d+\.\d+\.\d+", text[:200_000])) >= 1
    body = text.split("</head>", 1)[1]  # everything but the inlined library (which names its CDN in a comment)
    assert not re.search(r"<script[^>]+src=", text) and "<link" not in text and "http" not in body
    figures = sum(1 for s in report.sections for item in s.items if item.figure is not None)
    assert text.count("Plotly.newPlot(") == figures
    # every figure comes after a one-line reading
    blocks = text.split("class='reading'")[1:]
    assert sum(b.count("Plotly.newPlot(") for b in blocks) == figures
    assert all(b.count("Plotly.newPlot(") <= 1 for b in blocks)


def test_a_second_report_comes_from_the_cache(digits_report):
    _, cache, handle, data, _ = digits_report
    entries = len(cache)
    again = build_report(handle, data, ReportConfig.quick(), cache=cache)
    assert len(cache) == entries  # nothing new was computed
    assert again.section("detection").summary == digits_report[0].section("detection").summary


def test_the_report_measures_curvature_in_the_curvature_pages_cache_entries(tmp_path):
    """Each curvature image is one `cached_curvature` call with the Curvature page's default options, so an image the
    page has shown is not measured again by the report, nor the other way round."""
    cache = geometry.DiskCache(tmp_path / "c")
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    data = geometry.load_dataset("digits")
    config = ReportConfig(curvature_images=2)
    # the page's default settings (views/curvature.py): k 10, 300 random directions, automatic method, seed 0, the
    # nearest class, no clipping, h and beta at their defaults
    page = CurvatureOptions(
        k=10,
        method="auto",
        h=None,
        beta=10.0,
        num_random=300,
        seed=0,
        deepfool=DeepFoolOptions(target=None, clip=False),
    )
    assert config.curvature == PAGE_CURVATURE == page
    x = report_images(data, config.curvature_images, config.seed).images
    section = curvature_section(handle, x, config, cache=cache)
    entries = len(cache)
    for i in range(len(x)):
        page_result = cached_curvature(handle, x[i : i + 1], page, cache=cache)  # what the page asks for
        torch.testing.assert_close(page_result.curvatures, section.curvature.curvatures[i : i + 1])
    assert len(cache) == entries  # nothing measured again
    # independently of the cache: one batched measurement gives the same principal curvatures
    batch = boundary_curvature(handle, x, options=page)
    torch.testing.assert_close(section.curvature.curvatures, batch.curvatures, rtol=1e-3, atol=1e-4)
    assert section.curvature.random_curvatures.shape == (2, 300) and section.curvature.method == batch.method


def test_a_2d_model_gets_every_section_with_the_image_ones_not_applicable(tmp_path):
    handle = geometry.load_model("moons-mlp", device="cpu")
    data = geometry.load_dataset("moons")
    report = build_report(handle, data, ReportConfig.quick(), cache=geometry.DiskCache(tmp_path / "c"))
    assert [s.key for s in report.sections] == list(SECTION_KEYS)
    assert {s.key for s in report.sections if not s.applicable} == {"frequency", "robustness"}
    assert report.section("frequency").summary.startswith("Not applicable")
    assert "AUC" in report.section("detection").summary


def test_a_shapes_model_gets_the_generated_shapes_sweeps_with_rotation_at_several_sizes(tmp_path):
    cache = geometry.DiskCache(tmp_path / "c")
    handle = geometry.load_model("shapes-resnet-silu", device="cpu")
    data = geometry.load_dataset("shapes")
    config = ReportConfig.quick()
    section = build_report(handle, data, config, cache=cache).section("robustness")
    assert section.applicable
    readings = [item.reading for item in section.items]
    assert len(readings) == 7  # 4 sweeps of the images themselves + size, rotation, position of generated shapes
    rotation = next(item.figure for item in section.items if "one curve per object size" in item.reading)
    curves = {t.name: np.asarray(t.y, dtype=float) for t in rotation.data if t.name.endswith(": accuracy")}
    assert list(curves) == [f"area {a:g}: accuracy" for a in ROTATION_SIZES]
    for a in ROTATION_SIZES:  # each curve is the rotation sweep of generated shapes of that size
        sweep = shapes_sweep(handle, "rotation", n=config.shapes_images, seed=config.seed, area=a)
        np.testing.assert_allclose(curves[f"area {a:g}: accuracy"], sweep.accuracy)
        assert f"{float(np.mean(sweep.accuracy)):.0%} at area {a:g}" in section.summary
    area = shapes_sweep(handle, "area", [0.02, 0.2], n=config.shapes_images, seed=config.seed)
    assert f"accuracy is {area.accuracy[0]:.0%} at 2% of the image, {area.accuracy[1]:.0%} at 20%" in section.summary
    position = next(item.figure for item in section.items if "grid position" in item.reading)
    assert position.data[0].type == "heatmap"


def test_write_report_is_atomic_and_checks_the_path(tmp_path, digits_report):
    _, cache, handle, data, _ = digits_report
    out = tmp_path / "r.html"
    report = write_report(out, handle, data, ReportConfig.quick(), cache=cache)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert len(report.sections) == len(SECTION_KEYS)
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temp file left behind
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(tmp_path / "missing" / "r.html", handle, data, ReportConfig.quick(), cache=cache)
    with pytest.raises(ValueError, match="a file path"):
        write_report(tmp_path, handle, data, ReportConfig.quick(), cache=cache)
    with pytest.raises(ValueError, match="inputs"):
        build_report(handle, geometry.load_dataset("moons"), ReportConfig.quick(), cache=cache)
    with pytest.raises(ValueError, match="n_images"):
        ReportConfig(n_images=0)


def test_the_command_line_writes_the_report_with_a_progress_bar(tmp_path, capsys, monkeypatch, digits_report):
    monkeypatch.setenv("BOUNDARY_ATLAS_CACHE", str(digits_report[1].root))  # reuse the fixture's results
    out = tmp_path / "cli.html"
    assert (
        main(
            [
                "report",
                "--model",
                "digits-cnn-silu",
                "--dataset",
                "digits",
                "--out",
                str(out),
                "--quick",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "100%" in captured.err and "[" + "#" * 30 + "]" in captured.err
    assert f"wrote {out}" in captured.out and "8 sections" in captured.out
    assert "id='sec-robustness'" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "--model", "no-such-model", "--out", "x.html"], "error: "),
        (["report", "--model", "digits-cnn-silu", "--out", "x.html", "--n", "10", "--quick"], "either --n or --quick"),
        (["report", "--model", "digits-cnn-silu", "--dataset", "moons", "--out", "x.html", "--quick"], "inputs"),
        (["report", "--model", "digits-cnn-silu", "--out", "/no/such/folder/x.html", "--quick"], "does not exist"),
    ],
)
def test_the_command_line_reports_bad_input_in_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_command_line_needs_a_command_and_lists_report():
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    help_text = subprocess.run(
        [sys.executable, "-m", "geometry", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert help_text.returncode == 0 and "report" in help_text.stdout


def test_progress_bar_draws_in_place_on_a_terminal_and_in_steps_otherwise():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = ProgressBar(tty, width=10)
    bar(0.5, "half")
    bar(1.0, "done")
    bar.close()
    assert tty.getvalue().count("\r") == 2 and "[#####.....]  50%" in tty.getvalue() and tty.getvalue().endswith("\n")
    log = io.StringIO()
    bar = ProgressBar(log, width=10)
    for i in range(101):
        bar(i / 100, "step")
    assert len(log.getvalue().splitlines()) == 21  # one line per 5%
