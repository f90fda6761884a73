"""Every Plotly chart of the explorer goes through `plotly(...)`, so every chart saves the same way.

The camera button in a chart's toolbar saves the chart as it is shown, in the browser: Plotly's
own `toImage`, with no server work and no network. Its file name comes from `export.file_name`,
like every other download. Plotly's toolbar has one such button, and a second one (for the other
format) would need a JavaScript `click` function, which `st.plotly_chart(config=...)` cannot
carry: the config travels as JSON. So the format is a choice, "Chart downloads" at the bottom of
the sidebar: SVG by default (vector, sharp on a projector and in a paper), or PNG at twice the
shown size (for slide tools without SVG). Changing it redraws the charts with the other format.
"""

from __future__ import annotations

import streamlit as st

from shufflenet.export import file_name

from ._streamlit_compat import script_run_context

#: Formats of the camera button -> how the sidebar's choice names them.
IMAGE_FORMATS = {"svg": "SVG", "png": "PNG"}
FORMAT_KEY = "chart_image_format"
#: A PNG has this many pixels per pixel shown, so it stays sharp on a slide.
PNG_SCALE = 2
FORMAT_HELP = ("The camera button in each chart's toolbar (top right, when the pointer is over the chart) saves "
               "the chart as shown, in this format. SVG stays sharp at any size (slides, papers); PNG has twice "
               "the shown pixels, for slide tools that do not take SVG.")



def first_in_run(what: str) -> bool:
    """True the first time a run asks about `what` (the sidebar's format choice, the tables' style
    rule), so a page draws it once however many charts or tables it has. A run is known by its
    cursors, which Streamlit replaces when a run starts; the mark lives on the session's run
    context, so it goes with the session. Outside a Streamlit run: always True."""
    ctx = script_run_context()
    if ctx is None:
        return True
    mark = f"_shufflenet_{what}_run"
    if getattr(ctx, mark, None) is ctx.cursors:
        return False
    setattr(ctx, mark, ctx.cursors)
    return True


def image_format() -> str:
    """The format the camera buttons save: "svg" (default) or "png"."""
    chosen = st.session_state.get(FORMAT_KEY)
    return chosen if chosen in IMAGE_FORMATS else "svg"


def toolbar_config(config, what: str, image: str) -> dict:
    """Plotly's config for a chart: the camera button saves `image` ("svg" or "png") under
    `export.file_name(config, what, image)`. `config` is the network the chart describes."""
    if image not in IMAGE_FORMATS:
        raise ValueError(f"`image` must be one of {', '.join(IMAGE_FORMATS)}. Received: image={image!r}")
    options = {"format": image, "filename": file_name(config, what, image).removesuffix(f".{image}")}
    if image == "png":
        options["scale"] = PNG_SCALE
    return {"toImageButtonOptions": options, "displaylogo": False}


def _format_choice() -> None:
    """The sidebar's "Chart downloads" choice, drawn once per run (pages without charts lack it;
    the choice is kept for the session)."""
    if not first_in_run("chart_format"):
        return
    st.sidebar.segmented_control("Chart downloads", list(IMAGE_FORMATS), format_func=IMAGE_FORMATS.get,
                                 default=image_format(), required=True, key=FORMAT_KEY, help=FORMAT_HELP,
                                 persist_state="session")


def plotly(fig, key: str, config, what: str, *, where=None, **kwargs) -> None:
    """Show a Plotly figure whose camera button saves it as SVG or PNG (the sidebar's choice)
    under `export.file_name(config, what, ...)`, e.g. `shufflenet-1x-g3-sweep-macs.svg`.

    `key` is the chart's element key, `config` the network it describes, `what` what it shows
    (in words); `where` a column or container (default: the page); `kwargs` go to
    `st.plotly_chart` (e.g. `on_select`)."""
    _format_choice()
    return (where or st).plotly_chart(fig, key=key, config=toolbar_config(config, what, image_format()), **kwargs)
