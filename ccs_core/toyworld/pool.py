"""The toy text pool for TEXTSPAN, tagged by the factors each text is about, and the exact toy judge.

``toy_pool()`` holds single-factor descriptions (every value, every prefix, and the bare value words),
every two-factor caption, sampled full captions and distractors about nothing in the world.
``span_factors(text)`` reads which factors a text mentions, so it is both the tagger and an exact
offline judge for the toy world.
"""
from __future__ import annotations

import itertools
import re

import numpy as np

from .model import DISTRACTOR_WORDS
from .world import FACTORS, PLURAL, PREFIXES, VALUES, phrase

DISTRACTOR = "distractor"
# Words for a factor in a label ("colour", "the shape of things", "where it is", ...).
LABEL_WORDS: dict[str, list[str]] = {
    "colour": ["colour", "color", "colours", "colors", "hue"],
    "shape": ["shape", "shapes", "form", "geometry"],
    "size": ["size", "sizes", "scale", "big", "small", "large"],
    "position": ["position", "location", "place", "where", "spatial", "quadrant", "layout"],
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


def distractors(n: int = 48, seed: int = 0) -> list[str]:
    """Texts built from in-vocabulary words that describe nothing in the toy world."""
    nouns = ["dog", "cat", "tree", "car", "house", "river", "city", "flower", "person", "book",
             "mountain", "bird", "boat", "food", "sunset", "music", "rain", "night"]
    adjs = ["happy", "old", "quiet", "bright"]
    assert set(nouns + adjs) <= set(DISTRACTOR_WORDS)
    forms = [f"a photo of a {x}" for x in nouns] + [f"a {a} {x}" for a in adjs for x in nouns]
    forms += [f"the {x} and the {y}" for x, y in itertools.permutations(nouns, 2)]
    forms += [f"a {x} with a {y}" for x, y in itertools.permutations(nouns, 2)]
    rng = np.random.default_rng(seed)
    picked = [forms[i] for i in sorted(rng.choice(len(forms), min(n, len(forms)), replace=False))]
    return sorted(set(picked) | {f"a photo of a {x}" for x in nouns[:8]})


def pool_texts(n_full: int = 60, n_distractors: int = 48, seed: int = 0,
               multi: bool = True) -> list[str]:
    """Single-factor texts (all prefixes, bare words), all two-factor captions, sampled full captions
    (only if ``multi``), distractors."""
    texts = [phrase({f: v}, p) for f in FACTORS for v in VALUES[f] for p in PREFIXES]
    texts += [v for f in FACTORS for v in VALUES[f]]  # bare value words, as in training
    if not multi:
        return list(dict.fromkeys(texts + distractors(n_distractors, seed)))
    for f, g in itertools.combinations(FACTORS, 2):
        texts += [phrase({f: a, g: b}) for a in VALUES[f] for b in VALUES[g]]
    rng = np.random.default_rng(seed)
    texts += [phrase({f: VALUES[f][rng.integers(len(VALUES[f]))] for f in FACTORS})
              for _ in range(n_full)]
    texts += distractors(n_distractors, seed)
    return list(dict.fromkeys(texts))  # de-duplicated, order kept


def toy_pool(n_full: int = 60, n_distractors: int = 48, seed: int = 0, multi: bool = True):
    """The toy TextPool; ``.tags[i]`` = frozenset of factors of text i ({"distractor"} for none).

    ``multi=False`` gives the single-factor pool ("toy-single": every text about one factor or none).
    """
    from ..textpool import TextPool, pool_key

    texts = pool_texts(n_full, n_distractors, seed, multi)
    tags = [span_factors(t) or frozenset({DISTRACTOR}) for t in texts]
    return TextPool("toy" if multi else "toy-single", texts, pool_key(texts), tags=tags)
