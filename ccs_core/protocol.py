"""Named evaluation protocols: ``standard`` (the better-known conventions, the default) and ``paper``
(what Madasu et al.'s published scripts do), so that results can be compared with the paper's tables.
Every result file records the protocol it was made under.

| choice                     | standard                              | paper                                  |
|----------------------------|---------------------------------------|----------------------------------------|
| CIFAR-10/100 templates     | 8 generic CLIP templates              | CLIP's 18 CIFAR templates              |
| ImageNet-A/R templates     | 8 generic CLIP templates              | CLIP's 80 ImageNet templates           |
| FairFace race groups       | 7 (as FairFace)                       | 6: East + Southeast Asian merged       |
| concept:LABEL pruning      | every head with the label             | the label's CCS-5 heads only           |
| decomposition (spans)      | own-mean: each term centred by its    | gandelsman: the total's mean and       |
|                            | own mean, biases to ``rest``          | ln_post's bias shared equally, each    |
|                            |                                       | image divided by its embedding norm    |
| Country-211 class names    | ISO 3166-1 short names (bundled)      | CLIP's published list (17 differ)      |

(Food-101 and Country-211 use their per-dataset CLIP templates under both; the paper's other constants
— last 4 layers, 5 spans, rank 80, 5 random seeds — are the defaults of both. Oxford-IIIT Pets keeps
the standard protocol under both: its 37 breeds, CLIP's pet template, the test split. The authors'
script differs there — CIFAR templates, all images, each class's first word — which we do not copy,
so Pets numbers compare with Table 4 as drops, not values.)
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import DataError
from .zeroshot import country211_names

# CLIP's 18 prompt templates for CIFAR-10/100 (Radford et al. 2021, the CLIP repository's prompts).
CIFAR_TEMPLATES = [
    "a photo of a {}.", "a blurry photo of a {}.", "a black and white photo of a {}.",
    "a low contrast photo of a {}.", "a high contrast photo of a {}.", "a bad photo of a {}.",
    "a good photo of a {}.", "a photo of a small {}.", "a photo of a big {}.", "a photo of the {}.",
    "a blurry photo of the {}.", "a black and white photo of the {}.", "a low contrast photo of the {}.",
    "a high contrast photo of the {}.", "a bad photo of the {}.", "a good photo of the {}.",
    "a photo of the small {}.", "a photo of the big {}.",
]
MERGED_RACES = {"East Asian": "Asian", "Southeast Asian": "Asian"}


@dataclass(frozen=True)
class Protocol:
    name: str
    paper_templates: bool        # CLIP's full CIFAR / ImageNet template lists
    merge_asian: bool            # FairFace race: East + Southeast Asian -> Asian
    concept_min_ccs: int | None  # concept:LABEL keeps heads with at least this CCS
    norm: str = "own-mean"       # the decomposition's convention (``NORMS``; decompose.py)
    clip_names: bool = False     # Country-211: CLIP's published class names, not the ISO short names


# The decomposition conventions (``decompose.py`` has the maths); here, torch-free, for the CLI's checks.
NORMS = ("own-mean", "gandelsman")

PROTOCOLS = {"standard": Protocol("standard", False, False, None, "own-mean"),
             "paper": Protocol("paper", True, True, 5, "gandelsman", clip_names=True)}


def get(name: str) -> Protocol:
    try:
        return PROTOCOLS[(name or "standard").strip().lower()]
    except KeyError:
        raise DataError(f"Unknown protocol {name!r}; use {' or '.join(PROTOCOLS)}.") from None


def check_norm(norm: str) -> str:
    """``norm`` if it names a decomposition convention, else a DataError saying which do."""
    if norm not in NORMS:
        raise DataError(f"Unknown decomposition convention {norm!r}; use {' or '.join(NORMS)}.")
    return norm


def imagenet_templates() -> list[str]:
    """CLIP's 80 ImageNet templates, as open_clip ships them (functions of the class name)."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]


def apply(kind: str, data, task, protocol: Protocol):
    """The protocol's templates, groups and class names on a loaded (image set, task) of dataset ``kind``."""
    if protocol.paper_templates and task is not None:
        if kind in ("cifar10", "cifar100"):
            task = replace(task, templates=list(CIFAR_TEMPLATES))
        elif kind in ("imagenet-a", "imagenet-r"):
            task = replace(task, templates=imagenet_templates())
    if protocol.clip_names and kind == "country211":
        data, task = _clip_country_names(data, task)
    if protocol.merge_asian and kind == "fairface" and data.attributes and "race" in data.attributes:
        data.attributes = {**data.attributes, "race": [MERGED_RACES.get(r, r) for r in data.attributes["race"]]}
        if data.groups is not None and data.classes and set(data.classes) & set(MERGED_RACES):
            data.groups = [MERGED_RACES.get(g, g) for g in data.groups]
    return data, task


def _clip_country_names(data, task):
    """Country-211's class names as CLIP's prompts.md words them (the loader gives the ISO short names)."""
    iso, clip = country211_names(), country211_names(clip=True)
    to_clip = {iso[code]: clip[code] for code in iso}
    if task is not None:
        task = replace(task, classnames=[to_clip.get(c, c) for c in task.classnames])
    if data.classes:
        data.classes = [to_clip.get(c, c) for c in data.classes]
    return data, task
