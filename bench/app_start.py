"""Time the explorer's start in a real browser on the toy model: cold (empty cache) and warm (cache on disk).

    .venv/bin/python bench/app_start.py [--server]

Starts `streamlit run app.py` on a free port with a fresh cache dir, opens Debian's chromium through
playwright and reports, in seconds from the browser's request (the server is already up):
  server        process start until the server answers its health check
  cold_shell    empty cache, a browser opens /grid: until the sidebar shows (page shell)
  cold_grid     ... until the grid's cells show (model load, decompose, TEXTSPAN, label, judge)
  warm_shell    a new browser session on the same server: until the sidebar shows
  warm_grid     ... until the grid's cells show (everything in memory)
  restart_shell a fresh server on the now-warm cache, /grid: until the sidebar shows
  restart_grid  ... until the grid's cells show (manifest and results read from disk, no torch)
  restart_grid_after_shell  the part of restart_grid after the frontend's shell is up (our code +
                the chart's rendering; the shell itself is Streamlit's frontend loading in chromium)
  floor_*       the same in a trivial Streamlit app (a sidebar header and one Altair chart) on a
                fresh server, first and second browser session: what Streamlit and chromium cost
                here before any app code; restart_grid_over_floor is the ratio
Targets (issue 12): restart_grid < 1 s, cold_grid < 5 s. Also prints the load average and cores.
--server: the same cold and restart phases without a browser, each in a fresh process: the entry
point's first script run, the grid's script run, and whether torch was imported.
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


def start(cache: str, app: Path = ROOT / "app.py") -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app),
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

# The floor: the smallest Streamlit app that draws the same two things (a sidebar header, one Altair
# rect chart whose cells carry "Head: L..." labels), timed in the same browser in the same run.
FLOOR_APP = """
import altair as alt
import pandas as pd
import streamlit as st

st.sidebar.header("Session")
df = pd.DataFrame({"layer": [0, 0, 1, 1], "index": [0, 1, 0, 1], "Head": ["L0.H0", "L0.H1", "L1.H0", "L1.H1"]})
st.altair_chart(alt.Chart(df).mark_rect().encode(x="index:O", y="layer:O", color="index:Q", tooltip=["Head"]))
"""


def timed(browser, url: str, path: str, selector: str) -> tuple[float, float, object]:
    """Seconds until the app's shell shows, and until ``selector`` shows."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    t = time.perf_counter()
    page.goto(f"{url}/{path}")
    page.locator(SHELL).first.wait_for(timeout=300_000)
    shell = time.perf_counter() - t
    page.locator(selector).first.wait_for(timeout=300_000)
    return shell, time.perf_counter() - t, page


PROBE = """
import json, os, sys, time
from streamlit.testing.v1 import AppTest
t = time.perf_counter()
at = AppTest.from_file({app!r}, default_timeout=300)
at.run()
entry = time.perf_counter() - t
at.switch_page("app_pages/grid.py")
t = time.perf_counter()
at.run()
grid = time.perf_counter() - t
assert not at.exception and not at.error, [e.value for e in at.error]
print(json.dumps({{"entry": round(entry, 2), "grid": round(grid, 2), "torch_imported": "torch" in sys.modules}}))
"""


def server_side() -> dict:
    """Script-run times without a browser (streamlit.testing AppTest), each phase in a fresh process:
    cold (empty cache) then restart (warm cache): the entry point's first run and the grid's run, and
    whether torch was imported at all."""
    code = PROBE.format(app=str(ROOT / "app.py"))
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        for phase in ("cold", "restart"):
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 env={**os.environ, "CCS_CACHE_DIR": cache}, check=True)
            got = json.loads(res.stdout.strip().splitlines()[-1])
            out.update({f"{phase}_{k}": v for k, v in got.items()})
    return out


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
        floor = Path(cache) / "floor" / "floor_app.py"
        floor.parent.mkdir()
        floor.write_text(FLOOR_APP)
        proc, url = start(cache, floor)
        try:
            for i in range(2):  # a fresh server's first page, then a second browser session
                shell, chart, page = timed(browser, url, "", GRID)
                page.close()
                out[f"floor_{'first' if i == 0 else 'again'}_shell"] = round(shell, 2)
                out[f"floor_{'first' if i == 0 else 'again'}_chart"] = round(chart, 2)
        finally:
            proc.terminate()
            proc.wait(10)
        for phase in ("cold", "restart"):
            t = time.perf_counter()
            proc, url = start(cache)
            if phase == "cold":
                out["server"] = round(time.perf_counter() - t, 2)
            try:
                shell, grid, page = timed(browser, url, "grid", GRID)
                page.close()
                out[f"{phase}_shell"], out[f"{phase}_grid"] = round(shell, 2), round(grid, 2)
                if phase == "cold":
                    shell, grid, page = timed(browser, url, "grid", GRID)
                    page.close()
                    out["warm_shell"], out["warm_grid"] = round(shell, 2), round(grid, 2)
            finally:
                proc.terminate()
                proc.wait(10)
        browser.close()
    load = os.getloadavg()
    out["restart_grid_after_shell"] = round(out["restart_grid"] - out["restart_shell"], 2)
    out["restart_grid_over_floor"] = round(out["restart_grid"] / out["floor_first_chart"], 2)
    out["load_average"], out["cores"] = round(load[0], 2), os.cpu_count()
    out["targets_met"] = {"restart_grid < 1 s": out["restart_grid"] < 1.0, "cold_grid < 5 s": out["cold_grid"] < 5.0}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
