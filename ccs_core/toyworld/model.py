"""The toy CLIP: an open_clip ``CLIP`` with a small config, a word-level tokenizer and the bundled checkpoint.

open_clip pools the text tower at the argmax token id, so the tokenizer gives the end token the highest
id. The checkpoint is a ``torch.save`` dict {"config", "vocab", "state_dict" (fp16)}; it loads back to fp32.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import ModelLoadError
from . import TOY_CARD, TOY_CHECKPOINT, TOY_DIR  # noqa: F401  (re-exported)
from ..store import file_digest
from .world import ALL_FACTORS, DISTRACTOR_WORDS, IMAGE_SIZE, PLURAL, PREFIXES, VALUES


TOY_CONFIG: dict = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": IMAGE_SIZE, "patch_size": 8, "width": 128, "layers": 5,
                   "head_width": 8, "mlp_ratio": 4.0},
    "text_cfg": {"context_length": 18, "width": 64, "heads": 4, "layers": 3, "mlp_ratio": 4.0},
}
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def toy_vocab() -> list[str]:
    """Every word of the world's captions plus distractor words, sorted (ids 2.. in this order)."""
    words = {"a", "an", "at", "the", "on", "background", "object", "of", "picture", "image", "in", "frame"}
    for f in ALL_FACTORS:
        for v in VALUES[f]:
            words.update(v.split())
    words.update(PLURAL.values())
    for p in PREFIXES:
        words.update(p.split())
    words.update(DISTRACTOR_WORDS)
    return sorted(words)


class ToyTokenizer:
    """Word-level tokenizer: 0 = pad, 1 = start, 2 = unknown, words, end = the highest id."""

    def __init__(self, vocab: list[str], context_length: int):
        self.vocab = list(vocab)
        self.context_length = context_length
        self.ids = {w: i + 3 for i, w in enumerate(self.vocab)}
        self.eot = len(self.vocab) + 3
        self.vocab_size = self.eot + 1

    def words(self, text: str) -> list[str]:
        return re.findall(r"[a-z]+", text.lower())

    def __call__(self, texts: "str | list[str]", context_length: int | None = None) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        ctx = context_length or self.context_length
        out = torch.zeros(len(texts), ctx, dtype=torch.long)  # [M, ctx]
        for i, text in enumerate(texts):
            ids = [1] + [self.ids.get(w, 2) for w in self.words(text)][: ctx - 2] + [self.eot]
            out[i, : len(ids)] = torch.tensor(ids)
        return out


class ToyPreprocess:
    """PIL image -> normalised float tensor # [3, H, W]."""

    def __init__(self, size: int = IMAGE_SIZE):
        self.size = size

    def __call__(self, img: Image.Image) -> torch.Tensor:
        img = img.convert("RGB")
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images # [B, H, W, 3] -> normalised batch # [B, 3, H, W] (same as ToyPreprocess)."""
    x = torch.from_numpy(images).float().div_(255.0).permute(0, 3, 1, 2)
    return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


def build_toy(config: dict | None = None, vocab: list[str] | None = None):
    """A fresh (random-init) toy CLIP, its preprocess and tokenizer."""
    import open_clip

    config = config or TOY_CONFIG
    vocab = vocab or toy_vocab()
    tok = ToyTokenizer(vocab, config["text_cfg"]["context_length"])
    text_cfg = dict(config["text_cfg"], vocab_size=tok.vocab_size)
    model = open_clip.CLIP(embed_dim=config["embed_dim"], vision_cfg=dict(config["vision_cfg"]),
                           text_cfg=text_cfg)
    return model, ToyPreprocess(config["vision_cfg"]["image_size"]), tok


def save_toy(model: torch.nn.Module, vocab: list[str], config: dict, path: "str | Path") -> None:
    """Write the checkpoint atomically (fp16 weights)."""
    path = Path(path)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"config": config, "vocab": vocab, "state_dict": state}, tmp)
    tmp.replace(path)


def load_toy(path: "str | Path | None" = None):
    """(model (eval, fp32), preprocess, tokenizer, key) from the bundled (or given) checkpoint."""
    bundled = path is None or Path(path).resolve() == TOY_CHECKPOINT.resolve()
    path = Path(path).expanduser() if path is not None else TOY_CHECKPOINT
    fix = ("Restore it from git (git checkout -- ccs_core/toyworld/toy_clip.pt) or retrain it with "
           "`python -m ccs_core.toyworld.train`." if bundled else
           "Give the path of a toy checkpoint written by `python -m ccs_core.toyworld.train --out DIR` (DIR/"
           "toy_clip.pt) as --pretrained (the app: the pretrained field), or leave it out for the bundled one.")
    if path.is_dir():
        inside = " (it holds toy_clip.pt: give that file)" if (path / "toy_clip.pt").is_file() else ""
        raise ModelLoadError(f"The toy model checkpoint {path} is a folder{inside}, not a checkpoint file. {fix}")
    if not path.is_file():
        raise ModelLoadError(f"The toy model checkpoint {path} {'is missing' if bundled else 'does not exist'}. {fix}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        model, preprocess, tok = build_toy(ckpt["config"], ckpt["vocab"])
        model.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    except Exception as err:
        raise ModelLoadError(f"{path} is not a usable toy model checkpoint ({err.__class__.__name__}: "
                             f"{str(err)[:200]}). {fix}") from err
    return model.eval(), preprocess, tok, "toy-" + file_digest(path)
