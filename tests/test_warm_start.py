"""A warm start draws the grid from cached artifacts without importing torch or open_clip (issue 12:
warm start to the grid; ``bench/app_start.py`` times it)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROBE = f"""
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({str(ROOT / "app.py")!r}, default_timeout=300)
at.session_state["n_images"] = 64
at.run()
at.switch_page("app_pages/grid.py")
at.run()
grid = [c for c in at.get("vega_lite_chart")]
print(json.dumps({{"errors": [e.value for e in at.error] + [str(e.value) for e in at.exception],
                  "charts": len(grid), "torch": "torch" in sys.modules,
                  "open_clip": "open_clip" in sys.modules,
                  "subheaders": [s.value for s in at.subheader]}}))
"""


def probe(cache) -> dict:
    res = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CCS_CACHE_DIR": str(cache)})
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(600)
def test_restart_on_a_warm_cache_draws_the_grid_without_torch(tmp_path):
    cold = probe(tmp_path)
    assert not cold["errors"] and cold["charts"] >= 1 and cold["torch"]   # computed: the model loaded
    warm = probe(tmp_path)                                                 # a new process, same cache
    assert not warm["errors"], warm["errors"]
    assert warm["charts"] == cold["charts"] and warm["subheaders"] == cold["subheaders"]
    assert not warm["torch"] and not warm["open_clip"]


def test_a_warm_spans_rerun_reads_the_cache_without_building_the_model(tmp_path):
    code = ("import json, sys\nfrom ccs_core.cli import main\n"
            f"code = main(['-q', 'spans', '--model', 'toy', '--n-images', '32', '--out', {str(tmp_path / 's.json')!r}])\n"
            "print(json.dumps({'code': code, 'torch': 'torch' in sys.modules}))")
    runs = []
    for _ in range(2):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "CCS_CACHE_DIR": str(tmp_path / "cache")})
        assert res.returncode == 0, res.stderr[-2000:]
        runs.append((json.loads(res.stdout.strip().splitlines()[-1]), res.stderr))
    (cold, _), (warm, warm_err) = runs
    assert cold == {"code": 0, "torch": True} and warm == {"code": 0, "torch": False}
    assert "read from the cache (no model load)" in warm_err
