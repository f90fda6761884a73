"""Predictions: run the real Keras model of the current configuration on a picture."""

from __future__ import annotations

import streamlit as st

from shufflenet.inference import SAMPLE_IMAGES, UPLOAD_TYPES, ImageDecodeError, batch_preview, class_labels, top_k

from .. import cache, figures
from .. import format as fmt
from ..sidebar import Selection

RANDOM_WEIGHTS = (
    "**These weights are random.** No trained checkpoint is loaded for this configuration, so the "
    "classes and probabilities below are meaningless: they only show that the network runs end to "
    "end and how long it takes."
)
FASHION_NOTE = (
    "Fashion-MNIST: trained weights and test-set samples come with the training work; until then "
    "this task also runs with random weights. Pictures are converted to 32×32 grayscale."
)
RUNS = 5


def render(selection: Selection) -> None:
    config, task = selection.config, selection.task
    st.warning(RANDOM_WEIGHTS)
    if task.key == "fashion-mnist":
        st.info(FASHION_NOTE)

    st.subheader("Pick a picture")
    thumbs = st.columns(len(SAMPLE_IMAGES))
    for col, (name, caption) in zip(thumbs, SAMPLE_IMAGES.items()):
        col.image(cache.thumbnail(name), caption=caption, width="stretch")
    sample = st.selectbox("Sample photo (bundled with scikit-image)", list(SAMPLE_IMAGES), key="pred_sample",
                          format_func=SAMPLE_IMAGES.get)
    upload = st.file_uploader("... or upload your own (PNG, JPEG, WebP, BMP, GIF)", type=list(UPLOAD_TYPES),
                              key="pred_upload")
    try:
        if upload is not None:
            data = upload.getvalue()
            picture = cache.decode_upload(data, upload.name)
            batch = cache.upload_batch(data, upload.name, config)
            source = upload.name
        else:
            picture = cache.sample_image(sample)
            batch = cache.sample_batch(sample, config)
            source = SAMPLE_IMAGES[sample]
    except ImageDecodeError as exc:
        st.error(str(exc))
        return

    predictor = cache.predictor(config)
    prediction = predictor.predict(batch, runs=RUNS)
    labels = class_labels(config.num_classes, task.key)
    best = top_k(prediction.probabilities, k=5, labels=labels)

    left, middle, right = st.columns([2, 1, 3])
    left.image(picture, caption=source, width="stretch")
    middle.image(batch_preview(batch), caption=f"What the network sees: {fmt.shape(batch.shape[1:])}",
                 width="stretch")
    middle.metric("Inference time", fmt.milliseconds(prediction.milliseconds),
                  help=f"Median of {prediction.runs} calls of the compiled model, batch 1, on this server's CPU. "
                       "The paper measures 37.8 ms for 1x g=3 on one ARM core (Table 8).")
    right.plotly_chart(figures.top_k(best, f"Top-5 of {config.label} (random weights)"), key="pred_top5")
    right.dataframe(best, hide_index=True, width="stretch",
                    column_config={"probability": st.column_config.NumberColumn(format="%.4f")})
