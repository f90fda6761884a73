"""Predictions: run the real Keras model of the current configuration on a picture, with the
weights the user picks (random, shipped, imported, uploaded or trained here)."""

from __future__ import annotations

import streamlit as st

from shufflenet.checkpoints import CheckpointError
from shufflenet.data import DatasetNotFoundError
from shufflenet.inference import SAMPLE_IMAGES, UPLOAD_TYPES, ImageDecodeError, batch_preview, top_k
from shufflenet.weights import (
    IMPORTED,
    RANDOM,
    SESSION,
    SHIPPED,
    UPLOADED,
    WeightsSource,
    available_sources,
    prepare_picture,
    shipped_for_groups,
)

from .. import cache, figures
from .. import format as fmt
from ..state import Selection, apply_configuration
from . import training_panel

RANDOM_WEIGHTS = (
    "**These weights are random.** No trained weights are selected for this configuration, so the "
    "classes and probabilities below are meaningless: they only show that the network runs end to "
    "end and how long it takes."
)
UPLOAD_OPTION = "Upload weights (.weights.h5 + manifest.json)"
#: The configuration the weights choice was made for.
CHOICE_CONFIG_KEY = "_pred_weights_config"
RUNS = 5
TEST_BATCH = 500


def _switch_to(config, task_key: str) -> None:
    """Set the sidebar to a checkpoint's configuration and select that checkpoint's weights."""
    apply_configuration(config, task_key=task_key)
    best = available_sources(config, task_key)[0]
    st.session_state["pred_weights"] = best.label
    st.session_state[CHOICE_CONFIG_KEY] = config


def _choose_weights(selection: Selection) -> tuple[WeightsSource, object] | None:
    """The weights selector; returns (source, predictor) or None when nothing can run."""
    config, task = selection.config, selection.task
    session = training_panel.session_result(config)
    sources = available_sources(config, task.key, session.manifest if session else None)
    labels = [s.label for s in sources] + [UPLOAD_OPTION]
    ss = st.session_state
    if training_panel.take_selection_request() and session is not None:
        ss["pred_weights"] = next(s.label for s in sources if s.kind == SESSION)
    elif ss.get(CHOICE_CONFIG_KEY) != config or ss.get("pred_weights") not in labels:
        # A new configuration (from the sidebar, a button or a link): the best weights it has,
        # as a fresh link would choose them. A choice made for this configuration is kept.
        ss["pred_weights"] = labels[0]
    ss[CHOICE_CONFIG_KEY] = config
    if task.key == "imagenet" and not any(s.kind == IMPORTED for s in sources):
        _offer_fashion_mnist(config)
    choice = st.selectbox("Weights", labels, key="pred_weights",
                          help="A trained checkpoint that matches this configuration is chosen automatically.")
    if task.key == "fashion-mnist" and not any(s.kind == SHIPPED for s in sources):
        near = shipped_for_groups(config)
        if near is not None:
            c = near.config
            st.info(f"A trained checkpoint for g = {config.groups} exists at width {c.scale:g}x, input "
                    f"{c.input_size}×{c.input_size}, units {fmt.units(c.blocks)}, reduction "
                    f"{c.reduction:g}{'' if c.shuffle else ', without channel shuffle'}; this configuration "
                    "differs.")
            st.button("Switch to the checkpoint's configuration", on_click=_switch_to, args=(c, task.key),
                      key="pred_switch")
    if choice == UPLOAD_OPTION:
        return _uploaded(selection)
    source = sources[labels.index(choice)]
    if source.kind == RANDOM:
        return source, cache.predictor(config)
    if source.kind == SESSION:
        return source, training_panel.session_predictor(config)
    return source, cache.checkpoint_predictor(str(source.checkpoint.path))


def _offer_fashion_mnist(config) -> None:
    """ImageNet without imported weights: lead with the trained Fashion-MNIST network of this g."""
    near = shipped_for_groups(config.replace(channels=1, num_classes=10))
    if near is None:
        return
    c = near.config
    st.info(f"No ImageNet weights are imported on this server (see the README's importer), so an ImageNet "
            f"network here has random weights. A trained Fashion-MNIST ShuffleNet with g = {config.groups} "
            f"({c.scale:g}x, {c.input_size}×{c.input_size} grayscale, test accuracy "
            f"{100 * near.test_accuracy:.1f} %) ships with the app.")
    st.button(f"Show the trained Fashion-MNIST network (g = {config.groups})", type="primary",
              on_click=_switch_to, args=(c, "fashion-mnist"), key="pred_to_fashion")


def _uploaded(selection: Selection):
    config = selection.config
    left, right = st.columns(2)
    weights = left.file_uploader("Weights (.weights.h5)", type=["h5", "application/x-hdf5"], key="pred_weights_file")
    manifest = right.file_uploader("Manifest (manifest.json)", type=["json", "application/json"],
                                   key="pred_manifest_file")
    if weights is None or manifest is None:
        st.info("Upload both files of a checkpoint (written by `python -m shufflenet train --out DIR`). "
                "Until then the weights are random.")
        return WeightsSource(RANDOM, "Random initialisation", config, selection.task.key), cache.predictor(config)
    weights_name, manifest_name = fmt.upload_name(weights.name), fmt.upload_name(manifest.name)
    try:
        predictor, manifest_dict = cache.uploaded_predictor(weights.getvalue(), manifest.getvalue(), config,
                                                            weights_name, manifest_name)
    except CheckpointError as exc:
        st.error(f"{exc} The prediction below uses random weights.")
        return WeightsSource(RANDOM, "Random initialisation", config, selection.task.key), cache.predictor(config)
    return WeightsSource(UPLOADED, f"Uploaded {weights_name}", config, selection.task.key, None,
                         manifest_dict), predictor


def _pick_picture(task_key: str):
    """(picture, caption, true class name or None), or None after showing an error."""
    st.subheader("Pick a picture")
    if task_key == "fashion-mnist":
        gallery = cache.fashion_gallery()
        thumbs = st.columns(10)
        for col, item in zip(thumbs, gallery[::2]):
            col.image(item.pixels, caption=item.class_name, width="stretch")
        names = [g.name for g in gallery]
        name = st.selectbox("Fashion-MNIST test image (shipped, with its true label)", names, key="pred_fashion",
                            format_func=lambda n: f"{gallery[names.index(n)].class_name} ({n})")
        item = gallery[names.index(name)]
        sample = (item.pixels, f"Fashion-MNIST test image: {item.class_name}", item.class_name)
    else:
        thumbs = st.columns(len(SAMPLE_IMAGES))
        for col, (key, caption) in zip(thumbs, SAMPLE_IMAGES.items()):
            col.image(cache.thumbnail(key), caption=caption, width="stretch")
        key = st.selectbox("Sample photo (bundled with scikit-image)", list(SAMPLE_IMAGES), key="pred_sample",
                           format_func=SAMPLE_IMAGES.get)
        sample = (cache.sample_image(key), SAMPLE_IMAGES[key], None)
    upload = st.file_uploader("... or upload your own (PNG, JPEG, WebP, BMP, GIF)", type=[*UPLOAD_TYPES, "image/png"],
                              key="pred_upload")
    if upload is None:
        return sample
    try:
        name = fmt.upload_name(upload.name)
        return cache.decode_upload(upload.getvalue(), name), name, None
    except ImageDecodeError as exc:
        st.error(str(exc))
        return None


def render(selection: Selection) -> None:
    config, task = selection.config, selection.task
    st.subheader("Weights")
    try:
        source, predictor = _choose_weights(selection)
    except cache.ModelTooLargeError as exc:
        st.error(str(exc))
        return
    if source.kind == RANDOM:
        st.warning(RANDOM_WEIGHTS)
    elif source.kind == IMPORTED:
        st.success("megvii's ImageNet weights, imported exactly: same network and MACs, with their code's layout "
                   "(shuffle after the depthwise conv, no FC bias). Top-1 accuracy as published by megvii: "
                   f"{100 * source.test_accuracy:.1f} %.")
    else:
        acc = source.test_accuracy
        st.success(f"Trained weights ({source.label}); test accuracy recorded in its manifest: {100 * acc:.2f} %.")

    if task.key == "fashion-mnist":
        training_panel.render(config)
        _test_batch_accuracy(source, predictor)

    picked = _pick_picture(task.key)
    if picked is None:
        return
    picture, caption, truth = picked
    prepared = prepare_picture(picture, source)
    prediction = predictor.predict(prepared.batch, runs=RUNS)
    best = top_k(prediction.probabilities, k=5, labels=source.class_names())

    left, middle, right = st.columns([2, 1, 3])
    left.image(picture, caption=caption, width="stretch", clamp=True)
    middle.image(batch_preview(prepared.batch), caption=f"What the network sees: {fmt.shape(prepared.batch.shape[1:])}",
                 width="stretch")
    middle.caption(f"Preprocessing: {prepared.note}.")
    middle.metric("Inference time", fmt.milliseconds(prediction.milliseconds),
                  help=f"Median of {prediction.runs} calls of the compiled model, batch 1, on this server's CPU. "
                       "The paper measures 37.8 ms for 1x g=3 on one ARM core (Table 8).")
    if truth is not None:
        verdict = "correct" if best.iloc[0]["label"] == truth else "wrong"
        middle.metric("True label", truth, delta=f"top-1 {verdict}", delta_color="normal" if verdict == "correct"
                      else "inverse")
    title = f"Top-5 of {source.config.label}" + (" (random weights)" if source.kind == RANDOM else "")
    right.plotly_chart(figures.top_k(best, title), key="pred_top5")
    right.dataframe(best, hide_index=True, width="stretch",
                    column_config={"probability": st.column_config.NumberColumn(format="%.4f")})


def _test_batch_accuracy(source: WeightsSource, predictor) -> None:
    key = f"{source.kind}:{source.label}:{id(predictor)}"
    try:
        acc = cache.test_accuracy(predictor, key, source.config, TEST_BATCH)
    except DatasetNotFoundError as exc:
        st.info(f"Accuracy on a test batch needs the Fashion-MNIST files: {exc}")
        return
    st.metric(f"Accuracy on the first {TEST_BATCH} Fashion-MNIST test images", f"{100 * acc:.1f} %",
              help="With the selected weights; random weights score about 10 % (ten classes).")


__all__ = ["SESSION", "UPLOADED", "render"]
