"""Data for training and predictions: Fashion-MNIST, users' image folders, and the one
preprocessing function that turns images into a model's input.

Fashion-MNIST (Xiao, Rasul, Vollgraf 2017; Zalando SE, MIT licence) is read from the four
standard IDX gz files. Nothing here imports TensorFlow: the download fallback imports Keras
only when it is needed.
"""

from __future__ import annotations

import gzip
import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

#: Class names of Fashion-MNIST, in label order (zalandoresearch/fashion-mnist README).
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

#: The four standard files, as keras.datasets and the Debian package name them.
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

FASHION_MNIST_IMAGE_SIZE = 28
ENV_VAR = "SHUFFLENET_DATA"
#: Installed by the Debian package `dataset-fashion-mnist`.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

#: Fraction of the model's input side the image content fills; the rest is a black border.
#: 28/32: at input 32 a 28x28 Fashion-MNIST image is padded by 2 pixels a side, not resampled.
CONTENT_FRACTION = 28 / 32


class DatasetNotFoundError(FileNotFoundError):
    """No location holds a usable copy of the dataset (the message lists what was tried)."""


class BadDatasetFileError(ValueError):
    """A dataset file exists but is not what it should be. `path` names the file."""

    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(
            f"Bad dataset file {self.path}: {problem}. Replace it with the original file "
            f"(or delete it so that the next location is used)."
        )


class Split(NamedTuple):
    images: np.ndarray  # uint8, (n, 28, 28)
    labels: np.ndarray  # uint8, (n,)


class FashionMNIST(NamedTuple):
    train: Split
    test: Split
    source: str  # the folder the files came from, or "keras download"
    class_names: tuple[str, ...] = FASHION_MNIST_CLASSES


# --- IDX files --------------------------------------------------------------------------------
_IDX_UBYTE = 0x08


def read_idx(path: Path | str, ndim: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read one gzip-compressed IDX file of unsigned bytes with `ndim` dimensions.

    Checks the magic number (0x0000 08 ndim), that the data length matches the header, and
    that the trailing dimensions equal `shape` when given. Raises `BadDatasetFileError`.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise BadDatasetFileError(path, f"not a complete gzip file ({exc})") from None
    if len(raw) < 4:
        raise BadDatasetFileError(path, f"only {len(raw)} bytes, too short for an IDX header")
    zero, dtype, dims = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != _IDX_UBYTE or dims != ndim:
        raise BadDatasetFileError(
            path, f"magic number 0x{raw[:4].hex()} is not 0x000008{ndim:02x} "
                  f"(an IDX file of unsigned bytes with {ndim} dimension{'s' if ndim > 1 else ''})"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise BadDatasetFileError(path, "the header is truncated")
    dims_ = struct.unpack(f">{ndim}I", raw[4:header])
    if shape is not None and tuple(dims_[1:]) != tuple(shape):
        raise BadDatasetFileError(
            path, f"items are {'x'.join(map(str, dims_[1:]))}, expected {'x'.join(map(str, shape))}"
        )
    expected = int(np.prod(dims_))
    if len(raw) - header != expected:
        raise BadDatasetFileError(
            path, f"holds {len(raw) - header} data bytes but its header announces {expected} "
                  f"({' x '.join(map(str, dims_))}); the file is truncated or corrupt"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims_)


def _read_split(folder: Path, images_key: str, labels_key: str) -> Split:
    images_path = folder / FASHION_MNIST_FILES[images_key]
    labels_path = folder / FASHION_MNIST_FILES[labels_key]
    s = FASHION_MNIST_IMAGE_SIZE
    images = read_idx(images_path, 3, (s, s))
    labels = read_idx(labels_path, 1)
    if len(images) != len(labels):
        raise BadDatasetFileError(
            labels_path, f"holds {len(labels)} labels but {images_path.name} holds {len(images)} images"
        )
    if len(labels) and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise BadDatasetFileError(
            labels_path, f"holds label {int(labels.max())}; Fashion-MNIST labels are 0 to 9"
        )
    return Split(images, labels)


def read_fashion_mnist_folder(folder: Path | str) -> FashionMNIST:
    """Read and validate the four files in `folder` (see `FASHION_MNIST_FILES`)."""
    folder = Path(folder)
    missing = [name for name in FASHION_MNIST_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise DatasetNotFoundError(f"{folder} lacks {', '.join(missing)}")
    return FashionMNIST(
        train=_read_split(folder, "train_images", "train_labels"),
        test=_read_split(folder, "test_images", "test_labels"),
        source=str(folder),
    )


# --- where to find it -------------------------------------------------------------------------
def keras_cache_dir() -> Path:
    """Where `keras.datasets.fashion_mnist` keeps its download (KERAS_HOME or ~/.keras)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / "fashion-mnist"


def search_locations(path: Path | str | None = None) -> list[tuple[str, Path]]:
    """The folders tried, in order, as (description, folder)."""
    locations = []
    if path is not None:
        locations.append(("the path given", Path(path)))
    elif os.environ.get(ENV_VAR):
        locations.append((f"${ENV_VAR}", Path(os.environ[ENV_VAR])))
    locations.append(("Keras's cache", keras_cache_dir()))
    locations.append(("the Debian package dataset-fashion-mnist", DEBIAN_DIR))
    return locations


def _download() -> FashionMNIST:
    import keras  # slow import: only when every folder failed

    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    return FashionMNIST(Split(x_train, y_train), Split(x_test, y_test), "keras download")


_cache: dict[tuple, FashionMNIST] = {}
_cache_lock = threading.Lock()  # trainings in several threads (app sessions) share the cache


def _folder_key(folder: Path) -> tuple | None:
    try:
        stats = [(folder / n).stat() for n in FASHION_MNIST_FILES.values()]
    except OSError:
        return None
    return (str(folder.resolve()), *((s.st_size, s.st_mtime_ns) for s in stats))


def fashion_mnist_folder(path: Path | str | None = None) -> Path | None:
    """The folder `load_fashion_mnist(path)` reads without downloading (the first location with all
    four files, `SHUFFLENET_DATA` honoured), or None where it would have to download."""
    return next((folder for _, folder in search_locations(path) if _folder_key(folder) is not None), None)


def load_fashion_mnist(path: Path | str | None = None, *, download: bool = True) -> FashionMNIST:
    """Fashion-MNIST as uint8 arrays, from the first location that has all four files.

    Order: `path` (else the `SHUFFLENET_DATA` environment variable), Keras's cache
    (~/.keras/datasets/fashion-mnist), the Debian package's folder
    (/usr/share/datasets/fashion-mnist), then `keras.datasets.fashion_mnist` (downloads).
    A folder with all four files is used even if a file is bad: `BadDatasetFileError` names
    that file rather than silently falling back to other data. Results are cached per folder;
    the arrays are read-only.
    """
    tried = []
    for description, folder in search_locations(path):
        key = _folder_key(folder)
        if key is None:
            tried.append(f"{description} ({folder}): {_why_missing(folder)}")
            continue
        with _cache_lock:  # one reader at a time; another thread may not clear it between set and return
            data = _cache.get(key)
            if data is None:
                data = read_fashion_mnist_folder(folder)
                for a in (*data.train, *data.test):
                    a.setflags(write=False)
                _cache.clear()  # keep one copy in memory
                _cache[key] = data
        return data
    if download:
        try:
            return _download()
        except Exception as exc:  # offline, blocked, disk full...: all end in the message below
            tried.append(f"keras.datasets.fashion_mnist download: failed ({type(exc).__name__}: {exc})")
    else:
        tried.append("keras.datasets.fashion_mnist download: not attempted (download=False)")
    raise DatasetNotFoundError(
        "Fashion-MNIST was not found. Tried, in order:\n  - " + "\n  - ".join(tried) + "\n"
        "Fix one of: pass a folder holding " + ", ".join(FASHION_MNIST_FILES.values())
        + f" (or set {ENV_VAR} to it); install the Debian package (apt-get install "
        "dataset-fashion-mnist); or go online so Keras can download it."
    )


def _why_missing(folder: Path) -> str:
    if not folder.is_dir():
        return "no such folder"
    missing = [n for n in FASHION_MNIST_FILES.values() if not (folder / n).is_file()]
    return "missing " + ", ".join(missing)


# --- users' own images ------------------------------------------------------------------------
class ImageFolder(NamedTuple):
    images: list[np.ndarray]  # uint8 HxW or HxWx3, sizes may differ
    labels: np.ndarray  # int64 class indices
    class_names: tuple[str, ...]
    paths: list[Path]


def load_image_folder(root: Path | str) -> ImageFolder:
    """Images in `root/<class name>/*.png|jpg|...`, one sub-folder per class (sorted by name).

    Colour images are kept as RGB, grayscale ones as HxW; `preprocess` converts either.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder {root} does not exist.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise ValueError(
            f"{root} must hold one sub-folder per class (at least two), each with images. "
            f"Found {len(classes)} sub-folder(s)."
        )
    images, labels, paths = [], [], []
    for index, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise ValueError(f"Class folder {root / name} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
        for file in files:
            try:
                with Image.open(file) as im:
                    im = im.convert("L") if im.mode in ("1", "L", "I", "I;16", "F") else im.convert("RGB")
                    images.append(np.asarray(im, dtype=np.uint8))
            except (UnidentifiedImageError, OSError) as exc:
                raise ValueError(f"Cannot read image {file}: {exc}") from None
            labels.append(index)
            paths.append(file)
    return ImageFolder(images, np.asarray(labels, dtype=np.int64), tuple(classes), paths)


# --- preprocessing ----------------------------------------------------------------------------
PREPROCESSING = {
    "function": "shufflenet.data.preprocess",
    "pixels": "uint8 / 255 -> float32 in [0, 1]",
    "geometry": "fit into a square of round(input_size * 28 / 32) pixels (aspect kept, bilinear) and "
                "centre on a black input_size square; 28x28 at input 32 is padded by 2, not resampled",
    "channel_conversion": "gray -> RGB by repetition; RGB -> gray by ITU-R 601 luma",
}


def content_size(input_size: int) -> int:
    """Side of the image content inside the model input (the rest is a black border)."""
    return max(1, round(input_size * CONTENT_FRACTION))


def _as_image_list(images) -> list[np.ndarray] | np.ndarray:
    if isinstance(images, np.ndarray):
        if images.ndim == 2:
            return images[None]
        if images.ndim == 3:
            # HxWxC for a trailing axis of 1, 3 or 4 channels; otherwise a batch of HxW images.
            return images[None] if images.shape[-1] in (1, 3, 4) else images
        if images.ndim == 4:
            return images
        raise ValueError(
            f"Images must be HxW, HxWxC, NxHxW or NxHxWxC arrays. Received shape {images.shape}."
        )
    if isinstance(images, Sequence) and not isinstance(images, (str, bytes)):
        return [np.asarray(im) for im in images]
    raise ValueError(f"Images must be an array or a list of arrays. Received: {type(images).__name__}")


def _to_channels(im: np.ndarray, channels: int) -> np.ndarray:
    """uint8 HxW / HxWx{1,3,4} -> float32 HxWxchannels in the 0..255 range."""
    if im.ndim == 2:
        im = im[..., None]
    if im.ndim != 3 or im.shape[-1] not in (1, 3, 4):
        raise ValueError(f"An image must be HxW or HxWxC with C = 1, 3 or 4. Received shape {im.shape}.")
    im = im.astype(np.float32)
    if im.shape[-1] == 4:
        im = im[..., :3]  # alpha is dropped
    if im.shape[-1] == channels:
        return im
    if channels == 3:
        return np.repeat(im, 3, axis=-1)
    return im @ np.array([[0.299], [0.587], [0.114]], np.float32)


def _fit(im: np.ndarray, side: int) -> np.ndarray:
    """Resize float HxWxC (aspect kept, bilinear) so its longer side is `side`."""
    from PIL import Image

    h, w = im.shape[:2]
    if max(h, w) == side:
        return im
    k = side / max(h, w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    chans = [np.asarray(Image.fromarray(im[..., c], mode="F").resize(size, Image.BILINEAR)) for c in
             range(im.shape[-1])]
    return np.stack(chans, axis=-1)


def preprocess(images, config) -> np.ndarray:
    """The model input for `images`: float32 (n, input_size, input_size, channels) in [0, 1].

    `images` is one uint8 image (HxW or HxWxC) or a batch (NxHxW, NxHxWxC, or a list of images
    of any sizes). Used alike by training, evaluation and the app, so a checkpoint always sees
    what it was trained on (see `PREPROCESSING`, recorded in every manifest). A 3-D array whose
    last axis is 1, 3 or 4 is read as one image with channels, any other 3-D array as a batch.
    """
    size, channels = config.input_size, config.channels
    side = content_size(size)
    batch = _as_image_list(images)
    if isinstance(batch, np.ndarray) and batch.ndim == 3 and batch.shape[1:] == (side, side):
        # Fast path (a whole Fashion-MNIST split at input 32): no resampling, only padding.
        x = batch.astype(np.float32)[..., None]
        x = np.repeat(x, channels, axis=-1) if channels == 3 else x
        out = np.zeros((len(batch), size, size, channels), np.float32)
        o = (size - side) // 2
        out[:, o:o + side, o:o + side] = x
        return out * np.float32(1 / 255)
    out = np.zeros((len(batch), size, size, channels), np.float32)
    for i, im in enumerate(batch):
        im = np.asarray(im)
        if im.dtype != np.uint8:
            raise ValueError(f"Images must be uint8 (0..255). Received dtype {im.dtype} for image {i}.")
        x = _fit(_to_channels(im, channels), side)
        h, w = x.shape[:2]
        top, left = (size - h) // 2, (size - w) // 2
        out[i, top:top + h, left:left + w] = np.clip(x, 0, 255)
    return out * np.float32(1 / 255)


# --- a user's photo -> a Fashion-MNIST-like image ---------------------------------------------
class ConvertedPhoto(NamedTuple):
    pixels: np.ndarray  # uint8 28x28, light item on black
    inverted: bool  # True when the photo's background was light and was inverted


def photo_to_fashion_mnist(photo, light_background_threshold: int = 128) -> ConvertedPhoto:
    """Convert a PIL image (any mode, any size) into a 28x28 Fashion-MNIST-like grayscale image.

    Fashion-MNIST items are light on a black background (the dataset's images were inverted
    from product photos on white). A photo of a garment on a light background would look like
    its negative to a network trained on it, so when the border of the photo is light on
    average (median above `light_background_threshold`) the image is inverted. Then it is fitted
    (aspect kept) into 28x28 and centred on black, like the dataset's items.
    """
    from PIL import Image, ImageOps

    gray = ImageOps.exif_transpose(photo).convert("L")
    a = np.asarray(gray)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    inverted = bool(np.median(border) > light_background_threshold)
    if inverted:
        gray = ImageOps.invert(gray)
    s = FASHION_MNIST_IMAGE_SIZE
    w, h = gray.size
    k = s / max(w, h)
    gray = gray.resize((max(1, round(w * k)), max(1, round(h * k))), Image.BILINEAR)
    canvas = Image.new("L", (s, s), 0)
    canvas.paste(gray, ((s - gray.size[0]) // 2, (s - gray.size[1]) // 2))
    return ConvertedPhoto(np.asarray(canvas, dtype=np.uint8), inverted)
