"""Latency: measured inference time against MACs over g, in TensorFlow, TFLite and ONNX Runtime,
with MobileNet 0.5 as the paper's reference point, the fastest runtime per model and the last g
over the first beside the counted costs; downloads of this network as .keras, .tflite and .onnx."""

from __future__ import annotations

import streamlit as st

from shufflenet import ALLOWED_GROUPS
from shufflenet.benchmark import (
    MOBILENET_LABEL,
    MOBILENET_PAPER_MFLOPS,
    cost_predictors,
    fastest_settings,
    group_ratios,
    latency_table,
    settings,
    speedup_table,
)
from shufflenet.export import file_stem

from .. import cache, charts, tables
from .. import format as fmt
from ..state import Selection

# What one measurement covers (module-level so tests can make it small).
GROUPS = ALLOWED_GROUPS
RUNTIMES = ("tensorflow", "tflite", "onnxruntime")
THREADS = (1, 2)
REPEATS = 15

LESSON = (
    "**The paper's lesson (Sec. 4.5, Table 8): MACs are not latency.** On an ARM phone every 4× cut in "
    "theoretical complexity gave only about 2.6× actual speedup, and g = 3 was the best trade-off although "
    "g = 4 and g = 8 have about the same MACs: memory access and other overheads (the shuffle, the depthwise "
    "convs, the wider activations of more groups) do not shrink with the MACs. The points below measure the "
    "same thing on this server."
)
HOW = (
    "Batch 1, on this server's CPU. **TensorFlow**: the BN-folded inference graph inside one compiled "
    "`tf.function`. **TFLite**: the same network converted (native grouped convs, run by XNNPACK) with 1 and 2 "
    "interpreter threads. **ONNX Runtime**: that TFLite graph converted to ONNX (as the .onnx download below), "
    "CPU provider, 1 and 2 threads. Each model is warmed up, then timed {repeats} times, all models round-robin "
    "so that load on the machine moves them together; dots are medians, whiskers the 10th-90th percentiles. "
    "Weights are random: latency does not depend on them."
)


START_ERROR_KEY = "_lat_start_error"
#: Seconds between two looks at a measurement in progress (a small fragment run each).
POLL_SECONDS = 1.0


def _start(key) -> None:
    """The button's callback: start the measurement as a server job (it goes on if the tab closes)."""
    st.session_state.pop(START_ERROR_KEY, None)
    try:
        cache.start_latency(key)
    except cache.JobBusyError as exc:
        st.session_state[START_ERROR_KEY] = _other_text(exc.job)


def _other_text(job) -> str:
    return (f"Another measurement is running on this server ({job.label}; two at once would slow each other "
            "down). Its progress is below; measure this network when it has finished.")


@st.fragment(run_every=POLL_SECONDS)
def _progress(key) -> None:
    """The measurement of `key` (or, if another runs, that one) as it goes; the page reruns when it ends."""
    job = cache.latency_job(key)
    if job is not None and not job.done:
        st.progress(job.fraction, text=f"Measuring {job.label}: {job.message}")
        st.caption("It runs on the server: leave this view or close the tab and it still finishes; anyone who opens "
                   "this network's Latency view sees its progress and then the result.")
        return
    other = cache.running_latency()
    if other is not None and other.key != key:
        st.warning(_other_text(other))
        st.progress(other.fraction, text=f"{other.label}: {other.message}")
        return
    st.rerun()  # it has finished (or failed): the whole view shows the outcome


def _predictors(df) -> None:
    """Which cost predicts the measurement: MACs or memory traffic, by correlation over g."""
    table = cost_predictors(df)
    lines = []
    for row in table.itertuples(index=False):
        if row.better is None:
            lines.append(f"- {row.setting}: too few points to tell ({row.n}).")
            continue
        lines.append(f"- {row.setting}: correlation of latency with MACs r = {row.r_macs:.2f}, with memory traffic "
                     f"r = {row.r_traffic_bytes:.2f} over {row.n} values of g: **{row.better}** predicts it better.")
    st.markdown("**Which cost predicts the time?** Pearson correlation of the measured medians with each cost, "
                "across g (MobileNet left out):\n" + "\n".join(lines))


FASTEST_LABELS = {"fastest": "fastest here", "fastest_ms": "its ms", "default": "default", "default_ms": "default ms",
                  "speedup": "speedup over the default"}
FASTEST_HELP = {"fastest": "The runtime setting with the lowest median latency for this model, in this measurement.",
                "speedup": "Median latency in the default setting over the fastest one's: how much a runtime "
                           "choice is worth on this server."}
RATIO_HELP = {"what": "A runtime setting's measured median latency, or a cost the library counts for the same "
                      "two networks.",
              "ratio": "Last g over first g. Over 1: the last g is slower (or costlier) than the first."}


def _fastest(df, config) -> None:
    """The fastest setting per model beside the default, and the last g over the first in every
    setting beside the counted MACs and memory traffic."""
    st.markdown("**Fastest runtime on this server** for each model, beside the default (TensorFlow):")
    tables.show(fastest_settings(df), "lat_fastest", config, "fastest runtime", labels=FASTEST_LABELS,
                help=FASTEST_HELP, formats={"fastest_ms": "%.2f", "default_ms": "%.2f", "speedup": "%.2f×"},
                order=["model", "fastest", "fastest_ms", "default", "default_ms", "speedup"])
    ratios = group_ratios(df)
    if ratios.empty:
        st.caption("The last g over the first needs two values of g in the measurement.")
        return
    first, last = int(ratios["first_groups"].iloc[0]), int(ratios["last_groups"].iloc[0])
    st.markdown(f"**g = {last} over g = {first}** in every runtime setting, beside what the library counts: if "
                "MACs decided the time, every latency ratio would equal the MACs ratio.")
    labels = {"what": "latency (setting) or cost", "first": f"g = {first}", "last": f"g = {last}",
              "ratio": f"g{last} / g{first}"}
    tables.show(ratios, "lat_ratios", config, f"g{last} over g{first}", help=RATIO_HELP, labels=labels,
                formats={"first": "localized", "last": "localized", "ratio": "%.2f×"},
                order=["what", "first", "last", "ratio"])
    st.caption("Latency rows: medians in ms. MACs and memory traffic (bytes, float32, batch 1) are counted from the "
               "configuration, for the same two networks.")


def _results(df, config, key) -> None:
    note = f"paper Table 5: {MOBILENET_PAPER_MFLOPS} MFLOPs at 224×224"
    left, right = st.columns(2)
    charts.plotly(cache.latency_figure(key, config.groups, MOBILENET_LABEL, note), "lat_chart", config,
                  "latency vs macs", where=left)
    charts.plotly(cache.latency_figure(key, config.groups, MOBILENET_LABEL, note, x="traffic_bytes"),
                  "lat_chart_traffic", config, "latency vs traffic", where=right)
    _predictors(df)
    table = latency_table(df)
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={**fmt.number_columns(table, skip=("groups",)),
                                **{c: st.column_config.NumberColumn(format="%.2f") for c in table.columns
                                   if c.endswith(" ms")}})
    st.caption(f"MobileNet 0.5 is Keras's `MobileNet(alpha=0.5, weights=None)`; the paper's Table 5 counts "
               f"{MOBILENET_PAPER_MFLOPS} MFLOPs (multiply-adds) for it at 224×224.")
    _fastest(df, config)
    st.download_button("Download the measurements as CSV", df.to_csv(index=False), on_click="ignore",
                       file_name=f"{file_stem(config)}_latency.csv", mime="text/csv", key="lat_csv")

    st.subheader("Actual vs theoretical speedup")
    models = list(dict.fromkeys(df["model"]))
    current = [m for m in models if m == config.label]
    cols = st.columns(3)
    a = cols[0].selectbox("A (baseline)", models, index=0, key=f"lat_a_{config.scale:g}")
    b = cols[1].selectbox("B", models, index=models.index(current[0]) if current and current[0] != a else
                          min(1, len(models) - 1), key=f"lat_b_{config.scale:g}")
    setting = cols[2].selectbox("Runtime", list(settings(df)), key="lat_setting")
    row = speedup_table(df, a, b).set_index("setting").loc[setting]
    left, right = st.columns(2)
    left.metric("Theoretical speedup of B over A (MACs)", f"{row['theoretical']:.2f}×")
    right.metric(f"Actual speedup of B over A ({setting})", f"{row['actual']:.2f}×",
                 help="Latency of A / latency of B, medians of the same round-robin run.")
    st.caption(f"Above 1× B is faster (or cheaper) than A. Here B gets {row['actual / theoretical']:.0%} of the "
               "speedup its MACs promise." if a != b else "Choose two different models.")
    st.dataframe(speedup_table(df, a, b), hide_index=True, width="stretch")


def _downloads(config) -> None:
    st.subheader("Download this network")
    st.markdown(f"The Keras model of {config.label} ({config.input_size}×{config.input_size}×{config.channels}, "
                "the app's random weights) is made into a file when you click: a `.keras` file, which "
                "`keras.saving.load_model(path, safe_mode=True)` reloads once `import shufflenet` has registered "
                "its layers, a `.tflite` file of its BN-folded inference graph, which needs nothing of ours "
                "(about 10 s to convert at 224×224), or an `.onnx` file made from that `.tflite` graph. Any of them "
                "opens in [Netron](https://netron.app) to see the graph a converter made.")
    cols = st.columns(3)
    stem = file_stem(config)
    for col, (kind, mime) in zip(cols, (("keras", "application/zip"), ("tflite", "application/octet-stream"),
                                        ("onnx", "application/octet-stream"))):
        col.download_button(f"Download .{kind}", lambda kind=kind: cache.model_file(config, kind),
                            file_name=f"{stem}.{kind}", mime=mime, on_click="ignore", key=f"dl_{kind}")
    st.caption("The cost tables download as CSV from the Complexity view.")


def render(selection: Selection) -> None:
    config = selection.config
    st.markdown(LESSON)
    include_mobilenet = config.channels == 3
    key = cache.latency_key(config, GROUPS, RUNTIMES, THREADS, REPEATS, include_mobilenet)
    df = cache.measured_latency(key)
    job = cache.latency_job(key)
    running = job is not None and not job.done
    other = cache.running_latency()
    other = other if other is not None and other.key != key else None
    st.subheader(f"Sweep over g = {', '.join(map(str, GROUPS))} at {config.scale:g}x, units "
                 f"{fmt.units(config.blocks)}, {config.input_size}×{config.input_size}×{config.channels}")
    st.caption(HOW.format(repeats=REPEATS) + ("" if include_mobilenet else
               " MobileNet 0.5 is left out: it needs a 3-channel input."))
    st.button("Measure again" if df is not None else "Measure latency", type="primary", key="lat_measure",
              on_click=_start, args=(key,), disabled=running or other is not None)
    error = st.session_state.pop(START_ERROR_KEY, None)
    if running or other is not None:
        _progress(key)
    elif error:
        st.warning(error)
    if job is not None and job.done and job.error:
        st.error(f"The measurement failed ({job.error}). Try a smaller network or measure again.")
    if df is None and not running:
        st.info("Not measured yet for this scale, units and input. Measuring builds every g"
                f"{' and MobileNet 0.5' if include_mobilenet else ''}, converts each to TFLite (about 10 s each "
                "at 224×224) and from there to ONNX, and times them: a few minutes at 224×224 on this 2-core server, "
                "about a minute at 64×64.")
    elif df is not None:
        _results(df, config, key)
    _downloads(config)
