"""The sidebar: the session's choices (model, images, pool, layers, spans, CCS bands, judges), drawn on
every page by the entry point. Returns the loaded model, or None with the reason shown."""
from __future__ import annotations

import sys

import streamlit as st

from ccs_core.errors import CCSError

from . import resources as rs
from . import session as sn
from . import devices, pipeline, protocols, ui, views


def draw(boot):
    """Draw the session's choices; return the loaded model (None if it cannot load). ``boot``: a slot
    in the main area for the staged progress of a first load (the page shell is already drawn)."""
    s = st.session_state
    follow_protocol()  # before any widget: the protocol's decomposition convention into "norm"
    st.header("Session")
    st.text_input("Model", key="model_name",
                  help="'toy' (the bundled offline model) or an open_clip architecture, e.g. ViT-B-32.")
    st.text_input("Pretrained tag or checkpoint path", key="pretrained",
                  placeholder="e.g. openai, laion2b_s34b_b79k, /path/model.pt",
                  help="Empty: the toy model's own weights, or random init for an open_clip name.")
    name, pretrained = s.model_name.strip() or "toy", s.pretrained.strip()
    device = device_choice()
    try:
        if rs.needs_load(name, pretrained, device):  # first start with this model: say what takes the time
            with boot.status(f"Loading {name} (the first time on this server)", expanded=True) as status:
                st.write("1/2 Importing torch and open_clip…")
                rs.import_backend()
                st.write("2/2 Building the model and reading its weights…")
                loaded = rs.get_model(name, pretrained, device)
                status.update(label=f"{name} loaded", state="complete", expanded=False)
            boot.empty()
        else:
            loaded = rs.get_model(name, pretrained, device)
    except CCSError as err:
        boot.empty()
        st.error(str(err), icon=":material/error:")
        return None
    except Exception as err:
        boot.empty()
        ui.show_error(err)
        return None
    spec = loaded.spec
    st.caption(f"**{loaded.name}** · {spec.n_layers} layers × {spec.n_heads} heads"
               + ("" if loaded.is_loaded else " · weights load when a step needs them"))

    st.selectbox("Images", ["toy", "folder"], key="images_kind",
                 format_func=lambda v: {"toy": "Toy world (bundled)", "folder": "Image folder"}[v])
    if s.images_kind == "folder":
        st.text_input("Image folder", key="images_path", placeholder="/data/images (class sub-folders)")
        s.images = (s.get("images_path") or "").strip() or "toy"
        if not (s.get("images_path") or "").strip():
            st.caption("Type a folder path above; until then the toy world's images are analysed.")
        skipped_note(s.images)
    else:
        st.number_input("Toy images", min_value=16, max_value=4096, step=64, key="n_images")
        s.images = "toy"
    st.selectbox("Text pool", ["", "toy", "bundled", "file"], key="pool_kind",
                 help="The paper's spans come from Gandelsman et al.'s general image descriptions "
                      "(image_descriptions_general.txt in their TEXTSPAN code): choose File and give its path "
                      "to compare with the paper; the bundled pool is this project's own.",
                 format_func=lambda v: {"": "Default for the model", "toy": "Toy pool",
                                        "bundled": "General pool (bundled)",
                                        "file": "File (one text per line)"}[v])
    if s.pool_kind == "file":
        st.text_input("Pool file", key="pool_path", placeholder="/data/pool.txt")
        s.pool = (s.get("pool_path") or "").strip()
    else:
        s.pool = s.pool_kind
    if s.n_layers > spec.n_layers:
        if s.pop("_from_link_n_layers", False):
            st.info(f"{loaded.name} has {spec.n_layers} layers, so the last {spec.n_layers} are analysed "
                    f"(the link asked for {s.n_layers}).")
        s.n_layers = spec.n_layers
    st.number_input("Layers analysed (the last N)", min_value=1, max_value=spec.n_layers, key="n_layers")
    st.number_input("Spans per head", min_value=1, max_value=10, key="n_spans")
    if int(s.th_high) > max(4, int(s.n_spans)) and s.pop("_from_link_th_high", False):
        st.info(f"High CCS at least {s.th_high} is more than the {s.n_spans} spans allow; "
                f"{max(4, int(s.n_spans))} is used" + (f" (the high band starts at 4: with {s.n_spans} spans no head is "
                                                        "high; raise the spans per head)." if int(s.n_spans) < 4 else "."))
    s.th_high = min(int(s.th_high), max(4, int(s.n_spans)))
    with st.expander(f"CCS bands: high ≥ {s.th_high}, low ≤ {s.th_low}", key="bands_box"):
        st.number_input("High: CCS at least", min_value=4, max_value=max(4, int(s.n_spans)), key="th_high",
                        help="The paper's high-CCS heads have CCS 5 (all five spans accepted).")
        st.number_input("Low: CCS at most", min_value=0, max_value=2, key="th_low",
                        help="The paper's low-CCS heads have CCS ≤ 1.")
        st.caption(views.bands_legend(pipeline.thresholds()) + ". Shared by the grid, inspector and "
                   "Prune & evaluate; changing them asks no judge again.")

    protocol_choice()
    sn.follow_model(loaded.name)
    options = sn.judge_options()  # each LLM judge's availability, checked once per run
    labeller, defaults, why = sn.default_scoring(loaded.name, options)
    with st.expander(f"Judges: {', '.join(s.judges or defaults)}", expanded=False, key="judges_box"):
        if s.judges is None:
            s.judges = defaults
        st.caption(f"Default for {why}.")
        chosen = []
        for name, title, why in options:
            k = f"judge_{name}"
            if k not in s:
                s[k] = name in s.judges and why is None
            if why is not None:
                s[k] = False
            st.checkbox(title, key=k, disabled=why is not None, help=why)
            if s[k]:
                chosen.append(name)
        s.judges = chosen or defaults

    jobs = rs.get_board().running()
    if jobs:
        st.divider()
        ui.running_jobs_note(jobs)
    return loaded


def device_choice() -> str:
    """The Device setting: the devices this server has (the others named in a note); a device the
    session asked for that is not here falls back to auto, said once."""
    s = st.session_state
    ok = devices.available()
    options = [d for d in devices.DEVICES if ok[d] is None]
    asked = s.get("device")
    name = asked.strip().lower() if isinstance(asked, str) else asked  # "CPU" is cpu
    if isinstance(name, str) and name in options:
        if asked != name:
            s["device"] = name
    else:
        kind = name.split(":")[0] if isinstance(name, str) else None  # cuda:1 is a cuda device
        why = (ok[kind] if kind in ok and ok[kind] else f"the setting offers {kind}, the first one" if kind in ok
               else "unknown device: " + ", ".join(devices.DEVICES))
        st.info(f"Device {asked!r} is not available here ({why}); using auto.")
        s["device"] = "auto"
    missing = [f"{d}: {why}" for d, why in ok.items() if why]
    st.selectbox("Device", options, key="device", format_func=devices.TITLES.get,
                 help="Where the model runs. Auto picks the first of cuda, mps, cpu this server has; results "
                      "and the cache are the same on every device (up to float rounding)."
                      + (f" Not offered: {'; '.join(missing)}." if missing else ""))
    if s.device == "auto":
        where = devices.resolved("auto")
        sure = "torch" in sys.modules  # before torch loads, a GPU is inferred from its driver
        st.caption(f"Auto runs the model on {where} here." if sure or where == "cpu" else
                   f"Auto should run the model on {where} here (the load checks that torch can use it).")
    return s.device


def follow_protocol() -> None:
    """When the session's protocol changes (the selectbox, or a link), the span pipeline's decomposition
    convention (session key ``norm``) follows it: Gandelsman's under paper, the project's own otherwise.
    A norm chosen by hand is kept until the protocol changes again."""
    s = st.session_state
    name = str(s.get("protocol") or "standard").strip().lower()
    if name in protocols.NAMES:
        s["protocol"] = name  # a link's "Paper" is paper
    if name in protocols.NAMES and s.get("_protocol_seen", "standard") != name:
        s["norm"] = protocols.norm_for(name)
    s["_protocol_seen"] = name


def protocol_choice() -> None:
    """The Protocol setting (standard, paper); an unknown one (an old link) falls back to standard."""
    s = st.session_state
    if s.get("protocol") not in protocols.NAMES:
        st.info(f"Protocol {s.get('protocol')!r} is unknown; use standard or paper. Standard is used.")
        s["protocol"] = s["_protocol_seen"] = "standard"
    st.selectbox("Protocol", protocols.NAMES, key="protocol", format_func=protocols.TITLES.get,
                 help=protocols.HELP)


def random_weights_banner(loaded) -> None:
    """A persistent warning on every page while the model has random weights."""
    if loaded is not None and loaded.random_init:
        st.warning(f"**{loaded.name} has random weights: architecture only — its heads are meaningless.** "
                   "Labels, verdicts and CCS are computed as for a trained model, but they describe noise. "
                   "Give a pretrained tag (e.g. openai) or a checkpoint path in the sidebar for real heads.",
                   icon=":material/warning:")


def skipped_note(folder: str) -> None:
    """How many images the folder gave, and which files were skipped and why (the page shows errors)."""
    if folder == "toy":
        return
    try:
        images = rs.get_image_set(folder, 0)
    except CCSError:
        return
    st.caption(f"{len(images)} image(s)" + (f" · {len(images.skipped)} file(s) skipped" if images.skipped else ""))
    if images.skipped:
        with st.expander("Skipped files", key="skipped_box"):
            st.dataframe([{"file": p, "reason": r} for p, r in images.skipped], hide_index=True, width="stretch")
