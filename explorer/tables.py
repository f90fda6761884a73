"""Every table of the explorer goes through `show(...)`, so every table reads and downloads alike.

- Column labels for people: a table's own `labels`, then `LABELS` (the library's names), then
  the name without underscores. The data keeps the library's names, so what a test or a program
  reads does not move when a label is reworded. The CSV download keeps them too (a program
  reads a CSV); the LaTeX download carries the labels (a person reads a slide).
- A missing value (the stem's unit, a total's channels) shows as an en dash, not "None".
- Whole numbers with thousands separators; shapes (tuples) as 28×28×240.
- Streamlit's grid hides its scrollbars until the pointer is over it, so a table cut at the
  container's edge looked complete (the 8×8 mixing table showed 4 groups). A style rule keeps
  the scrollbars of tables visible.
- CSV and LaTeX downloads under `export.file_name`'s names; the LaTeX is made when clicked
  (booktabs for a large table takes a tenth of a second, too much for every rerun).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shufflenet.export import file_name, latex_table

from . import format as fmt
from .charts import first_in_run

#: The library's column names -> names for people (a table's `labels` come first).
LABELS = {
    "name": "layer",
    "family": "op type",
    "input_shape": "input shape",
    "output_shape": "output shape",
    "params": "parameters",
    "params %": "parameters %",
    "non_trainable": "non-trainable",
    "conv_macs": "MACs without FC",
    "fc_macs": "FC MACs",
    "macs": "MACs with FC",
    "model_bytes": "model size (bytes)",
    "activation_bytes": "activation memory (bytes)",
    "traffic_bytes": "memory traffic (bytes)",
    "traffic_bytes %": "traffic %",
    "intensity": "MACs/byte",
}
#: Number formats of float columns (Streamlit's `NumberColumn` format); others show as they are.
FORMATS = {"intensity": "%.3f", "traffic_bytes %": "%.2f", "MACs %": "%.2f", "FLOPs %": "%.2f", "params %": "%.2f"}
#: What a missing value shows as.
MISSING = "–"
#: Keeps the grid's scrollbars visible (Streamlit shows them only under the pointer), in light and dark themes.
STYLE = ("<style>[data-testid='stDataFrame'] .dvn-scroller {"
         "scrollbar-color: rgba(128, 128, 128, 0.6) transparent;}</style>")


def label(column, labels: dict | None = None) -> str:
    """A column's name for people."""
    return (labels or {}).get(column) or LABELS.get(column) or str(column).replace("_", " ")


def column_config(df: pd.DataFrame, *, labels=None, help=None, formats=None, pinned=(), index_label=None) -> dict:
    """Streamlit column settings: labels, help, thousands separators for whole numbers, the float
    formats, and `pinned` columns kept in sight while the others scroll."""
    labels, help, formats = labels or {}, help or {}, formats or {}
    config = {}
    for col in df.columns:
        options = {"help": help.get(col), "pinned": True if col in pinned else None}
        kind = df[col].dtype.kind
        if kind in "iu":
            config[col] = st.column_config.NumberColumn(label(col, labels), format="localized", **options)
        elif kind == "f":
            config[col] = st.column_config.NumberColumn(label(col, labels), format=formats.get(col, FORMATS.get(col)),
                                                        **options)
        else:
            config[col] = st.column_config.Column(label(col, labels), **options)
    if index_label is not None:
        config["_index"] = st.column_config.Column(index_label, pinned=True)
    return config


def _is_shape(column: pd.Series) -> bool:
    if column.dtype != object:  # cheap first: text and numbers are never shapes
        return False
    values = column.dropna()
    return len(values) > 0 and all(isinstance(v, tuple) for v in values)


def readable(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with its shape columns (tuples) as text, 28×28×240, for the page and the LaTeX."""
    shapes = [col for col in df.columns if _is_shape(df[col])]
    if not shapes:
        return df
    out = df.copy()
    for col in shapes:
        out[col] = out[col].map(lambda s: fmt.shape(s) if isinstance(s, tuple) else s)
    return out


def latex(df: pd.DataFrame, *, labels=None, index: bool = False, index_label: str | None = None) -> str:
    """The LaTeX download of a table: the page's labels and shapes, the index as a first column."""
    out = readable(df)
    if index:
        out = out.reset_index(names=index_label or df.index.name or "")
    return latex_table(out.rename(columns={c: label(c, labels) for c in df.columns}))


def _style_once() -> None:
    """The scrollbar style rule, once per page (a page without tables lacks it)."""
    if first_in_run("table_style"):
        st.html(STYLE)  # style only: Streamlit puts it out of the page's flow


def show(df: pd.DataFrame, key: str, config, what: str, *, labels: dict | None = None, help: dict | None = None,
         formats: dict | None = None, pinned=(), order=None, index: bool = False, index_label: str | None = None,
         width="stretch", height="auto", where=None) -> None:
    """Show a table with CSV and LaTeX download buttons under it.

    `key` keys the table and its buttons; `config` is the network the table describes and `what`
    what it holds, for the file names (`export.file_name(config, what, "csv")`). `labels`, `help`
    and `formats` map the library's column names to a label, a tooltip and a float format;
    `pinned` columns stay in sight while scrolling; `order` shows some columns in that order;
    `index` shows (and exports) the index, named `index_label`. `width` "content" sizes the
    table to its columns (for a row of things that wraps when narrow); `where` is a column or
    container (default: the page)."""
    box = (where or st).container(width="content" if width == "content" else "stretch", gap="small")
    with box:
        _style_once()
        st.dataframe(readable(df), key=key, hide_index=not index, width=width, height=height, column_order=order,
                     placeholder=MISSING, column_config=column_config(df, labels=labels, help=help, formats=formats,
                                                                      pinned=pinned, index_label=index_label))
        with st.container(horizontal=True, gap="small"):
            st.download_button("CSV", df.to_csv(index=index), file_name=file_name(config, what, "csv"),
                               mime="text/csv", on_click="ignore", key=f"{key}_csv", type="tertiary",
                               icon=":material/download:", help="The table as CSV, with the library's column names.")
            st.download_button("LaTeX", lambda: latex(df, labels=labels, index=index, index_label=index_label),
                               file_name=file_name(config, what, "tex"), mime="application/x-tex", on_click="ignore",
                               key=f"{key}_tex", type="tertiary", icon=":material/download:",
                               help="The table as a LaTeX tabular (needs \\usepackage{booktabs}), with these labels.")
