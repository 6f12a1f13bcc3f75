"""prune-eval's forward work under --precision fp32 against bf16 (fp16 on a GPU only), side by side.

For each model: a set of random images (the toy model: the toy world's colour task), the original and 3
pruned configurations (random heads of the last 4 layers) through ``evaluate.pruned_features`` (the
residual stream once per batch, the last layers per configuration; no cache), and the text classifier;
fp32 and bf16 interleaved per repeat so load changes hit both alike. Prints the medians, the speed ratio,
the largest relative error of the features, the largest change of accuracy and the share of images whose
prediction changed, with the load average it ran under.

    .venv/bin/python bench/precision.py [--models toy,ViT-B-32] [--images 256] [--repeats 3] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import time

import torch

from ccs_core import evaluate as ev
from ccs_core.heads import HeadId
from ccs_core.models import load_model
from ccs_core.prune import PruneConfig
from ccs_core.zeroshot import ZeroShotTask


class RandomImages:
    """n random preprocessed images with labels (what pruned_features iterates)."""

    def __init__(self, n: int, size: int, n_classes: int):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, size, size, generator=g)                 # [N, 3, S, S]
        self.labels = torch.randint(0, n_classes, (n,), generator=g).tolist()
        self.key, self.name = "", "random"                                  # no key: nothing is cached

    def __len__(self) -> int:
        return len(self.x)

    def batches(self, preprocess, batch_size: int):
        for i in range(0, len(self.x), batch_size):
            yield self.x[i:i + batch_size]


def data_for(name: str, loaded, n: int):
    if name == "toy":
        from ccs_core.datasets import load_dataset

        data, task = load_dataset("toy:colour", None, n=n)
        data.key = ""  # time the work, not the cache
        return data, task
    task = ZeroShotTask("random", [f"class {i}" for i in range(10)], ["a photo of a {}.", "a {}."])
    return RandomImages(n, loaded.spec.image_size, 10), task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="toy,ViT-B-32")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (steadier on a shared machine)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = ["fp32", "bf16"] + (["fp16"] if torch.cuda.is_available() else [])
    for name in args.models.split(","):
        loaded = load_model(name.strip())
        spec, rng = loaded.spec, random.Random(0)
        pool = [HeadId(layer, h) for layer in range(spec.n_layers - 4, spec.n_layers) for h in range(spec.n_heads)]
        configs = [PruneConfig("original")] + [PruneConfig("random", tuple(rng.sample(pool, 4)), seed=s)
                                               for s in range(3)]
        data, task = data_for(name.strip(), loaded, args.images)
        load0 = os.getloadavg()[0]
        times: dict[str, list[float]] = {p: [] for p in precisions}
        out: dict[str, tuple] = {}
        for _ in range(args.repeats + 1):  # the first round warms up and is not timed
            for p in precisions:
                ev._CLASSIFIERS.clear()
                t = time.perf_counter()
                clf = ev.text_classifier(loaded, task, None, p)
                feats = ev.pruned_features(loaded, data, configs, batch_size=args.batch, precision=p)
                if loaded.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times[p].append(time.perf_counter() - t)
                out[p] = (clf, feats)
        print(f"{name} on {loaded.device}: {len(data)} images, {len(configs)} configurations, batch {args.batch}, "
              f"{torch.get_num_threads()} threads, load {load0:.2f} -> {os.getloadavg()[0]:.2f}")
        clf32, f32 = out["fp32"]
        base = statistics.median(times["fp32"][1:])
        scale = ev.logit_scale(loaded)
        for p in precisions:
            med = statistics.median(times[p][1:])
            clf, fs = out[p]
            err = max(float(((a - b).norm(dim=-1) / a.norm(dim=-1)).max()) for a, b in zip(f32, fs))
            acc, flips = 0.0, 0.0
            for a, b in zip(f32, fs):
                la, lb = (x / x.norm(dim=-1, keepdim=True) @ c.T for x, c in ((a, clf32), (b, clf)))
                ma, mb = (ev.zero_shot_metrics(x, c, data.labels, scale)["accuracy"] for x, c in ((a, clf32), (b, clf)))
                acc, flips = max(acc, abs(ma - mb)), max(flips, float((la.argmax(-1) != lb.argmax(-1)).float().mean()))
            print(f"  {p}: {med:.3f} s (median of {args.repeats}), {base / med:.2f}x fp32's speed; features' max "
                  f"relative error {err:.4f}, accuracy change <= {acc:.4f}, predictions changed <= {flips:.4f}")


if __name__ == "__main__":
    main()
