"""What every headless command shares: the progress bar on stderr, atomic JSON output, and the
options several commands take (--workers, --precision, the toy world's --n-images, the paths a dataset
spec reads)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from .errors import DataError


def progress_printer(label: str, quiet: bool = False) -> Callable[..., None]:
    """A progress callback ``(done, total, message="")`` on stderr: on a terminal one updating tqdm line
    per step with rate and ETA; in a log or CI a plain line every 10% of each step (and at its end);
    nothing with ``quiet``. A step is a new message head (the text before " · " or ":") or total."""
    if quiet:
        return lambda done, total, message="": None
    tty = sys.stderr.isatty()
    state: dict = {"step": None, "bar": None, "shown": -1, "t0": time.monotonic()}

    def report(done: int, total: int, message: str = "") -> None:
        step = (message.split(" · ")[0].split(":")[0], total)
        if step != state["step"]:
            if state["bar"] is not None:
                state["bar"].close()
            state.update(step=step, bar=None, shown=-1, t0=time.monotonic())
        desc = f"{label}: {message}" if message else label
        if tty:
            from tqdm import tqdm

            if state["bar"] is None:
                state["bar"] = tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=True)
            bar = state["bar"]
            bar.set_description(desc, refresh=False)
            bar.update(max(0, done - bar.n))
            return
        pct = 100 if done >= total else int(10 * done / max(total, 1)) * 10
        if pct <= state["shown"]:
            return
        state["shown"] = pct
        dt = time.monotonic() - state["t0"]
        rate = done / dt if dt > 0 else 0.0
        eta = f", ETA {(total - done) / rate:.0f} s" if rate > 0 and done < total else ""
        print(f"{desc} {done}/{total} ({pct}%) in {dt:.0f} s{eta}", file=sys.stderr, flush=True)
    return report


def write_json(path: "str | Path", value: Any) -> None:
    """Write JSON atomically (see ``write_text``)."""
    write_text(path, json.dumps(value, indent=2, ensure_ascii=False))


def write_text(path: "str | Path", text: str) -> None:
    """Write a text file atomically (a temp file of this process + rename); a failed write is a
    DataError saying where, and leaves no temp file."""
    path = Path(path).expanduser()
    if path.is_symlink():  # write through the link: the rename below would replace the link itself
        path = path.resolve()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DataError(f"Cannot write {path}: {err.strerror or err}. Choose another --out.") from err


def add_workers(p) -> None:
    p.add_argument("--workers", type=int, default=1,
                   help="image decoding processes (default 1: decoding overlaps the model; 0: in this process)")


def add_precision(p, what: str, default: "str | None" = "fp32") -> None:
    """``--precision fp32|bf16|fp16`` (``precision.py``); ``what``: the forward passes it sets."""
    from .precision import PRECISIONS

    p.add_argument("--precision", default=default, choices=list(PRECISIONS),
                   help=f"{what}: fp32 (default, exact), bf16 autocast (the usual choice on a GPU; on CPUs with bf16 "
                        "units 1.3-3.6x faster than fp32, README: Large runs) or fp16 autocast (GPUs only); results "
                        "stored as float32, cached apart from fp32's")


def check_precision_device(args) -> None:
    """fp16 refused before any work when the command would run on the CPU (``--device`` resolved as the
    model's load resolves it)."""
    if getattr(args, "precision", None) == "fp16":
        from .models import check_device
        from .precision import check_precision

        check_precision("fp16", check_device(getattr(args, "device", None) or "auto"))


def workers(args) -> int:
    if args.workers < 0:
        raise DataError(f"--workers must be 0 (decode in this process) or more (got {args.workers}).")
    return args.workers


def toy_count(args, spec: str, default: int) -> int:
    """``--n-images``: the size of a toy set (default ``default``); refused for folders and datasets,
    whose images are all used (``--max-per-class`` caps a class)."""
    from .datasets import is_toy_spec, parse_spec
    from .toyworld.tasks import MAX_VIDEOS, check_count

    if args.n_images is None:
        return MAX_VIDEOS if is_toy_spec(spec) and parse_spec(spec).kind == "toy-videos" else default
    if not is_toy_spec(spec):
        raise DataError(f"--n-images sizes the toy world's sets; {spec!r} is read whole (its images are all "
                        "used). Leave --n-images out" + (", or cap each class with --max-per-class." if
                                                          hasattr(args, "max_per_class") else "."))
    return check_count(args.n_images)


def dataset_paths(spec: str) -> list[str]:
    """The files and folders a dataset spec reads (none for the toy world's)."""
    from .datasets import CSV_LOADERS, csv_paths, parse_spec

    try:
        parsed = parse_spec(spec)
    except DataError:
        return []  # the dataset's own loading says what is wrong with it
    if parsed.is_toy:
        return []
    return [p for p in csv_paths(parsed.arg) if p] if parsed.kind in CSV_LOADERS else [parsed.arg]
