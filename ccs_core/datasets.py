"""Evaluation datasets already on disk (nothing is downloaded), as ImageSets plus their zero-shot task.

- torchvision roots (``download=False``): CIFAR-10/100, Food-101, Country-211, Oxford-IIIT Pet (test split);
- ImageNet-A / ImageNet-R folders (one WordNet-id folder per class), labelled over the 200-class subset
  with CLIP's ImageNet class names;
- any ImageFolder directory; the toy world's splits;
- for bias, a FairFace or SocialCounterfactuals label CSV + image folder (read in ``bias_sets``).

``load_dataset("cifar10:/data")`` resolves a spec string (used by the CLI and the app). Unreadable
images are skipped and listed in ``.skipped``; a missing dataset is a DataError saying where to put it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .bias_sets import csv_paths, load_fairface, load_social_counterfactuals
from .data import ImageSet, cap_per_class, file_image_set, load_image_folder
from .errors import DataError
from .validate import read_lines
from .zeroshot import CLIP_TEMPLATES, DATASET_TEMPLATES, ZeroShotTask, country211_names
from .store import file_digest

RES = Path(__file__).resolve().parent / "resources"
TORCHVISION = {  # spec name -> (torchvision class, folder it expects under root, templates key)
    "cifar10": ("CIFAR10", "cifar-10-batches-py", "cifar10"),
    "cifar100": ("CIFAR100", "cifar-100-python", "cifar100"),
    "food101": ("Food101", "food-101", "food101"),
    "country211": ("Country211", "country211", "country211"),
    "pets": ("OxfordIIITPet", "oxford-iiit-pet", "oxford_pets"),
}
ALIASES = {"cifar-10": "cifar10", "cifar-100": "cifar100", "food-101": "food101", "country-211": "country211",
           "oxford-pets": "pets", "oxford_pets": "pets", "oxfordiiitpet": "pets", "imagenet_a": "imagenet-a",
           "imagenet_r": "imagenet-r", "imagenet-a": "imagenet-a", "imagenet-r": "imagenet-r",
           "social-counterfactuals": "socialcounterfactuals", "scf": "socialcounterfactuals"}


CSV_LOADERS = {"fairface": load_fairface, "socialcounterfactuals": load_social_counterfactuals}  # bias sets
TOY_KINDS = ("toy", "toy-hard", "toy-outline", "toy-bias", "toy-videos")
TOY_STYLES = {"toy": "normal", "toy-hard": "hard", "toy-outline": "outline"}  # same samples, drawn so
TOY_SPLITS = ("train", "val", "test")
PATH_KINDS = (*TORCHVISION, "imagenet-a", "imagenet-r", *CSV_LOADERS, "videos", "folder")
GRAMMAR = ("toy[:FACTOR][,split=SPLIT], toy-hard:FACTOR, toy-outline:FACTOR, toy-bias, toy-videos, "
           "cifar10:ROOT, cifar100:ROOT, food101:ROOT, country211:ROOT, pets:ROOT, imagenet-a:DIR, "
           "imagenet-r:DIR, fairface:CSV[:IMAGE_ROOT], socialcounterfactuals:CSV[:IMAGE_ROOT], videos:DIR, "
           "folder:DIR or an image folder path")


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed dataset spec ``KIND[:ARG]`` (``GRAMMAR``): one meaning per prefix.

    For the toy kinds ARG is ``[FACTOR][,split=SPLIT]``: the factor whose classes the zero-shot task
    asks (default: none given) and the world's split (default test); for the others it is a path."""
    kind: str           # canonical kind (aliases resolved); "folder" for a bare path
    arg: str = ""       # a path, or a toy factor ('' = not given)
    split: str = "test"  # toy kinds only

    @property
    def is_toy(self) -> bool:
        return self.kind in TOY_KINDS

    @property
    def style(self) -> str:
        return TOY_STYLES.get(self.kind, "normal")


def parse_spec(spec: str) -> DatasetSpec:
    """The one parser of dataset and image specs (``--dataset``, ``--images``, the app's choices)."""
    spec = (spec or "").strip()
    head, colon, arg = spec.partition(":")
    kind = ALIASES.get(head.lower(), head.lower())
    if kind in TOY_KINDS:
        parts = [p.strip() for p in arg.split(",") if p.strip()]
        if parts and kind not in TOY_STYLES:  # toy-bias, toy-videos: fixed sets
            raise DataError(f"{head} takes no factor or split (got {arg!r}): write {head}.")
        factor, split, split_given = "", "test", False
        for part in parts:
            key, eq, value = (t.strip() for t in part.partition("="))
            if not eq and key in TOY_SPLITS:
                why = f"{key!r} is a split of the toy world; choose it as {head}:split={key}"
            elif not eq and factor:
                why = f"one factor per spec (got {factor!r} and {key!r})"
            elif not eq:
                factor, why = key, ""
            elif key == "split" and value in TOY_SPLITS and split_given:
                why = "one split per spec"
            elif key == "split" and value in TOY_SPLITS:
                split, split_given, why = value, True, ""
            else:
                why = (f"the splits are {', '.join(TOY_SPLITS)}" if key == "split" else
                       f"the only option is split=SPLIT ({head}[:FACTOR][,split=SPLIT])")
            if why:
                raise DataError(f"Cannot read {part!r} in the dataset spec {spec!r}: {why}.")
        return DatasetSpec(kind, factor, split)
    if kind in PATH_KINDS and (colon or kind in TORCHVISION):  # a torchvision set's root defaults to .
        if colon and not arg.strip():
            raise DataError(f"The dataset spec {spec!r} names no path: write {head}:PATH.")
        return DatasetSpec(kind, arg.strip() or ".")
    return DatasetSpec("folder", spec)


def is_toy_spec(spec: str) -> bool:
    """Whether a spec names the toy world's images (no file to check or fingerprint)."""
    try:
        return parse_spec(spec).is_toy
    except DataError:
        return (spec or "").strip().lower().startswith("toy")


def clean_name(name: str) -> str:
    return " ".join(str(name).replace("_", " ").split())


def load_torchvision(kind: str, root: "str | Path", max_per_class: int | None = None) -> tuple[ImageSet, ZeroShotTask]:
    """A torchvision dataset's test split from ``root`` (never downloaded) and its zero-shot task."""
    import torchvision.datasets as tvd

    kind = ALIASES.get(kind, kind)
    cls_name, folder, tkey = TORCHVISION[kind]
    root = Path(root).expanduser()
    try:
        cls = getattr(tvd, cls_name)
        ds = cls(str(root), train=False, download=False) if kind.startswith("cifar") else \
            cls(str(root), split="test", download=False)
    except Exception as err:  # torchvision raises RuntimeError, OSError, pickle and EOF errors
        if (root / folder).is_dir():  # there, but unreadable: damaged or partly extracted
            raise DataError(f"{cls_name} under {root / folder} could not be read ({type(err).__name__}: "
                            f"{str(err)[:120]}): its files look damaged or incomplete. Extract the dataset "
                            "again (torchvision checks the files' checksums).") from err
        raise DataError(f"{cls_name} was not found under {root}: put the extracted dataset in "
                        f"{root / folder}/ (as torchvision's {cls_name}(root='{root}', download=True) would "
                        f"lay it out; downloads are off here). ({str(err)[:120]})") from err
    name = f"{kind}-test"
    if kind.startswith("cifar"):
        labels = [int(t) for t in ds.targets]
        keep = cap_per_class(labels, max_per_class)
        data = ds.data  # [N, 32, 32, 3] uint8
        digest = file_digest(Path(root) / folder / ("test_batch" if kind == "cifar10" else "test"))
        classes = [clean_name(c) for c in ds.classes]
        task = ZeroShotTask(kind, classes, list(DATASET_TEMPLATES[tkey]))
        return ImageSet(name=name, key=f"{kind}-{digest}-{max_per_class}", size=len(keep),
                        loader=lambda i: Image.fromarray(data[keep[i]]), labels=[labels[i] for i in keep],
                        classes=classes), task
    if kind == "country211":
        files, labels = [Path(p) for p, _ in ds.samples], [int(t) for _, t in ds.samples]
        names = country211_names()
        unknown = [c for c in ds.classes if c not in names]
        if unknown:
            raise DataError(f"Country-211 under {root} has folder(s) that are not Country-211 ISO codes: "
                            f"{', '.join(unknown[:10])}; restore the standard Country-211 test split "
                            f"(one folder per ISO 3166-1 alpha-2 code, AD..ZW) in {root / folder / 'test'}/.")
        classes = [names[c] for c in ds.classes]
        if len(classes) < len(names):  # a partial copy loads, but its scores are not the paper's task
            warnings.warn(f"Country-211 under {root} has {len(classes)} of {len(names)} countries; "
                          "zero-shot accuracy over fewer classes is easier than on the full test split.")
    elif kind == "food101":
        files, labels, classes = list(ds._image_files), list(ds._labels), [clean_name(c) for c in ds.classes]
    else:  # pets: torchvision already turns "american_bulldog" into "American Bulldog"
        files, labels, classes = list(ds._images), list(ds._labels), [clean_name(c) for c in ds.classes]
    task = ZeroShotTask(kind, classes, list(DATASET_TEMPLATES[tkey]))
    return file_image_set(name, root, files, labels, classes, max_per_class=max_per_class), task


def imagenet_classes() -> list[tuple[str, str]]:
    """ImageNet-1k (wnid, CLIP class name) in class-index order."""
    rows = [l.split("\t") for l in (RES / "imagenet" / "imagenet_classes.tsv").read_text().splitlines()
            if l and not l.startswith("#")]
    return [(w, n) for _, w, n in rows]


def load_imagenet_variant(kind: str, path: "str | Path", max_per_class: int | None = None,
                          class_map: "str | Path | None" = None) -> tuple[ImageSet, ZeroShotTask]:
    """ImageNet-A or -R (one wnid folder per class), labels = index in the variant's 200 classes.

    ``class_map``: optional "wnid<TAB>name" file overriding the bundled CLIP class names."""
    kind = ALIASES.get(kind, kind)
    wnids = (RES / "imagenet" / f"imagenet_{kind[-1]}_wnids.txt").read_text().split()
    names = dict(imagenet_classes())
    if class_map is not None:
        given: dict[str, str] = {}
        for line in read_lines(class_map, "class map (wnid<TAB>name)"):
            w, tab, n = line.partition("\t")
            w, n = w.strip(), n.strip()
            if not tab or not w or not n:
                raise DataError(f"The class map {class_map} has the line {line!r}: every line is a WordNet id, "
                                "a TAB, and the class name (e.g. 'n01498041\tstingray').")
            if w in given:
                raise DataError(f"The class map {class_map} names {w} twice ({given[w]!r} and {n!r}); give each "
                                "WordNet id one name.")
            given[w] = names[w] = n
    folder = load_image_folder(path, max_per_class=max_per_class, name=f"{kind}")
    unknown = sorted(set(folder.classes or []) - set(wnids))
    if folder.classes is None or unknown:
        raise DataError(f"{path} is not an {kind.upper()} folder: expected one folder per WordNet id of its "
                        f"200 classes (e.g. {wnids[0]}/), found {', '.join(unknown[:5]) or 'no class folders'}.")
    index = {w: i for i, w in enumerate(wnids)}
    labels = [index[folder.classes[l]] for l in folder.labels]
    classes = [names[w] for w in wnids]
    task = ZeroShotTask(kind, classes, list(DATASET_TEMPLATES["imagenet"]))
    return ImageSet(name=folder.name, key=f"{folder.key}-{kind}", loader=folder.loader, size=folder.size,
                    labels=labels, classes=classes, skipped=folder.skipped, paths=folder.paths), task


fairface_paths = csv_paths  # the name it had when FairFace was the only CSV set


def load_dataset(spec: str, max_per_class: int | None = None, n: int | None = None, seed: int = 0,
                 class_map: "str | Path | None" = None, protocol: str = "standard"):
    """``_load_dataset`` under a named protocol (``protocol.py``: templates, FairFace groups)."""
    from . import protocol as protocols

    chosen = protocols.get(protocol)
    data, task = _load_dataset(spec, max_per_class, n, seed, class_map)
    return protocols.apply(parse_spec(spec).kind, data, task, chosen)


def _load_dataset(spec: str, max_per_class: int | None = None, n: int | None = None, seed: int = 0,
                  class_map: "str | Path | None" = None):
    """Resolve a dataset spec (``GRAMMAR``, parsed by ``parse_spec``) -> (ImageSet or VideoSet,
    ZeroShotTask or None). toy / toy-hard / toy-outline: the toy split (default test) in that style
    with the task of FACTOR (default colour); a bare DIR or folder:DIR: an ImageFolder with CLIP's
    templates."""
    parsed = parse_spec(spec)
    kind, arg = parsed.kind, parsed.arg
    if class_map is not None and kind not in ("imagenet-a", "imagenet-r"):
        raise DataError(f"--class-map applies to imagenet-a:DIR and imagenet-r:DIR only (got {spec!r}).")
    if parsed.is_toy and max_per_class is not None:
        raise DataError("--max-per-class applies to folders and downloaded datasets; the toy world's sets "
                        "are sized with --n-images instead.")
    if kind != "toy-videos":
        n = 500 if n is None else n  # the toy image sets' default size
    if kind in TOY_STYLES:
        from .toyworld.tasks import toy_image_set, toy_tasks

        factor = arg or "colour"
        tasks = toy_tasks()
        if factor not in tasks:
            raise DataError(f"Unknown toy factor {factor!r}; use one of {', '.join(tasks)}.")
        return (toy_image_set(parsed.split, n=n, seed=seed, factor=factor, style=parsed.style),
                tasks[factor])
    if kind == "toy-bias":
        from .toyworld.tasks import toy_bias_set

        from .toyworld.world import GROUP

        iset = toy_bias_set(n=n, seed=seed)
        iset.attributes = {GROUP: iset.groups}
        return iset, None
    if kind in ("toy-videos", "videos") and max_per_class is not None:
        raise DataError("--max-per-class applies to image sets; a video set has no classes (each video is "
                        "one item with its captions).")
    if kind == "toy-videos":
        from .toyworld.tasks import MAX_VIDEOS, check_count, toy_videos
        from .video import VideoSet

        n = MAX_VIDEOS if n is None else n
        if not 1 <= check_count(n) <= MAX_VIDEOS:
            raise DataError(f"toy-videos has at most {MAX_VIDEOS} clips (got --n-images {n}); leave --n-images "
                            f"out for all {MAX_VIDEOS}.")
        clips, caps = toy_videos(n=n, seed=seed)
        return VideoSet.from_clips(f"toy-videos-s{seed}-{len(clips)}", clips, caps), None
    if kind in TORCHVISION:
        return load_torchvision(kind, arg or ".", max_per_class)
    if kind in ("imagenet-a", "imagenet-r"):
        return load_imagenet_variant(kind, arg, max_per_class, class_map)
    if kind in CSV_LOADERS:
        csv_file, img_root = csv_paths(arg)
        return CSV_LOADERS[kind](csv_file, img_root, max_per_group=max_per_class), None
    if kind == "videos":
        from .video import load_video_folder

        return load_video_folder(arg), None
    path = arg
    if path and ("/" in path or path.startswith(".")) and not Path(path).expanduser().exists():
        raise DataError(f"The image folder {path} does not exist (a dataset spec is {GRAMMAR}).")
    if not path or not Path(path).expanduser().exists():
        raise DataError(f"Unknown dataset {spec!r}: use {GRAMMAR}.")
    folder = load_image_folder(path, max_per_class=max_per_class)
    task = None if folder.classes is None else ZeroShotTask(
        folder.name, [clean_name(c) for c in folder.classes], list(CLIP_TEMPLATES)).check()
    return folder, task
