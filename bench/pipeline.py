"""Image decoding vs the model: is the image pipeline off the critical path?

    .venv/bin/python bench/pipeline.py                  # random-init ViT-B-32, 256 JPEGs of 500 x 375
    .venv/bin/python bench/pipeline.py --n 128 --workers 0 1 2

Side by side in one run, on one folder of generated JPEGs (photo-sized, decoded and resized by the
model's own open_clip preprocess): the model's throughput (decompose on ready batches, img/s) and the
image pipeline's (``ImageSet.batches``: decode + preprocess + stack, no model) for each --workers count
(0: in this process; N: N decoding processes of one torch thread each). Prints each pipeline's ratio
to the model (target: >= 2x) and the machine's load average.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    a = ap.parse_args(argv)
    import torch
    from PIL import Image

    from ccs_core.data import load_image_folder
    from ccs_core.decompose import decompose
    from ccs_core.models import load_model

    loaded = load_model(a.model)
    with tempfile.TemporaryDirectory(prefix="ccs-pipeline-") as tmp:
        rng = np.random.default_rng(0)
        for i in range(a.n):  # smooth noise compresses like a photo
            small = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
            Image.fromarray(small).resize((500, 375), Image.BICUBIC).save(Path(tmp) / f"{i:05d}.jpg", quality=90)
        images = load_image_folder(tmp)
        print(f"{a.model}; {a.n} JPEGs of 500 x 375; batch {a.batch}; torch threads {torch.get_num_threads()}; "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        x = next(iter(images.batches(loaded.preprocess, a.batch)))
        decompose(loaded, x[:2])                                           # warm-up
        t = time.perf_counter()
        done = 0
        while done < min(a.n, 4 * a.batch):
            decompose(loaded, x)
            done += x.shape[0]
        model_rate = done / (time.perf_counter() - t)
        print(f"model (decompose, last 4 layers): {model_rate:8.1f} img/s")
        ok = True
        for w in a.workers:
            t = time.perf_counter()
            n = sum(b.shape[0] for b in images.batches(loaded.preprocess, a.batch, workers=w))
            rate = n / (time.perf_counter() - t)
            met = rate >= 2 * model_rate
            ok &= met or w == 0
            print(f"pipeline, {w} worker(s): {rate:8.1f} img/s = {rate / model_rate:5.1f}x the model "
                  f"(target >= 2x: {'met' if met else 'missed'})")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
