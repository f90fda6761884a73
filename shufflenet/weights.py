"""Where a model's weights come from, for the app's weights selector.

A `WeightsSource` says what a person picked (random initialisation, a shipped checkpoint, an
imported ImageNet checkpoint, an upload, or a model trained in this session), which config
its model has, how pictures must be prepared for it and which class names it predicts.
`prepare_picture` is the one place where a picture becomes a batch for a weights source.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import data, inference
from .checkpoints import Checkpoint, CheckpointError, check_config, parse_manifest
from .config import ShuffleNetConfig
from .paths import assets_dir

GALLERY_DIR = assets_dir() / "fashion_mnist"

RANDOM, SHIPPED, IMPORTED, SESSION, UPLOADED = "random", "shipped", "imported", "session", "uploaded"


class WeightsSource(NamedTuple):
    kind: str  # RANDOM, SHIPPED, IMPORTED, SESSION or UPLOADED
    label: str  # what the selector shows
    config: ShuffleNetConfig  # the configuration of the model these weights belong to
    task: str  # "imagenet" or "fashion-mnist"
    checkpoint: Checkpoint | None = None
    manifest: dict | None = None

    def class_names(self) -> list[str]:
        if self.manifest is not None:
            return list(self.manifest["class_names"])
        return inference.class_labels(self.config.num_classes, self.task)

    @property
    def test_accuracy(self) -> float | None:
        return None if self.manifest is None else float(self.manifest["test_accuracy"])


def available_sources(config: ShuffleNetConfig, task: str, session_manifest: dict | None = None) -> list[WeightsSource]:
    """The weights a person can choose for `config`, best first (a trained match before random)."""
    from .checkpoints import find_shipped_checkpoint

    sources = []
    if session_manifest is not None:
        sources.append(WeightsSource(SESSION, "Trained in this session", config, task, None, session_manifest))
    shipped = find_shipped_checkpoint(config)
    if shipped is not None:
        acc = 100 * shipped.test_accuracy
        sources.append(WeightsSource(SHIPPED, f"Shipped checkpoint {shipped.path.name} (test accuracy {acc:.1f} %)",
                                     shipped.config, task, shipped, shipped.manifest))
    if task == "imagenet":
        imported = _imported_for(config)
        if imported is not None:
            sources.append(WeightsSource(IMPORTED, f"megvii ImageNet weights ({imported.path.name})", imported.config,
                                         task, imported, imported.manifest))
    sources.append(WeightsSource(RANDOM, "Random initialisation", config, task))
    return sources


def _imported_for(config: ShuffleNetConfig) -> Checkpoint | None:
    """An imported megvii checkpoint with the same network as `config` up to the layout details
    megvii's code differs in (shuffle layout, FC bias, explicit stem): same MACs and classes."""
    from .imagenet import find_imported

    found = find_imported(config.groups, config.scale)
    if found is None:
        return None
    c = found.config
    same = (c.blocks, c.reduction, c.input_size, c.channels, c.num_classes) == (
        config.blocks, config.reduction, config.input_size, config.channels, config.num_classes)
    return found if same else None


def load_uploaded(weights: bytes, manifest: bytes, config: ShuffleNetConfig, weights_name: str = "weights",
                  manifest_name: str = "manifest") -> tuple[Any, dict]:
    """Build the model for an uploaded `.weights.h5` + `manifest.json` pair and load it.

    Raises `CheckpointError` (a message for people) for a manifest that is not valid, one that
    belongs to another configuration (naming each differing field), or a weights file that is
    empty, not HDF5, truncated or of another architecture. The upload's name is only shown,
    never used as a path: the bytes go to a private temporary file."""
    from .checkpoints import load_weights
    from .model import build_model

    manifest_dict, manifest_config = parse_manifest(manifest, f"The manifest {manifest_name!r}")
    check_config(manifest_config, config)
    if not weights:
        raise CheckpointError(f"The weights file {weights_name!r} is empty.")
    model = build_model(manifest_config)
    with tempfile.TemporaryDirectory(prefix="shufflenet-upload-") as tmp:
        path = Path(tmp) / "upload.weights.h5"
        path.write_bytes(weights)
        try:
            load_weights(model, path)
        except CheckpointError as exc:
            raise CheckpointError(str(exc).replace(str(path), repr(weights_name))) from None
    return model, manifest_dict


class GalleryItem(NamedTuple):
    name: str
    label: int
    class_name: str
    pixels: np.ndarray  # uint8 28x28


def fashion_gallery(folder: Path | str | None = None) -> list[GalleryItem]:
    """The shipped Fashion-MNIST test images (two per class) with their true labels."""
    from PIL import Image

    folder = Path(folder) if folder is not None else GALLERY_DIR
    listing = json.loads((folder / "labels.json").read_text())
    items = []
    for entry in listing["images"]:
        with Image.open(folder / entry["file"]) as im:
            pixels = np.asarray(im.convert("L"), dtype=np.uint8)
        items.append(GalleryItem(entry["file"].rsplit(".", 1)[0], int(entry["label"]), entry["class_name"], pixels))
    return items


class PreparedPicture(NamedTuple):
    batch: np.ndarray  # (1, H, W, C) float32, what the network sees
    note: str  # how the picture was converted, for people


def _fashion_mnist(picture, config: ShuffleNetConfig) -> PreparedPicture:
    if isinstance(picture, np.ndarray):
        return PreparedPicture(data.preprocess(picture, config), "a Fashion-MNIST test image, padded as in training")
    converted = data.photo_to_fashion_mnist(picture)
    note = ("converted to 28×28 grayscale" + (", inverted (light background → Fashion-MNIST's black)"
                                              if converted.inverted else "") + ", padded as in training")
    return PreparedPicture(data.preprocess(converted.pixels, config), note)


def _as_image(picture):
    if isinstance(picture, np.ndarray):
        from PIL import Image

        return Image.fromarray(picture)
    return picture


def _megvii(picture, config: ShuffleNetConfig) -> PreparedPicture:
    from . import imagenet

    return PreparedPicture(imagenet.preprocess(_as_image(picture)),
                           "resized to 256, centre crop 224 (megvii's evaluation)")


def _resize_crop(picture, config: ShuffleNetConfig) -> PreparedPicture:
    return PreparedPicture(inference.preprocess(_as_image(picture), config),
                           "resized and centre-cropped to the input size")


#: The preprocessing of each kind of weights, by the name a manifest records in
#: `preprocessing.function`: the weights say how pictures must be prepared for them.
PREPROCESSORS = {
    "shufflenet.data.preprocess": _fashion_mnist,
    "shufflenet.imagenet.preprocess": _megvii,
    "shufflenet.inference.preprocess": _resize_crop,
}
#: What weights without a manifest (random ones) get, per task.
TASK_PREPROCESSING = {"fashion-mnist": "shufflenet.data.preprocess", "imagenet": "shufflenet.inference.preprocess"}


def preprocessing_of(source: WeightsSource) -> str:
    """The registry name of `source`'s preprocessing: its manifest's, else its task's."""
    recorded = (source.manifest or {}).get("preprocessing", {}).get("function")
    if recorded is not None:
        if recorded not in PREPROCESSORS:
            raise CheckpointError(f"The weights ask for preprocessing {recorded!r}, which this version does not know "
                                  f"(it knows {', '.join(PREPROCESSORS)}).")
        return recorded
    return TASK_PREPROCESSING[source.task]


def prepare_picture(picture, source: WeightsSource) -> PreparedPicture:
    """`picture` (a PIL image, or a uint8 28x28 Fashion-MNIST array) as the batch `source`'s
    model expects, with the preprocessing its weights were trained with (`PREPROCESSORS`)."""
    return PREPROCESSORS[preprocessing_of(source)](picture, source.config)


def fashion_test_batch(n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` Fashion-MNIST test images and labels (DatasetNotFoundError if missing)."""
    images, labels = data.load_fashion_mnist(download=False).test
    return images[:n], labels[:n]


def shipped_for_groups(config: ShuffleNetConfig) -> Checkpoint | None:
    """A shipped checkpoint for the same g, channels and classes as `config` (any width, input
    or blocks): what to offer when none matches `config` exactly. The same channel-shuffle setting
    comes first, then the nearest width."""
    from .checkpoints import shipped_checkpoints

    candidates = [c for c in shipped_checkpoints()
                  if (c.config.groups, c.config.channels, c.config.num_classes)
                  == (config.groups, config.channels, config.num_classes)]
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c.config.shuffle != config.shuffle, abs(c.config.scale - config.scale),
                                          -c.config.scale, c.path.name))
