"""Boundary Atlas's command line: ``python -m geometry <command> ...``.

    python -m geometry report --model digits-cnn-silu --dataset digits --out report.html [--n 100]

Each command is a (register, run) pair in `COMMANDS`; ``register`` adds its arguments to a sub-parser, ``run`` gets
the parsed arguments and returns the exit status. A text progress bar goes to stderr; a bad argument prints one
line ``error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

__all__ = ["COMMANDS", "ProgressBar", "main"]


class ProgressBar:
    """``progress(fraction, text)`` drawn as a text bar on a stream: redrawn in place on a terminal, one line per
    5% step otherwise (logs stay short)."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self._last_step = -1
        self._last_len = 0

    def __call__(self, fraction: float, text: str) -> None:
        f = min(max(float(fraction), 0.0), 1.0)
        filled = int(round(f * self.width))
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {f:4.0%} {time.perf_counter() - self.start:6.1f}s {text}"
        if self.tty:
            pad = max(0, self._last_len - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._last_len = len(line)
        else:
            step = int(f * 20)
            if step == self._last_step:
                return
            self._last_step = step
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# -- report ------------------------------------------------------------------------------------------------------------


def _register_report(p: argparse.ArgumentParser) -> None:
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


def _run_report(args: argparse.Namespace) -> int:
    import geometry
    from geometry.report.build import ReportConfig, write_report

    if args.n is not None and args.quick:
        raise ValueError("expected either --n or --quick, got both")
    options: dict[str, object] = {}
    if args.arch:
        options["arch"] = args.arch
    if args.input_shape:
        try:
            options["input_shape"] = tuple(int(v) for v in args.input_shape.replace("x", ",").split(",") if v.strip())
        except ValueError:
            raise ValueError(
                f"expected --input-shape as comma-separated ints, e.g. 3,32,32; got {args.input_shape!r}"
            ) from None
    handle = geometry.load_model(args.model, device=args.device, **options)
    name = args.dataset or handle.card.get("dataset")
    if not name:
        raise ValueError(f"expected --dataset: {handle.name!r} has no model card naming its data set")
    dataset = geometry.load_dataset(name, split=args.split)
    changes = {"seed": args.seed} if args.seed else {}
    if args.bands is not None:
        changes["bands"] = args.bands
    if args.quick:
        config = ReportConfig.quick()
        config = ReportConfig(**{**config.__dict__, **changes})
    elif args.n is not None:
        config = ReportConfig.with_images(args.n, **changes)
    else:
        config = ReportConfig(**changes)
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
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "report": (
        "write a self-contained HTML report on a model (margins, curvature, connectivity, detection, robustness)",
        _register_report,
        _run_report,
    ),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m geometry", description="Boundary Atlas from the command line.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (help_text, register, _) in COMMANDS.items():
        register(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (2 for bad arguments or input, 130 when interrupted)."""
    parser = _parser()
    args = parser.parse_args(argv)
    _, _, run = COMMANDS[args.command]
    try:
        return run(args)
    except (ValueError, TypeError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
