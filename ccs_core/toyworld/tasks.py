"""Toy-world tasks: zero-shot tasks per factor, labelled image sets, a group-balanced bias set, videos.

Image sets carry ``labels``/``classes`` for one factor and, for every factor, ``factor_labels``
(factor -> list of value indices) and ``factor_classes``; ``samples`` keeps the world samples.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError
from .world import (ALL_FACTORS, GROUP, NEUTRAL, SPLIT_SEEDS, STYLES, VALUES, Sample, phrase, render,
                    split_samples, zero_shot_prompts)

# The evaluation suite's image styles: the training look, the fine-grained analogue, the
# out-of-domain analogue (world.STYLES).
SUITE_STYLES = ("normal", "hard", "outline")


def toy_tasks() -> dict:
    """One ZeroShotTask per factor (the unnamed "frame" too: what the low-CCS heads carry); its
    prompts are the phrases the toy model was trained on."""
    from ..zeroshot import ZeroShotTask

    tasks = {}
    for f in ALL_FACTORS:
        classnames, templates = zero_shot_prompts(f)
        tasks[f] = ZeroShotTask(name=f"toy-{f}", classnames=classnames, templates=templates)
    return tasks


def _samples_key(samples: list[Sample], style: str) -> str:
    """The images' identity without drawing them: the samples, the style and the renderer's source
    (``world.py``), so a change to the drawing code is a new key."""
    from . import world

    h = hashlib.sha256(Path(world.__file__).read_bytes())
    h.update(style.encode())
    for smp in samples:
        h.update(f"{smp.values}:{smp.seed};".encode())
    return h.hexdigest()


class _Renderer:
    """i -> the i-th sample drawn in a style, drawn on first use and kept (a set is drawn at most once)."""

    def __init__(self, samples: list[Sample], style: str):
        self.samples, self.style = samples, style
        self._drawn: dict[int, Image.Image] = {}

    def __call__(self, i: int) -> Image.Image:
        im = self._drawn.get(i)
        if im is None:
            im = self._drawn[i] = render(self.samples[i], style=self.style)
        return im


def _image_set(name: str, samples: list[Sample], factor: str, groups: list[str] | None = None,
               style: str = "normal"):
    from ..data import ImageSet

    if factor not in ALL_FACTORS:
        raise DataError(f"Unknown toy factor {factor!r}; use one of {', '.join(ALL_FACTORS)}.")
    if style not in STYLES:
        raise DataError(f"Unknown toy style {style!r}; use one of {', '.join(STYLES)}.")
    classnames = zero_shot_prompts(factor)[0]
    iset = ImageSet(name=name, key=_samples_key(samples, style), loader=_Renderer(samples, style),
                    size=len(samples), labels=[s.index(factor) for s in samples], classes=classnames,
                    groups=None if groups is None else [str(g) for g in groups])
    iset.samples = samples
    iset.factor_labels = {f: [s.index(f) for s in samples] for f in ALL_FACTORS}
    iset.factor_classes = {f: zero_shot_prompts(f)[0] for f in ALL_FACTORS}
    return iset


MAX_VIDEOS = 64  # toy-videos: clips of 4 frames each
MAX_IMAGES = 100_000  # a toy set's samples are drawn up front; beyond this, memory, not insight, grows


def check_count(n: int) -> int:
    """The size of a toy set: 1 .. MAX_IMAGES (the --n-images of the commands and the app)."""
    if not 1 <= int(n) <= MAX_IMAGES:
        raise DataError(f"--n-images must be between 1 and {MAX_IMAGES:,} for the toy world (got {n:,}); "
                        "its images are drawn in memory, and a few thousand already give stable results.")
    return int(n)


def toy_image_set(split: str = "test", n: int = 500, seed: int | None = None, factor: str = "shape",
                  style: str = "normal"):
    """n rendered samples of a split (train: correlated; val/test: independent factors), drawn in a
    style of ``world.STYLES`` (the same samples in every style)."""
    if split not in SPLIT_SEEDS:
        raise DataError(f"Toy image set needs a split in {sorted(SPLIT_SEEDS)} (got {split!r}).")
    check_count(n)
    samples = split_samples(split, n, seed)
    tag = ("" if seed is None else f"-s{seed}") + ("" if style == "normal" else f"-{style}")
    return _image_set(f"toy-{split}{tag}-{n}", samples, factor, style=style)


def toy_suite(n: int = 256, seed: int | None = 0, styles=SUITE_STYLES, split: str = "test"):
    """The toy evaluation suite: one image set per style, one zero-shot task per factor on each."""
    from ..comparison import SuiteSet

    tasks = toy_tasks()
    out = []
    for style in styles:
        iset = toy_image_set(split, n, seed, style=style)
        out.append(SuiteSet(style, iset, list(tasks.values()),
                            {tasks[f].name: iset.factor_labels[f] for f in ALL_FACTORS}))
    return out


def bias_samples(n: int = 400, seed: int = 0) -> list[Sample]:
    """Exactly balanced over groups (backgrounds); every other factor uniform and independent."""
    groups = len(VALUES[GROUP])
    base = split_samples("bias", n, seed)
    return [s.with_value(GROUP, i % groups) for i, s in enumerate(base)]


def toy_bias_set(n: int = 400, seed: int = 0):
    """Group-balanced set for MaxSkew: groups = background names, labels/classes = shapes."""
    check_count(n)
    samples = bias_samples(n, seed)
    return _image_set(f"toy-bias-s{seed}-{n}", samples, NEUTRAL,
                      groups=[s.value(GROUP) for s in samples])


def neutral_prompts() -> list[str]:
    """The toy analogue of occupation prompts: one per shape (the attribute tied to background)."""
    return [phrase({NEUTRAL: v}) for v in VALUES[NEUTRAL]]


def toy_videos(n: int = 8, frames: int = 4, seed: int = 0) -> tuple[list[list[Image.Image]], list[str]]:
    """n short clips of objects moving across the nine positions, with captions of what stays fixed."""
    rng = np.random.default_rng(1000 * SPLIT_SEEDS["video"] + seed)
    positions = len(VALUES["position"])
    clips, captions = [], []
    for s in split_samples("video", n, seed):
        start, step = int(rng.integers(positions)), int(rng.choice([1, 3]))
        clip = []
        for k in range(frames):
            pos = (start + k * step) % positions
            clip.append(render(Sample(s.with_value("position", pos).values, s.seed + k)))
        clips.append(clip)
        captions.append(phrase({f: s.value(f) for f in ALL_FACTORS if f != "position"}))
    return clips, captions
