"""Large arrays in the cache, written batch by batch: an entry is a folder of .npy files.

``MappedWriter`` (``Store.write_mapped``) fills the files in a temporary folder and renames it into
place only when every array is written, so a reader sees no entry or the whole one; ``RowFile`` writes
one array block by block with positioned writes (no dirty mapped pages: memory stays flat); readers
open the files as memory maps (``Store.open_mapped``).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
import numpy as np

from .errors import CacheError


class MappedWriter:
    """See ``Store.write_mapped``. In an in-memory store the arrays are plain in-memory arrays."""

    STALE_S = 6 * 3600  # a temporary folder this old was left by a killed process: removed

    def __init__(self, store, kind: str, key: str):  # store: a store.Store (not imported: no cycle)
        self.store, self.kind, self.key = store, kind, key
        self.arrays: dict[str, np.ndarray] = {}
        self.tmp: Path | None = None

    def __enter__(self) -> "MappedWriter":
        if self.store.root is None:
            return self
        parent = self.store._folder(self.kind, self.key).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            for old in parent.glob(".tmp-*"):
                if time.time() - old.stat().st_mtime > self.STALE_S:
                    shutil.rmtree(old, ignore_errors=True)
            self.tmp = Path(tempfile.mkdtemp(dir=parent, prefix=".tmp-"))
        except OSError as err:
            raise CacheError(f"Could not write under {parent}: {err}. Check free disk space and permissions, "
                             "or point CCS_CACHE_DIR at a writable directory.") from err
        return self

    def create(self, name: str, shape: tuple, dtype=np.float32, row_axis: int = 0) -> "RowFile":
        """A zero-filled array, written block by block along ``row_axis`` (``RowFile.write``): on disk
        with positioned writes, so the process holds no dirty pages of it (memory stays flat)."""
        path = None if self.tmp is None else self.tmp / f"{name}.npy"
        try:
            out = RowFile(path, tuple(shape), np.dtype(dtype), row_axis)
        except OSError as err:
            raise CacheError(f"Could not write {path} ({err}): check free disk space.") from err
        self.arrays[name] = out
        return out

    def put(self, name: str, array: np.ndarray) -> None:
        """A small array, whole."""
        a = np.ascontiguousarray(array)
        self.create(name, a.shape, a.dtype, 0).write(0, a)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:  # nothing half-written becomes an entry
            for a in self.arrays.values():
                a.close()
            self.arrays.clear()
            if self.tmp is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self.tmp is None:
            self.store._mem[f"mapped:{self.kind}/{self.key}"] = {k: a.array for k, a in self.arrays.items()}
            return
        final = self.store._folder(self.kind, self.key)
        try:
            for a in self.arrays.values():
                a.close()
            self.arrays.clear()
            try:
                os.replace(self.tmp, final)  # atomic: readers see no entry or the whole one
            except OSError:
                if not final.is_dir():
                    raise
                # an older copy (e.g. one a reader found truncated) is moved aside and replaced; if a
                # concurrent writer's copy lands in between, it is the same entry and ours is dropped
                aside = final.with_name(f".tmp-old-{final.name}-{os.getpid()}")
                try:
                    os.replace(final, aside)
                    os.replace(self.tmp, final)
                except OSError:
                    if not final.is_dir():
                        raise
                    shutil.rmtree(self.tmp, ignore_errors=True)
                shutil.rmtree(aside, ignore_errors=True)
        except OSError as err:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise CacheError(f"Could not write {final}: {err}. Check free disk space and permissions, "
                             "or point CCS_CACHE_DIR at a writable directory.") from err


class RowFile:
    """A .npy array filled block by block along one axis: ``write(start, block)`` puts ``block`` at
    positions start.. of ``row_axis``. On disk (``path``) it is a sparse .npy file written with
    ``os.pwrite`` (one write per leading index); without a path, an in-memory array (``.array``)."""

    def __init__(self, path: "Path | None", shape: tuple, dtype: np.dtype, row_axis: int = 0,
                 create: bool = True):
        """``create=False``: write into an existing file of that shape (another process's shard)."""
        self.path, self.shape, self.dtype, self.axis = path, tuple(shape), np.dtype(dtype), row_axis
        self.array = np.zeros(shape, dtype=dtype) if path is None else None
        self.fd = None
        if path is not None:
            header = (np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape)) if create
                      else np.load(path, mmap_mode="r"))  # the header (and, created, the file's size)
            if header.shape != self.shape or header.dtype != self.dtype:
                raise ValueError(f"{path} holds {header.dtype}{header.shape}, not {self.dtype}{self.shape}")
            self.offset = header.offset
            del header
            self.fd = os.open(path, os.O_WRONLY)

    def write(self, start: int, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        lead, rows = self.shape[:self.axis], self.shape[self.axis]
        if block.shape[:self.axis] != lead or block.shape[self.axis + 1:] != self.shape[self.axis + 1:] or \
                not 0 <= start <= start + block.shape[self.axis] <= rows:
            raise ValueError(f"block {block.shape} at {start} does not fit {self.shape} along axis {self.axis}")
        if self.array is not None:
            self.array[(slice(None),) * self.axis + (slice(start, start + block.shape[self.axis]),)] = block
            return
        row = int(np.prod(self.shape[self.axis + 1:], dtype=np.int64)) * self.dtype.itemsize
        for i, idx in enumerate(np.ndindex(*lead) if lead else [()]):
            at = self.offset + (int(np.ravel_multi_index(idx, lead)) * rows + start) * row if lead else \
                self.offset + start * row
            data = memoryview(block[idx] if lead else block).cast("B")
            while data:  # pwrite may write less than asked
                n = os.pwrite(self.fd, data, at)
                data, at = data[n:], at + n

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
