"""Image sets: in-memory images and image folders (flat, or one subfolder per class).

An ``ImageSet`` knows how to load image i as RGB and to yield preprocessed batches; ``key`` identifies
its content for the cache. Unreadable files in a folder are checked once, when the folder is loaded
(PIL verify + a reduced-size decode), skipped and listed in ``.skipped``; a folder with no readable image
is a ``DataError``. ``file_image_set`` builds one from a list of files (the dataset loaders' common end);
the loaders themselves (torchvision roots, ImageNet-A/R) are in ``datasets``, the bias CSVs (FairFace,
SocialCounterfactuals) in ``bias_sets``.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from PIL import Image

from .errors import DataError

if TYPE_CHECKING:
    import torch

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                    ".pgm"}


@dataclass(eq=False)
class ImageSet:
    name: str
    key: str                                   # sha256 identifying the images (not the labels)
    loader: Callable[[int], Image.Image]       # i -> PIL image (any mode)
    size: int
    labels: list[int] | None = None            # class index per image
    classes: list[str] | None = None           # class names
    groups: list[str] | None = None            # group per image (bias analysis)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    paths: list[str] | None = None             # source files, when loaded from disk
    attributes: dict[str, list[str]] | None = None      # bias: attribute -> group of every image (FairFace)
    subjects: list[str] | None = None                   # bias: each image's subject (SocialCounterfactuals' occupation)
    samples: list | None = None                         # toy world: the world sample of every image
    factor_labels: dict[str, list[int]] | None = None   # toy world: factor -> value index of every image
    factor_classes: dict[str, list[str]] | None = None  # toy world: factor -> its class names
    workers: int = 0                                    # decoding processes of batches() (0: in-process)

    def __post_init__(self) -> None:
        for what, values in (("labels", self.labels), ("groups", self.groups)):
            if values is not None and len(values) != self.size:
                raise DataError(f"Image set {self.name!r}: {len(values)} {what} for {self.size} images; "
                                f"give one {what[:-1]} per image.")
        if self.labels is not None and self.classes is not None:
            bad = [l for l in self.labels if not 0 <= int(l) < len(self.classes)]
            if bad:
                raise DataError(f"Image set {self.name!r}: label {bad[0]} is outside the "
                                f"{len(self.classes)} classes.")

    def __len__(self) -> int:
        return self.size

    def image(self, i: int) -> Image.Image:
        """Image i as an RGB PIL image."""
        if not -self.size <= i < self.size:
            raise IndexError(f"image {i} of {self.size}")
        return _rgb(self.loader(i % self.size))

    def batches(self, preprocess: Callable, batch_size: int = 64, workers: int | None = None,
                start: int = 0, stop: int | None = None) -> "Iterator[torch.Tensor]":
        """Preprocessed images start..stop-1 (default: all) in order, batch_size at a time. # [b, 3, H, W]

        ``workers`` (default ``self.workers``): decode and preprocess in that many worker processes of
        one torch thread each (a torch DataLoader, order kept), so the model never waits on JPEG
        decoding; 0, at most two batches, or a platform without fork: in this process."""
        import torch  # here, not at import: the explorer's warm start reads image sets without torch

        if int(batch_size) < 1:
            raise DataError(f"The batch size must be at least 1 (got {batch_size}).")
        stop = self.size if stop is None else stop
        if not 0 <= start <= stop <= self.size:
            raise DataError(f"Images {start}..{stop} are outside the set's {self.size}.")
        workers = self.workers if workers is None else int(workers)
        if workers > 0 and stop - start > 2 * batch_size and "fork" in multiprocessing.get_all_start_methods():
            from torch.utils.data import DataLoader

            loader = DataLoader(_Decoded(self, preprocess, start, stop), batch_size=batch_size, shuffle=False,
                                num_workers=workers, collate_fn=_stack, multiprocessing_context="fork")
            for batch, problem in loader:
                if problem:  # a file that changed since the folder was checked: one clear line
                    raise DataError(problem)
                yield batch
            return
        for s in range(start, stop, batch_size):
            yield torch.stack([preprocess(self.image(i)) for i in range(s, min(s + batch_size, stop))])

    @classmethod
    def from_images(cls, name: str, pil_images: Sequence[Image.Image], labels=None, classes=None,
                    groups=None) -> "ImageSet":
        """An in-memory set; key = sha256 of the RGB pixel bytes (with sizes)."""
        images = [_rgb(im) for im in pil_images]
        h = hashlib.sha256()
        for im in images:
            h.update(f"{im.size}".encode())
            h.update(im.tobytes())
        return cls(name=name, key=h.hexdigest(), loader=images.__getitem__, size=len(images),
                   labels=None if labels is None else [int(l) for l in labels],
                   classes=None if classes is None else list(classes),
                   groups=None if groups is None else [str(g) for g in groups])


def _rgb(im: Image.Image) -> Image.Image:
    """RGB, 8 bits per channel. 16-bit and float greyscale (PNG "I;16", "I", "F") are scaled to 0..255
    by their bit depth (PIL's own convert would clip every value above 255 to white)."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or (im.mode == "I" and a.max() > 255) else \
            (1.0 if im.mode == "F" and a.max() <= 1.0 else 255.0)
        a = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(a, mode="L").convert("RGB")
    return im.convert("RGB")


def _open(path: str) -> Image.Image:
    with Image.open(path) as im:
        im.load()
        return im


def check_image(path: Path) -> str | None:
    """None if PIL can read the file, else the reason it cannot."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. DecompressionBombWarning, palette transparency
            with Image.open(path) as im:
                im.verify()                 # structure / checksums
            with Image.open(path) as im:
                im.draft("RGB", (64, 64))   # JPEG: decode at reduced scale, still reads all the data
                im.load()
        return None
    except Exception as err:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        return f"{err.__class__.__name__}: {err}"[:200]


class _Decoded:
    """Image i preprocessed, for a DataLoader worker: (tensor, '') or (None, what went wrong)."""

    def __init__(self, image_set: ImageSet, preprocess: Callable, start: int, stop: int):
        self.image_set, self.preprocess, self.start, self.stop = image_set, preprocess, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int):
        try:
            return self.preprocess(self.image_set.image(self.start + i)), ""
        except Exception as err:  # a DataError's message already says what to do; others get one line
            return None, str(err) if isinstance(err, DataError) else f"Image {i} could not be decoded: {err}"


def _stack(items):
    import torch

    problem = next((p for _, p in items if p), "")
    return (None, problem) if problem else (torch.stack([x for x, _ in items]), "")


class FolderScans:
    """``check_image`` results of one folder, remembered in the cache by file (path, size, mtime, inode,
    ctime):
    a folder loaded again checks only new or changed files, so a warm run costs a stat per image
    instead of a decode. Without a writable cache every file is checked."""

    def __init__(self, root: Path):
        from .store import cache_key, open_store

        try:
            self.store = open_store()
            self.key = cache_key(v=1, root=str(root.resolve()))
            known = self.store.get("folder-scan", self.key)
        except Exception:  # an unwritable or broken cache: check every file, as without one
            self.store, known = None, None
        self.known: dict = known if isinstance(known, dict) else {}
        self.seen: dict[str, list] = {}

    def check(self, path: Path) -> str | None:
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]  # ctime: 'touch -r' cannot fake it
        old = self.known.get(str(path))
        fresh = isinstance(old, list) and len(old) == 5 and old[:4] == stamp and isinstance(old[4], str)
        reason = old[4] if fresh else check_image(path)
        self.seen[str(path)] = stamp + [reason or ""]
        return reason or None

    def save(self) -> None:
        if self.store is None:
            return
        try:
            if self.seen != {k: self.known.get(k) for k in self.seen}:
                kept = {k: v for k, v in self.known.items() if k not in self.seen and Path(k).exists()}
                self.store.set("folder-scan", self.key, {**kept, **self.seen})  # deleted files dropped
        except Exception:
            pass  # remembering is an optimisation: the folder was checked either way
        finally:
            self.store.close()


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def load_image_folder(path: "str | Path", max_per_class: int | None = None,
                      name: str | None = None) -> ImageSet:
    """A folder of images. With class subfolders (ImageFolder layout) labels/classes come from them,
    else it is a flat, unlabelled set. max_per_class keeps the first N (sorted) readable images per class
    (or in total for a flat folder)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"Image folder {root} does not exist. Give a folder of images, or one with a "
                        "subfolder of images per class.")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder. Give a folder of images (or one subfolder per class).")
    if max_per_class is not None and max_per_class < 1:
        raise DataError(f"max_per_class must be at least 1 (got {max_per_class}).")
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    groups_of_files = [(d.name, _image_files(d)) for d in subdirs]
    visible = [p for p in sorted(root.rglob("*")) if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    broken = [(str(p), "a symbolic link to nothing (its target is missing)") for p in visible
              if p.is_symlink() and not p.exists()]
    broken += [(str(p), "not a regular file (a pipe, socket or device)") for p in visible
               if p.suffix.lower() in IMAGE_EXTENSIONS and p.exists() and not p.is_file() and not p.is_dir()]
    unsupported = [(str(root / c), "no files with a supported image extension (" + ", ".join(sorted(IMAGE_EXTENSIONS))
                    + ")") for c, fs in groups_of_files if not fs and any(f.is_file() for f in (root / c).rglob("*"))]
    groups_of_files = [(c, fs) for c, fs in groups_of_files if fs]
    layered = bool(groups_of_files)
    loose: list[tuple[str, str]] = []
    if layered:  # images beside the class folders have no class: listed as skipped, never dropped silently
        loose = [(str(p), "at the folder's top level, outside the class sub-folders (no class)")
                 for p in sorted(root.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                 and not p.name.startswith(".")]
    if not layered:
        groups_of_files = [("", sorted(p for p in root.iterdir() if p.is_file()
                                       and p.suffix.lower() in IMAGE_EXTENSIONS
                                       and not p.name.startswith(".")))]
    files, labels, classes, skipped = [], [], [], list(loose) + broken + (unsupported if layered else [])
    scans = FolderScans(root)
    for cls_name, candidates in groups_of_files:
        kept = []
        for p in candidates:
            if max_per_class is not None and len(kept) >= max_per_class:
                break
            reason = scans.check(p)
            if reason:
                skipped.append((str(p), reason))
            else:
                kept.append(p)
        if not kept:
            if layered:
                skipped.append((str(root / cls_name), "no readable images in this class folder"))
            continue
        if layered:
            classes.append(cls_name)
        files += kept
        labels += [len(classes) - 1] * len(kept)
    scans.save()
    if not files:
        detail = f" ({len(skipped)} unreadable, e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise DataError(f"No readable images in {root}{detail}. Supported files: "
                        f"{', '.join(sorted(IMAGE_EXTENSIONS))}, directly in the folder or in one "
                        "subfolder per class.")
    h = hashlib.sha256(str(root.resolve()).encode("utf-8", "surrogateescape"))  # which folder, then which files:
    for p, l in zip(files, labels):  # two folders of same-named, same-sized, same-dated files differ
        st = p.stat()
        h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\0{l}\n".encode(
            "utf-8", "surrogateescape"))  # a file name that is not UTF-8 is still a name
    paths = [str(p) for p in files]

    def load(i: int) -> Image.Image:
        try:
            return _open(paths[i])
        except Exception as err:
            raise DataError(f"Image {paths[i]} could not be read any more ({err}); it changed after "
                            "the folder was loaded. Reload the folder.") from err

    return ImageSet(name=name or root.name, key=h.hexdigest(), loader=load, size=len(files),
                    labels=labels if layered else None, classes=classes if layered else None,
                    skipped=skipped, paths=paths)


def cap_per_class(labels: Sequence[int], max_per_class: int | None) -> list[int]:
    """Indices kept: the first max_per_class of every class, in order."""
    if max_per_class is None:
        return list(range(len(labels)))
    if max_per_class < 1:
        raise DataError(f"max_per_class must be at least 1 (got {max_per_class}).")
    seen: dict[int, int] = {}
    keep = []
    for i, l in enumerate(labels):
        if seen.get(l, 0) < max_per_class:
            seen[l] = seen.get(l, 0) + 1
            keep.append(i)
    return keep


def file_image_set(name: str, root: Path, files: Sequence[Path], labels: Sequence[int], classes: list[str],
                   groups: Sequence[str] | None = None, max_per_class: int | None = None) -> ImageSet:
    """An ImageSet over image files: readable files only (skipped ones listed), content-keyed."""
    paths, labs, grps, skipped = [], [], [], []
    for i in cap_per_class(labels, max_per_class):
        p = Path(files[i])
        reason = "file is missing" if not p.is_file() else check_image(p)
        if reason:
            skipped.append((str(p), reason))
            continue
        paths.append(str(p))
        labs.append(int(labels[i]))
        if groups is not None:
            grps.append(groups[i])
    if not paths:
        raise DataError(f"No readable images for {name} under {root} ({len(skipped)} unreadable or missing).")
    h = hashlib.sha256(name.encode())
    for p, l in zip(paths, labs):
        st = Path(p).stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\0{l}\n".encode())
    return ImageSet(name=name, key=h.hexdigest(), loader=lambda i: _open(paths[i]), size=len(paths),
                    labels=labs, classes=classes, groups=grps if groups is not None else None,
                    skipped=skipped, paths=paths)
