"""Small Streamlit helpers shared by the pages: readable errors, job progress, downloads."""
from __future__ import annotations

import io
import json
import logging
import time
from typing import Any, Callable

import pandas as pd
import streamlit as st

from ccs_core.errors import CCSError

from .jobs import Job

log = logging.getLogger("ccs_app")


def error_message(err: BaseException) -> str:
    """What the user reads: a CCSError's own message, otherwise a short description of the bug."""
    if isinstance(err, CCSError):
        return str(err)
    text = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
    return (f"Something went wrong ({err.__class__.__name__}{': ' + text if text else ''}). "
            "This is a bug in CCS Explorer, not in your input; the details are in the server log.")


def show_error(err: BaseException) -> None:
    if not isinstance(err, CCSError):
        log.error("page error", exc_info=err)
    st.error(error_message(err), icon=":material/error:")


def guarded(fn: Callable) -> Callable:
    """Wrap a page body or fragment so errors show as messages, never tracebacks."""
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # Streamlit's rerun/stop signals are BaseExceptions: they pass
            show_error(err)
            return None
    run.__name__ = getattr(fn, "__name__", "guarded")
    run.__doc__ = fn.__doc__
    return run


def await_job(job: Job, wait_s: float = 30.0, key: str = "job") -> Any | None:
    """Show the job's progress; return its result when it finishes within ``wait_s``.

    If it is still running after ``wait_s``, leave it running in the background and show a progress
    box that refreshes itself and reruns the app when the job is done; return None.
    A failed job raises its error (the caller's guard shows it).
    """
    if not job.running or job.wait(0.5):  # cache hits finish at once: no progress box
        return _result(job)
    deadline = time.monotonic() + wait_s
    with st.status(job.label, expanded=True) as status:
        bar = st.progress(job.fraction, text=job.text())
        while job.running and time.monotonic() < deadline:
            job.wait(0.2)
            bar.progress(job.fraction, text=job.text())
        if job.running:
            status.update(label=f"{job.label} — still running; you can look at other pages meanwhile",
                          state="running")
        else:
            status.update(label=f"{job.label} — done in {job.elapsed:.1f} s",
                          state="error" if job.error else "complete", expanded=False)
    if job.running:
        _poll(job, key)
        return None
    return _result(job)


def _result(job: Job) -> Any:
    if job.error is not None:
        raise job.error
    return job.result


def _poll(job: Job, key: str) -> None:
    @st.fragment(run_every=1.0)
    def poll() -> None:
        st.progress(job.fraction, text=job.text())
        if not job.running:
            st.rerun()
    poll()


def running_jobs_note(jobs: list[Job]) -> None:
    """A sidebar line per background job, so the user knows what is still computing."""
    for job in jobs:
        st.caption(f"⏳ {job.text()}")


# ---- downloads --------------------------------------------------------------------------------

def download_table(df: pd.DataFrame, name: str, key: str, label: str | None = None) -> None:
    """Two download buttons: CSV and JSON (records) of a table."""
    label = label or name
    c1, c2 = st.columns(2)
    c1.download_button(f"{label} (CSV)", df.to_csv(index=False).encode("utf-8"), f"{name}.csv",
                       "text/csv", key=f"{key}_csv", width="stretch")
    c2.download_button(f"{label} (JSON)", df.to_json(orient="records", indent=1).encode("utf-8"),
                       f"{name}.json", "application/json", key=f"{key}_json", width="stretch")


def download_json(value: Any, name: str, key: str, label: str | None = None) -> None:
    st.download_button(f"{label or name} (JSON)",
                       json.dumps(value, indent=1, ensure_ascii=False, default=str).encode("utf-8"),
                       f"{name}.json", "application/json", key=key)


def chart_bytes(chart: Any, fmt: str) -> bytes:
    """An altair chart rendered at slide size to PNG (>= 1200 px wide) or SVG (vl-convert; offline)."""
    from .charts import for_slides

    buf = io.BytesIO() if fmt == "png" else io.StringIO()
    chart, scale = for_slides(chart)
    if fmt == "png":
        chart.save(buf, format=fmt, scale_factor=scale)
    else:
        chart.save(buf, format=fmt)
    data = buf.getvalue()
    return data if isinstance(data, bytes) else data.encode("utf-8")


def download_chart(chart: Any, name: str, key: str) -> None:
    """PNG and SVG download buttons for a chart, rendered only when asked for (it takes ~1 s)."""
    fmt = st.radio(f"Export {name} as", ["PNG", "SVG"], horizontal=True, key=f"{key}_fmt",
                   label_visibility="collapsed")
    if st.button(f"Prepare {name}.{fmt.lower()}", key=f"{key}_prep"):
        try:
            st.session_state[f"{key}_bytes"] = (fmt, chart_bytes(chart, fmt.lower()))
        except Exception as err:
            show_error(err)
    ready = st.session_state.get(f"{key}_bytes")
    if ready and ready[0] == fmt:
        st.download_button(f"Download {name}.{fmt.lower()}", ready[1], f"{name}.{fmt.lower()}",
                           "image/png" if fmt == "PNG" else "image/svg+xml", key=f"{key}_dl")
