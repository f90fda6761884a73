"""shufflenet.inference: decoding uploads (and refusing bad ones clearly), preprocessing to the
configuration's input, top-k, and the compiled predictor."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import TINY
from PIL import Image

from shufflenet import ShuffleNetConfig, inference
from shufflenet.inference import ImageDecodeError


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(size=(60, 40)) -> Image.Image:
    w, h = size
    a = np.zeros((h, w, 3), dtype=np.uint8)
    a[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    a[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    return Image.fromarray(a)


# --- decoding ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_decode_supported_formats(fmt):
    image = inference.decode_image(encode(gradient(), fmt), "x")
    assert image.mode == "RGB" and image.size == (60, 40)


def test_decode_png_exactly():
    src = gradient()
    assert np.array_equal(np.asarray(inference.decode_image(encode(src, "PNG"))), np.asarray(src))


def test_decode_transparency_becomes_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    out = np.asarray(inference.decode_image(encode(rgba, "PNG")))
    assert out[1, 1].tolist() == [255, 255, 255] and out[0, 0].tolist() == [0, 0, 255]


def test_decode_palette_grayscale_and_16bit():
    assert inference.decode_image(encode(gradient().convert("P"), "PNG")).mode == "RGB"
    assert inference.decode_image(encode(gradient().convert("L"), "PNG")).mode == "RGB"
    values = np.arange(0, 64000, 1000, dtype=np.uint16).reshape(8, 8)
    out = np.asarray(inference.decode_image(encode(Image.fromarray(values), "PNG")))
    # 16-bit means 0..65535: scaled by 255/65535 like Pillow's 16-bit RGB, not stretched per picture.
    np.testing.assert_array_equal(out[..., 0], np.round(values * (255 / 65535)).astype(np.uint8))


def test_decode_animated_gif_takes_the_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    out = np.asarray(inference.decode_image(buf.getvalue()))
    assert out[0, 0, 0] > 200 and out[0, 0, 1] < 50


def test_decode_applies_exif_orientation():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    data = encode(gradient((60, 40)), "JPEG", exif=exif.tobytes())
    assert inference.decode_image(data).size == (40, 60)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty"),
    (b"this is not a picture at all", "not an image"),
    (encode(gradient(), "PNG")[:120], "damaged or truncated"),
    (encode(gradient(), "TIFF"), "TIFF image, which is not supported"),
])
def test_decode_errors_say_what_and_what_to_do(data, message):
    with pytest.raises(ImageDecodeError, match=message) as info:
        inference.decode_image(data, "holiday.png")
    assert "holiday.png" in str(info.value)
    assert "PNG, JPEG, WebP, BMP or GIF" in str(info.value) or "Save it again" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_decode_refuses_huge_pictures(monkeypatch):
    monkeypatch.setattr(inference, "MAX_PIXELS", 100)
    with pytest.raises(ImageDecodeError, match="Scale it down"):
        inference.decode_image(encode(gradient((20, 10)), "PNG"), "big.png")


def test_sample_images_are_bundled():
    for name in inference.SAMPLE_IMAGES:
        image = inference.sample_image(name)
        assert image.mode == "RGB" and min(image.size) >= 100
    with pytest.raises(ValueError, match="astronaut"):
        inference.sample_image("moon-landing")


# --- preprocessing ------------------------------------------------------------------------------

def test_preprocess_imagenet_resize_and_center_crop():
    config = ShuffleNetConfig()
    batch = inference.preprocess(gradient((640, 480)), config)
    assert batch.shape == (1, 224, 224, 3) and batch.dtype == np.float32
    assert batch.min() >= 0.0 and batch.max() <= 1.0
    # The short side goes to 256 and the centre 224 stays: the red ramp is symmetric about 0.5.
    red = batch[0, 112, :, 0]
    assert red[0] > 0.05 and red[-1] < 0.95 and abs(red[111] + red[112] - 1.0) < 0.02


def test_preprocess_grayscale_small_input_keeps_the_whole_square():
    square = Image.new("RGB", (28, 28), (0, 0, 0))
    square.paste((255, 255, 255), (0, 0, 28, 1))  # a white top row must survive (no crop)
    batch = inference.preprocess(square, TINY)
    assert batch.shape == (1, 32, 32, 1)
    assert batch[0, 0, 16, 0] > 0.5
    assert inference.batch_preview(batch).shape == (32, 32)
    assert inference.batch_preview(inference.preprocess(gradient(), ShuffleNetConfig())).shape == (224, 224, 3)


def test_preprocess_tiny_and_extreme_aspect_pictures():
    for size in ((1, 1), (500, 3), (3, 500)):
        assert inference.preprocess(Image.new("RGB", size), ShuffleNetConfig(input_size=64)).shape == (1, 64, 64, 3)
    with pytest.raises(ValueError, match="crop_fraction"):
        inference.preprocess(gradient(), TINY, crop_fraction=0)


# --- top-k ---------------------------------------------------------------------------------------

def test_top_k():
    p = np.array([0.1, 0.4, 0.05, 0.4, 0.05])
    t = inference.top_k(p, k=3, labels=list("abcde"))
    assert t["class"].tolist() == [1, 3, 0]  # ties keep the lower index first
    assert t["label"].tolist() == ["b", "d", "a"] and t["rank"].tolist() == [1, 2, 3]
    assert inference.top_k(p, k=10)["label"].tolist()[0] == "class 1"
    assert len(inference.top_k(p, k=10)) == 5
    with pytest.raises(ValueError, match="labels"):
        inference.top_k(p, labels=["a"])


def test_class_labels():
    assert inference.class_labels(10, "fashion-mnist")[9] == "Ankle boot"
    assert inference.class_labels(10, "imagenet")[3] == "class 3"
    assert len(inference.class_labels(1000)) == 1000


# --- the compiled predictor ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_predictor():
    from shufflenet import build_model

    return inference.Predictor(build_model(TINY))


def test_predictor_matches_the_model_and_times_itself(small_predictor):
    batch = inference.preprocess(gradient(), TINY)
    probs = small_predictor(batch)
    assert probs.shape == (1, 10)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probs, np.asarray(small_predictor.model(batch, training=False)), rtol=1e-5,
                               atol=1e-6)
    result = small_predictor.predict(batch, runs=3)
    np.testing.assert_allclose(result.probabilities, probs[0], rtol=1e-5, atol=1e-6)
    assert result.runs == 3 and 0 < result.milliseconds < 10_000


def test_predictor_traces_once_for_any_batch_size(small_predictor):
    small_predictor(np.zeros((1, 32, 32, 1), np.float32))
    small_predictor(np.zeros((4, 32, 32, 1), np.float32))
    assert small_predictor._fn.experimental_get_tracing_count() == 1


def test_predictor_refuses_a_picture_for_another_configuration(small_predictor):
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 1\)"):
        small_predictor(np.zeros((1, 224, 224, 3), np.float32))
    with pytest.raises(ValueError, match="runs"):
        small_predictor.predict(np.zeros((1, 32, 32, 1), np.float32), runs=0)
