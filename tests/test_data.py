"""Fashion-MNIST loading (search order, validation), the image-folder loader, preprocessing."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shufflenet import ShuffleNetConfig, data

FILES = data.FASHION_MNIST_FILES


def write_idx(path: Path, array: np.ndarray, magic: bytes | None = None, cut: int = 0) -> Path:
    header = magic if magic is not None else bytes([0, 0, 8, array.ndim])
    raw = header + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as f:
        f.write(raw[:len(raw) - cut] if cut else raw)
    return path


def make_dataset(folder: Path, n_train: int = 6, n_test: int = 4, fill: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n_train + fill)
    write_idx(folder / FILES["train_images"], np.full((n_train, 28, 28), fill, np.uint8))
    write_idx(folder / FILES["train_labels"], rng.integers(0, 10, n_train))
    write_idx(folder / FILES["test_images"], np.full((n_test, 28, 28), fill, np.uint8))
    write_idx(folder / FILES["test_labels"], rng.integers(0, 10, n_test))
    return folder


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Every search location redirected into tmp_path; downloads fail."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")

    def offline():
        raise ConnectionError("no network in this test")

    monkeypatch.setattr(data, "_download", offline)
    return tmp_path


# --- search order -------------------------------------------------------------------------------
def test_the_folder_found_without_download_honours_the_environment(places, monkeypatch):
    assert data.fashion_mnist_folder() is None  # nothing anywhere: only a download would do
    debian = make_dataset(places / "debian", n_train=1)
    assert data.fashion_mnist_folder() == debian
    env = make_dataset(places / "env", n_train=1)
    monkeypatch.setenv(data.ENV_VAR, str(env))
    assert data.fashion_mnist_folder() == env
    (env / FILES["test_labels"]).unlink()  # an incomplete folder is passed over, as the loader does
    assert data.fashion_mnist_folder() == debian


def test_search_order_explicit_then_env_then_keras_cache_then_debian(places, monkeypatch):
    debian = make_dataset(places / "debian", n_train=1)
    assert data.load_fashion_mnist().source == str(debian)
    cache = make_dataset(places / "keras_home" / "datasets" / "fashion-mnist", n_train=2)
    assert data.load_fashion_mnist().source == str(cache)
    env = make_dataset(places / "env", n_train=3)
    monkeypatch.setenv(data.ENV_VAR, str(env))
    loaded = data.load_fashion_mnist()
    assert loaded.source == str(env) and len(loaded.train.images) == 3
    explicit = make_dataset(places / "explicit", n_train=5)
    loaded = data.load_fashion_mnist(explicit)
    assert loaded.source == str(explicit) and len(loaded.train.labels) == 5
    assert loaded.train.images.shape == (5, 28, 28) and loaded.test.images.shape == (4, 28, 28)
    assert loaded.class_names == data.FASHION_MNIST_CLASSES


def test_incomplete_folder_is_skipped(places):
    partial = places / "partial"
    make_dataset(partial)
    (partial / FILES["test_labels"]).unlink()
    debian = make_dataset(places / "debian")
    assert data.load_fashion_mnist(partial).source == str(debian)


def test_nothing_found_lists_every_option(places):
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_fashion_mnist(places / "nowhere")
    message = str(info.value)
    for expected in (str(places / "nowhere"), "fashion-mnist", str(places / "debian"), "download",
                     "ConnectionError", data.ENV_VAR, "apt-get install dataset-fashion-mnist"):
        assert expected in message


def test_download_is_the_last_resort(places, monkeypatch):
    fake = data.FashionMNIST(data.Split(np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.uint8)),
                             data.Split(np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.uint8)), "keras download")
    monkeypatch.setattr(data, "_download", lambda: fake)
    assert data.load_fashion_mnist().source == "keras download"
    with pytest.raises(data.DatasetNotFoundError, match="not attempted"):
        data.load_fashion_mnist(download=False)


def test_loaded_arrays_are_read_only(places):
    loaded = data.load_fashion_mnist(make_dataset(places / "d"))
    with pytest.raises(ValueError):
        loaded.train.images[0, 0, 0] = 1


# --- validation: the bad file is named ------------------------------------------------------------
def _bad(places, key: str, **kwargs) -> tuple[Path, str]:
    folder = make_dataset(places / "bad")
    return folder / FILES[key], folder


def test_bad_magic_names_the_file(places):
    path, folder = _bad(places, "train_images")
    write_idx(path, np.zeros((6, 28, 28)), magic=b"\x00\x00\x08\x01")
    with pytest.raises(data.BadDatasetFileError, match="magic number") as info:
        data.load_fashion_mnist(folder)
    assert info.value.path == path and str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_truncated_data_names_the_file(places):
    path, folder = _bad(places, "test_images")
    write_idx(path, np.zeros((4, 28, 28)), cut=100)
    with pytest.raises(data.BadDatasetFileError, match="truncated") as info:
        data.load_fashion_mnist(folder)
    assert info.value.path == path


def test_truncated_gzip_names_the_file(places):
    path, folder = _bad(places, "train_labels")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.BadDatasetFileError, match="gzip") as info:
        data.load_fashion_mnist(folder)
    assert info.value.path == path


def test_mismatched_counts_name_the_labels_file(places):
    path, folder = _bad(places, "test_labels")
    write_idx(path, np.zeros(3))
    with pytest.raises(data.BadDatasetFileError, match=r"3 labels but t10k-images-idx3-ubyte.gz holds 4") as info:
        data.load_fashion_mnist(folder)
    assert info.value.path == path


def test_wrong_image_shape_and_label_range(places):
    path, folder = _bad(places, "train_images")
    write_idx(path, np.zeros((6, 32, 32)))
    with pytest.raises(data.BadDatasetFileError, match="items are 32x32, expected 28x28"):
        data.load_fashion_mnist(folder)
    make_dataset(folder)
    write_idx(folder / FILES["train_labels"], np.array([0, 1, 2, 3, 4, 12]))
    with pytest.raises(data.BadDatasetFileError, match="label 12"):
        data.load_fashion_mnist(folder)


@pytest.mark.skipif(not (data.DEBIAN_DIR / FILES["test_labels"]).is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_real_files_validate():
    loaded = data.read_fashion_mnist_folder(data.DEBIAN_DIR)
    assert loaded.train.images.shape == (60000, 28, 28) and loaded.test.images.shape == (10000, 28, 28)
    assert np.bincount(loaded.test.labels).tolist() == [1000] * 10


# --- preprocessing ---------------------------------------------------------------------------------
CFG32 = ShuffleNetConfig(input_size=32, channels=1, num_classes=10)


def test_fashion_mnist_at_32_is_padded_not_resampled():
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    x = data.preprocess(images, CFG32)
    assert x.shape == (5, 32, 32, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 2:30, 2:30, 0], images / 255, atol=1e-6)
    assert x[:, :2].max() == 0 and x[:, 30:].max() == 0 and x[:, :, :2].max() == 0


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 1), (1, 28, 28), (40, 20, 3), (300, 200, 4), (3, 50, 50)])
@pytest.mark.parametrize(("size", "channels"), [(32, 1), (64, 3), (96, 1)])
def test_shapes_and_range(shape, size, channels):
    images = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    x = data.preprocess(images, CFG32.replace(input_size=size, channels=channels))
    n = shape[0] if len(shape) == 3 and shape[-1] not in (1, 3, 4) else 1
    assert x.shape == (n, size, size, channels) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1


def test_list_of_mixed_sizes_and_channel_conversion():
    white_gray = np.full((10, 30), 255, np.uint8)
    red = np.zeros((20, 20, 3), np.uint8)
    red[..., 0] = 255
    x = data.preprocess([white_gray, red], CFG32)
    assert x.shape == (2, 32, 32, 1)
    assert x[0].max() == pytest.approx(1.0) and x[1].max() == pytest.approx(0.299, abs=1e-3)
    x3 = data.preprocess([white_gray], CFG32.replace(channels=3))
    assert x3.shape == (1, 32, 32, 3) and np.allclose(x3[..., 0], x3[..., 2])
    side = data.content_size(32)
    # a wide image keeps its aspect: 28 wide, about 9 high, centred on black
    rows = np.flatnonzero(x[0, :, 16, 0] > 0.5)
    assert side == 28 and 8 <= len(rows) <= 10


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="uint8"):
        data.preprocess([np.zeros((28, 28), np.float32)], CFG32)
    with pytest.raises(ValueError, match="shape"):
        data.preprocess(np.zeros((1, 2, 3, 4, 5), np.uint8), CFG32)


# --- users' photos and folders ------------------------------------------------------------------------
def test_photo_on_light_background_is_inverted():
    photo = Image.new("RGB", (120, 80), "white")
    photo.paste((40, 40, 40), (40, 10, 80, 70))  # a dark item in the middle
    converted = data.photo_to_fashion_mnist(photo)
    assert converted.inverted and converted.pixels.shape == (28, 28) and converted.pixels.dtype == np.uint8
    assert converted.pixels[14, 14] > 200 and converted.pixels[0, 0] == 0


def test_photo_on_dark_background_is_kept():
    photo = Image.new("L", (50, 50), 10)
    photo.paste(230, (15, 15, 35, 35))
    converted = data.photo_to_fashion_mnist(photo)
    assert not converted.inverted and converted.pixels[14, 14] > 200 and converted.pixels[1, 1] < 20


def test_image_folder(tmp_path):
    for name, colour in (("cats", "white"), ("dogs", "black")):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("RGB", (10 + i, 12), colour).save(tmp_path / name / f"{i}.png")
    Image.new("L", (8, 8), 128).save(tmp_path / "dogs" / "gray.png")
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    folder = data.load_image_folder(tmp_path)
    assert folder.class_names == ("cats", "dogs") and folder.labels.tolist() == [0, 0, 1, 1, 1]
    assert folder.images[0].shape == (12, 10, 3) and folder.images[-1].shape == (8, 8)
    assert data.preprocess(folder.images, CFG32.replace(channels=3)).shape == (5, 32, 32, 3)
    (tmp_path / "dogs" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"broken.png"):
        data.load_image_folder(tmp_path)


def test_image_folder_needs_two_classes(tmp_path):
    (tmp_path / "only").mkdir()
    with pytest.raises(ValueError, match="one sub-folder per class"):
        data.load_image_folder(tmp_path)
    with pytest.raises(FileNotFoundError):
        data.load_image_folder(tmp_path / "missing")


# --- the shipped gallery ------------------------------------------------------------------------------
GALLERY = Path(__file__).resolve().parent.parent / "assets" / "fashion_mnist"


def test_gallery_has_two_images_per_class():
    listing = json.loads((GALLERY / "labels.json").read_text())
    assert listing["class_names"] == list(data.FASHION_MNIST_CLASSES)
    labels = [item["label"] for item in listing["images"]]
    assert sorted(labels) == sorted(list(range(10)) * 2)
    for item in listing["images"]:
        with Image.open(GALLERY / item["file"]) as im:
            assert im.size == (28, 28) and im.mode == "L"
        assert item["class_name"] == data.FASHION_MNIST_CLASSES[item["label"]]
    assert "MIT" in (GALLERY / "README.md").read_text() and "Zalando" in (GALLERY / "README.md").read_text()


@pytest.mark.skipif(not (data.DEBIAN_DIR / FILES["test_labels"]).is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_gallery_matches_the_test_split():
    test = data.read_fashion_mnist_folder(data.DEBIAN_DIR).test
    for item in json.loads((GALLERY / "labels.json").read_text())["images"]:
        with Image.open(GALLERY / item["file"]) as im:
            np.testing.assert_array_equal(np.asarray(im), test.images[item["test_index"]])
        assert test.labels[item["test_index"]] == item["label"]
