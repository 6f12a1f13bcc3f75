"""The session: what one browser session has chosen (sidebar widgets in ``st.session_state``, one
``DEFAULTS``), its ``Ctx`` (choices + the shared resources they select), and its judge settings and
defaults. Nothing here is shared between sessions; shared things live in ``resources.py``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import streamlit as st

from ccs_core import analysis
from ccs_core.modelref import TOY_MODEL_NAME

from . import resources
from .jobs import JobBoard

# Session-state keys of the sidebar widgets (the entry point draws them on every page).
DEFAULTS: dict[str, Any] = {
    "model_name": TOY_MODEL_NAME,
    "pretrained": "",
    "images": "toy",          # "toy" or an image folder path
    "n_images": 256,          # toy-world images drawn
    "pool": "",               # "" = default for the model; "toy", "bundled" or a .txt path
    "n_layers": 4,
    "n_spans": 5,
    "norm": "own-mean",       # the decomposition's convention (own-mean or gandelsman); no widget yet
    "th_high": 5,             # CCS bands (paper: high = 5, low <= 1)
    "th_low": 1,
    "judges": None,           # None = the offline default for the model
    "selected_head": None,    # "L5.H3", mirrored from the grid's click
    "images_kind": "toy",     # the sidebar's image-source choice: "toy" or "folder"
    "pool_kind": "",          # the sidebar's pool choice: "", "toy", "bundled" or "file"
    "device": "auto",         # where the model runs: auto (first of cuda, mps, cpu), cpu, cuda, mps
    "protocol": "standard",   # ccs_core.protocol: "standard" or "paper" (templates, groups, concept heads, ...)
}


def init_state() -> None:
    """Set every session key once (never overwrite what the user chose)."""
    for k, v in DEFAULTS.items():
        st.session_state.setdefault(k, v)


@dataclass(frozen=True)
class Choices:
    model_name: str = TOY_MODEL_NAME
    pretrained: str = ""
    images: str = "toy"
    n_images: int = 256
    pool: str = ""
    n_layers: int = 4
    n_spans: int = 5
    judges: tuple[str, ...] = field(default_factory=tuple)
    norm: str = "own-mean"
    device: str = "auto"      # not part of any result's key: results do not depend on it
    protocol: str = "standard"

    def key_parts(self) -> dict:
        return asdict(self)


def choices() -> Choices:
    s = st.session_state
    return Choices(model_name=str(s.get("model_name") or TOY_MODEL_NAME).strip(),
                   pretrained=str(s.get("pretrained") or "").strip(),
                   images=str(s.get("images") or "toy").strip(),
                   n_images=int(s.get("n_images") or 256),
                   pool=str(s.get("pool") or "").strip(),
                   n_layers=int(s.get("n_layers") or 4),
                   n_spans=int(s.get("n_spans") or 5),
                   judges=tuple(s.get("judges") or ()),
                   norm=str(s.get("norm") or "own-mean").strip(),
                   device=str(s.get("device") or "auto"),
                   protocol=str(s.get("protocol") or "standard"))


@dataclass
class Ctx:
    """What every page works on: the session's choices and the shared resources they select."""
    choices: Choices
    loaded: resources.LazyModel  # name, key and spec without torch; the weights load on first use
    store: Any
    board: JobBoard

    @property
    def n_layers(self) -> int:
        return max(1, min(self.choices.n_layers, self.loaded.spec.n_layers))

    @property
    def image_set(self):
        return resources.get_image_set(self.choices.images, self.choices.n_images)

    @property
    def pool(self):
        return resources.get_pool(self.choices.pool, self.loaded.name)

    @property
    def span_params(self) -> analysis.SpanParams:
        return analysis.SpanParams(n_layers=self.n_layers, n_spans=self.choices.n_spans, norm=self.choices.norm)

    @property
    def paper_model(self) -> str | None:
        from ccs_core.paper import paper_model

        return paper_model(self.loaded.name, self.loaded.pretrained)


def current() -> Ctx:
    """The session's context; raises CCSError (shown by the page guard) if the model cannot load."""
    c = choices()
    loaded = resources.get_model(c.model_name, c.pretrained, c.device)
    return Ctx(choices=c, loaded=loaded, store=resources.get_store(), board=resources.get_board())


# ---- the session's judges ------------------------------------------------------------------------

def judge_settings():
    """The session's effective judge settings: files < environment < the Judge page's settings panel;
    keys typed there live in this session only (``JudgeSettings.api_keys``: never stored or keyed)."""
    from ccs_core.judges.config import load_settings

    s = st.session_state
    return load_settings(s.get("judge_overrides") or {}, api_keys=s.get("judge_keys") or {},
                         where="the Judges page's settings panel")


def settings_fingerprint(settings) -> dict:
    """What of the settings a scoring job's key holds: every field, and which keys are present (never
    their values)."""
    from ccs_core.judges.config import FIELDS
    from ccs_core.judges.settings import PROVIDERS, api_key

    return {**{k: getattr(settings, k) for k in FIELDS},
            "compatible": [[c.name, c.base_url, c.model] for c in settings.compatible],
            "keys": [p for p in PROVIDERS if api_key(p, settings)]}


def judge_options() -> list[tuple[str, str, str | None]]:
    """(kind, title, why it is disabled or None) for every judge backend under the session's settings
    (cheap: a key lookup and an import check, so checked on every run)."""
    from ccs_core.judges import OFFLINE, PROVIDERS, make_judge
    from ccs_core.judges.settings import TITLES

    try:
        settings = judge_settings()
    except Exception as err:  # a bad ccs.toml / variable: every LLM judge says why
        settings, bad = None, str(err)
    out = []
    for kind in OFFLINE + PROVIDERS + tuple(settings.compatible_names() if settings else ()):
        if settings is None and kind in PROVIDERS:
            out.append((kind, TITLES.get(kind, kind), bad))
            continue
        try:
            ok, why = make_judge(kind, settings).available()
        except Exception as err:  # a broken backend disables itself, never the page
            ok, why = False, str(err)
        out.append((kind, TITLES.get(kind, kind), None if ok else why))
    return out


def default_scoring(model_name: str, options: list | None = None) -> tuple[str, list[str], str]:
    """(labeller, judges, why) that fit the model (``ccs_core.judges.default_scoring``); ``options``:
    ``judge_options()`` when the caller has it already."""
    from ccs_core.judges import default_scoring as core

    options = judge_options() if options is None else options
    return core(model_name, ready=[k for k, _, why in options if why is None])


def default_judges(model_name: str) -> list[str]:
    return default_scoring(model_name)[1]


def default_labeller(model_name: str) -> str:
    return default_scoring(model_name)[0]


def follow_model(model_name: str) -> None:
    """When the session's model changes, its judges and labeller go back to the defaults for the new
    model (the toy judge cannot judge a real model's spans); choices made for this model are kept."""
    s = st.session_state
    if s.get("_scoring_model") == model_name:
        return
    s["_scoring_model"] = model_name
    s["judges"] = None
    for k in [k for k in s if str(k).startswith("judge_")] + ["labeller", "labeller_pending"]:
        s.pop(k, None)
