"""Whatever people feed the explorer, they get a clear message and the app keeps working
: uploads of every kind of bad or unusual picture, bad weights files, bad URL
parameters, bad command-line arguments and damaged Fashion-MNIST files.

Every fixture is made here with Pillow, h5py or plain bytes: no binary test files. App-level
checks use AppTest on a small Fashion-MNIST network (fast to build); each bad input is
followed by a good one in the same session, which must work.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import re
import struct
import subprocess
import sys
import tomllib
import zlib
from pathlib import Path

import apptest_support
import numpy as np
import pytest
from apptest_support import no_exception
from conftest import TINY
from PIL import Image, ImageFile
from streamlit.testing.v1 import AppTest

from explorer import format as fmt
from explorer import state as ui_state
from explorer import url
from shufflenet import ShuffleNetConfig, checkpoints, cli, complexity, data
from shufflenet.inference import MAX_PIXELS, UPLOAD_TYPES, ImageDecodeError, decode_image

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = "PNG, JPEG, WebP, BMP or GIF"
#: A small network for the Predictions view (random weights; builds in a second or two).
TINY_URL = {"view": "predictions", "task": "fashion-mnist", "groups": "2", "scale": "0.25", "blocks": "1,1,1"}
UPLOAD_LIMIT_MB = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
make_app = functools.partial(apptest_support.make_app, timeout_s=180)


# --- fixtures made in code ------------------------------------------------------------------

def encode(image: Image.Image, fmt_: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt_, **kw)
    return buf.getvalue()


def noise(w: int = 64, h: int = 48, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_by_hand(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG written chunk by chunk (Pillow cannot write 16-bit RGB or a bomb cheaply)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def png_bomb(side: int) -> bytes:
    """A side x side 1-bit black PNG: a few kB on disk, side² pixels once decoded."""
    stream = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    body = b"".join(stream.compress(row * 1000) for _ in range(side // 1000)) + stream.compress(
        row * (side % 1000)) + stream.flush()
    return png_by_hand(side, side, 1, 0, body)


def rgb16_png(rgb: tuple[int, int, int], size: int = 8) -> bytes:
    pixels = np.empty((size, size, 3), ">u2")
    pixels[...] = rgb
    rows = b"".join(b"\x00" + pixels[y].tobytes() for y in range(size))
    return png_by_hand(size, size, 16, 2, zlib.compress(rows))


def halves(w: int = 40, h: int = 20) -> np.ndarray:
    """Left half red, right half blue."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = (255, 0, 0)
    a[:, w // 2:] = (0, 0, 255)
    return a


def exif_jpeg(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(halves()), "JPEG", exif=exif.tobytes(), quality=95)


def animation(fmt_: str) -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    kw = {"lossless": True} if fmt_ == "WEBP" else {}
    frames[0].save(buf, fmt_, save_all=True, append_images=frames[1:], duration=100, loop=0, **kw)
    return buf.getvalue()


def huge_png_under_limit() -> bytes:
    """Incompressible noise just under the upload limit (MB as Streamlit counts: 2**20 bytes)."""
    limit = UPLOAD_LIMIT_MB * 2**20
    side = int((0.97 * limit / 3) ** 0.5)
    data_ = encode(noise(side, side, seed=1), "PNG", compress_level=1)
    assert 0.9 * limit < len(data_) < limit, len(data_)
    return data_


_PNG = encode(noise(), "PNG")
_JPEG = encode(noise(), "JPEG", quality=90)
_IDAT = _PNG.index(b"IDAT") + 4

#: name -> (bytes, words the message must contain). Each case says what was wrong and what is allowed.
BAD_UPLOADS = {
    "empty.png": (b"", ["empty (0 bytes)", ALLOWED]),
    "truncated.png": (_PNG[: len(_PNG) // 2], ["looks like a PNG image but is damaged or truncated", "Save it again"]),
    "truncated.jpg": (_JPEG[: len(_JPEG) // 3], ["looks like a JPEG image but is damaged or truncated"]),
    "corrupt.png": (_PNG[:_IDAT + 50] + bytes(300) + _PNG[_IDAT + 350:], ["PNG image but is damaged"]),
    "corrupt-header.png": (_PNG[:16] + b"\xff" * 8 + _PNG[24:], ["starts like a PNG image but its header is damaged"]),
    "corrupt-header.jpg": (_JPEG[:2] + bytes(200) + _JPEG[202:],
                           ["starts like a JPEG image but its header is damaged"]),
    "page.html": (b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
                  ["is an HTML page, not an image", ALLOWED]),
    "drawing.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect width="9" height="9"/></svg>',
                    ["is an SVG drawing, not an image", "export drawings to PNG"]),
    "notes.png": (b"shopping list\neggs\nmilk\n" * 20, ["is a text file, not an image", ALLOWED]),
    "random.png": (bytes(np.random.default_rng(2).integers(0, 256, 4000, dtype=np.uint8)),
                   ["is not an image that can be read", ALLOWED]),
    "scan.tiff": (encode(noise(), "TIFF"), ["is a TIFF image, which is not supported here", ALLOWED]),
    "bomb.png": (png_bomb(20_000), ["far more than the 50 million pixels allowed", "decompression bomb",
                                    "Scale it down"]),
    "big.png": (png_bomb(8_000), ["is 8000×8000 pixels, more than the 50 million allowed", "Scale it down"]),
}


def _expect_message(message: str, words: list[str], name: str) -> None:
    assert message.startswith(name), message
    for word in words:
        assert word in message, (word, message)
    assert "Traceback" not in message


# --- uploads: the library ---------------------------------------------------------------------

@pytest.mark.parametrize("name", list(BAD_UPLOADS))
def test_bad_upload_is_refused_with_what_and_what_to_do(name):
    data_, words = BAD_UPLOADS[name]
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data_, name)
    _expect_message(str(info.value), words, name)


@pytest.mark.parametrize("side", [20_000, 8_000])
def test_decompression_bomb_is_refused_before_decoding_a_pixel(side, monkeypatch):
    data_ = png_bomb(side)
    assert len(data_) < 100_000  # a few kB that would decode to side² pixels
    assert side * side > MAX_PIXELS

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(Image.Image, "load", no_decoding)
    with pytest.raises(ImageDecodeError, match="Scale it down"):
        decode_image(data_, "bomb.png")


def test_largest_accepted_picture_decodes():
    side = int(MAX_PIXELS ** 0.5) - 1  # 7070 x 7070, just under the limit
    picture = decode_image(encode(Image.new("L", (side, side), 90), "PNG"), "large.png", max_side=2048)
    assert picture.size == (2048, 2048) and picture.mode == "RGB" and picture.getpixel((5, 5)) == (90, 90, 90)


def test_huge_upload_just_under_the_limit_decodes_and_is_kept_small():
    data_ = huge_png_under_limit()
    full = decode_image(data_, "huge.png")
    assert full.size[0] > 2048 and full.mode == "RGB"
    from explorer import cache

    kept = cache.decode_upload(data_, "huge.png")
    assert max(kept.size) == cache.UPLOAD_MAX_SIDE


@pytest.mark.parametrize(("name", "data_", "pixel"), [
    ("gray16.png", encode(Image.fromarray(np.full((8, 8), 40_000, np.uint16)), "PNG"), (156, 156, 156)),
    ("rgb16.png", rgb16_png((65_535, 0, 32_768)), (255, 0, 128)),
    ("cmyk.jpg", encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=100), (255, 0, 0)),
    ("palette.png", encode(Image.new("RGB", (16, 16), (255, 0, 0)).convert("P"), "PNG"), (255, 0, 0)),
    ("palette-transparent.gif", encode(Image.new("P", (16, 16), 0), "GIF", transparency=0), (255, 255, 255)),
    ("rgba-clear.png", encode(Image.new("RGBA", (16, 16), (255, 0, 0, 0)), "PNG"), (255, 255, 255)),
    ("rgba-opaque.png", encode(Image.new("RGBA", (16, 16), (0, 0, 255, 255)), "PNG"), (0, 0, 255)),
    ("gray.png", encode(Image.new("L", (16, 16), 100), "PNG"), (100, 100, 100)),
    ("gray-alpha.png", encode(Image.new("LA", (16, 16), (0, 0)), "PNG"), (255, 255, 255)),
    ("bilevel.png", encode(Image.new("1", (16, 16), 1), "PNG"), (255, 255, 255)),
    ("animated.gif", animation("GIF"), (255, 0, 0)),
    ("animated.png", animation("PNG"), (255, 0, 0)),
    ("animated.webp", animation("WEBP"), (255, 0, 0)),
])
def test_unusual_pictures_become_8bit_rgb(name, data_, pixel):
    picture = decode_image(data_, name)
    assert picture.mode == "RGB"
    assert all(abs(a - b) <= 2 for a, b in zip(picture.getpixel((4, 4)), pixel)), picture.getpixel((4, 4))


@pytest.mark.parametrize(("orientation", "size", "red_at", "blue_at"), [
    (1, (40, 20), (5, 10), (35, 10)),  # as stored: red left
    (3, (40, 20), (35, 10), (5, 10)),  # rotated 180°: red right
    (6, (20, 40), (10, 5), (10, 35)),  # rotate 90° clockwise to display: red on top
    (8, (20, 40), (10, 35), (10, 5)),  # rotate 90° counter-clockwise: red at the bottom
])
def test_exif_rotated_jpeg_comes_out_upright(orientation, size, red_at, blue_at):
    picture = decode_image(exif_jpeg(orientation), "phone.jpg")
    assert picture.size == size
    red, blue = picture.getpixel(red_at), picture.getpixel(blue_at)
    assert red[0] > 200 and red[2] < 60 and blue[2] > 200 and blue[0] < 60


def test_damaged_exif_is_ignored():
    jpeg = encode(Image.fromarray(halves()), "JPEG")
    app1 = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff" + bytes(10)  # an IFD promising 65535 entries
    damaged = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]
    with pytest.warns(UserWarning, match="Corrupt EXIF"):
        assert decode_image(damaged, "odd.jpg").size == (40, 20)


@pytest.mark.parametrize(("name", "shown"), [
    ("photo.png", "photo.png"),
    ("my_photo.png", r"my\_photo.png"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\cat.jpg", "cat.jpg"),
    ("![x](http://evil.example/t.png).png", r"t.png\).png"),
    ("[click](javascript:alert(1)).png", r"\[click\]\(javascript\:alert\(1\)\).png"),
    ("www.evil.example.png", r"www\.evil.example.png"),
    ("a\nb\u202e\x00.png", "ab.png"),
    ("", "the uploaded file"),
])
def test_upload_names_are_shown_never_used(name, shown):
    assert fmt.upload_name(name) == shown
    assert len(fmt.upload_name("x" * 500 + ".png")) <= 60


# --- uploads: the app -------------------------------------------------------------------------


def page_still_works(at: AppTest, view: str) -> None:
    """The rest of the page is there: sidebar, title, weights selector."""
    no_exception(at)
    assert at.title[0].value.endswith(view)
    assert at.radio(key="view").value == view and at.selectbox(key="groups").value == 2


def predicted(at: AppTest) -> bool:
    return any("probability" in df.value.columns and len(df.value) == 5 for df in at.dataframe)


@pytest.mark.slow
def test_every_bad_upload_in_the_app_shows_its_message_and_a_good_one_works_after():
    at = make_app(**TINY_URL)
    page_still_works(at, "Predictions")
    assert predicted(at)  # the gallery picture
    def upload(name, data_):  # the element is looked up anew after every run
        at.file_uploader(key="pred_upload").set_value((name, data_, "image/png")).run()

    for name, (data_, words) in BAD_UPLOADS.items():
        # The browser only offers files with the accepted extensions (and Streamlit's server
        # checks them too), so an HTML page or SVG drawing arrives renamed, as people do it.
        stem, ext = name.rsplit(".", 1)
        name = name if ext in UPLOAD_TYPES else f"{stem}.png"
        upload(name, data_)
        page_still_works(at, "Predictions")
        errors = [e.value for e in at.error]
        assert len(errors) == 1, (name, errors)
        _expect_message(errors[0], words, fmt.upload_name(name))
        assert not predicted(at)
        upload("good.png", _PNG)
        page_still_works(at, "Predictions")
        assert not at.error and predicted(at), name


@pytest.mark.slow
def test_unusual_pictures_predict_in_the_app():
    at = make_app(**TINY_URL)
    for name, data_ in [("gray16.png", encode(Image.fromarray(np.full((8, 8), 40_000, np.uint16)), "PNG")),
                        ("cmyk.jpg", encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG")),
                        ("palette.png", encode(noise().convert("P"), "PNG")),
                        ("rgba.png", encode(Image.new("RGBA", (16, 16), (255, 0, 0, 0)), "PNG")),
                        ("animated.gif", animation("GIF")), ("phone.jpg", exif_jpeg(6)),
                        ("huge.png", huge_png_under_limit())]:
        at.file_uploader(key="pred_upload").set_value((name, data_, "image/png")).run()
        page_still_works(at, "Predictions")
        assert not at.error and predicted(at), name


@pytest.mark.slow
def test_crafted_file_name_cannot_add_links_to_the_page():
    at = make_app(**TINY_URL)
    name = "![x](data:,evil)[click](javascript:alert(1)).png"
    at.file_uploader(key="pred_upload").set_value((name, b"junk", "image/png")).run()
    no_exception(at)
    (error,) = [e.value for e in at.error]
    assert error.startswith(r"\!\[x\]\(data\:,evil\)\[click\]\(javascript\:alert\(1\)\).png is a text file")
    assert not re.search(r"(?<!\\)[\[\]()!]", error.split(" is a text file")[0])  # every bracket escaped


# --- weights uploads ------------------------------------------------------------------------

def manifest_bytes(config: ShuffleNetConfig) -> bytes:
    return json.dumps({
        "config": config.to_dict(), "class_names": [f"c{i}" for i in range(config.num_classes)],
        "task": "fashion-mnist", "dataset": {"name": "test"}, "preprocessing": {}, "epochs": 1,
        "test_accuracy": 0.5, "training_seconds": 1.0, "library_version": "test",
    }).encode()


@pytest.fixture(scope="module")
def weights_files(tmp_path_factory):
    """name -> bytes: good weights for TINY and every kind of bad weights file."""
    import keras

    from shufflenet import build_model

    folder = tmp_path_factory.mktemp("weights")

    def saved(config, name):
        path = folder / f"{name}.weights.h5"
        build_model(config).save_weights(path)
        return path.read_bytes()

    good = saved(TINY, "good")
    inputs = keras.Input((4,))
    lambda_model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    lambda_model.save(folder / "lambda.keras")
    return {
        "good": good,
        "architecture": saved(TINY.replace(groups=4), "g4"),
        "classes": saved(TINY.replace(num_classes=5), "c5"),
        "truncated": good[: len(good) // 2],
        "not_hdf5": b"\x00\x01 these bytes are no HDF5 file" * 10,
        "lambda_keras": (folder / "lambda.keras").read_bytes(),
    }


#: case -> (weights key, manifest bytes or None for TINY's, words of the message).
BAD_WEIGHTS = {
    "architecture": ("architecture", None, ["does not fit model", "stem_conv/kernel needs shape (3, 3, 1, 6)",
                                            "another configuration"]),
    "classes": ("classes", None, ["classifier_fc/kernel needs shape (224, 10)",
                                  "the file's nearest array is (224, 5)"]),
    "truncated": ("truncated", None, ["cannot be opened (truncated or damaged?)"]),
    "not_hdf5": ("not_hdf5", None, ["is not an HDF5 file", "model.save_weights"]),
    "lambda_keras": ("lambda_keras", None, ["zip archive", "Lambda", "never loaded"]),
    "manifest_not_json": ("good", b"{'config': oops", ["is not valid JSON"]),
    "manifest_other_config": ("good", manifest_bytes(TINY.replace(groups=4, num_classes=12)),
                              ["groups: 4 in the checkpoint, 2 in the model", "num_classes: 12"]),
    "manifest_empty": ("good", b"", ["is not valid JSON"]),
}


@pytest.mark.parametrize("case", list(BAD_WEIGHTS))
def test_bad_weights_are_refused_by_the_library(case, weights_files):
    from shufflenet.weights import load_uploaded

    key, manifest, words = BAD_WEIGHTS[case]
    with pytest.raises(checkpoints.CheckpointError) as info:
        load_uploaded(weights_files[key], manifest if manifest is not None else manifest_bytes(TINY), TINY,
                      f"{case}.weights.h5", "manifest.json")
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)
    assert "/tmp" not in message and "Traceback" not in message  # the private temporary path is not shown


def test_no_code_path_loads_whole_models_unsafely():
    # Weights are only ever loaded with load_weights (arrays, no code); a .keras file is refused
    # above before Keras sees it. Nothing may switch Keras's safe mode off.
    for folder in ("shufflenet", "explorer"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            assert "safe_mode=False" not in text and "enable_unsafe_deserialization" not in text, path
            assert "keras.models.load_model(" not in text.replace("`keras.models.load_model(path, safe_mode=True)`",
                                                                  ""), path


@pytest.mark.slow
def test_bad_weights_uploads_in_the_app_fall_back_to_random_and_a_good_pair_works(weights_files):
    at = make_app(**TINY_URL)
    at.selectbox(key="pred_weights").set_value("Upload weights (.weights.h5 + manifest.json)").run()
    page_still_works(at, "Predictions")

    def upload(weights_name, weights_data, manifest_data):  # the elements are looked up anew after every run
        at.file_uploader(key="pred_weights_file").set_value((weights_name, weights_data, "application/octet-stream"))
        at.file_uploader(key="pred_manifest_file").set_value(("manifest.json", manifest_data, "application/json"))
        at.run()

    for case, (key, manifest_data, words) in BAD_WEIGHTS.items():
        upload(f"{case}.weights.h5", weights_files[key], manifest_data if manifest_data is not None
               else manifest_bytes(TINY))
        page_still_works(at, "Predictions")
        (error,) = [e.value for e in at.error]
        for word in words:
            assert word in error, (case, word, error)
        assert "random weights" in error and predicted(at), case  # the page still predicts
        upload("mine.weights.h5", weights_files["good"], manifest_bytes(TINY))
        page_still_works(at, "Predictions")
        assert not at.error and any("Uploaded mine.weights.h5" in s.value for s in at.success), case


# --- URL query parameters -------------------------------------------------------------------

JUNK = ["", " ", "nan", "NaN", "inf", "-inf", "1e309", "-0", "1e-300", "0x10", "3.5", "three", "٣x", "💥",
        "\u202e3", "\x00", "'; DROP TABLE", "<script>alert(1)</script>", "`](http://evil.example)", "9" * 5000,
        "1,2", "[1]", "None", "true"]
FIELDS = ["view", "groups", "blocks", "reduction", "scale", "task", "size", "classes"]


@pytest.mark.parametrize("field", FIELDS)
def test_every_junk_value_of_every_field_warns_or_means_a_valid_value(field):
    for value in JUNK:
        state, warns = url.parse_query_params({field: value})
        ui_state.config_from_state(state)  # always a valid configuration, whatever the URL held
        assert len(warns) <= 1, (value, warns)
        for warning in warns:
            assert f"`{field}=" in warning and "is not valid" in warning and "Using the default" in warning
            # One line, short, and the quoted value cannot end its code span early.
            assert "\n" not in warning and len(warning) < 400 and warning.count("`") == 2, warning


@pytest.mark.parametrize(("query", "field", "allowed"), [
    ({"groups": "5"}, "groups", "g must be one of 1, 2, 3, 4, 8"),
    ({"groups": "3.5"}, "groups", "g must be one of"),
    ({"groups": "nan"}, "groups", "g must be one of"),
    ({"blocks": "1000,1000,1000"}, "blocks", "three whole numbers from 1 to 16"),
    ({"blocks": "0,8,4"}, "blocks", "from 1 to 16"),
    ({"blocks": "4,8,inf"}, "blocks", "from 1 to 16"),
    ({"blocks": "4,8"}, "blocks", "one per stage"),
    ({"reduction": "-0.25"}, "reduction", "from 0.05 to 1.0"),
    ({"reduction": "nan"}, "reduction", "from 0.05 to 1.0"),
    ({"scale": "inf"}, "scale", "from 0.25 to 3.0"),
    ({"scale": "1e309"}, "scale", "from 0.25 to 3.0"),
    ({"scale": "0.3"}, "scale", "in steps of 0.25"),
    ({"size": "100000"}, "size", "a multiple of 32 from 32 to 512"),
    ({"size": "33"}, "size", "a multiple of 32"),
    ({"size": "-32"}, "size", "from 32 to 512"),
    ({"classes": "1000000000000"}, "classes", "from 2 to 100,000"),
    ({"classes": "1"}, "classes", "from 2 to 100,000"),
    ({"task": "cifar"}, "task", "imagenet, fashion-mnist"),
    ({"view": "../../etc"}, "view", "overview, architecture"),
])
def test_bad_url_value_message_says_what_is_allowed(query, field, allowed):
    _, warns = url.parse_query_params(query)
    (warning,) = warns
    assert f"`{field}={query[field]}`" in warning and allowed in warning and "Using the default" in warning


def test_repeated_keys_use_the_last_value_and_unknown_keys_are_listed_safely():
    state, warns = url.parse_query_params({"groups": ["3", "8"], "scale": ["9", "0.5"]})
    assert state["groups"] == 8 and state["scale"] == 0.5 and warns == []
    keys = {f"k{i}": "1" for i in range(50)} | {"`](http://evil.example)": "1", "\u202e": "1"}
    (warning,) = url.parse_query_params(keys)[1]
    assert "and 47 more" in warning
    assert warning.count("`") == 10  # five quoted keys, none able to end its quote early


@pytest.mark.slow
def test_junk_url_never_breaks_the_app_and_the_next_change_works():
    at = make_app(groups=["5", "💥"], blocks="1000,1000,1000", reduction="nan", scale="inf", task="cifar",
                  size="100000", classes="1e12", view="overview", junk="\u202e<script>", **{"`](x)": "1"})
    no_exception(at)
    text = " ".join(w.value for w in at.warning)
    for field in ("groups", "blocks", "reduction", "scale", "task", "size", "classes"):
        assert f"`{field}=" in text, field
    assert "Unknown URL parameter" in text
    default = ShuffleNetConfig()
    assert at.metric[0].value == f"{complexity.totals(default)['conv_macs']:,}"  # the paper's network instead
    at.selectbox(key="groups").set_value(8).run()
    no_exception(at)
    assert not at.warning
    assert at.metric[0].value == f"{complexity.totals(default.replace(groups=8))['conv_macs']:,}"


@pytest.mark.slow
def test_too_large_network_is_refused_in_predictions_and_the_rest_works():
    # Every field at its largest: 2.6 GB of weights and activations; the other views still work.
    at = make_app(view="predictions", groups="8", blocks="16,16,16", scale="3", size="512", classes="100000")
    no_exception(at)
    (error,) = [e.value for e in at.error]
    assert "This network needs about" in error and "more than the 500.00 MB" in error
    assert "Lower the width scale" in error
    at.radio(key="view").set_value("Overview").run()
    no_exception(at)
    big = ShuffleNetConfig(groups=8, blocks=(16, 16, 16), scale=3.0, input_size=512, num_classes=100_000)
    assert at.metric[0].value == f"{complexity.totals(big)['conv_macs']:,}"


# --- command-line arguments -----------------------------------------------------------------

@pytest.mark.parametrize(("argv", "words"), [
    (["summary", "--groups", "5"], ["`groups` must be one of 1, 2, 3, 4, 8", "Received: groups=5"]),
    (["summary", "--groups", "three"], ["argument --groups: invalid int value: 'three'"]),
    (["summary", "--groups", "\u202e3"], ["invalid int value"]),
    (["summary", "--groups", "💥"], ["invalid int value"]),
    (["summary", "--blocks", "1000", "8", "4"],
     ["`blocks[stage2]` must be from 1 to 16", "Received: blocks[stage2]=1000"]),
    (["summary", "--blocks", "4", "8"], ["expected 3 arguments"]),
    (["summary", "--reduction", "nan"], ["`reduction` must be a number from 0.05 to 1.0", "Received: reduction=nan"]),
    (["summary", "--reduction", "0"], ["`reduction` must be a number from 0.05 to 1.0"]),
    (["summary", "--scale", "inf"], ["`scale` must be a number from 0.25 to 3.0", "Received: scale=inf"]),
    (["summary", "--scale", "1e309"], ["Received: scale=inf"]),
    (["summary", "--scale", "-1"], ["`scale` must be a number from 0.25 to 3.0"]),
    (["summary", "--input-size", "100000"], ["`input_size` must be from 32 to 512, a multiple of 32"]),
    (["summary", "--input-size", "100"], ["`input_size` must be a multiple of 32"]),
    (["summary", "--input-size", "2.5"], ["invalid int value"]),
    (["summary", "--channels", "2"], ["`channels` must be 1 (grayscale) or 3 (RGB)"]),
    (["summary", "--classes", "1"], ["`num_classes` must be from 2 to 100000"]),
    (["summary", "--classes", "9" * 30], ["`num_classes` must be from 2 to 100000"]),
    (["diagram", "--stage", "9"], ["invalid choice: 9"]),
    (["diagram", "--view", "micro", "--stage", "3", "--blocks", "4", "1", "4"], ["no stride-1 unit"]),
    (["train", "--task", "fashion-mnist", "--epochs", "0", "--out", "x"], ["expected a whole number >= 1"]),
    (["train", "--task", "fashion-mnist", "--epochs", "1", "--out", "x"], ["`num_classes` must be 10"]),
    (["train", "--task", "fashion-mnist", "--epochs", "1", "--out", "x", "--classes", "10", "--lr", "nan"],
     ["`learning_rate` must be a number above 0", "Received: learning_rate=nan"]),
    (["train", "--task", "fashion-mnist", "--epochs", "1", "--out", "x", "--classes", "10", "--lr", "-1"],
     ["`learning_rate` must be a number above 0"]),
    (["train", "--task", "fashion-mnist", "--epochs", "1", "--out", "x", "--classes", "10", "--seed", "-1"],
     ["`seed` must be a whole number from 0 to 4294967295", "Received: seed=-1"]),
    (["train", "--task", "fashion-mnist", "--epochs", "1", "--out", "x", "--classes", "10", "--batch-size", "0"],
     ["expected a whole number >= 1, got 0"]),
    (["evaluate", "x", "--limit", "-3"], ["expected a whole number >= 1, got -3"]),
    (["nonsense"], ["invalid choice"]),
])
def test_bad_cli_arguments_exit_2_with_one_line(argv, words, capsys):
    with pytest.raises(SystemExit) as info:
        sys.exit(cli.main(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_repeated_cli_flag_takes_the_last_value(capsys):
    assert cli.main(["summary", "--groups", "3", "--groups", "8", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["groups"] == 8


def test_cli_junk_in_a_real_process_is_one_line_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "shufflenet", "summary", "--scale", "nan", "--groups", "8"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "python -m shufflenet summary: error: `scale` must be a number from 0.25 to 3.0. Received: scale=nan"]


# --- Fashion-MNIST files --------------------------------------------------------------------

def write_idx(path: Path, array: np.ndarray, magic: bytes | None = None, cut: int = 0) -> None:
    header = (magic or struct.pack(">HBB", 0, 8, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as f:
        f.write(raw[: len(raw) - cut])


def fashion_folder(folder: Path, *, magic=None, cut=0, labels=4) -> Path:
    folder.mkdir()
    images = np.zeros((4, 28, 28), np.uint8)
    names = data.FASHION_MNIST_FILES
    write_idx(folder / names["train_images"], images)
    write_idx(folder / names["train_labels"], np.arange(4) % 10)
    write_idx(folder / names["test_images"], images, magic=magic, cut=cut)
    write_idx(folder / names["test_labels"], np.arange(labels) % 10)
    return folder


@pytest.mark.parametrize(("kind", "words"), [
    ("magic", ["t10k-images-idx3-ubyte.gz", "magic number 0x00000903 is not 0x00000803"]),
    ("truncated", ["t10k-images-idx3-ubyte.gz", "holds 3036 data bytes but its header announces 3136",
                   "truncated or corrupt"]),
    ("counts", ["t10k-labels-idx1-ubyte.gz", "holds 3 labels but t10k-images-idx3-ubyte.gz holds 4 images"]),
])
def test_bad_fashion_mnist_files_are_named_with_the_problem(kind, words, tmp_path):
    folder = fashion_folder(tmp_path / "fm", magic=struct.pack(">HBB", 0, 9, 3) if kind == "magic" else None,
                            cut=100 if kind == "truncated" else 0, labels=3 if kind == "counts" else 4)
    with pytest.raises(data.BadDatasetFileError) as info:
        data.load_fashion_mnist(folder, download=False)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert "Replace it with the original file" in str(info.value)
    # ...and the CLI says the same on one line, before TensorFlow is even imported.
    proc = subprocess.run([sys.executable, "-m", "shufflenet", "train", "--task", "fashion-mnist", "--epochs", "1",
                           "--classes", "10", "--input-size", "32", "--channels", "1", "--out", str(tmp_path / "o"),
                           "--data", str(folder)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: Bad dataset file")
    assert words[-1] in proc.stderr

