"""Reproduce report: open the folder ``python -m ccs_core reproduce`` wrote and show its comparison
with the paper (the same sections, tables and charts as its report.md)."""
import pandas as pd
import streamlit as st
from PIL import Image

from app_lib import ui
from ccs_core import report as reports
from ccs_core.errors import CCSError
from ccs_core.validate import data_path

st.title("Reproduce report")
st.caption("A run of `python -m ccs_core reproduce --model M [--pretrained P] --images DIR --cifar10 ROOT ... "
           "--out-dir DIR` (README: Reproduce the paper) writes its report there; give that folder.")
folder = st.text_input("Report folder (--out-dir)", key="reproduce_dir", placeholder="runs/repro-vit-b-16")
if not folder.strip():
    st.stop()
try:
    data_path(folder.strip(), "report folder")
    report = reports.read_report(folder.strip())
except CCSError as err:
    ui.show_error(err)
    st.stop()
root = reports.report_folder(folder.strip())
st.markdown(f"**{report['model']}**" + (f" ({report['pretrained']})" if report.get("pretrained") else "")
            + f" · protocol **{report['protocol']}** · paper row **{report['paper_model']}** "
              f"({report['paper_match']}) · judges {', '.join(report['judges']) or '—'} · pool "
              f"{report.get('pool') or '—'} · decomposition {report.get('norm') or 'own-mean'}")
for note in report["notes"]:
    st.info(note)
failed = [s for s in report["steps"] if s["code"] not in (0, None) or s["status"] == "not run"]
if failed:
    why = next((s for s in failed if s.get("message")), None)
    st.warning("Steps that did not finish: " + ", ".join(f"{s['step']} ({s['status']})" for s in failed)
               + (f". {why['step']}: {why['message']}" if why else "")
               + ". Run the same reproduce command again: finished steps are not recomputed.")
charts = set(report.get("charts", []))
for key, title in report["titles"].items():
    st.subheader(title)
    st.dataframe(pd.DataFrame(reports.flat_rows(report, key)), hide_index=True, width="stretch")
    png = root / f"charts/{key}.png"
    if f"charts/{key}.png" in charts:
        try:
            with Image.open(png) as im:  # the whole file read and checked before it is shown
                im.load()
            st.image(str(png))
        except (OSError, ValueError) as err:  # deleted, truncated or not a PNG: the table above still stands
            st.caption(f"The chart {png} cannot be shown ({err.__class__.__name__}: {err}); run reproduce "
                       "again to redraw it (finished steps are not recomputed).")
md = root / "report.md"
if md.is_file():
    st.download_button("report.md", md.read_bytes(), file_name="report.md", mime="text/markdown")
