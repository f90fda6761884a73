"""Presenter mode: the page for a projector. The sidebar collapses, type grows, rows of columns
wrap instead of squeezing what is in them (a headline figure cut to "136,829,…", a chart a few
hundred pixels wide), and charts take the page's width.

It is a toggle at the top of the sidebar and `present=1` in the URL (`URL_KEYS`), so a
link opens a lecture's page ready to project. Streamlit applies `initial_sidebar_state` when its
value changes, not on every run (checked in Chromium with Streamlit 1.67): so sending "collapsed"
while presenter mode is on collapses the sidebar once, when the mode starts or the link opens,
and a teacher who opens the sidebar to change g keeps it open across reruns. Turning the mode off
sends "expanded" once, so that turning it on again is a change that collapses the sidebar again.

The rest is one constant style sheet (`PRESENT_STYLE`): Streamlit sizes its text in rem, so a
larger root font enlarges every text, widget and metric alike; tables are drawn on a canvas in
pixels and keep their size, which keeps wide tables (Table 1 across g) in their columns.
"""

from __future__ import annotations

import streamlit as st

from .state import switch

PRESENT_KEY = "present"  # the toggle's key (and the URL's)
#: Presenter mode in the URL, on every view (collected by `explorer.url`).
URL_KEYS = {PRESENT_KEY: switch(None, PRESENT_KEY, False, "presenter mode")}
CHANGED_KEY = "_present_changed"

PRESENT_STYLE = """<style>
html { font-size: 19px; }
[data-testid="stMainBlockContainer"] { padding: 4rem 1.25rem 4rem; max-width: none; }
[data-testid="stMain"] h1 { font-size: 2rem; padding-top: 0.5rem; }
[data-testid="stHorizontalBlock"] { flex-wrap: wrap; row-gap: 1rem; }
[data-testid="stHorizontalBlock"] > [data-testid="stColumn"] { min-width: min(100%, 15rem); }
[data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:has([data-testid="stPlotlyChart"]) {
  min-width: 100%; }
[data-testid="stMetricValue"] { font-size: 2rem; }
</style>"""


def _changed() -> None:
    st.session_state[CHANGED_KEY] = True


def start() -> bool:
    """Before the sidebar is drawn, after the link has seeded the session (`url.seed_from_url`):
    the toggle at its top, and the mode's page settings. Returns whether presenter mode is on."""
    ss = st.session_state
    with st.sidebar:
        on = st.toggle("Presenter mode", value=bool(ss.get(PRESENT_KEY, False)), key=PRESENT_KEY,
                       on_change=_changed, help="For a projector: hides these controls (the arrow at the top left "
                                                "brings them back), larger type, charts across the page.")
    if on:
        st.set_page_config(initial_sidebar_state="collapsed")
        st.html(PRESENT_STYLE)  # style only: Streamlit puts it out of the page's flow
    elif ss.pop(CHANGED_KEY, False):
        st.set_page_config(initial_sidebar_state="expanded")
    return on
