"""Real-browser tests: serve the app on 127.0.0.1 and drive Debian's Chromium with Playwright.

Helpers for the tests themselves (screenshots, waiting for a run) are in `tests/e2e/browser.py`.
Never run ``playwright install``: it downloads a browser of its own; we use the system Chromium.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.e2e.browser import ROOT

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``streamlit run app.py`` on a free local port; stop it after the session."""
    port = _free_port()
    env = {
        **os.environ,
        "BOUNDARY_ATLAS_CACHE": str(tmp_path_factory.mktemp("e2e-cache")),
        "BOUNDARY_ATLAS_MODELS": str(tmp_path_factory.mktemp("e2e-models")),  # what the Train view trains
        # the Stop test needs a computation of many minutes, which the default time budget (600 s) refuses up front
        "BOUNDARY_ATLAS_MAX_SECONDS": "86400",
        "PYTHONUNBUFFERED": "1",
    }
    log = open(tmp_path_factory.mktemp("e2e-log") / "streamlit.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            break
    else:
        proc.kill()
        pytest.fail(f"streamlit did not become healthy in 120 s; see {log.name}")
    if proc.poll() is not None:
        pytest.fail(f"streamlit exited with {proc.returncode}; see {log.name}")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: object, app_url: str) -> Iterator[object]:
    """A fresh browser page (1400x1000) on the app; closed after the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    pg = context.new_page()
    pg.set_default_timeout(120_000)
    try:
        yield pg
    finally:
        context.close()
