"""Decomposition throughput and peak memory vs plain encode_image, side by side.

    .venv/bin/python bench/decompose.py                       # random-init ViT-B-32, batch 16, CPU
    .venv/bin/python bench/decompose.py --batch 8 --repeats 2 --layers 4 --device cuda

Throughput: images/s, best of --repeats timed runs after one warm-up, for decompose(loaded, x) (also
with --precision bf16: speed and error against fp32) and loaded.model.encode_image(x) on the same model
and batch, alternating. Memory on CPU: each mode runs in
its own fresh subprocess, resets the kernel's peak-RSS mark (/proc/self/clear_refs) after loading the
model and building the batch, and reports the peak RSS (VmHWM) over the RSS at that point; on CUDA: torch.cuda.max_memory_allocated
over the allocated memory before the call.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch



def _setup(a):
    from ccs_core.models import load_model

    loaded = load_model(a.model, device=a.device)
    size = loaded.spec.image_size
    x = torch.randn(a.batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(a.device)
    return loaded, x


def _runner(loaded, x, mode: str, layers: int):
    from ccs_core.decompose import decompose

    if mode == "decompose":
        return lambda: decompose(loaded, x, n_layers=layers)
    if mode == "decompose-bf16":
        return lambda: decompose(loaded, x, n_layers=layers, precision="bf16")
    return lambda: torch.no_grad()(loaded.model.encode_image)(x, normalize=False)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(a) -> None:
    """Run one mode once in this fresh process; print its peak memory growth in MiB as JSON."""
    loaded, x = _setup(a)
    fn = _runner(loaded, x, a.mode, a.layers)
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark (Linux >= 4.0)
        base = _vm_kib("VmRSS")
        fn()
        peak = (_vm_kib("VmHWM") - base) / 1024
    print(json.dumps({"peak_mib": peak}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--mode", default=None, help=argparse.SUPPRESS)  # internal: memory child
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.mode:
        memory_child(a)
        return 0
    loaded, x = _setup(a)
    fns = {m: _runner(loaded, x, m, a.layers) for m in ("encode_image", "decompose", "decompose-bf16")}
    best = {m: float("inf") for m in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(a.repeats):
        for m, fn in fns.items():  # alternate, so both see the same machine load
            _sync(a.device)
            t = time.perf_counter()
            fn()
            _sync(a.device)
            best[m] = min(best[m], time.perf_counter() - t)
    mem = {}
    for m in fns:
        cmd = [sys.executable, __file__, "--model", a.model, "--batch", str(a.batch), "--layers",
               str(a.layers), "--device", a.device, "--threads", str(a.threads), "--mode", m]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        mem[m] = json.loads(res.stdout.strip().splitlines()[-1])["peak_mib"]
    how = "CUDA max_memory_allocated" if a.device.startswith("cuda") else "peak RSS growth"
    print(f"{a.model} (random init), batch {a.batch}, last {a.layers} layers, device {a.device}, "
          f"torch threads {torch.get_num_threads()}")
    for m in fns:
        print(f"  {m:13s} {a.batch / best[m]:8.1f} img/s   peak +{mem[m]:7.1f} MiB ({how})")
    ratio = best["encode_image"] / best["decompose"]
    print(f"throughput ratio decompose / encode_image: {ratio:.2f}x   "
          f"memory ratio: {mem['decompose'] / max(mem['encode_image'], 1e-9):.2f}x")
    full, half = fns["decompose"](), fns["decompose-bf16"]()
    err = ((half.heads - full.heads).abs().max() / full.heads.abs().max()).item()
    tot = ((half.total() - full.total()).norm() / full.total().norm()).item()
    print(f"--precision bf16: {best['decompose'] / best['decompose-bf16']:.2f}x the fp32 decomposition; max error "
          f"of a head term {err:.2%} of the largest term, embedding error {tot:.2%} (relative norm)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
