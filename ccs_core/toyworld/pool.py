"""The toy text pool for TEXTSPAN, tagged by the factors each text is about, and the exact toy judge.

``toy_pool()`` holds single-factor descriptions (every value, every prefix, and the bare value words),
every two-factor caption and distractors about nothing in the world (``toy_pool("single")`` and
``toy_pool("full")``: without the captions, or with sampled all-factor captions too).
``span_factors(text)`` reads which factors a text mentions, so it is both the tagger and an exact
offline judge for the toy world. No pool describes the picture frame (``world.UNNAMED``): like the
paper's general pool, it has no words for part of what the images show.
"""
from __future__ import annotations

import itertools
import re
from functools import lru_cache

import numpy as np

from .world import DISTRACTOR_WORDS, FACTORS, PLURAL, PREFIXES, VALUES, phrase

DISTRACTOR = "distractor"
# Words for a factor in a label ("colour", "the shape of things", "where it is", ...).
LABEL_WORDS: dict[str, list[str]] = {
    "colour": ["colour", "color", "colours", "colors", "hue"],
    "shape": ["shape", "shapes", "form", "geometry"],
    "size": ["size", "sizes", "scale", "big", "small", "large"],
    "position": ["position", "location", "place", "where", "spatial", "quadrant", "layout", "centre", "center"],
    "count": ["count", "number", "numbers", "counting", "how many", "quantity", "numerosity"],
    "background": ["background", "texture", "pattern", "backdrop"],
}


def _value_patterns() -> dict[str, re.Pattern]:
    pats = {}
    for f in FACTORS:
        words = set(VALUES[f])
        if f == "shape":
            words |= {PLURAL[v] for v in VALUES[f]}
        if f == "position":
            words = {"top", "bottom", "left", "right"}
        alts = "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))
        pats[f] = re.compile(rf"\b({alts})\b")
    return pats


_PATTERNS = _value_patterns()


def span_factors(text: str) -> frozenset[str]:
    """The world factors a text is about (empty for a distractor)."""
    low = text.lower()
    return frozenset(f for f in FACTORS if _PATTERNS[f].search(low))


def factor_of_label(label: str) -> str | None:
    """The factor a concept label names ("colour", "Color of objects" -> "colour"), else None."""
    low = label.lower()
    hits = [f for f in FACTORS if any(re.search(rf"\b{re.escape(w)}\b", low) for w in LABEL_WORDS[f])]
    if len(hits) != 1:  # fall back to value words: a label "red and blue" is about colour
        hits = sorted(span_factors(low)) if not hits else hits
    return hits[0] if len(hits) == 1 else None


_NOUNS = ["dog", "cat", "tree", "car", "house", "river", "city", "flower", "person", "book",
          "mountain", "bird", "boat", "food", "sunset", "music", "rain", "night"]
_ADJS = ["happy", "old", "quiet", "bright"]


@lru_cache(maxsize=1)
def _distractor_forms() -> tuple[str, ...]:
    """Every distractor text the toy pools can hold, in a fixed order."""
    assert set(_NOUNS + _ADJS) <= set(DISTRACTOR_WORDS)
    forms = [f"a photo of a {x}" for x in _NOUNS] + [f"a {a} {x}" for a in _ADJS for x in _NOUNS]
    forms += [f"the {x} and the {y}" for x, y in itertools.permutations(_NOUNS, 2)]
    forms += [f"a {x} with a {y}" for x, y in itertools.permutations(_NOUNS, 2)]
    return tuple(forms)


def distractors(n: int = 48, seed: int = 0) -> list[str]:
    """Texts built from in-vocabulary words that describe nothing in the toy world."""
    forms = _distractor_forms()
    rng = np.random.default_rng(seed)
    picked = [forms[i] for i in sorted(rng.choice(len(forms), min(n, len(forms)), replace=False))]
    return sorted(set(picked) | {f"a photo of a {x}" for x in _NOUNS[:8]})


def is_distractor(text: str) -> bool:
    """True for the toy pool's distractor texts (``distractors``: about nothing in the world)."""
    return text.strip().lower() in _distractor_set()


@lru_cache(maxsize=1)
def _distractor_set() -> frozenset[str]:
    return frozenset(_distractor_forms())


POOL_KINDS = ("single", "pairs", "full")
DEFAULT_KIND = "pairs"  # the app's toy pool (named "toy"); the others are "toy-<kind>"


def pool_texts(kind: str = DEFAULT_KIND, n_full: int = 60, n_distractors: int = 48, seed: int = 0) -> list[str]:
    """The texts of a toy pool kind, de-duplicated, order kept:
    "single": single-factor texts (every value with every prefix, and the bare value words) + distractors;
    "pairs": + every two-factor caption ("a red circle", "two objects at the top left");
    "full": + ``n_full`` sampled captions mentioning all six factors."""
    if kind not in POOL_KINDS:
        raise ValueError(f"unknown toy pool {kind!r}; use one of {POOL_KINDS}")
    texts = [phrase({f: v}, p) for f in FACTORS for v in VALUES[f] for p in PREFIXES]
    texts += [v for f in FACTORS for v in VALUES[f]]  # bare value words, as in training
    if kind != "single":
        for f, g in itertools.combinations(FACTORS, 2):
            texts += [phrase({f: a, g: b}) for a in VALUES[f] for b in VALUES[g]]
    if kind == "full":
        rng = np.random.default_rng(seed)
        texts += [phrase({f: VALUES[f][rng.integers(len(VALUES[f]))] for f in FACTORS})
                  for _ in range(n_full)]
    texts += distractors(n_distractors, seed)
    return list(dict.fromkeys(texts))


def toy_pool(kind: str = DEFAULT_KIND, n_full: int = 60, n_distractors: int = 48, seed: int = 0):
    """A toy TextPool (see ``pool_texts``); ``.tags[i]`` = frozenset of factors of text i
    ({"distractor"} for none). The default "pairs" pool is the app's toy pool: a caption naming all six
    factors would count for every factor, so random-init heads that pick them look specialised."""
    from ..textpool import TextPool, pool_key

    texts = pool_texts(kind, n_full, n_distractors, seed)
    tags = [span_factors(t) or frozenset({DISTRACTOR}) for t in texts]
    return TextPool("toy" if kind == DEFAULT_KIND else f"toy-{kind}", texts, pool_key(texts), tags=tags)
