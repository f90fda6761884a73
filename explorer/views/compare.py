"""Compare: the sidebar's network (A) against B, "A with these changes", and a sweep over g.

B keeps only the fields the user changed in B (`b_key`); every other field follows the
sidebar, so setting the sidebar to 0.5x makes B 0.5x too unless B's width was changed. The
changes are what a link carries (`b_groups=8&b_scale=0.5`). A change stays when the sidebar
later reaches the same value (B = the paper's network stays the paper's while A moves); setting
B's control back to A's value drops it.
"""

from __future__ import annotations

import streamlit as st

from shufflenet.config import FIELDS, ShuffleNetConfig

from .. import cache, charts, tables
from .. import format as fmt
from ..state import (
    FIELD_URL_KEYS,
    Selection,
    ViewKey,
    allowed,
    always,
    config_from_state,
    parse_field,
    url_text,
    widget_keys,
)
from . import compare_families

#: The fields B may change; B follows the sidebar (A) in every field it does not change.
B_FIELDS = ("groups", "blocks", "reduction", "scale")


def b_key(field: str) -> str:
    """The session-state key of a change B makes (`cmp_b_groups` holds B's g); absent: B follows A."""
    return f"cmp_b_{field}"


def _b_change(field: str) -> ViewKey:
    """`b_groups=8`: B's value of a field, read like the sidebar's own key for it."""
    spec, url = FIELDS[field], FIELD_URL_KEYS[field]
    return ViewKey("Compare", always(b_key(field)), lambda text, *_: parse_field(spec, text),
                   always(allowed(spec, url.subject)), always(None),
                   lambda config, _: "for B, the sidebar's " + url.fallback.format(url_text(getattr(config, field))),
                   widget=False)


#: This view's choices in the URL (collected by `explorer.url`).
URL_KEYS = {f"b_{field}": _b_change(field) for field in B_FIELDS}

PREFIX = "cmp_"
#: B's controls: field -> label (their limits, steps and help are the sidebar's, from `FIELDS`).
LABELS = {"groups": "B: groups g", "blocks": "B: units in stage", "reduction": "B: reduction",
          "scale": "B: width scale"}
#: How the caption names a field's value.
SHOWN = {"groups": "g = {}", "blocks": "units {}", "reduction": "reduction {}", "scale": "width {}x"}
#: How a download's name says what B changes: `shufflenet-1x-g3-vs-g8-0-5x-totals.csv`.
NAMED = {"groups": "g{}".format, "blocks": lambda v: "units " + "-".join(map(str, v)), "reduction": "r{:g}".format,
         "scale": "{:g}x".format}
CONTROL_WIDTH = 140  # px: six controls in a row on a wide screen, wrapping onto more rows when narrow


def _keys(field: str) -> tuple[str, ...]:
    return tuple(PREFIX + k for k in widget_keys(FIELDS[field]))


def _value(field: str, value) -> str:
    text = fmt.units(value) if isinstance(value, tuple) else f"{value:g}"
    return SHOWN[field].format(text)


def changes(state) -> dict:
    """The fields B changes: field -> B's value."""
    return {field: state[b_key(field)] for field in B_FIELDS if state.get(b_key(field)) is not None}


def b_config(a: ShuffleNetConfig, state) -> ShuffleNetConfig:
    """B: A with B's changes."""
    return a.replace(**changes(state))


def _edited(field: str) -> None:
    """A B control changed: keep the change, or drop it when B now has A's value."""
    ss = st.session_state
    spec = FIELDS[field]
    read = [ss[k] for k in _keys(field)]
    read = [round(float(v), 2) if spec.kind is float else spec.kind(v) for v in read]
    value = tuple(read) if spec.count > 1 else read[0]
    if value == getattr(config_from_state(ss), field):
        ss.pop(b_key(field), None)
    else:
        ss[b_key(field)] = value


def _to_paper() -> None:
    for field in B_FIELDS:
        st.session_state[b_key(field)] = FIELDS[field].default


def _to_a() -> None:
    for field in B_FIELDS:
        st.session_state.pop(b_key(field), None)


def _controls(b: ShuffleNetConfig) -> None:
    """B's controls, showing B. Their state is set from B before they are drawn, so a field B does
    not change follows the sidebar (and every widget's default is its current value)."""
    ss = st.session_state
    for field in B_FIELDS:
        value = getattr(b, field)
        for key, v in zip(_keys(field), value if isinstance(value, tuple) else (value,)):
            if ss.get(key) != v:
                ss[key] = v
    with st.container(horizontal=True, gap="small"):
        for field in B_FIELDS:
            spec = FIELDS[field]
            for i, key in enumerate(_keys(field)):
                name = f"{LABELS[field]} {i + 2}" if spec.count > 1 else LABELS[field]
                common = dict(key=key, help=spec.help, on_change=_edited, args=(field,), width=CONTROL_WIDTH)
                if spec.choices:
                    st.selectbox(name, spec.choices, index=spec.choices.index(ss[key]), **common)
                else:
                    st.slider(name, spec.low, spec.high, value=ss[key], step=spec.step,
                              format="%.2fx" if field == "scale" else None, **common)


def caption(a: ShuffleNetConfig, state) -> str:
    """What B changes, in words."""
    made = changes(state)
    if not made:
        return ("**B = A**: B changes nothing yet, so both columns agree. Change one of B's controls, or press "
                "**B = the paper's network**.")
    parts = [f"{_value(field, value)} (A: {_value(field, getattr(a, field))})" if value != getattr(a, field)
             else f"{_value(field, value)} (as A now, kept when the sidebar changes)" for field, value in made.items()]
    return f"**B = A with {', '.join(parts)}**; B follows the sidebar in every other field."


def render(selection: Selection) -> None:
    a = selection.config
    ss = st.session_state
    b = b_config(a, ss)
    st.subheader("A (the sidebar's network) vs B")
    _controls(b)
    with st.container(horizontal=True, gap="small"):
        st.button("B = the paper's network", on_click=_to_paper, key="cmp_to_paper",
                  help="Groups g = 3, units 4/8/4, reduction 0.25, width 1x (paper Table 1); B keeps them when "
                       "the sidebar changes.")
        st.button("Reset B to A", on_click=_to_a, key="cmp_to_a", disabled=not changes(ss),
                  help="Drops B's changes: B is the sidebar's network again and follows it.")
    st.markdown(caption(a, ss))
    st.caption(f"A = {a.label}, B = {b.label}; both {a.input_size}×{a.input_size}×{a.channels}, "
               f"{a.num_classes} classes.")

    what = "vs " + (" ".join(NAMED[field](value) for field, value in changes(ss).items()) or "same")
    # The totals and the chart side by side on a wide screen; stacked when narrow, so the table
    # keeps all of its columns (B, Δ and B/A) in sight at 150 % zoom.
    with st.container(horizontal=True, gap="medium"):
        tables.show(cache.compare_totals(a, b), "cmp_totals", a, f"{what} totals", width="content",
                    formats={"B/A": "%.4f"})
        with st.container(width="stretch"):
            charts.plotly(cache.compare_figure(a, b), "cmp_stages_chart", a, f"{what} stage MACs")
    st.markdown("**Per stage** (Δ = B - A)")
    stages = cache.compare_stages(a, b)
    order = ["stage", "channels A", "channels B", "units A", "units B", "MACs A", "MACs B", "Δ MACs", "MACs B/A",
             "params A", "params B", "Δ params", "activations A", "activations B", "Δ activations"]
    tables.show(stages, "cmp_stages", a, f"{what} stages", pinned=("stage",), formats={"MACs B/A": "%.4f"},
                order=[c for c in order if c in stages.columns])

    st.subheader(f"Sweep over g at {a.scale:g}x, units {fmt.units(a.blocks)}")
    st.markdown("The story of the paper's Tables 1 and 2: more groups allow wider layers (more channels "
                "carry information) at about the same MACs; parameters and activation memory grow.")
    figs = cache.sweep_figures(a)
    for row in (("macs", "params"), ("memory", "widths")):
        cols = st.columns(2)
        for col, name in zip(cols, row):
            charts.plotly(figs[name], f"sweep_{name}", a, f"sweep {name}", where=col)
    tables.show(cache.sweep_groups(a), "cmp_sweep", a, "sweep", pinned=("groups",),
                labels={"groups": "g", "stem": "stem channels", "stage2": "stage 2 channels",
                        "stage3": "stage 3 channels", "stage4": "stage 4 channels"})
    compare_families.render(a)
