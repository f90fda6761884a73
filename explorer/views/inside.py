"""Inside: what one ShuffleNet unit does to a picture, in the trained network's real activations.

The channels after the first 1x1 group conv, framed and coloured by group; the same channels
after the channel shuffle, dealt out so that the colours interleave; the depthwise conv's
output; the unit's output and its shortcut; the energy of each group. Every map comes from one
call of a tap model over the network's own layers (`shufflenet.activations`), cached per weights
and picture, so a warm rerun only looks figures up.
"""

from __future__ import annotations

import streamlit as st

from shufflenet import activations
from shufflenet.checkpoints import CheckpointError
from shufflenet.config import FIELDS, STAGES
from shufflenet.inference import SAMPLE_IMAGES, UPLOAD_TYPES, ImageDecodeError, batch_preview
from shufflenet.weights import IMPORTED, RANDOM, SHIPPED, available_sources, prepare_picture, shipped_for_groups

from .. import cache
from .. import format as fmt
from ..state import TASK_BY_KEY, TASK_PRESETS, Selection, choice, whole

#: This view's choices in the URL (collected by `explorer.url`); the first unit shown is the
#: library's `activations.default_unit` of the stage.
URL_KEYS = {
    "stage": choice("Inside", "inside_stage", STAGES, STAGES[0], "stage"),
    "unit": whole("Inside", "inside_unit", 1, FIELDS["blocks"].high,
                  lambda config, state: activations.default_unit(config, state.get("inside_stage", STAGES[0])),
                  "unit"),
}

INTRO = (
    "Each 1×1 **group** convolution sees only its own group of channels; the **channel shuffle** then deals every "
    "group out over all groups of the next one (paper Sec. 3.1, Fig. 1). Below are the real activations of one "
    "unit for the picture you pick: each tile is one channel, its outline the colour of the group it came from."
)
RANDOM_NOTE = (
    "**These weights are random**: no trained checkpoint matches this configuration, so the maps show "
    "untrained filters. The grouping and the shuffle's order are the same as in a trained network."
)
CONTRAST_LABELS = {"layer": "one scale per layer (channels compare)", "tile": "each tile stretched"}
TITLES = (
    "(a) first 1×1 group conv, after BN + ReLU",
    "(b) after the channel shuffle",
    "(c) 3×3 depthwise conv, after its BN",
    "Activation energy per group",
    "(d) the unit's output",
    "... and its shortcut",
)


def _switch_task(key: str) -> None:
    task = TASK_BY_KEY[key]
    st.session_state["task"] = task.label
    for name in TASK_PRESETS:
        st.session_state[name] = getattr(task, name)


def _switch_to(config) -> None:
    ss = st.session_state
    ss["scale"], ss["input_size"], ss["reduction"] = config.scale, config.input_size, config.reduction
    ss["blocks_stage2"], ss["blocks_stage3"], ss["blocks_stage4"] = config.blocks


def _weights(selection: Selection):
    """The best weights for the configuration (a shipped or imported checkpoint before random),
    said on the page; returns (source, tap model, key)."""
    config, task = selection.config, selection.task
    sources = available_sources(config, task.key)
    source, taps = sources[0], None
    if source.kind != RANDOM:
        try:
            taps, key = cache.checkpoint_taps(str(source.checkpoint.path))
        except CheckpointError as exc:
            st.error(f"{exc} The maps below use random weights instead.")
            source = next(s for s in sources if s.kind == RANDOM)
    if taps is None:
        taps, key = cache.random_taps(config)
    if source.kind == SHIPPED:
        st.success(f"Trained weights: {source.label}. These are the network's real activations.")
    elif source.kind == IMPORTED:
        st.success(f"{source.label}, imported exactly. These are the trained network's real activations.")
    elif task.key == "imagenet":
        st.info(f"Only random weights exist for this ImageNet network: no megvii checkpoint is imported for "
                f"g = {config.groups} at {config.scale:g}x (`python -m shufflenet import-weights`, see the README). "
                "The maps below show untrained filters. Trained Fashion-MNIST networks ship with the app:")
        st.button("Switch to the Fashion-MNIST task", on_click=_switch_task, args=("fashion-mnist",),
                  key="inside_to_fashion")
    else:
        st.warning(RANDOM_NOTE)
        near = shipped_for_groups(config)
        if near is not None:
            c = near.config
            st.info(f"A trained checkpoint for g = {config.groups} exists at width {c.scale:g}x, input "
                    f"{c.input_size}×{c.input_size}, units {fmt.units(c.blocks)}, reduction "
                    f"{c.reduction:g}; this configuration differs.")
            st.button("Switch to the checkpoint's configuration", on_click=_switch_to, args=(c,),
                      key="inside_switch")
    return source, taps, key


def _pick_picture(task_key: str, column):
    """(picture, caption), or None after showing why an upload cannot be used."""
    if task_key == "fashion-mnist":
        gallery = cache.fashion_gallery()
        names = [g.name for g in gallery]
        name = column.selectbox("Fashion-MNIST test image", names, key="inside_fashion",
                                format_func=lambda n: f"{gallery[names.index(n)].class_name} ({n})")
        item = gallery[names.index(name)]
        sample = (item.pixels, f"Fashion-MNIST test image: {item.class_name}")
    else:
        key = column.selectbox("Sample photo (bundled with scikit-image)", list(SAMPLE_IMAGES), key="inside_sample",
                               format_func=SAMPLE_IMAGES.get)
        sample = (cache.sample_image(key), SAMPLE_IMAGES[key])
    upload = column.file_uploader("... or upload your own (PNG, JPEG, WebP, BMP, GIF)", type=list(UPLOAD_TYPES),
                                  key="inside_upload")
    if upload is None:
        return sample
    name = fmt.upload_name(upload.name)
    try:
        return cache.decode_upload(upload.getvalue(), name), name
    except ImageDecodeError as exc:
        st.error(str(exc))
        return None


def _set_unit(unit: int) -> None:
    st.session_state["inside_unit"] = unit


def _pick_unit(config, column) -> tuple[int, int]:
    """Stage and unit. The unit box takes any count a stage may have, so a unit kept from another
    configuration stays in the box and is refused below with a message, not by the widget."""
    ss = st.session_state
    units = activations.stage_units(config)
    ss.setdefault("inside_stage", STAGES[0])
    stage = column.selectbox("Stage", STAGES, index=STAGES.index(ss["inside_stage"]), key="inside_stage",
                             format_func=lambda s: f"stage {s} ({units[s]} units)")
    ss.setdefault("inside_unit", activations.default_unit(config, stage))
    unit = column.number_input("Unit", min_value=1, max_value=FIELDS["blocks"].high, value=ss["inside_unit"],
                               step=1, key="inside_unit",
                               help=f"Stage {stage} has units 1 to {units[stage]}; unit 1 has stride 2.")
    return stage, int(unit)


def render(selection: Selection) -> None:
    st.markdown(INTRO)
    try:
        source, taps_model, key = _weights(selection)
    except cache.ModelTooLargeError as exc:
        st.error(str(exc))
        return
    config = source.config
    pick, preview, unit_col, show_col = st.columns([3, 2, 2, 3])
    picked = _pick_picture(selection.task.key, pick)
    stage, unit = _pick_unit(config, unit_col)
    try:
        taps = activations.unit_taps(config, stage, unit)
    except activations.UnitNotFoundError as exc:
        st.warning(f"{exc} The sidebar sets how many units each stage has.")
        last = activations.stage_units(config).get(stage)
        if last is not None:
            st.button(f"Show unit {last} of stage {stage}", on_click=_set_unit, args=(last,), key="inside_last_unit")
        return
    n = taps.group_size
    per_group = 1
    if n > 1:
        per_group = show_col.slider("Channels shown per group", 1, n, value=activations.default_per_group(taps),
                                    key=f"inside_per_group_{n}",
                                    help=f"Each group has {n} channels; by default at most "
                                         f"{activations.DEFAULT_MAX_TILES} tiles are shown.")
    contrast = show_col.radio("Grey levels", list(CONTRAST_LABELS), format_func=CONTRAST_LABELS.get,
                              key="inside_contrast", horizontal=True)
    if picked is None:
        return
    picture, caption = picked
    prepared = prepare_picture(picture, source)
    view = cache.inside_view(taps_model, key, prepared.batch, stage, unit, per_group, contrast, TITLES)
    best, probability = view["top"]
    preview.image(batch_preview(prepared.batch), caption=f"What the network sees: "
                  f"{fmt.shape(prepared.batch.shape[1:])}", width="stretch")
    answer = source.class_names()[best]
    preview.caption(f"{caption}. Preprocessing: {prepared.note}. The network's answer: **{answer}** "
                    f"({probability:.1%}){' — random weights, meaningless' if source.kind == RANDOM else ''}.")
    _unit_summary(taps, view["panels"]["gconv1"])
    _panels(taps, view, config, contrast)


def _unit_summary(taps: activations.UnitTaps, first) -> None:
    g = taps.groups
    kind = ("stride 2: the input is average-pooled and concatenated" if taps.stride == 2
            else "stride 1: the input is added")
    st.markdown(f"**Stage {taps.stage}, unit {taps.unit}** ({kind}). Bottleneck: {taps.bottleneck} channels in "
                f"g = {g} group{'s' if g > 1 else ''} of {taps.group_size}; maps {first.map_side}×{first.map_side}. "
                f"Showing {first.shown} of {first.total} channels (the first {first.per_frame} of each group).")
    if taps.groups1 == 1 and g > 1:
        st.info("In stage 2's first unit the first 1×1 conv is not grouped (paper Sec. 3.3: its input has few "
                f"channels): each channel of (a) sees all {taps.in_channels} input channels. The frames show the "
                f"{g} blocks the shuffle deals out.")


def _panels(taps: activations.UnitTaps, view: dict, config, contrast: str) -> None:
    figs, panels = view["figures"], view["panels"]
    grey = ("Grey levels: black = 0, white = the layer's largest activation "
            f"({panels['gconv1'].scale:.3g})" if contrast == "layer"
            else "Grey levels: each tile from 0 (black) to its own largest activation (white)")
    left, right = st.columns(2)
    left.plotly_chart(figs["gconv1"], key="inside_gconv1")
    left.caption(f"{grey}. Group j is channels j·n … j·n + n − 1 (n = {taps.group_size}); the group conv that made "
                 "them saw only the matching group of its input.")
    if "shuffle" in figs:
        right.plotly_chart(figs["shuffle"], key="inside_shuffle")
        reach = ("every group of the next conv now reads channels of every group" if taps.mixes_fully else
                 f"each group of the next conv reads channels of {taps.group_size} of the {taps.groups} groups (a "
                 f"group has only {taps.group_size} channels here, fewer than g)")
        right.caption(f"Frame j holds the channels group j of the second 1×1 conv reads. Each tile keeps the colour "
                      f"of its group in (a), so the colours interleave: {reach}. Channel p is channel "
                      f"`shuffle_permutation({taps.bottleneck}, {taps.groups})[p]` of (a) ({config.shuffle_layout} "
                      "layout).")
    elif taps.groups == 1:
        right.info("**g = 1: there is nothing to shuffle.** One group holds every channel, so the shuffle would be "
                   "the identity and the network leaves it out. Choose g > 1 in the sidebar to see it deal groups out.")
    else:
        right.info("**The channel shuffle is switched off** (the paper's Table 3 ablation): the depthwise conv and "
                   "the second 1×1 conv read the channels in the order of (a), so each group of the second conv "
                   "sees only its own group: the groups never mix. Turn the shuffle on in the sidebar to compare.")
    left, right = st.columns(2)
    left.plotly_chart(figs["depthwise"], key="inside_depthwise")
    dw = panels["depthwise"]
    left.caption(("Signed values: black = −, mid-grey = 0, white = + (no ReLU after the depthwise conv, paper "
                  "Sec. 3.2). " if dw.signed else "") + "The depthwise conv filters each channel on its own, "
                 "so every tile keeps its colour" + (f"; at stride 2 it halves the maps to {dw.map_side}×"
                                                     f"{dw.map_side}." if taps.stride == 2 else "."))
    right.plotly_chart(figs["energy"], key="inside_energy")
    right.caption("Mean squared activation of each group over all its channels (not only the tiles shown). "
                  "Hatched: the channels each group of the second 1×1 conv reads after the depthwise conv.")
    left, right = st.columns(2)
    out, sc = panels["output"], panels["shortcut"]
    left.plotly_chart(figs["output"], key="inside_output")
    left.caption(f"Showing {out.shown} of {out.total} channels. " + (
        "Outlined in a group's colour: with no shuffle each group of the second conv saw only that group. "
        if taps.shuffle is None and taps.groups > 1 else
        "Grey outlines: with the shuffle each group of the second conv read channels of every group. "
        if taps.groups > 1 else ""))
    right.plotly_chart(figs["shortcut"], key="inside_shortcut")
    right.caption(f"Showing {sc.shown} of {sc.total} channels. " + (
        "Stride 2: the unit's input, 3×3 average-pooled; concatenated before the branch (the output's first "
        f"{taps.in_channels} channels)." if taps.stride == 2 else
        "Stride 1: the unit's input itself (identity), added channel by channel to the branch, then ReLU."))
