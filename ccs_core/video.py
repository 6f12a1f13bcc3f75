"""Captioned videos stored as frame images, for text-to-video retrieval.

Folder layout (MSR-VTT / MSVD / DiDeMo after frame extraction, e.g. ``ffmpeg -i v.mp4 -r 1 v/%04d.jpg``):

    root/captions.txt        one "<video_id><TAB><caption>" per line (several lines per video allowed)
                             (or captions.csv with columns video_id,caption; or captions.json
                             {video_id: caption | [captions]})
    root/<video_id>/*.jpg    the video's frames, in file-name order (root/videos/<video_id>/ also works)

Unreadable frames are skipped and counted; a video with no readable frame is skipped with its captions.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from PIL import Image

from .errors import DataError
from .store import cache_key
from .validate import read_text

FRAME_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
CAPTION_FILES = ("captions.txt", "captions.tsv", "captions.csv", "captions.json")


@dataclass
class VideoSet:
    name: str
    key: str
    video_ids: list[str]
    frames: list[list]                 # per video: PIL images or frame paths, in order
    captions: list[str]
    caption_video: list[int]           # index into video_ids of each caption
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path or id, reason)

    def __len__(self) -> int:
        return len(self.video_ids)

    @staticmethod
    def open_frame(frame) -> Image.Image:
        return frame if isinstance(frame, Image.Image) else Image.open(frame).convert("RGB")

    @classmethod
    def from_clips(cls, name: str, clips: Sequence[Sequence[Image.Image]], captions: Sequence[str]) -> "VideoSet":
        """In-memory videos with one caption each (e.g. ``toyworld.tasks.toy_videos()``)."""
        if len(clips) != len(captions):
            raise DataError(f"{len(clips)} videos but {len(captions)} captions: give one caption per video.")

        h = hashlib.sha256()
        for clip in clips:
            for im in clip:
                h.update(im.convert("RGB").tobytes())
        key = cache_key(kind="videos", name=name, pixels=h.hexdigest(), captions=list(captions))
        return cls(name, key, [str(i) for i in range(len(clips))], [list(c) for c in clips],
                   list(captions), list(range(len(clips))))


def _read_captions(path: Path) -> list[tuple[str, str]]:
    """(video id, caption) pairs from captions.json ({id: caption or [captions]} or a list of
    {video_id, caption}), captions.csv (video_id,caption) or captions.txt (id<TAB>caption lines)."""
    layouts = ("a JSON object {video_id: caption or [captions]}, or a list of {\"video_id\": ..., "
               "\"caption\": ...} objects")
    text = read_text(path, "captions")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as err:
            raise DataError(f"The captions file {path} is not valid JSON ({err}); it should be {layouts}.") from err
        if isinstance(data, dict):
            pairs = [(str(k), c) for k, v in data.items() for c in ([v] if isinstance(v, str) else
                                                                     v if isinstance(v, list) else [v])]
        elif isinstance(data, list) and all(isinstance(d, dict) and {"video_id", "caption"} <= set(d) for d in data):
            pairs = [(str(d["video_id"]), d["caption"]) for d in data]
        else:
            raise DataError(f"The captions file {path} should be {layouts}.")
        bad = next(((v, c) for v, c in pairs if not isinstance(c, str) or not c.strip()), None)
        if bad is not None:
            raise DataError(f"The captions file {path} gives video {bad[0]!r} the caption {bad[1]!r}: every "
                            "caption must be non-empty text.")
        return [(v.strip(), c.strip()) for v, c in pairs]
    if path.suffix == ".csv":
        try:
            rows = list(csv.DictReader(text.splitlines()))
        except csv.Error as err:
            raise DataError(f"Cannot read the captions file {path}: {err}.") from err
        if rows and not {"video_id", "caption"} <= set(rows[0]):
            raise DataError(f"{path} needs the columns video_id,caption (has {', '.join(map(str, rows[0]))}).")
        short = next((n for n, r in enumerate(rows, 2) if not (r.get("video_id") or "").strip()
                      or not (r.get("caption") or "").strip()), None)
        if short is not None:
            raise DataError(f"{path}, line {short}: every row needs a video_id and a caption.")
        return [(r["video_id"].strip(), r["caption"].strip()) for r in rows]
    pairs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        vid, sep, cap = line.partition("\t")
        if not sep or not cap.strip() or not vid.strip():
            raise DataError(f"{path}, line {n}: expected '<video_id><TAB><caption>', got {line[:80]!r}.")
        pairs.append((vid.strip(), cap.strip()))
    return pairs


def load_video_folder(root: "str | Path", max_videos: int | None = None) -> VideoSet:
    """Videos as frame folders plus a captions file (see the module docstring)."""
    root = Path(root).expanduser()
    cap_file = next((root / n for n in CAPTION_FILES if (root / n).is_file()), None)
    if not root.is_dir() or cap_file is None:
        raise DataError(f"No video set at {root}: put the frames of each video in {root}/<video_id>/ and a "
                        f"captions file ({' or '.join(CAPTION_FILES)}) with '<video_id><TAB><caption>' lines.")
    base = root / "videos" if (root / "videos").is_dir() else root
    pairs = _read_captions(cap_file)
    ids = sorted({v for v, _ in pairs})[:max_videos]
    video_ids, frames, skipped = [], [], []
    for vid in ids:
        paths = sorted(p for p in (base / vid).glob("*") if p.suffix.lower() in FRAME_EXTS) \
            if (base / vid).is_dir() else []
        good = []
        for p in paths:
            try:
                with Image.open(p) as im:
                    im.verify()
                good.append(p)
            except Exception as err:
                skipped.append((str(p), f"unreadable image: {err.__class__.__name__}"))
        if not good:
            skipped.append((vid, "no readable frames"))
            continue
        video_ids.append(vid)
        frames.append(good)
    index = {v: i for i, v in enumerate(video_ids)}
    kept = [(index[v], c) for v, c in pairs if v in index]
    if not kept:
        raise DataError(f"No captioned video with readable frames under {base} (captions in {cap_file}).")
    stamp = [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for f in frames for p in f]
    key = cache_key(kind="videos", root=str(root.resolve()), frames=stamp, captions=kept)
    return VideoSet(root.name, key, video_ids, frames, [c for _, c in kept], [i for i, _ in kept], skipped)
