"""``python -m geometry <command>``: the command line (`geometry.cli`); ``python -m geometry --help`` lists the
commands (``train``, ``report``)."""

from __future__ import annotations

import sys

from geometry.cli import main

if __name__ == "__main__":
    sys.exit(main())
