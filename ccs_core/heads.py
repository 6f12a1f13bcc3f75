"""Head identifiers: ``HeadId(layer, head)`` and the "L11.H5" notation.

Layer and head indices are 0-based and absolute (L11 is the last layer of a 12-layer ViT), as in the
paper's tables.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from .errors import HeadSpecError

_HEAD_RE = re.compile(r"^\s*L(\d+)\s*[.:_/ -]?\s*H(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class HeadId:
    layer: int
    head: int

    def __str__(self) -> str:
        return f"L{self.layer}.H{self.head}"

    @classmethod
    def parse(cls, text: "str | HeadId | tuple[int, int]") -> "HeadId":
        """Parse "L11.H5" (also "l11h5", "L11 H5"), a (layer, head) pair, or pass a HeadId through."""
        if isinstance(text, HeadId):
            return text
        if isinstance(text, (tuple, list)) and len(text) == 2:
            return cls(int(text[0]), int(text[1]))
        m = _HEAD_RE.match(str(text))
        if not m:
            raise HeadSpecError(
                f"Cannot read head name {text!r}: write heads as L<layer>.H<head>, e.g. 'L11.H5' "
                "(0-based, as in the paper)."
            )
        return cls(int(m.group(1)), int(m.group(2)))


def parse_heads(spec: "str | Iterable[str | HeadId | tuple[int, int]]") -> list[HeadId]:
    """Parse "L11.H5, L10.H8" or an iterable of names/HeadIds into a sorted, de-duplicated list."""
    if isinstance(spec, str):
        items = [s for s in re.split(r"[,;\s]+(?=L)", spec.strip(), flags=re.IGNORECASE) if s.strip()]
        items = [s.strip().strip(",;") for s in items]
    else:
        items = list(spec)
    return sorted({HeadId.parse(s) for s in items})


def check_heads(heads: Iterable[HeadId], n_layers: int, n_heads: int,
                first_layer: int = 0) -> list[HeadId]:
    """Raise HeadSpecError for heads outside layers [first_layer, n_layers) x heads [0, n_heads)."""
    heads = list(heads)
    bad = [h for h in heads if not (first_layer <= h.layer < n_layers and 0 <= h.head < n_heads)]
    if bad:
        names = ", ".join(str(h) for h in bad)
        raise HeadSpecError(
            f"Head(s) {names} do not exist here: valid layers are {first_layer}..{n_layers - 1} "
            f"and heads 0..{n_heads - 1}."
        )
    return heads


def layer_heads(layers: Iterable[int], n_heads: int) -> list[HeadId]:
    """All heads of the given layers, in (layer, head) order."""
    return [HeadId(l, h) for l in layers for h in range(n_heads)]
