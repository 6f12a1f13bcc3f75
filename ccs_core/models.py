"""Load an open_clip model (architecture + pretrained tag or local checkpoint, or the bundled toy model).

``load_model`` returns a ``LoadedModel``: the eval-mode model, its image preprocess, its tokenizer and
a ``ModelSpec`` read off the visual tower. Every failure is one ``ModelLoadError`` that says what was
asked and what to do; nothing is half-loaded.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .errors import ModelLoadError
from .modelref import TOY_MODEL_NAME, ModelSpec, is_checkpoint_path  # noqa: F401  (importable without torch)
from .store import cache_key, file_digest
from .tower import spec_of  # noqa: F401  (re-exported; the tower's internals live in tower.py)

@dataclass
class LoadedModel:
    name: str
    pretrained: str | None
    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    spec: ModelSpec
    device: str = "cpu"
    key: str = ""
    extras: dict = field(default_factory=dict)

    @property
    def random_init(self) -> bool:
        """An open_clip architecture with random weights (no tag, no checkpoint): its heads mean nothing."""
        return bool(self.extras.get("random_init"))

    def encode_texts(self, texts: list[str], batch_size: int = 256, progress=None,
                     precision: str = "fp32") -> torch.Tensor:
        """L2-normalised text embeddings (float32; the tower under ``precision``'s autocast), each batch
        cut to its longest text (``textenc``). # [M, embed_dim]"""
        from .textenc import encode_texts

        return encode_texts(self.model, self.tokenizer, list(texts), self.spec.embed_dim, self.device,
                            batch_size=batch_size, progress=progress, precision=precision)

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Unnormalised image embeddings of a preprocessed batch. # [B, embed_dim]"""
        return self.model.encode_image(images.to(self.device), normalize=False).float().cpu()


def from_model(model: torch.nn.Module, preprocess: Callable, tokenizer: Callable, name: str,
               key: str, pretrained: str | None = None, device: str = "cpu", **extras) -> LoadedModel:
    """Wrap an already-built open_clip CLIP (eval mode) as a LoadedModel on ``device`` (any of
    ``check_device``'s, "auto" included). The default stays "cpu": the caller built the model where it is,
    and moving it is their choice (``load_model``, a load request, defaults to "auto")."""
    device = check_device(device)
    model = model.to(device).eval()
    return LoadedModel(name=name, pretrained=pretrained, model=model, preprocess=preprocess,
                       tokenizer=tokenizer, spec=spec_of(model), device=device, key=key, extras=extras)


def _resolve_quickgelu(name: str, pretrained: str | None,
                       quick_gelu: bool | None = None) -> tuple[str, bool]:
    """OpenAI weights were trained with QuickGELU: pick the -quickgelu config (or force it).

    ``quick_gelu`` None decides from the pretrained tag's config (or, for a local file, from an
    "openai" in its file name); True/False overrides that for checkpoints whose origin we can't see."""
    import open_clip

    if quick_gelu is not None:
        wants_quick = quick_gelu
    elif not pretrained:
        return name, False
    elif is_checkpoint_path(pretrained):
        wants_quick = "openai" in Path(pretrained).name.lower()
    else:
        cfg = open_clip.get_pretrained_cfg(name, pretrained) or {}
        wants_quick = bool(cfg.get("quick_gelu")) or pretrained.lower() == "openai"
    if not wants_quick or name.endswith("-quickgelu"):
        return name, False
    if f"{name}-quickgelu" in open_clip.list_models():
        return f"{name}-quickgelu", False
    return name, True


def _hub_reachable(timeout: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _tag_cached(name: str, tag: str) -> bool:
    """Are the weights for open_clip tag ``tag`` already in the local Hugging Face cache?"""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(name, tag) or {}
    if "file" in cfg:
        return Path(cfg["file"]).is_file()
    hub = cfg.get("hf_hub", "")
    if not hub:
        return False
    from huggingface_hub import try_to_load_from_cache

    repo, fname = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
    names = [fname] if fname else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    return any(isinstance(try_to_load_from_cache(repo, n), str) for n in names)


def check_device(device: str) -> str:
    """A torch device string that exists here ("cpu", "cuda", "cuda:1", "mps"), else ModelLoadError.
    "auto": the first of cuda, mps, cpu that this machine has."""
    device = str(device).strip() if device is not None else ""  # a torch.device is welcome too
    if device.lower() == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    try:
        dev = torch.device(device or "cpu")
    except (RuntimeError, TypeError) as err:
        raise ModelLoadError(f"Unknown device {device!r}; use cpu, cuda (cuda:N) or mps.") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"Device {device!r} asked for, but this machine has no usable CUDA GPU; use cpu.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ModelLoadError(f"Device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelLoadError(f"Device {device!r} asked for, but MPS is not available here; use cpu.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ModelLoadError(f"Device {device!r} is not supported; use cpu, cuda (cuda:N) or mps.")
    return str(dev)


def load_model(name: str, pretrained: str | None = None, device: str = "auto",
               quick_gelu: bool | None = None) -> LoadedModel:
    """Load ``name`` (an open_clip architecture, or "toy") with ``pretrained`` (tag or local file) onto
    ``device`` (default "auto": the first of cuda, mps, cpu available; ``check_device``). The model's key
    never depends on the device: cached artifacts are shared between devices."""
    name = (name or "").strip()
    device = check_device(device)
    if name == TOY_MODEL_NAME:
        from .toyworld.model import load_toy

        tag = (pretrained or "").strip()
        if tag and not is_checkpoint_path(tag):
            raise ModelLoadError(
                f"The toy model has its own bundled weights; {tag!r} is an open_clip pretrained tag, which "
                "belongs to an architecture such as ViT-B-32. Leave the pretrained field empty, or give the "
                "path of a toy checkpoint (.pt) written by `python -m ccs_core.toyworld.train`.")
        model, preprocess, tokenizer, key = load_toy(Path(tag).expanduser() if tag else None)
        return from_model(model, preprocess, tokenizer, name=name, key=key, device=device,
                          pretrained=tag or None, toy=True)
    import open_clip

    known = open_clip.list_models()
    if name not in known:
        close = [m for m in known if name.lower().split("-")[0] in m.lower()][:8]
        raise ModelLoadError(
            f"Unknown model architecture {name!r}. Use an open_clip name such as 'ViT-B-32' or "
            f"'ViT-B-16'{' (close: ' + ', '.join(close) + ')' if close else ''}, or 'toy' for the "
            "bundled offline model."
        )
    pretrained = (pretrained or "").strip() or None
    is_path = pretrained is not None and is_checkpoint_path(pretrained)
    if is_path:
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"Checkpoint file {path} does not exist. Put the weights file there, "
                                 "or pass an open_clip pretrained tag instead.")
        key_parts = {"name": name, "file": file_digest(path)}
        pretrained = str(path)
    elif pretrained is not None:
        tags = open_clip.list_pretrained_tags_by_model(name)
        if pretrained not in tags:
            raise ModelLoadError(
                f"Unknown pretrained tag {pretrained!r} for {name}. Known tags: "
                f"{', '.join(tags) or 'none'}; or pass a path to a local checkpoint file."
            )
        key_parts = {"name": name, "tag": pretrained}
        if not _tag_cached(name, pretrained) and not _hub_reachable():
            raise ModelLoadError(
                f"The weights {name}/{pretrained} are not on this machine and cannot be downloaded "
                "(no connection to huggingface.co). Download them where you have internet (e.g. "
                f"open_clip.create_model('{name}', pretrained='{pretrained}')) and copy the Hugging Face "
                "cache here, or pass the path of a local checkpoint file as the pretrained value."
            )
    else:
        key_parts = {"name": name, "init": "random", "seed": 0}
    arch, force_quick = _resolve_quickgelu(name, pretrained, quick_gelu)
    try:
        with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
            torch.manual_seed(0)  # random init: the same weights every time, so caches stay valid
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=pretrained, device=device, force_quick_gelu=force_quick)
        tokenizer = open_clip.get_tokenizer(arch)
    except ModelLoadError:
        raise
    except Exception as err:
        where = (f"the checkpoint {pretrained}" if is_path else
                 f"the pretrained weights {name}/{pretrained}" if pretrained else name)
        hint = ("Check that the file is a complete open_clip/OpenAI checkpoint for this architecture."
                if is_path else
                "These weights cannot be downloaded here (no internet?). Download them elsewhere and "
                "pass the local file path as the pretrained value.")
        raise ModelLoadError(f"Could not load {where}: {err.__class__.__name__}: {str(err)[:300]}. "
                             f"{hint}") from err
    return from_model(model, preprocess, tokenizer, name=arch, key=cache_key(**key_parts),
                      pretrained=pretrained, device=device, random_init=pretrained is None)
