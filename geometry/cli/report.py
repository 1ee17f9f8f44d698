"""``python -m geometry report``: write the self-contained HTML report on a model (`geometry.report`).

python -m geometry report --model digits-cnn-silu --dataset digits --out report.html [--n 100] [--quick]
    [--min-accuracy 0.9] [--min-median-margin 0.25] [--min-low-margin 0.1] [--min-sweep-accuracy 0.5]
    [--min-detection-auc 0.7] [--strict]

The go / no-go summary at the top of the report checks the numbers against those thresholds ("off": not checked);
with --strict the command exits with status 1 when the verdict is no-go (the report is written either way).
"""

from __future__ import annotations

import argparse
import dataclasses

from geometry.cli.inputs import model_and_dataset
from geometry.cli.progress import ProgressBar
from geometry.report.thresholds import Thresholds

HELP = "write a self-contained HTML report on a model (margins, curvature, connectivity, detection, robustness)"
DESCRIPTION = __doc__


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a built-in model name (e.g. digits-cnn-silu) or a model file")
    p.add_argument("--arch", help="architecture of a state-dict model file (e.g. resnet18, cnn)")
    p.add_argument("--input-shape", help="input shape of a model file, e.g. 3,32,32")
    p.add_argument("--dataset", help="data set name (default: the model's own, from its model card)")
    p.add_argument("--split", default="test", choices=("test", "train", "all"), help="data set split (default test)")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--n", type=int, default=None, help="images per analysis (default 100)")
    p.add_argument("--bands", type=int, default=None, help="frequency bands, spread from low to high (default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument("--quick", action="store_true", help="a small configuration that runs in seconds")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    defaults = Thresholds()
    for name, what in THRESHOLD_HELP.items():
        p.add_argument(
            f"--min-{name.replace('_', '-')}",
            dest=f"min_{name}",
            type=_threshold,
            default=getattr(defaults, name),
            metavar="T",
            help=f"go / no-go: {what} >= T, or 'off' (default {getattr(defaults, name)})",
        )
    p.add_argument("--strict", action="store_true", help="exit with status 1 when the verdict is no-go")


# The go / no-go thresholds (`Thresholds` fields) and what each bounds.
THRESHOLD_HELP = {
    "accuracy": "accuracy on the labelled inputs",
    "median_margin": "median DeepFool margin (L2, input units)",
    "low_margin": "10th-percentile DeepFool margin (L2, input units)",
    "sweep_accuracy": "accuracy at each robustness sweep's stress point",
    "detection_auc": "held-out AUC of the adversarial detector",
}


def _threshold(text: str) -> float | None:
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'off', got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from geometry.report import ReportConfig, write_report

    if args.n is not None and args.quick:
        raise ValueError("expected either --n or --quick, got both")
    handle, dataset = model_and_dataset(args, args.dataset, "--dataset")
    if args.quick:
        config = ReportConfig.quick()
    elif args.n is not None:
        config = ReportConfig.with_images(args.n)
    else:
        config = ReportConfig()
    if args.bands is not None:
        config = dataclasses.replace(config, bands=args.bands)
    if args.seed:
        config = config.with_seed(args.seed)
    thresholds = Thresholds(**{name: getattr(args, f"min_{name}") for name in THRESHOLD_HELP})
    config = dataclasses.replace(config, thresholds=thresholds)
    bar = None if args.no_progress else ProgressBar()
    try:
        report = write_report(args.out, handle, dataset, config, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    print(
        f"wrote {args.out}: {handle.name} on {dataset.name} ({dataset.split}), {len(report.sections)} sections, "
        f"{report.seconds:.1f} s"
    )
    verdict = report.verdict
    if verdict is not None:
        print(verdict.summary)
        for line in verdict.lines:
            print(f"  {line}")
        if args.strict and not verdict.go:
            return 1
    return 0
