"""The app's Protocol setting in words: what ``paper`` changes, the captions that name the protocol,
and the decomposition convention each protocol implies (no Streamlit; ``ccs_core.protocol`` decides)."""
from __future__ import annotations

from ccs_core.protocol import PROTOCOLS, get

NAMES = tuple(PROTOCOLS)  # ("standard", "paper")
TITLES = {"standard": "Standard (common conventions)", "paper": "Paper (Madasu et al.'s scripts)"}
PAPER_CHANGES = ("CLIP's 18 CIFAR and 80 ImageNet prompt templates", "FairFace's East and Southeast Asian "
                 "merged (6 race groups)", "concept pruning of the label's CCS-5 heads only",
                 "Gandelsman's decomposition convention (shared mean and bias, per-image norm)",
                 "Country-211 class names as CLIP's published list words them")
HELP = ("How results are made, so they can be compared with the paper's tables. **paper** changes: "
        + "; ".join(PAPER_CHANGES) + ". **standard** (default) keeps the common conventions. Every run and "
        "export records its protocol; the toy world's tasks use their own templates under both.")


def checked(name: str | None) -> str:
    """A protocol name the app knows (``ccs_core.protocol.get`` raises DataError for others)."""
    return get(name).name


def norm_for(name: str) -> str:
    """The decomposition convention of ``name`` for the session key ``norm`` (read by the span pipeline
    where it has the setting; harmless where it does not), in the app's words for it."""
    return get(name).norm


def caption(name: str) -> str:
    """One line for the pages that show results."""
    name = checked(name)
    if name == "standard":
        return "Protocol: **standard** (common conventions; set Protocol in the sidebar for the paper's)."
    return "Protocol: **paper** — " + "; ".join(PAPER_CHANGES) + "."

