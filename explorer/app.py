"""ShuffleNet Explorer: `streamlit run explorer/app.py`.

Page set-up, the sidebar and the dispatch to the chosen view; everything else lives in
`explorer/` (UI) and `shufflenet/` (the library).
"""

import os
import sys
from pathlib import Path

# Quiet TensorFlow before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# `streamlit run explorer/app.py` puts explorer/ on sys.path, not the repository root.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from explorer import sidebar  # noqa: E402
from explorer.views import VIEW_MODULES  # noqa: E402

st.set_page_config(page_title="ShuffleNet Explorer", page_icon="🔀", layout="wide")

selection = sidebar.render()
st.title(f"ShuffleNet Explorer · {selection.view}")
st.caption("ShuffleNet v1 (Zhang, Zhou, Lin, Sun, CVPR 2018, arXiv 1707.01083): every number and diagram "
           "here is computed from the configuration in the sidebar.")
for message in selection.warnings:
    st.warning(message)
VIEW_MODULES[selection.view].render(selection)
