"""Running a model on one picture: decoding (with errors a person can act on), resizing to the
configuration's input, a compiled predictor with timing, and the top-k classes.

TensorFlow is imported only when a `Predictor` is made. `model.predict` on one image costs
100-230 ms of overhead on this project's machines, so a `Predictor` compiles one
`tf.function` per model, traced once for a batch of any size.
"""

from __future__ import annotations

import dataclasses
import io
import statistics
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import ShuffleNetConfig
from .data import FASHION_MNIST_CLASSES

#: File extensions accepted for uploads, and the Pillow formats behind them (MPO is the
#: multi-picture JPEG many phone cameras write).
UPLOAD_TYPES = ("png", "jpg", "jpeg", "webp", "bmp", "gif")
_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WebP", "BMP": "BMP", "GIF": "GIF"}
_ALLOWED_TEXT = "PNG, JPEG, WebP, BMP or GIF"

#: Largest picture accepted, in pixels (Pillow's own decompression-bomb limit is about 89 M).
MAX_PIXELS = 50_000_000

#: The standard ImageNet evaluation crop: resize the short side to 256, keep the central 224.
IMAGENET_CROP_FRACTION = 0.875

#: Photos bundled with scikit-image (available offline): function name -> caption.
SAMPLE_IMAGES = {
    "astronaut": "Astronaut (Eileen Collins)",
    "chelsea": "Chelsea the cat",
    "coffee": "Cup of coffee",
    "rocket": "Rocket on the launch pad",
    "camera": "Cameraman (grayscale)",
    "coins": "Coins (grayscale)",
    "horse": "Horse silhouette",
}


class ImageDecodeError(ValueError):
    """An uploaded file could not be used as a picture; the message says why and what to do."""


#: First bytes of the accepted formats (to tell a damaged picture from something else).
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
               (b"BM", "BMP"))


def _unreadable(data: bytes, name: str) -> str:
    """Why bytes that Pillow cannot identify are not a picture, as specifically as the first
    bytes allow: a damaged header of a known format, a text file (HTML, SVG, ...), or neither."""
    fmt = next((f for signature, f in _SIGNATURES if data.startswith(signature)), None)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        fmt = "WebP"
    if fmt is not None:
        return (f"{name} starts like a {fmt} image but its header is damaged, so it cannot be read. "
                "Save it again or try another file.")
    try:
        text = data[:2048].decode("utf-8").lower()
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        kind = ("an SVG drawing" if "<svg" in text else "an HTML page" if "<html" in text or "<!doctype" in text
                else "a text file")
        return (f"{name} is {kind}, not an image. Upload a {_ALLOWED_TEXT} image (export drawings to PNG "
                "first).")
    return f"{name} is not an image that can be read. Upload a {_ALLOWED_TEXT} image."


# --- decoding ---------------------------------------------------------------------------------

def decode_image(data: bytes, name: str = "The file", max_side: int | None = None) -> Image.Image:
    """Decode PNG/JPEG/WebP/BMP/GIF bytes to an RGB picture (first frame of an animation,
    EXIF orientation applied, transparency composited on white).

    With `max_side`, a larger picture is scaled down (aspect kept) so its longer side is
    `max_side`: a server that keeps decoded uploads bounds their memory this way.

    Raises ImageDecodeError, naming `name`, for empty, unreadable, damaged, oversized or
    unsupported files.
    """
    if not data:
        raise ImageDecodeError(f"{name} is empty (0 bytes). Upload a {_ALLOWED_TEXT} image.")
    # No warning filters here: they are process-wide, and the server decodes in many sessions'
    # threads at once. Pillow refuses more than ~179 M pixels itself (DecompressionBombError),
    # and every size it merely warns about (~89 M and up) is above MAX_PIXELS, refused below
    # from the header, before a pixel is decoded.
    fmt = None
    try:
        image = Image.open(io.BytesIO(data))
        fmt = image.format
        if fmt not in _FORMATS:
            raise ImageDecodeError(
                f"{name} is a {fmt} image, which is not supported here. Upload a {_ALLOWED_TEXT} image."
            )
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageDecodeError(
                f"{name} is {width}×{height} pixels, more than the {MAX_PIXELS // 1_000_000} million "
                "allowed. Scale it down and upload it again."
            )
        image.seek(0)
        image.load()
        image = to_rgb(ImageOps.exif_transpose(image))
        if max_side is not None and max(image.size) > max_side:
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(_unreadable(data, name)) from exc
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(
            f"{name} has far more than the {MAX_PIXELS // 1_000_000} million pixels allowed (a picture this "
            "large could be a decompression bomb), so it was not decoded. Scale it down and upload it again."
        ) from exc
    except ImageDecodeError:
        raise
    except Exception as exc:  # untrusted bytes: any decoder failure means a damaged file
        raise ImageDecodeError(
            f"{name} looks like a {_FORMATS.get(fmt, _ALLOWED_TEXT)} image but is damaged or truncated ({exc}). "
            "Save it again or try another file."
        ) from exc
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB; transparent areas become white.

    16-bit grayscale (0..65535, as PNG defines it) is scaled by 255/65535, as Pillow already does
    for 16-bit RGB, so a mid-gray picture stays mid-gray; 32-bit integer and float grayscale,
    which have no fixed range, are stretched to 0..255."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        a = np.asarray(image, dtype=np.float64) * (255.0 / 65535.0)
        image = Image.fromarray(a.round().astype(np.uint8))
    elif image.mode in ("I", "F"):
        a = np.asarray(image, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
        image = Image.fromarray(a.round().astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def sample_image(name: str) -> Image.Image:
    """One of scikit-image's bundled photos (see SAMPLE_IMAGES) as an RGB picture."""
    if name not in SAMPLE_IMAGES:
        raise ValueError(f"Unknown sample image {name!r}. Choose one of: {', '.join(SAMPLE_IMAGES)}.")
    import skimage.data

    array = np.asarray(getattr(skimage.data, name)())
    if array.dtype == bool:
        array = np.where(array, 255, 0).astype(np.uint8)
    return to_rgb(Image.fromarray(array))


# --- preprocessing ----------------------------------------------------------------------------

def default_crop_fraction(config: ShuffleNetConfig) -> float:
    """0.875 (ImageNet's resize-256-crop-224) for RGB inputs; 1.0 for grayscale ones, whose
    Fashion-MNIST items fill the whole frame."""
    return IMAGENET_CROP_FRACTION if config.channels == 3 else 1.0


def preprocess(image: Image.Image, config: ShuffleNetConfig, crop_fraction: float | None = None) -> np.ndarray:
    """A (1, S, S, C) float32 batch in [0, 1] for `config`: resize the short side to
    S / crop_fraction, cut out the central S×S square, convert to grayscale when C = 1."""
    if crop_fraction is None:
        crop_fraction = default_crop_fraction(config)
    if not 0.1 <= crop_fraction <= 1.0:
        raise ValueError(f"`crop_fraction` must be from 0.1 to 1.0. Received: crop_fraction={crop_fraction}")
    size = config.input_size
    image = to_rgb(image)
    short = max(size, round(size / crop_fraction))
    w, h = image.size
    scale = short / min(w, h)
    resized = image.resize((max(short, round(w * scale)), max(short, round(h * scale))),
                           Image.Resampling.BICUBIC, reducing_gap=3.0)
    w, h = resized.size
    left, top = (w - size) // 2, (h - size) // 2
    crop = resized.crop((left, top, left + size, top + size))
    if config.channels == 1:
        crop = crop.convert("L")
    array = np.asarray(crop, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[..., None]
    return array[None]


def batch_preview(batch: np.ndarray) -> np.ndarray:
    """The first picture of a preprocessed batch as uint8 (H, W) or (H, W, 3), for display."""
    picture = np.clip(np.asarray(batch)[0] * 255.0, 0, 255).round().astype(np.uint8)
    return picture[..., 0] if picture.shape[-1] == 1 else picture


# --- predictions --------------------------------------------------------------------------------

def class_labels(num_classes: int, dataset: str | None = None) -> list[str]:
    """Names of the classes: Fashion-MNIST's when `dataset` is "fashion-mnist" and there are 10,
    otherwise "class 0", "class 1", ... (no ImageNet label list ships offline)."""
    if dataset == "fashion-mnist" and num_classes == len(FASHION_MNIST_CLASSES):
        return list(FASHION_MNIST_CLASSES)
    return [f"class {i}" for i in range(num_classes)]


def top_k(probabilities: np.ndarray, k: int = 5, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """The k most probable classes, best first: rank (1-based), class (index), label, probability.
    Ties keep the lower class index first."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if p.size == 0:
        raise ValueError("`probabilities` is empty.")
    if labels is not None and len(labels) != p.size:
        raise ValueError(f"Got {len(labels)} labels for {p.size} classes; they must match.")
    k = max(1, min(int(k), p.size))
    order = np.argsort(-p, kind="stable")[:k]
    names = [labels[i] if labels is not None else f"class {i}" for i in order]
    return pd.DataFrame({"rank": np.arange(1, k + 1), "class": order.astype(int), "label": names,
                         "probability": p[order]})


@dataclasses.dataclass(frozen=True)
class Prediction:
    probabilities: np.ndarray  # (num_classes,) for the first picture of the batch
    milliseconds: float  # median wall time of one call over `runs` calls
    runs: int


class Predictor:
    """A model compiled once for inference (a `tf.function` with a fixed input signature).

    The model is only read, never changed, so one Predictor can be shared (e.g. cached).
    """

    def __init__(self, model, warm_up: bool = True):
        import tensorflow as tf

        self.model = model
        self.input_shape = tuple(int(d) for d in model.input_shape[1:])
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        self._fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        if warm_up:
            self(np.zeros((1, *self.input_shape), dtype=np.float32))

    def _check(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != self.input_shape:
            raise ValueError(
                f"This model takes batches of shape (N, {', '.join(map(str, self.input_shape))}). "
                f"Received: {batch.shape}. Preprocess the picture for this configuration."
            )
        return batch

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities, (N, num_classes)."""
        return np.asarray(self._fn(self._check(batch)))

    def predict(self, batch: np.ndarray, runs: int = 5) -> Prediction:
        """Probabilities for the first picture and the median time of `runs` calls."""
        batch = self._check(batch)
        if runs < 1:
            raise ValueError(f"`runs` must be at least 1. Received: runs={runs}")
        times, probs = [], None
        for _ in range(runs):
            start = time.perf_counter()
            probs = np.asarray(self._fn(batch))
            times.append((time.perf_counter() - start) * 1000.0)
        return Prediction(probabilities=probs[0], milliseconds=statistics.median(times), runs=runs)
