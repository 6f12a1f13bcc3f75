"""Mixed precision for the forward passes: fp32 (default), bf16 or fp16 autocast; results stay float32.

One precision runs a command's whole forward work on the model's device: the decomposition (``spans``),
the pruned image features (the residual stream and the recomputed last layers), and the text side they
are compared with (the zero-shot classifier, the bias prompts, video captions). Every value handed back
or stored is float32; the precision is part of each cache key that stores such a value, added only when
it is not fp32 (``key_part``), so caches written before the option existed still hit. TEXTSPAN's pool
embeddings (``analysis.text_embeddings``) stay fp32: computed once per model and pool, shared by every
precision's spans.

fp16 is refused on the CPU: torch 2.14 runs it there, but about 3x slower than fp32 (a random-init
ViT-B-32's encode on 16 images, 2 cores of an AMD EPYC with avx512_bf16: fp16 3.2 s, fp32 1.0 s, bf16
0.5 s; the toy model: 6x slower). Importable without torch (the CLI's warm paths); torch is imported when
an autocast context is made.
"""
from __future__ import annotations

from typing import Any

from .errors import DataError

PRECISIONS = ("fp32", "bf16", "fp16")
DEFAULT = "fp32"
_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}  # torch dtype names (fp32: autocast off)


def device_type(where: Any, images: Any = None) -> str:
    """The device type ("cpu", "cuda", "mps") a forward pass runs on: ``where``'s (a LoadedModel's
    ``.device``, or a device given as a string or torch.device), else the batch's."""
    import torch

    device = getattr(where, "device", None) if not isinstance(where, (str, torch.device)) else where
    if device is not None:
        return torch.device(device).type
    return images.device.type if images is not None else "cpu"


def check_precision(precision: str, device: Any = None) -> str:
    """``precision`` if it is one of ``PRECISIONS`` and runs on ``device`` (a model, a device string;
    None: not checked against a device), else a DataError that says what to use."""
    if precision not in PRECISIONS:
        raise DataError(f"Unknown precision {precision!r}; use one of {', '.join(PRECISIONS)} "
                        "(fp32 is exact; bf16 and fp16 are autocast, results stored as float32).")
    if precision == "fp16" and device is not None and device_type(device) == "cpu":
        raise DataError("fp16 autocast needs a GPU: this run is on the CPU, where torch computes float16 "
                        "about 3x slower than float32. Use bf16 or fp32 on the CPU (bf16 is the faster one on "
                        "CPUs with bf16 units), or run on a GPU (--device cuda).")
    return precision


def autocast(where: Any, precision: str = DEFAULT, images: Any = None):
    """The autocast context for ``precision`` on the device ``where`` runs on (``device_type``); off for
    fp32. The batch may be on the CPU while the model is on a GPU: the model's device decides."""
    import torch

    device = device_type(where, images)
    check_precision(precision, device)
    dtype = getattr(torch, _DTYPES.get(precision, "bfloat16"))
    return torch.autocast(device, dtype=dtype, enabled=precision != DEFAULT)


def key_part(precision: str = DEFAULT) -> dict:
    """The cache-key field of a precision: nothing for fp32 (keys as before the option), else
    {"precision": precision}."""
    return {} if precision == DEFAULT else {"precision": check_precision(precision)}
