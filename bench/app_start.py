"""Time the explorer's start in a real browser: cold (empty cache) and warm (cache on disk).

    .venv/bin/python bench/app_start.py

Starts `streamlit run app.py` on a free port with a fresh cache dir, opens Debian's chromium through
playwright and reports, in seconds:
  model      first page (Overview) until the loaded model's spec shows (process start, model load)
  cold_grid  then the Head grid until its cells show (decompose + TEXTSPAN + label + judge)
  warm_grid  a new browser session on the same server (everything cached)
  restart    a fresh server on the now-warm cache: Overview, then the grid (cache read from disk)
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
GRID = '[data-testid="stVegaLiteChart"] g.mark-rect path[aria-label*="Head: L"]'


def start(cache: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--server.headless", "true"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "CCS_CACHE_DIR": cache})
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("streamlit did not start")


def timed(browser, url: str, path: str, selector: str) -> tuple[float, object]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    t = time.perf_counter()
    page.goto(f"{url}/{path}")
    page.locator(selector).first.wait_for(timeout=300_000)
    return time.perf_counter() - t, page


def session(browser, url: str) -> dict:
    """Overview first (model load), then the grid in the same session."""
    model, page = timed(browser, url, "", 'text="Heads / layer"')
    t = time.perf_counter()
    page.get_by_role("link", name="Head grid").click()
    page.locator(GRID).first.wait_for(timeout=300_000)
    grid = time.perf_counter() - t
    page.close()
    return {"model": round(model, 2), "grid": round(grid, 2)}


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    from playwright.sync_api import sync_playwright

    out = {}
    with tempfile.TemporaryDirectory() as cache, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        proc, url = start(cache)
        try:
            first = session(browser, url)
            out["model"], out["cold_grid"] = first["model"], first["grid"]
            warm, page = timed(browser, url, "grid", GRID)
            page.close()
            out["warm_grid"] = round(warm, 2)
        finally:
            proc.terminate()
            proc.wait(10)
        proc, url = start(cache)
        try:
            again = session(browser, url)
            out["restart_model"], out["restart_grid"] = again["model"], again["grid"]
        finally:
            proc.terminate()
            proc.wait(10)
        browser.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
