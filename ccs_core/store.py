"""The artifact cache under ``cache/``: JSON values in diskcache, tensors in .npz files.

Keys are the sha256 of a canonical JSON of everything that determines a result (``cache_key``).
Values are JSON text, never pickles (unpickling from a writable directory runs code). Arrays are
written to a temporary file and renamed into place, so a crash never leaves a half-written entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CacheError

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "cache"  # without CCS_CACHE_DIR


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def cache_key(**parts: Any) -> str:
    """sha256 hex of the canonical JSON of ``parts``."""
    return hashlib.sha256(canonical_json(parts).encode("utf-8")).hexdigest()


def file_digest(path: "str | Path", chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (for keying on a checkpoint or data file)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _json_disk() -> type:
    """A diskcache Disk that never unpickles: a pickled value (not written by Store) reads as a miss."""
    import diskcache
    from diskcache.core import MODE_PICKLE

    class JsonDisk(diskcache.Disk):
        def fetch(self, mode, filename, value, read):
            if mode == MODE_PICKLE:
                raise OSError("refusing to unpickle a cache value")  # Cache.get: OSError -> miss
            return super().fetch(mode, filename, value, read)

    return JsonDisk


class Store:
    """A cache directory: ``get``/``set`` for JSON values, ``get_arrays``/``set_arrays`` for tensors.

    ``Store(None)`` is an in-memory store (used when the cache directory cannot be written).
    """

    def __init__(self, root: "str | Path | None" = DEFAULT_ROOT):
        self.root = Path(root) if root is not None else None
        self._mem: dict[str, Any] = {}
        self._opened: dict[tuple, dict] = {}  # (kind, key, files' stat) -> open, checked memory maps
        self._lock = threading.Lock()
        self._cache = None
        if self.root is None:
            return
        try:
            (self.root / "arrays").mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-", delete=True)
            probe.close()
        except OSError as err:
            raise CacheError(
                f"The cache directory {self.root} cannot be written ({err.__class__.__name__}: {err}). "
                "Fix its permissions, or point CCS_CACHE_DIR at a writable directory."
            ) from err
        self._cache = self._open_index()

    def _open_index(self):
        """The JSON index (diskcache's SQLite). A corrupt index is moved aside and rebuilt empty, with a
        warning (its entries are recomputed on demand); the arrays are untouched."""
        import diskcache

        where = self.root / "json"

        def open_():
            cache = diskcache.Cache(str(where), eviction_policy="none", size_limit=2**40, disk=_json_disk())
            cache.get("__probe__")  # reads the database: a corrupt file fails here
            return cache

        try:
            return open_()
        except sqlite3.DatabaseError as err:
            aside = where.with_name(f"json.corrupt-{int(time.time())}")
            try:
                where.rename(aside)
            except OSError as move_err:
                raise CacheError(f"The cache index {where} is corrupt ({err}) and cannot be moved aside "
                                 f"({move_err}); delete that folder and start again.") from err
            warnings.warn(f"The cache index {where} was corrupt ({err}); moved to {aside.name} and rebuilt "
                          "empty: results are recomputed as needed.", RuntimeWarning, stacklevel=3)
            return open_()
        except Exception as err:  # permissions and the like
            raise CacheError(
                f"The cache index {where} cannot be opened ({err.__class__.__name__}: {err}). Fix its "
                "permissions, or point CCS_CACHE_DIR at a writable directory.") from err

    @property
    def persistent(self) -> bool:
        return self.root is not None

    # JSON values -------------------------------------------------------------------------------
    def get(self, kind: str, key: str) -> Any | None:
        full = f"{kind}/{key}"
        if self._cache is None:
            text = self._mem.get(full)
        else:
            text = self._cache.get(full)
        if not isinstance(text, str):
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None  # unreadable entry: a miss, recomputed and replaced

    def set(self, kind: str, key: str, value: Any) -> None:
        full = f"{kind}/{key}"
        text = canonical_json(value)
        if self._cache is None:
            self._mem[full] = text
            return
        try:
            self._cache.set(full, text)  # one SQLite transaction: all or nothing
        except Exception as err:
            raise CacheError(f"Could not write to the cache at {self.root}: {err}. "
                             "Check free disk space and permissions.") from err

    # Arrays ------------------------------------------------------------------------------------
    def _array_path(self, kind: str, key: str) -> Path:
        assert self.root is not None
        return self.root / "arrays" / kind / f"{key}.npz"

    def get_arrays(self, kind: str, key: str, expect: "dict[str, tuple] | None" = None
                   ) -> dict[str, np.ndarray] | None:
        """The arrays stored under (kind, key), or None. ``expect``: {name: shape} with None for a free
        dimension; an entry without those arrays, of another shape or with non-finite floats is a miss
        (recomputed and replaced), never a wrong result."""
        if self.root is None:
            hit = self._mem.get(f"arrays:{kind}/{key}")
        else:
            path = self._array_path(kind, key)
            if not path.exists():
                return None
            try:
                with np.load(path, allow_pickle=False) as z:
                    hit = {k: z[k] for k in z.files}
            except Exception:
                return None  # unreadable entry: treat as a miss, it will be recomputed and replaced
        if hit is None or not expect:
            return hit
        for name, shape in expect.items():
            a = hit.get(name)
            if a is None or a.ndim != len(shape) or any(w is not None and d != w for d, w in zip(a.shape, shape)):
                return None
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                return None
        return hit

    def set_arrays(self, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        if self.root is None:
            self._mem[f"arrays:{kind}/{key}"] = dict(arrays)
            return
        path = self._array_path(kind, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, **arrays)
                os.replace(tmp, path)  # atomic: readers see the old entry or the whole new one
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except OSError as err:
            raise CacheError(f"Could not write {path}: {err}. Check free disk space and permissions, "
                             "or point CCS_CACHE_DIR at a writable directory.") from err

    # Memory-mapped arrays (large, written batch by batch) -----------------------------------------
    def _folder(self, kind: str, key: str) -> Path:
        assert self.root is not None
        return self.root / "arrays" / kind / key

    def open_mapped(self, kind: str, key: str, expect: "dict[str, tuple]") -> dict[str, np.ndarray] | None:
        """The arrays a ``MappedWriter`` stored under (kind, key), as copy-on-write memory maps (read
        lazily, never written back), or None. ``expect``: {name: shape}; a missing, truncated or
        misshapen array is a miss. Arrays under 64 MiB are also checked finite (the writer checks the
        large ones before it commits)."""
        stamp = None
        if self.root is None:
            hit = self._mem.get(f"mapped:{kind}/{key}")
        else:
            folder = self._folder(kind, key)
            try:  # which files: an entry replaced or edited in place is opened (and checked) anew
                stats = [os.stat(folder / f"{name}.npy") for name in expect]
            except OSError:
                return None
            if not all(stat.S_ISREG(st.st_mode) for st in stats):  # a pipe would block the read forever
                return None
            stamp = (kind, key, tuple((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) for st in stats))
            if stamp in self._opened:  # the maps stay open: their pages stay mapped, no re-faulting
                hit = self._opened[stamp]
            else:
                try:
                    hit = {name: np.load(folder / f"{name}.npy", mmap_mode="c", allow_pickle=False) for name in expect}
                except Exception:
                    return None  # truncated or unreadable: a miss, recomputed and replaced
        if hit is None:
            return None
        for name, shape in expect.items():
            a = hit.get(name)
            if a is None or a.ndim != len(shape) or any(w is not None and d != w for d, w in zip(a.shape, shape)):
                return None
        if stamp is None or stamp not in self._opened:  # checked once per entry and process
            if any(a.dtype.kind == "f" and a.nbytes < 64 << 20 and not np.isfinite(a).all() for a in hit.values()):
                return None
            if stamp is not None:
                with self._lock:  # the app's sessions share one store
                    opened = {k: v for k, v in self._opened.items() if k[:2] != stamp[:2]}  # older copies
                    opened[stamp] = hit
                    self._opened = dict(list(opened.items())[-8:])  # a few open at once (maps: address space)
        return hit

    def write_mapped(self, kind: str, key: str):
        """A writer for one entry of large arrays (``mapped.py``): ``with store.write_mapped(k, key) as w:
        f = w.create(name, shape)`` then ``f.write(start, block)`` fills files in a temporary folder, which
        becomes the entry only when the block ends without an error (readers never see half an entry)."""
        from .mapped import MappedWriter

        return MappedWriter(self, kind, key)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()


def open_store(root: "str | Path | None" = None) -> Store:
    """The default store: ``CCS_CACHE_DIR`` as set now (not at import), else ``cache/``."""
    if root is None:
        root = os.environ.get("CCS_CACHE_DIR") or DEFAULT_ROOT
    return Store(root)
