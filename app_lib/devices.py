"""Which torch devices the sidebar offers, without importing torch on a warm start (no Streamlit).

Once torch is imported (a model has loaded in this process) its own answer is used; before that, a
cheap look at the machine: an NVIDIA driver for cuda, Apple silicon for mps. A guess that turns out
wrong is caught by ``ccs_core.models.check_device`` when the model loads, with what to do.
"""
from __future__ import annotations

import os
import platform
import shutil
import sys

DEVICES = ("auto", "cpu", "cuda", "mps")
TITLES = {"auto": "Auto (first of cuda, mps, cpu)", "cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple MPS"}


def _cuda() -> bool:
    torch = sys.modules.get("torch")
    if torch is not None:
        return bool(torch.cuda.is_available())
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def _mps() -> bool:
    torch = sys.modules.get("torch")
    if torch is not None:
        mps = getattr(torch.backends, "mps", None)
        return bool(mps is not None and mps.is_available())
    return sys.platform == "darwin" and platform.machine() == "arm64"


def available() -> dict[str, str | None]:
    """Device -> None when it can be chosen here, else why not (for the sidebar's note)."""
    return {"auto": None, "cpu": None,
            "cuda": None if _cuda() else "no CUDA GPU on this server",
            "mps": None if _mps() else "MPS needs a Mac with Apple silicon"}


def resolved(device: str) -> str:
    """What ``device`` means on this server: "auto" -> the first of cuda, mps, cpu available."""
    if device != "auto":
        return device
    ok = available()
    return next(d for d in ("cuda", "mps", "cpu") if ok[d] is None)
