"""What a model is, without loading it: its name, cache key and spec (no torch, no open_clip).

The explorer draws the grid, the inspector and the CCS views from cached artifacts, which are keyed by
``ModelRef.key``. ``load_model`` writes a manifest (``manifest_of``) into the store the first time a
model loads; a warm start reads it back (``read_manifest``) in milliseconds and loads the model itself
only when something needs its weights (new spans, pruning, top images).

A manifest is found by the *request* (name + pretrained as typed); for a checkpoint file the request
also holds the file's size and modification time, so replacing the file is a new request.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .store import Store, cache_key

TOY_MODEL_NAME = "toy"
MANIFEST_KIND = "model"
MANIFEST_VERSION = "model-v1"


@dataclass(frozen=True)
class ModelSpec:
    n_layers: int    # residual blocks of the image tower
    n_heads: int     # attention heads per block
    head_dim: int    # width of one head
    width: int       # residual stream width of the image tower
    embed_dim: int   # joint image-text embedding width
    image_size: int  # input side in pixels


@dataclass(frozen=True)
class ModelRef:
    name: str                # the loaded architecture (e.g. "ViT-B-32-quickgelu", "toy")
    pretrained: str | None   # tag or checkpoint path as loaded
    key: str                 # identity of the weights: every cached artifact is keyed by it
    spec: ModelSpec
    random_init: bool = False


CHECKPOINT_SUFFIXES = {".pt", ".pth", ".bin", ".safetensors", ".ckpt"}


def is_checkpoint_path(pretrained: str) -> bool:
    """A local checkpoint file rather than an open_clip pretrained tag (the one place this is decided)."""
    return os.path.sep in pretrained or Path(pretrained).suffix in CHECKPOINT_SUFFIXES


def _file_stamp(path: str) -> str:
    try:
        st = os.stat(Path(path).expanduser())
        return f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return "missing"


def request_key(name: str, pretrained: str | None) -> str:
    """The manifest's key for a load request (what the user typed)."""
    name, pretrained = (name or "").strip(), (pretrained or "").strip()
    parts = {"v": MANIFEST_VERSION, "name": name, "pretrained": pretrained}
    if name == TOY_MODEL_NAME and not pretrained:
        from .toyworld import TOY_CHECKPOINT

        parts["file"] = _file_stamp(str(TOY_CHECKPOINT))
    elif pretrained and is_checkpoint_path(pretrained):
        parts["file"] = _file_stamp(pretrained)
    return cache_key(**parts)


def manifest_of(loaded) -> dict:
    """The JSON manifest of a LoadedModel."""
    return {"name": loaded.name, "pretrained": loaded.pretrained, "key": loaded.key,
            "spec": asdict(loaded.spec), "random_init": bool(getattr(loaded, "random_init", False))}


def ref_of(manifest: dict) -> ModelRef:
    return ModelRef(name=manifest["name"], pretrained=manifest.get("pretrained"), key=manifest["key"],
                    spec=ModelSpec(**manifest["spec"]), random_init=bool(manifest.get("random_init")))


def read_manifest(store: Store | None, name: str, pretrained: str | None) -> ModelRef | None:
    """The cached ModelRef for this request, or None (never loaded here, or an unreadable entry)."""
    if store is None:
        return None
    try:
        hit = store.get(MANIFEST_KIND, request_key(name, pretrained))
        return ref_of(hit) if hit else None
    except (KeyError, TypeError, ValueError):
        return None


def write_manifest(store: Store | None, name: str, pretrained: str | None, loaded) -> ModelRef:
    manifest = manifest_of(loaded)
    if store is not None:
        store.set(MANIFEST_KIND, request_key(name, pretrained), manifest)
    return ref_of(manifest)
