"""Checks at the boundary: command-line numbers, output paths, one-per-line files, templates, K.

Each raises the project's own ``DataError`` with what is wrong, why it matters and how to fix it,
before any computation (an ``--out`` that cannot be written is refused before an hour of work).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import DataError


def positive(name: str, value: int) -> int:
    """An integer option that must be at least 1 (batch sizes, counts)."""
    if value is None or int(value) < 1:
        raise DataError(f"{name} must be at least 1 (got {value}).")
    return int(value)


def output_path(path: "str | Path", what: str = "output", inputs: "tuple | list" = (),
                folders: "tuple | list" = (), flag: str = "--out") -> Path:
    """A file that can be written: not a directory or a special file, its folder creatable and
    writable, none of the command's ``inputs`` (writing there would destroy the input) and outside the
    ``folders`` it reads (image folders, dataset roots). ``flag``: the option the messages name."""
    p = Path(path).expanduser()
    same = [str(i) for i in inputs if i and Path(str(i)).expanduser().resolve() == p.resolve()]
    if same:
        raise DataError(f"The {what} path {p} is also an input of this command ({same[0]}); writing it "
                        f"would overwrite that input. Choose another {flag}.")
    if p.is_dir():
        raise DataError(f"The {what} path {p} is a directory; give a file name, e.g. {p / 'result.json'}.")
    if p.exists() and not p.resolve().is_file():
        raise DataError(f"The {what} path {p} is not a regular file (a device, pipe or socket); the result is "
                        "written to a temporary file and renamed into place, which would replace it. Give a file name.")
    inside = [str(i) for i in folders if i and Path(str(i)).expanduser().is_dir()
              and Path(str(i)).expanduser().resolve() in p.resolve().parents]
    if inside:
        raise DataError(f"The {what} path {p} is inside {inside[0]}, a folder this command reads; writing there "
                        f"would change (or replace a file of) its input. Choose a {flag} outside it.")
    parent = p.parent
    for up in [parent, *parent.parents]:
        if up.exists():
            if not up.is_dir():
                raise DataError(f"The {what} path {p} lies under {up}, which is a file, not a folder.")
            if not os.access(up, os.W_OK | os.X_OK):
                raise DataError(f"Cannot write the {what} {p}: no write permission in {up}. Choose another "
                                "folder or fix its permissions.")
            break
    return p


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file (a BOM is fine), or a DataError saying it is not UTF-8 or cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"The {what} file {path} is not UTF-8 text (byte {err.start}); save it as UTF-8.") from err
    except OSError as err:
        raise DataError(f"Cannot read the {what} file {path}: {err}.") from err


def read_lines(path: "str | Path", what: str, distinct: bool = False) -> list[str]:
    """A UTF-8 (BOM allowed) file of one entry per line; blank lines and '#' comments skipped.
    ``distinct``: an entry given twice is refused (prompts and templates: it would count twice)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"The {what} file {p} does not exist.")
    if not p.is_file():
        raise DataError(f"The {what} path {p} is not a file; give a text file with one entry per line.")
    text = read_text(p, what)
    lines = [s.strip() for s in text.splitlines() if s.strip() and not s.strip().startswith("#")]
    if not lines:
        raise DataError(f"The {what} file {p} has no entries (it is empty or only comments); write one per line.")
    return unique(lines, what, f" file {p}") if distinct else lines


def _norm(text: str) -> str:
    """What CLIP's tokenizer sees: case and runs of spaces do not count."""
    return " ".join(text.split()).casefold()


def unique(values: list[str], what: str, where: str = "") -> list[str]:
    """Entries that differ once case and spacing are ignored (CLIP's tokenizer lowercases): a repeat
    would count twice."""
    seen: dict[str, str] = {}
    for v in values:
        if _norm(v) in seen:
            same = "" if seen[_norm(v)] == v else f" (as {seen[_norm(v)]!r}: case and spaces do not count)"
            raise DataError(f"In the {what}{where}, {v!r} appears more than once{same}; each entry would count "
                            "once per copy. Remove the repeats.")
        seen[_norm(v)] = v
    return values


def text_list(values, what: str) -> list[str]:
    """A list of distinct, non-empty strings (a library caller's prompts or templates)."""
    if isinstance(values, str) or not all(isinstance(v, str) and v.strip() for v in values):
        raise DataError(f"The {what} must be a list of non-empty strings (got {values!r:.80}).")
    if not values:
        raise DataError(f"No {what} given; give at least one, or leave them out for the defaults.")
    return unique([v.strip() for v in values], what)


def templates(values: list[str]) -> list[str]:
    """Prompt templates: each holds exactly one "{}" where the class or occupation goes."""
    bad = [t for t in values if t.count("{}") != 1]
    if bad:
        raise DataError(f"Every template needs exactly one {{}} for the class name; {bad[0]!r} has "
                        f"{bad[0].count('{}')}. Example: 'a photo of a {{}}.'")
    return values


def top_k(k: int, n_images: int, what: str = "images") -> int:
    """MaxSkew's K: 1 <= K <= the number of images (a larger K would silently become every image)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise DataError(f"K must be a whole number of images (got {k!r}).")
    if not 1 <= int(k) <= n_images:
        raise DataError(f"K = {k} top images per prompt, but the set has {n_images} {what}: give --k between "
                        f"1 and {n_images}, or more images (the paper uses K = 900 of 10,954).")
    return int(k)


def lan_mode() -> bool:
    """The explorer is served to the network (``scripts/app.sh --lan`` sets CCS_LAN=1)."""
    return os.environ.get("CCS_LAN", "") not in ("", "0", "false")


def data_path(path: str, what: str) -> None:
    """In LAN mode, a typed local path must lie under one of CCS_DATA_ROOTS (default: the bundled
    resources and the cache): visitors cannot open the server's other files."""
    if not lan_mode() or not path or path in ("toy", "bundled"):  # the bundled pools (toy image specs:
        # the caller, see datasets.is_toy_spec)
        return
    here = Path(__file__).resolve().parent.parent
    roots = [Path(r).expanduser().resolve() for r in os.environ.get("CCS_DATA_ROOTS", "").split(os.pathsep) if r]
    roots = roots or [here / "ccs_core" / "resources", here / "cache"]
    target = Path(path).expanduser().resolve()
    if not any(target == r or r in target.parents for r in roots):
        raise DataError(f"This explorer is served to the network (--lan): the {what} {path} is outside its data "
                        f"roots ({', '.join(map(str, roots))}). Put the files there, or set CCS_DATA_ROOTS on "
                        "the server.")
