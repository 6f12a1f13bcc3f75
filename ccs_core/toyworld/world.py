"""The procedural toy world: labelled images of coloured shapes with captions, from independent factors.

A ``Sample`` holds one value index per factor plus a nuisance seed (jitter, texture phase, tones);
``render(sample)`` draws it deterministically. ``sample_world(n, seed, correlation)`` draws factors
uniformly, except that with probability ``correlation`` the background (the "group" attribute) is tied
to the shape (the "neutral" attribute): the toy analogue of a spurious occupation-race correlation.
Besides the six named factors, every image has a picture frame (unframed, thin, thick, double,
dashed, bracketed): training captions name it ("in a thin frame"), no default text pool does
(``UNNAMED``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 32
_SS = 4  # supersampling factor for antialiased drawing
CELLS = 4  # the image is CELLS x CELLS cells of 8 px (one patch of the toy ViT); a position is
# one of nine blocks of 2 x 2 cells, centred on the inner grid points of that lattice

FACTORS: list[str] = ["colour", "shape", "size", "position", "count", "background"]
# A property the world shows and training captions name, but that no default text pool describes,
# as the paper's general pool has no words for much of what a real image holds: heads that carry it
# get spans that fit no concept (low CCS), and pruning them leaves the six named factors intact.
UNNAMED: list[str] = ["frame"]
ALL_FACTORS: list[str] = FACTORS + UNNAMED  # the order of Sample.values
VALUES: dict[str, list[str]] = {
    "colour": ["red", "green", "blue", "yellow", "purple", "pink"],
    "shape": ["circle", "square", "triangle", "cross", "diamond", "ring"],
    "size": ["small", "large"],
    "position": ["top left", "top", "top right", "left", "centre", "right",
                 "bottom left", "bottom", "bottom right"],
    "count": ["one", "two", "three", "four"],
    "background": ["plain", "striped", "dotted", "checkered", "grid", "diagonal"],
    "frame": ["unframed", "thin", "thick", "double", "dashed", "bracketed"],
}
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "cross": "crosses",
          "diamond": "diamonds", "ring": "rings", "object": "objects"}
RGB = {"red": (220, 30, 30), "green": (30, 190, 40), "blue": (40, 60, 230), "yellow": (240, 220, 20),
       "purple": (140, 40, 190), "pink": (255, 120, 200)}
NEUTRAL, GROUP = "shape", "background"  # the spurious pair: shape i co-occurs with background i
PREFIXES = ["", "a picture of", "an image of"]  # caption prefixes (also the zero-shot templates)
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2, "bias": 3, "video": 4}
TRAIN_CORRELATION = 0.8

# How a sample is drawn. "normal" is what the model trains on; "hard" is the analogue of a
# fine-grained dataset (lower-contrast objects with nearby hues, heavier noise; chosen once so that
# the first models of the final recipe scored 0.6-0.99, before any pruning); "outline"
# is the out-of-domain analogue of ImageNet-R (shapes drawn as outlines, never seen in training).
STYLES: dict[str, dict] = {
    "normal": {"scale": 1.0, "contrast": 1.0, "hue_jitter": 0.0, "noise": 4.0, "outline": False},
    "hard": {"scale": 1.0, "contrast": 0.5, "hue_jitter": 30.0, "noise": 14.0, "outline": False},
    "outline": {"scale": 1.0, "contrast": 1.0, "hue_jitter": 0.0, "noise": 4.0, "outline": True},
}


@dataclass(frozen=True)
class Sample:
    values: tuple[int, ...]  # one value index per factor, in ALL_FACTORS order
    seed: int                # nuisance: jitter, cell choice, tones, texture phase

    def value(self, factor: str) -> str:
        return VALUES[factor][self.values[ALL_FACTORS.index(factor)]]

    def index(self, factor: str) -> int:
        return self.values[ALL_FACTORS.index(factor)]

    def with_value(self, factor: str, index: int) -> "Sample":
        vals = list(self.values)
        vals[ALL_FACTORS.index(factor)] = int(index)
        return Sample(tuple(vals), self.seed)


def sample_world(n: int, seed: int, correlation: float | None = None) -> list[Sample]:
    """n samples with uniform independent factors; with prob. ``correlation`` background := shape."""
    rng = np.random.default_rng(seed)
    vals = np.stack([rng.integers(0, len(VALUES[f]), n) for f in FACTORS], axis=1)  # [n, F]
    if correlation:
        tie = rng.random(n) < correlation
        g, s = FACTORS.index(GROUP), FACTORS.index(NEUTRAL)
        vals[tie, g] = vals[tie, s] % len(VALUES[GROUP])
    seeds = rng.integers(0, 2**31 - 1, n)
    extra = np.stack([rng.integers(0, len(VALUES[f]), n) for f in UNNAMED], axis=1)  # [n, U], drawn last
    vals = np.concatenate([vals, extra], axis=1)                                      # [n, F + U]
    return [Sample(tuple(int(v) for v in row), int(sd)) for row, sd in zip(vals, seeds)]


def split_samples(split: str, n: int, seed: int | None = None) -> list[Sample]:
    """The train split is correlated (TRAIN_CORRELATION); val/test/bias are independent."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; use one of {sorted(SPLIT_SEEDS)}")
    base = SPLIT_SEEDS[split] if seed is None else 1000 * SPLIT_SEEDS[split] + 7919 * (seed + 1)
    return sample_world(n, base, TRAIN_CORRELATION if split == "train" else None)


# ---------------------------------------------------------------------------------------------
# Rendering
def _background(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A grey textured background. # [size, size, 3] float"""
    base = rng.uniform(95, 150)
    alt = base + rng.choice([-1, 1]) * rng.uniform(32, 48)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / _SS
    period = rng.uniform(5.0, 7.0)
    py, px = rng.uniform(0, period, 2)
    if kind == "plain":
        mask = np.zeros((size, size), bool)
    elif kind == "striped":
        coord = yy if rng.random() < 0.5 else xx
        mask = ((coord + py) % period) < period / 2
    elif kind == "dotted":
        dy = (yy + py) % period - period / 2
        dx = (xx + px) % period - period / 2
        mask = dy ** 2 + dx ** 2 < (period * 0.22) ** 2
    elif kind == "checkered":
        mask = (((yy + py) // (period / 1.3) + (xx + px) // (period / 1.3)) % 2) == 0
    elif kind == "grid":
        mask = (((yy + py) % period) < period * 0.3) | (((xx + px) % period) < period * 0.3)
    else:  # diagonal stripes
        mask = ((yy + xx * rng.choice([-1, 1]) + py) % period) < period / 2
    img = np.where(mask, alt, base).astype(np.float32)
    return np.repeat(img[:, :, None], 3, axis=2)


def _draw_outline(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float,
                  colour: tuple[int, int, int]) -> None:
    """The shape's contour only (the "outline" style); a ring becomes two thin concentric circles."""
    w = max(1, int(r * 0.24))
    if shape in ("circle", "ring"):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=w)
        if shape == "ring":
            q = r * 0.5
            draw.ellipse([cx - q, cy - q, cx + q, cy + q], outline=colour, width=w)
        return
    if shape == "square":
        q = r * 0.85
        pts = [(cx - q, cy - q), (cx + q, cy - q), (cx + q, cy + q), (cx - q, cy + q)]
    elif shape == "triangle":
        pts = [(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)]
    elif shape == "diamond":
        pts = [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    else:  # cross
        t = r * 0.36
        pts = [(cx - t, cy - r), (cx + t, cy - r), (cx + t, cy - t), (cx + r, cy - t), (cx + r, cy + t),
               (cx + t, cy + t), (cx + t, cy + r), (cx - t, cy + r), (cx - t, cy + t), (cx - r, cy + t),
               (cx - r, cy - t), (cx - t, cy - t)]
    draw.line(pts + [pts[0]], fill=colour, width=w, joint="curve")


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float,
                fill: tuple[int, int, int]) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        q = r * 0.85
        draw.rectangle([cx - q, cy - q, cx + q, cy + q], fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)
    elif shape == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fill, width=max(1, int(r * 0.38)))
    else:  # cross
        t = r * 0.36
        draw.rectangle([cx - r, cy - t, cx + r, cy + t], fill=fill)
        draw.rectangle([cx - t, cy - r, cx + t, cy + r], fill=fill)


def _draw_frame(draw: ImageDraw.ImageDraw, kind: str, big: int, rng: np.random.Generator) -> None:
    """A border round the whole image (thin: 1 px, thick: 2.5 px, double: two 1 px lines), dark or
    light at random."""
    if kind == "unframed":
        return
    tone = (28, 28, 28) if rng.random() < 0.5 else (232, 232, 232)
    px = _SS  # one output pixel
    if kind == "dashed":  # 3 px dashes, 2 px gaps, 1 px wide
        for a in range(0, big, 5 * px):
            b = min(big - 1, a + 3 * px)
            for box in ([a, 0, b, px - 1], [a, big - px, b, big - 1], [0, a, px - 1, b], [big - px, a, big - 1, b]):
                draw.rectangle(box, fill=tone)
        return
    if kind == "bracketed":  # only the four corners, 8 px arms, 1.5 px wide
        arm, w = 8 * px, int(1.5 * px)
        for x0, y0, dx, dy in ((0, 0, 1, 1), (big - 1, 0, -1, 1), (0, big - 1, 1, -1), (big - 1, big - 1, -1, -1)):
            draw.rectangle(sorted([x0, x0 + dx * arm])[:1] + sorted([y0, y0 + dy * (w - 1)])[:1]
                           + sorted([x0, x0 + dx * arm])[1:] + sorted([y0, y0 + dy * (w - 1)])[1:], fill=tone)
            draw.rectangle(sorted([x0, x0 + dx * (w - 1)])[:1] + sorted([y0, y0 + dy * arm])[:1]
                           + sorted([x0, x0 + dx * (w - 1)])[1:] + sorted([y0, y0 + dy * arm])[1:], fill=tone)
        return
    lines = {"thin": [(0, px)], "thick": [(0, int(2.5 * px))], "double": [(0, px), (int(2.5 * px), px)]}[kind]
    for inset, width in lines:
        draw.rectangle([inset, inset, big - 1 - inset, big - 1 - inset], outline=tone, width=width)


PAIRS = [((-0.5, 0.0), (0.5, 0.0)), ((0.0, -0.5), (0.0, 0.5)),
         ((-0.5, -0.5), (0.5, 0.5)), ((-0.5, 0.5), (0.5, -0.5))]
CORNERS = [(-0.5, -0.5), (-0.5, 0.5), (0.5, -0.5), (0.5, 0.5)]


def arrangement(k: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Offsets (dy, dx), in cells, of ``k`` objects round their block's centre (one object sits on it,
    two face each other across it, three or four take corners of its 2 x 2 cells); each object
    stays inside its block, so the block alone says the position."""
    if k == 1:
        return [(0.0, 0.0)]
    if k == 2:
        return list(PAIRS[int(rng.integers(len(PAIRS)))])
    return [CORNERS[i] for i in rng.permutation(len(CORNERS))[:k]]


def render(sample: Sample, size: int = IMAGE_SIZE, style: str = "normal") -> Image.Image:
    """Draw a sample as an RGB image (deterministic in the sample and style; see ``STYLES``)."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; use one of {sorted(STYLES)}")
    st = STYLES[style]
    rng = np.random.default_rng(sample.seed)
    big = size * _SS
    bg = _background(sample.value("background"), rng, big)
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    row, col = divmod(sample.index("position"), 3)
    cell = big / CELLS
    r = cell * (0.47 if sample.value("size") == "large" else 0.33) * st["scale"]
    slack = max(0.0, cell / 2 - r - _SS * 0.25)
    tone = rng.uniform(0.85, 1.0)
    rgb = np.array(RGB[sample.value("colour")], np.float64) * tone
    if st["hue_jitter"] or st["contrast"] != 1.0:  # nearby hues, blended towards the grey background
        style_rng = np.random.default_rng([sample.seed, 1])
        rgb = rgb + style_rng.uniform(-st["hue_jitter"], st["hue_jitter"], 3)
        rgb = st["contrast"] * rgb + (1 - st["contrast"]) * float(bg.mean())
    fill = tuple(int(c) for c in np.clip(rgb, 0, 255))
    draw_one = _draw_outline if st["outline"] else _draw_shape
    for dy, dx in arrangement(sample.index("count") + 1, rng):
        cy = (row + 1 + dy) * cell + rng.uniform(-slack, slack)
        cx = (col + 1 + dx) * cell + rng.uniform(-slack, slack)
        draw_one(draw, sample.value("shape"), cx, cy, r, fill)
    _draw_frame(draw, sample.value("frame"), big, np.random.default_rng([sample.seed, 2]))
    img = img.resize((size, size), Image.BOX)
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, st["noise"], (size, size, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


# ---------------------------------------------------------------------------------------------
# Captions
def phrase(values: dict[str, str], prefix: str = "") -> str:
    """English for the factors in ``values`` (any subset): "two small red circles at the top left"."""
    count = values.get("count")
    noun = values.get("shape", "object")
    if count and count != "one":
        noun = PLURAL[noun]
    words = [w for w in (values.get("size"), values.get("colour"), noun) if w]
    det = count if count else ("an" if words[0][0] in "aeiou" else "a")
    text = " ".join([det] + words)
    if "position" in values:
        text += f" at the {values['position']}"
    if "background" in values:
        text += f" on a {values['background']} background"
    if "frame" in values:
        text += " " + frame_phrase(values["frame"])
    return f"{prefix} {text}".strip()


def frame_phrase(value: str) -> str:
    """"unframed", "in a thin frame", ..."""
    return value if value == "unframed" else f"in a {value} frame"


def bare(values: dict[str, str]) -> str:
    """Just the value words, in factor order: "two red top left"."""
    return " ".join(values[f] if f != "frame" else frame_phrase(values[f]).removeprefix("in a ")
                    for f in ALL_FACTORS if f in values)


def caption(sample: Sample, mention: "list[str] | None" = None, prefix: str = "") -> str:
    """Caption mentioning the factors ``mention`` (default: all, the unnamed ones included)."""
    mention = ALL_FACTORS if mention is None else mention
    return phrase({f: sample.value(f) for f in mention}, prefix)


def random_mention(rng: np.random.Generator) -> list[str]:
    """Which factors a training caption mentions: mostly one or two, sometimes all."""
    k = rng.choice([1, 2, 3, len(ALL_FACTORS)], p=[0.45, 0.3, 0.1, 0.15])
    return [ALL_FACTORS[i] for i in sorted(rng.choice(len(ALL_FACTORS), k, replace=False))]


def zero_shot_prompts(factor: str) -> tuple[list[str], list[str]]:
    """(classnames, templates) for a factor; ``template.format(cls)`` is a training-style phrase."""
    classnames = list(VALUES[factor])
    body = {"colour": "a {} object", "shape": "a {}", "size": "a {} object",
            "position": "an object at the {}", "count": "{}",
            "background": "an object on a {} background", "frame": "an object {}"}[factor]
    if factor == "count":
        classnames = [phrase({"count": v}) for v in VALUES["count"]]
    if factor == "frame":
        classnames = [frame_phrase(v) for v in VALUES["frame"]]
    return classnames, [f"{p} {body}".strip() for p in PREFIXES]


# Words outside the world: in the vocabulary (so distractor texts get distinct embeddings) but never
# in a training caption.
DISTRACTOR_WORDS = ["dog", "cat", "tree", "car", "house", "river", "music", "happy", "city", "night",
                    "sunset", "flower", "person", "book", "mountain", "bird", "boat", "food", "rain",
                    "bright", "old", "quiet", "photo", "with", "and", "the"]
