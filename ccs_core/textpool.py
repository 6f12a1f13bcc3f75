"""Pools of candidate descriptions for TEXTSPAN: the bundled pool and user pools (one text per line).

File format: UTF-8, one description per line; blank lines and lines starting with '#' are skipped;
a line '#: <section>' names the section of the lines below it (kept as tags); repeated texts are
dropped, keeping the first. The bundled pool (``resources/pool.txt``, >3,000 descriptions) is written
by ``python -m ccs_core.resources.make_pool``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import DataError

BUNDLED_PATH = Path(__file__).resolve().parent / "resources" / "pool.txt"
MIN_TEXTS = 2


@dataclass
class TextPool:
    name: str
    texts: list[str]
    key: str                                   # sha256 of the texts (order matters)
    tags: list[frozenset[str]] | None = None   # one set of tags per text, or None

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def from_texts(cls, name: str, texts, tags=None) -> "TextPool":
        """Build a pool from texts (stripped, blanks dropped, first occurrence kept)."""
        texts = list(texts)
        if tags is not None and len(tags) != len(texts):
            raise DataError(f"The text pool {name!r} has {len(texts)} texts but {len(tags)} tag sets: give one "
                            "set of tags per text (or none).")
        seen: dict[str, int] = {}
        kept_tags: list[frozenset[str]] = []
        for i, t in enumerate(texts):
            t = " ".join(str(t).split())
            if t and t not in seen:
                seen[t] = i
                if tags is not None:
                    kept_tags.append(frozenset(tags[i]))
        kept = list(seen)
        if len(kept) < MIN_TEXTS:
            raise DataError(f"The text pool {name!r} has {len(kept)} distinct description(s); TEXTSPAN "
                            f"needs at least {MIN_TEXTS} (and at least as many as the spans you ask for). "
                            "Add one description per line.")
        return cls(name=name, texts=kept, key=pool_key(kept), tags=kept_tags if tags is not None else None)


def pool_key(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()


def parse_pool_text(text: str) -> tuple[list[str], list[frozenset[str]] | None]:
    """Texts and (if the file has '#:' section lines) per-text tags from a pool file's contents."""
    texts, tags, section, sectioned = [], [], None, False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#:"):
            section, sectioned = line[2:].strip() or None, True
            continue
        if not line or line.startswith("#"):
            continue
        texts.append(line)
        tags.append(frozenset([section]) if section else frozenset())
    return texts, (tags if sectioned else None)


def load_pool(path: "str | Path", name: str | None = None) -> TextPool:
    """Read a user's pool: a UTF-8 .txt file with one description per line."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"Text pool file {path} does not exist. Give the path of a .txt file with one "
                        "description per line, or use the bundled pool.")
    if not path.is_file():
        raise DataError(f"Text pool path {path} is not a file. Give a .txt file with one description "
                        "per line.")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"Text pool file {path} is not valid UTF-8 text (byte {err.start}: "
                        f"{err.reason}). Save it as UTF-8 with one description per line.") from err
    except OSError as err:
        raise DataError(f"Cannot read text pool file {path}: {err}.") from err
    texts, tags = parse_pool_text(content)
    if not texts:
        raise DataError(f"Text pool file {path} has no descriptions (it is empty or only comments). "
                        "Write one description per line.")
    return TextPool.from_texts(name or path.stem, texts, tags)


@lru_cache(maxsize=1)
def bundled_pool() -> TextPool:
    """The pool shipped with the package (tags = its section, e.g. 'animals', 'letters')."""
    return load_pool(BUNDLED_PATH, name="bundled")
