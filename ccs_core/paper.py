"""The paper's reference tables (arXiv 2503.11103) as DataFrames, and which paper row a model is.

The CSVs in ``resources/paper/`` are transcribed from the paper (0-based layer/head indices). The app
shows them beside the computed numbers when the loaded model is one of the paper's six models.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

PAPER_DIR = Path(__file__).resolve().parent / "resources" / "paper"
TABLES = {
    "head_categories": "paper_head_categories.csv",  # model, layer, head, category, label
    "ccs_at_k": "paper_ccs_at_k.csv",                # model, open_clip_name, pretraining, ccs_at_0..5
    "pruning_accuracy": "paper_pruning_accuracy.csv",  # model, dataset, original, high/low_ccs_pruned
    "bias_maxskew": "paper_bias_maxskew.csv",        # model, dataset, attribute, k, original, high_ccs_pruned
}


@lru_cache(maxsize=None)
def _read(name: str) -> pd.DataFrame:
    if name not in TABLES:
        raise KeyError(f"Unknown paper table {name!r}; known: {', '.join(TABLES)}")
    return pd.read_csv(PAPER_DIR / TABLES[name])


def table(name: str) -> pd.DataFrame:
    """A fresh copy of one paper table (callers may modify it)."""
    return _read(name).copy()


def _of_model(name: str, model: str | None) -> pd.DataFrame:
    """A paper table, restricted to one paper model's rows when ``model`` is given."""
    df = table(name)
    return df[df["model"] == model].reset_index(drop=True) if model else df


def head_categories(model: str | None = None) -> pd.DataFrame:
    """Tables 10-12: the paper's high / moderate / low heads, optionally of one paper model."""
    return _of_model("head_categories", model)


def ccs_at_k(model: str | None = None) -> pd.DataFrame:
    """Table 9: CCS@K shares per model (columns ccs_at_0 .. ccs_at_5)."""
    return _of_model("ccs_at_k", model)


def pruning_accuracy(model: str | None = None) -> pd.DataFrame:
    """Tables 3-4: zero-shot accuracy original / high-CCS pruned / low-CCS pruned."""
    return _of_model("pruning_accuracy", model)


def bias_maxskew(model: str | None = None) -> pd.DataFrame:
    """Tables 7-8: MaxSkew before / after pruning the high-CCS heads."""
    return _of_model("bias_maxskew", model)


def _base_arch(name: str) -> str:
    name = (name or "").strip()
    return name[: -len("-quickgelu")] if name.endswith("-quickgelu") else name


def paper_model(name: str | None, pretrained: str | None) -> str | None:
    """The paper's model row for an open_clip (name, pretrained tag), or None.

    ``("ViT-B-32-quickgelu", "openai") -> "ViT-B-32-OpenAI"``,
    ``("ViT-L-14", "laion2b_s32b_b82k") -> "ViT-L-14-LAION"``; local checkpoints, random init and the
    toy model are not paper models.
    """
    if not name or not pretrained:
        return None
    tag = pretrained.strip().lower()
    if "/" in tag or "\\" in tag or Path(tag).suffix in {".pt", ".pth", ".bin", ".safetensors", ".ckpt"}:
        return None
    arch = _base_arch(name)
    for row in _read("ccs_at_k").itertuples(index=False):
        if _base_arch(row.open_clip_name) != arch:
            continue
        data = str(row.pretraining).lower()
        if tag.startswith(data):  # "laion2b_s34b_b79k" is LAION-2B, "datacomp_xl_..." DataComp
            return str(row.model)
    return None


def paper_models() -> list[str]:
    """The six model names the paper reports on."""
    return list(_read("ccs_at_k")["model"])
