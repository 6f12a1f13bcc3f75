"""Time the explorer's start in a real browser: cold (empty cache) and warm (cache on disk).

    .venv/bin/python bench/app_start.py [--server]

Starts `streamlit run app.py` on a free port with a fresh cache dir, opens Debian's chromium through
playwright and reports, in seconds:
  model      first page (Overview) until the loaded model's spec shows (process start, model load)
  cold_grid  then the Head grid until its cells show (decompose + TEXTSPAN + label + judge)
  warm_shell a new browser session on the same server: until the sidebar shows (frontend loaded)
  warm_grid  ... until the grid's cells show (everything cached)
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


SHELL = 'text="Session"'  # the sidebar header: the frontend is loaded and the script started


def timed(browser, url: str, path: str, selector: str) -> tuple[float, float, object]:
    """Seconds until the app's shell shows, and until ``selector`` shows."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    t = time.perf_counter()
    page.goto(f"{url}/{path}")
    page.locator(SHELL).first.wait_for(timeout=300_000)
    shell = time.perf_counter() - t
    page.locator(selector).first.wait_for(timeout=300_000)
    return shell, time.perf_counter() - t, page


def session(browser, url: str) -> dict:
    """Overview first (model load), then the grid in the same session."""
    _, model, page = timed(browser, url, "", 'text="Heads / layer"')
    t = time.perf_counter()
    page.get_by_role("link", name="Head grid").click()
    page.locator(GRID).first.wait_for(timeout=300_000)
    grid = time.perf_counter() - t
    page.close()
    return {"model": round(model, 2), "grid": round(grid, 2)}


def server_side() -> dict:
    """The same steps without a browser (streamlit.testing AppTest, one process): script-run times."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    def run(path: str | None = None) -> float:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        at.run()
        if path is None:
            return 0.0
        at.switch_page(path)
        t = time.perf_counter()
        at.run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        return time.perf_counter() - t

    with tempfile.TemporaryDirectory() as cache:
        os.environ["CCS_CACHE_DIR"] = cache
        t = time.perf_counter()
        run()  # imports + model load
        out = {"model": time.perf_counter() - t, "cold_grid": run("app_pages/grid.py"),
               "warm_grid": run("app_pages/grid.py")}
        st.cache_resource.clear()  # as after a restart: models, image sets and jobs forgotten
        run()
        out["restart_grid"] = run("app_pages/grid.py")
    return {k: round(v, 2) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", action="store_true", help="time script runs only (no browser)")
    if parser.parse_args().server:
        print(json.dumps(server_side()))
        return
    from playwright.sync_api import sync_playwright

    out = {}
    with tempfile.TemporaryDirectory() as cache, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        proc, url = start(cache)
        try:
            first = session(browser, url)
            out["model"], out["cold_grid"] = first["model"], first["grid"]
            shell, warm, page = timed(browser, url, "grid", GRID)
            page.close()
            out["warm_shell"], out["warm_grid"] = round(shell, 2), round(warm, 2)
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
