"""The process-wide cached resources a session's choices select: models (loaded lazily, one per
name and tag), image sets, text pools, the artifact store and the job board. Shared read-only
between sessions through ``st.cache_resource``; never mutated.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from typing import Any

import streamlit as st

from ccs_core.datasets import is_toy_spec
from ccs_core.errors import CacheError
from ccs_core.modelref import ModelRef, read_manifest, write_manifest
from ccs_core.validate import data_path as check_path  # LAN mode: typed paths under the data roots

from .jobs import JobBoard

log = logging.getLogger("ccs_app")

_LOADED: "OrderedDict[tuple[str, str, str], Any]" = OrderedDict()  # (name, pretrained, device) -> LoadedModel
_LOAD_LOCK = threading.Lock()
MAX_LOADED = 3


def load_full(name: str, pretrained: str, store=None, device: str = "auto"):
    """The process's one LoadedModel per (name, pretrained, device), loaded on first use from any
    thread (a page or a background job); its manifest goes to the store so the next start needs no
    load (the manifest and the model's key do not depend on the device)."""
    from ccs_core.models import check_device, load_model  # torch and open_clip: only when weights are needed

    req = (name, pretrained, device)
    with _LOAD_LOCK:  # one load at a time; a second caller waits for it
        if req not in _LOADED:
            same = (name, pretrained, str(check_device(device)))  # "auto" and "cuda" on a GPU: one copy
            loaded = _LOADED.get(same)
            if loaded is None:
                loaded = load_model(name, pretrained or None, device=device)
                try:
                    write_manifest(store, name, pretrained, loaded)
                except CacheError as err:
                    log.warning("model manifest not saved: %s", err)
            _LOADED[same] = _LOADED[req] = loaded
            while len(_LOADED) > MAX_LOADED:
                _LOADED.popitem(last=False)
        _LOADED.move_to_end(req)
        return _LOADED[req]


class LazyModel:
    """A model known by its manifest (name, key, spec) that loads its weights on first use of anything
    else (``.model``, ``.encode_texts``, ...): the grid, inspector and CCS views of a warm start draw
    from cached artifacts without importing torch. Never mutated; shared by sessions."""

    def __init__(self, ref: ModelRef, request: tuple[str, str, str], store=None):
        self.ref, self.request, self._store = ref, request, store
        self.name, self.pretrained, self.key, self.spec = ref.name, ref.pretrained, ref.key, ref.spec
        self.random_init = ref.random_init

    @property
    def is_loaded(self) -> bool:
        return self.request in _LOADED

    def full(self):
        name, pretrained, device = self.request
        return load_full(name, pretrained, store=self._store, device=device)

    def __getattr__(self, attr: str):  # only for what the manifest does not hold
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self.full(), attr)


def needs_load(name: str, pretrained: str, device: str = "auto") -> bool:
    """True when drawing this model needs its weights now: not loaded and no manifest in the store."""
    return (name, pretrained, device) not in _LOADED and read_manifest(get_store(), name, pretrained) is None


def import_backend() -> None:
    """Import torch and open_clip (the slow part of a first load: seconds)."""
    import ccs_core.models  # noqa: F401
    import open_clip  # noqa: F401


def get_model(name: str, pretrained: str, device: str = "auto") -> LazyModel:
    """The session's model on ``device`` (the sidebar's Device: auto, cpu, cuda, mps): from its manifest
    when it was loaded here before (no torch), else loaded now (raises ModelLoadError with what to do)."""
    from ccs_core.modelref import is_checkpoint_path

    if pretrained and is_checkpoint_path(pretrained):
        check_path(pretrained, "checkpoint")
    if device not in ("auto", "cpu"):  # a named GPU: checked now (imports torch), not at the first job
        from ccs_core.models import check_device

        check_device(device)
    store = get_store()
    ref = read_manifest(store, name, pretrained)
    if ref is None:
        full = load_full(name, pretrained, store, device)
        ref = ModelRef(full.name, full.pretrained, full.key, full.spec, full.random_init)
    return LazyModel(ref, (name, pretrained, device), store)


@st.cache_data(show_spinner=False, ttl=3, max_entries=32)
def content_stamp(path: str) -> str:
    """What a folder's or file's content is, cheaply: every file's relative path, size and mtime (a
    changed, added, repaired or removed file is a new stamp); re-read at most every 3 s."""
    if not path or path in ("toy", "bundled") or is_toy_spec(path):
        return ""
    h = hashlib.sha256()
    try:
        if os.path.isfile(path):
            st_ = os.stat(path)
            h.update(f"{st_.st_size}:{st_.st_mtime_ns}".encode())
        else:
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for f in sorted(files):
                    st_ = os.stat(os.path.join(root, f))
                    h.update(f"{os.path.relpath(os.path.join(root, f), path)}:{st_.st_size}:{st_.st_mtime_ns};".encode())
    except OSError:
        return "unreadable"
    return h.hexdigest()


def get_image_set(spec: str, n_images: int):
    """The image set, shared by sessions, re-read when the folder's content changes (a folder is
    loaded whole: the toy image count does not apply to it)."""
    toy = is_toy_spec(spec)
    if not toy:
        check_path(spec, "image folder")
    return _image_set(spec, n_images if toy else 0, content_stamp(spec))


def get_pool(spec: str, model_name: str):
    """The text pool, shared by sessions, re-read when the pool file changes."""
    check_path(spec, "pool file")
    return _pool(spec, model_name, content_stamp(spec))


@st.cache_resource(show_spinner=False, max_entries=8)
def _image_set(spec: str, n_images: int, stamp: str):
    from ccs_core.analysis import resolve_images

    return resolve_images(spec, n=n_images)


@st.cache_resource(show_spinner=False, max_entries=8)
def _pool(spec: str, model_name: str, stamp: str):
    from ccs_core.analysis import resolve_pool

    return resolve_pool(spec or None, model_name)


@st.cache_resource(show_spinner=False)
def get_store():
    """The artifact store under cache/ (or CCS_CACHE_DIR); in memory if it cannot be written."""
    from ccs_core.store import Store, open_store

    try:
        return open_store(os.environ.get("CCS_CACHE_DIR") or None)
    except CacheError as err:
        log.warning("%s — using an in-memory cache", err)
        return Store(None)


@st.cache_resource(show_spinner=False)
def get_board() -> JobBoard:
    return JobBoard()


def clear_caches() -> None:
    """Forget every cached resource and loaded model (used by tests between runs)."""
    st.cache_resource.clear()
    st.cache_data.clear()
    with _LOAD_LOCK:
        _LOADED.clear()


