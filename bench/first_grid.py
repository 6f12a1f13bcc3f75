"""Time to the first grid on a real architecture: random-init ViT-B-32, a small image folder, the
bundled pool, the app's defaults (last 4 layers, 5 spans, rank 80, offline embedding labeller and
judge), fresh cache — through the app's own code path (``analysis.run_spans`` then ``run_scores``).

    .venv/bin/python bench/first_grid.py                    # 60 images, 2 threads
    .venv/bin/python bench/first_grid.py --images 200 --threads 1
    .venv/bin/python bench/first_grid.py --folder /data/imgs

Prints the seconds per stage (model load, decomposition, pool embedding, TEXTSPAN, labelling and
judging), the total, the target (first grid within 180 s on 2 cores), the threads and the load average.
Exit 1 if the total is over the target.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

TARGET_S = 180.0


def toy_folder(root: Path, n: int) -> Path:
    """``n`` toy-world images as PNG files in one sub-folder per shape (the user's "own folder")."""
    from ccs_core.toyworld.world import render, sample_world

    for i, sample in enumerate(sample_world(n, seed=5)):
        d = root / sample.value("shape")
        d.mkdir(parents=True, exist_ok=True)
        render(sample).save(d / f"{i:04d}.png")
    return root


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--folder", default=None, help="an image folder (default: toy images written to a temp dir)")
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from ccs_core import analysis
    from ccs_core.judges import make_judges
    from ccs_core.judges.labels import make_labeller
    from ccs_core.models import load_model
    from ccs_core.store import Store

    stages: dict[str, float] = {}
    last = [time.perf_counter(), None]

    def progress(done: int, total: int, msg: str = "") -> None:  # a stage ends when its step changes
        name = msg.split(" · ")[0]
        if last[1] is not None and name != last[1]:
            stages[last[1]] = stages.get(last[1], 0.0) + time.perf_counter() - last[0]
            last[0] = time.perf_counter()
        last[1] = name

    with tempfile.TemporaryDirectory() as tmp:
        folder = a.folder or str(toy_folder(Path(tmp) / "images", a.images))
        t0 = time.perf_counter()
        loaded = load_model(a.model)
        stages["load"] = time.perf_counter() - t0
        images = analysis.resolve_images(folder)
        pool = analysis.resolve_pool(None, loaded.name)
        store = Store(Path(tmp) / "cache")
        last[0] = time.perf_counter()
        spans = analysis.run_spans(loaded, images, pool, analysis.SpanParams(), store=store, progress=progress)
        progress(0, 1, "Scoring")
        judges, _ = make_judges(["embedding"])
        analysis.run_scores(spans, make_labeller("embedding"), judges, store=store)
        progress(1, 1, "end")
        total = time.perf_counter() - t0
    load = os.getloadavg()
    names = {"load": "model load", "Step 1/3": "decomposition", "Step 2/3": "pool embedding",
             "Step 3/3": "TEXTSPAN", "Scoring": "labels + verdicts"}
    print(f"{a.model} (random init), {len(images)} images, pool {pool.name} ({len(pool)} texts), "
          f"{len(spans.heads)} heads")
    for k, v in stages.items():
        if k in names:
            print(f"  {names[k]:<18} {v:7.1f} s")
    print(f"first grid         {total:7.1f} s   (target < {TARGET_S:.0f} s)")
    print(f"threads {a.threads}  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)")
    return 0 if total <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
