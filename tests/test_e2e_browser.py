"""End to end in a real browser: `streamlit run app.py` headless on a free port, driven by Debian's
chromium through Python playwright. Wait for the grid, click a cell, see that head's spans, run a
pruning of the high-CCS heads on the toy task, see the result table, save a screenshot.

Set-up: tests/setup_browser.sh (installs chromium and playwright). Skipped when they are missing.
The screenshot goes to $CCS_E2E_OUT (default: a temp dir); CCS_E2E_SCREENSHOT=docs/screenshot.png
also refreshes the README's screenshot.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="chromium missing: run tests/setup_browser.sh")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cache = tmp_path_factory.mktemp("e2e-cache")
    port = free_port()
    env = {**os.environ, "CCS_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    os.environ["CCS_E2E_CACHE"] = str(cache)
    log = open(cache / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def spans_of(head: str) -> list[str]:
    """The head's spans as the core computes them (the server's store, so no recomputation)."""
    from ccs_core import analysis
    from ccs_core.models import load_model
    from ccs_core.store import open_store

    loaded = load_model("toy")
    images, pool = analysis.resolve_images("toy", n=256), analysis.resolve_pool(None, "toy")
    res = analysis.run_spans(loaded, images, pool, analysis.SpanParams(4, 5),
                             store=open_store(os.environ["CCS_E2E_CACHE"]))
    return res.by_head()[head].texts


def out_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("CCS_E2E_OUT") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_grid_click_inspect_and_prune(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    try:
        drive(page, server, out_dir(tmp_path))
    except BaseException:
        page.screenshot(path=str(out_dir(tmp_path) / "failure.png"), full_page=True)
        raise
    finally:
        page.close()


def drive(page, server: str, out: Path) -> None:
    page.goto(f"{server}/grid")

    # the grid: one SVG path per head cell (vega-lite writes an aria label per mark)
    grid = page.locator('[data-testid="stVegaLiteChart"]').first
    cells = grid.locator('g.mark-rect path[aria-label*="Head: L"]')
    cells.first.wait_for()
    assert cells.count() >= 8
    shown = page.locator('[data-testid="stHeading"] h3').first.inner_text().strip()  # selected head
    labels = [cells.nth(i).get_attribute("aria-label") for i in range(cells.count())]
    i, desc = next((i, d) for i, d in enumerate(labels) if f"Head: {shown};" not in d)
    name = re.search(r"Head: (L\d+\.H\d+)", desc).group(1)
    cells.nth(i).click(position={"x": 3, "y": 3})  # a corner: the cell's centre holds its text mark

    # the inspector beside the grid follows: that head's name and its spans (an HTML table)
    page.get_by_role("heading", name=name).wait_for()
    table = page.locator('[data-testid="stTable"]').first
    for span in spans_of(name):
        assert span in table.inner_text(), (name, span)
    page.mouse.move(5, 5)  # no tooltip over the grid in the screenshot
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "grid.png"), full_page=True)

    # the Prune page runs the paper's comparison by default: high-CCS pruning beside low and random
    page.get_by_role("link", name="Prune & evaluate").click()  # same session
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    bar = 'g.mark-rect path[aria-label^="task: "][aria-label*="strategy: {}"]'
    charts.locator(bar.format("high")).first.wait_for(timeout=240_000)
    for strategy in ("original", "high", "random"):  # one bar per toy task (low: none in this model)
        assert charts.locator(bar.format(strategy)).count() == 6, strategy
    charts.locator('path[aria-label*="heads pruned: background"]').first.wait_for()  # concept matrix
    charts.locator('path[aria-label*="maxskew: "]').first.wait_for()  # accuracy vs bias
    assert not page.locator('[data-testid="stException"]').count()
    page.screenshot(path=str(out / "compare.png"), full_page=True)

    # a single run: prune the high-CCS heads on one toy task; wait for the exact result table
    page.get_by_text("Strategy").first.wait_for()
    page.locator(".st-key-prune_run button").click()
    page.get_by_text("Exact result").wait_for(timeout=80_000)
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    bars = page.locator('[data-testid="stVegaLiteChart"] g.mark-rect path[aria-label*="config: high"]')
    bars.first.wait_for()  # the accuracy chart has the pruned bar beside the original
    page.get_by_text("Toy world: groups are the backgrounds").wait_for()  # the bias view is done
    assert not page.locator('[data-testid="stException"]').count()
    page.screenshot(path=str(out / "prune.png"), full_page=True)
    keep = os.environ.get("CCS_E2E_SCREENSHOT")
    if keep:
        shutil.copyfile(out / "grid.png", keep)
