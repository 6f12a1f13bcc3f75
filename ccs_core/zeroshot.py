"""The text side of zero-shot classification: a task is class names x prompt templates.

CLIP's templates (Radford et al. 2021): a short generic family and the per-dataset ones. Image-side
evaluation (accuracy, pruned features, retrieval) is in ``evaluate``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError
from .store import cache_key

# CLIP's prompt templates (Radford et al. 2021): a short generic family, and the per-dataset ones.
CLIP_TEMPLATES = ["a photo of a {}.", "a blurry photo of a {}.", "a photo of the large {}.",
                  "a photo of the small {}.", "a bad photo of the {}.", "a good photo of the {}.",
                  "itap of a {}.", "art of the {}."]
DATASET_TEMPLATES = {
    "cifar10": CLIP_TEMPLATES,
    "cifar100": CLIP_TEMPLATES,
    "food101": ["a photo of {}, a type of food."],
    "oxford_pets": ["a photo of a {}, a type of pet."],
    "country211": ["a photo i took in {}.", "a photo i took while visiting {}.",
                   "a photo from my home country of {}.", "a photo from my visit to {}.",
                   "a photo showing the country of {}."],
    "imagenet": CLIP_TEMPLATES,
}
RESOURCES = Path(__file__).resolve().parent / "resources"


def country211_names(clip: bool = False) -> dict[str, str]:
    """Country-211 ISO 3166-1 alpha-2 code (its folder name) -> English country name: the project's
    ISO short names, or with ``clip`` the wording of CLIP's published Country-211 class list (the paper
    protocol's; 17 of the 211 differ, e.g. 'DR Congo', "Cote d'Ivoire", 'Kyrgyz Republic')."""
    rows = [l.split("\t") for l in (RESOURCES / "country211_names.tsv").read_text(encoding="utf-8").splitlines()
            if l.strip() and not l.startswith("#")]
    return {row[0].strip(): row[2 if clip else 1].strip() for row in rows}


@dataclass
class ZeroShotTask:
    """Class names x templates ("a photo of a {}."): the text side of zero-shot classification."""
    name: str
    classnames: list[str]
    templates: list[str] = field(default_factory=lambda: list(CLIP_TEMPLATES))

    @property
    def key(self) -> str:
        return cache_key(name=self.name, classnames=list(self.classnames), templates=list(self.templates))

    def check(self) -> "ZeroShotTask":
        """At least two classes and a template: with one class every image is 'right' (accuracy 1.0)."""
        if not self.classnames or not self.templates:
            raise DataError(f"Task {self.name!r} has no class names or no templates.")
        norm = [" ".join(str(c).split()).casefold() for c in self.classnames]
        twice = next((c for i, c in enumerate(self.classnames) if norm[i] in norm[:i]), None)
        if twice is not None:
            raise DataError(f"Task {self.name!r} has the class {twice!r} twice (case and spaces do not count; "
                            "'hot_dog' and 'hot dog' are one class name): the two would share every prompt. "
                            "Merge or rename those class folders.")
        if len(set(self.classnames)) < 2:
            raise DataError(f"Task {self.name!r} has one class ({self.classnames[0]!r}): zero-shot accuracy "
                            "would be 1.0 whatever the model does. Give a folder with one sub-folder per "
                            "class, at least two classes.")
        return self

    def prompts(self) -> list[str]:
        """All prompts, class-major. # [C * T]"""
        return [t.replace("{}", c) if "{}" in t else f"{t} {c}" for c in self.classnames
                for t in self.templates]
