"""Checkpoints: a folder with `manifest.json` (what was trained, how, how well) and
`model.weights.h5` (Keras weights). Reading one validates the manifest and the weights file and
explains every problem, including which configuration fields differ from a model's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from .config import ShuffleNetConfig
from .paths import assets_dir

MANIFEST_NAME = "manifest.json"
WEIGHTS_NAME = "model.weights.h5"
#: The checkpoints shipped with the repository (one per g; see assets/checkpoints/RESULTS.md).
SHIPPED_DIR = assets_dir() / "checkpoints"

#: Fields every manifest must have, with their JSON types.
REQUIRED_FIELDS: dict[str, tuple[type, ...]] = {
    "config": (dict,),
    "class_names": (list,),
    "task": (str,),
    "dataset": (dict,),
    "preprocessing": (dict,),
    "epochs": (int,),
    "test_accuracy": (int, float),
    "training_seconds": (int, float),
    "library_version": (str,),
}


def manifest_header(config: ShuffleNetConfig, task: str) -> dict:
    """The fields every manifest starts with: format, library version, time, config, task."""
    import datetime

    from . import __version__

    return {
        "format": "shufflenet-checkpoint",
        "format_version": 1,
        "library_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "task": task,
    }


class CheckpointError(ValueError):
    """A checkpoint (manifest or weights file) cannot be used; the message says why."""


class ConfigMismatchError(CheckpointError):
    """The checkpoint was trained for another configuration. `differences` lists
    (field, checkpoint value, model value)."""

    def __init__(self, differences: list[tuple[str, Any, Any]], source: str = "the checkpoint"):
        self.differences = differences
        detail = "; ".join(f"{f}: {a!r} in {source}, {b!r} in the model" for f, a, b in differences)
        super().__init__(
            f"The weights do not fit this configuration. {detail}. Choose the matching configuration "
            f"(or weights trained for this one)."
        )


class Checkpoint(NamedTuple):
    path: Path  # the folder
    manifest: dict
    config: ShuffleNetConfig

    @property
    def weights_path(self) -> Path:
        return self.path / self.manifest.get("weights", WEIGHTS_NAME)

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["class_names"])

    @property
    def test_accuracy(self) -> float:
        return float(self.manifest["test_accuracy"])


def _type_names(types: tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "a whole number", float: "a number"}
    return " or ".join(dict.fromkeys(names[t] for t in types))


def validate_manifest(manifest: Any, source: str = "manifest") -> ShuffleNetConfig:
    """Check a parsed manifest and return its configuration; raise `CheckpointError` otherwise."""
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{source} must hold a JSON object. Received: {type(manifest).__name__}.")
    missing = [k for k in REQUIRED_FIELDS if k not in manifest]
    if missing:
        raise CheckpointError(
            f"{source} lacks field(s) {', '.join(missing)}. A checkpoint manifest needs: "
            f"{', '.join(REQUIRED_FIELDS)}."
        )
    for key, types in REQUIRED_FIELDS.items():
        value = manifest[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise CheckpointError(
                f"{source}: field {key!r} must be {_type_names(types)}. Received: {value!r}."
            )
    try:
        config = ShuffleNetConfig.from_dict(manifest["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: field 'config' is not a valid configuration: {exc}") from None
    names = manifest["class_names"]
    if len(names) != config.num_classes or not all(isinstance(n, str) for n in names):
        raise CheckpointError(
            f"{source}: 'class_names' must be {config.num_classes} strings (num_classes of its config). "
            f"Received {len(names)} item(s)."
        )
    return config


def parse_manifest(text: str | bytes, source: str = "manifest") -> tuple[dict, ShuffleNetConfig]:
    """Parse and validate manifest text (e.g. an uploaded file)."""
    try:
        manifest = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{source} is not valid JSON ({exc}).") from None
    return manifest, validate_manifest(manifest, source)


def save_checkpoint(model, manifest: dict, out_dir: Path | str) -> Path:
    """Write `model.weights.h5` and `manifest.json` into `out_dir` (created if needed); returns it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_weights(out / WEIGHTS_NAME)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def read_checkpoint(path: Path | str) -> Checkpoint:
    """Read and validate the checkpoint at `path` (its folder or its manifest.json)."""
    path = Path(path)
    folder, manifest_path = (path.parent, path) if path.suffix == ".json" else (path, path / MANIFEST_NAME)
    if not manifest_path.is_file():
        raise CheckpointError(
            f"No checkpoint at {path}: {manifest_path} does not exist. A checkpoint is a folder with "
            f"{MANIFEST_NAME} and {WEIGHTS_NAME} (written by `python -m shufflenet train --out DIR`)."
        )
    try:
        text = manifest_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"Cannot read {manifest_path}: {exc}") from None
    manifest, config = parse_manifest(text, str(manifest_path))
    return Checkpoint(folder, manifest, config)


def config_differences(checkpoint: ShuffleNetConfig, model: ShuffleNetConfig) -> list[tuple[str, Any, Any]]:
    """(field, checkpoint value, model value) for every configuration field that differs."""
    a, b = checkpoint.to_dict(), model.to_dict()
    return [(k, a[k], b[k]) for k in a if a[k] != b[k]]


def check_config(checkpoint: Checkpoint | ShuffleNetConfig, config: ShuffleNetConfig) -> None:
    """Raise `ConfigMismatchError` naming each differing field when the configs differ."""
    source = "the checkpoint"
    if isinstance(checkpoint, Checkpoint):
        source = f"checkpoint {checkpoint.path.name}"
        checkpoint = checkpoint.config
    differences = config_differences(checkpoint, config)
    if differences:
        raise ConfigMismatchError(differences, source)


def _file_arrays(file) -> list[tuple[str, tuple[int, ...]]]:
    """(path, shape) of every model array in an open `.weights.h5` file; the optimizer's state,
    which `save_weights` also writes after training (and `load_weights` skips), is left out."""
    import h5py

    arrays = []
    file.visititems(lambda name, obj: arrays.append((name, tuple(obj.shape)))
                    if isinstance(obj, h5py.Dataset) and name.split("/", 1)[0] != "optimizer" else None)
    return arrays


def _shape_mismatch(file_shapes: list[tuple], model_weights) -> str | None:
    """Why the arrays of a weights file cannot be this model's variables, or None when their
    counts and shapes agree (Keras assigns by position, so both must match one to one)."""
    from collections import Counter

    model_shapes = [tuple(int(d) for d in w.shape) for w in model_weights]
    if len(file_shapes) != len(model_shapes):
        return f"it holds {len(file_shapes)} weight arrays, the model has {len(model_shapes)}"
    extra = Counter(file_shapes) - Counter(model_shapes)
    missing = Counter(model_shapes) - Counter(file_shapes)
    if not extra:
        return None
    # An example a person can follow: the model's first variable without a match, and the file's
    # array most like it (same rank, most equal dimensions).
    name, want = next((w.path, shape) for w, shape in zip(model_weights, model_shapes) if shape in missing)
    got = max(extra, key=lambda s: (len(s) == len(want), sum(a == b for a, b in zip(s, want))))
    return (f"{sum(extra.values())} of its {len(file_shapes)} arrays do not fit, e.g. {name} needs shape {want}, "
            f"the file's nearest array is {got}")


def _keras_problem(exc: Exception) -> str:
    """Keras's load error in one line: which layer, which shapes (its message spans pages)."""
    import re

    text = str(exc)
    count = re.search(r"A total of (\d+) objects could not be loaded", text)
    layer = re.search(r"object <\w+ name=([^,>]+)", text)
    shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text)
    if layer and shapes:
        n = f"{count.group(1)} layer(s) differ, e.g. " if count else ""
        return (f"{n}layer {layer.group(1)} needs weights of shape {shapes.group(1)}, the file holds "
                f"{shapes.group(2)}")
    line = " ".join(text.split())
    return (line[:300] + "…") if len(line) > 300 else (line or type(exc).__name__)


def _fingerprints(arrays) -> list[tuple]:
    import numpy as np

    out = []
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        out.append((a.shape, round(float(a.sum()), 6), round(float((a * a).sum()), 6)))
    return sorted(out)


def load_weights(model, weights_path: Path | str) -> None:
    """Load a `.weights.h5` file into `model`, turning h5py/Keras failures into `CheckpointError`.

    The file's arrays are checked against the model's variables (count and shapes) before
    loading, and after loading every variable must equal one of the file's arrays: a file that
    fits only in part is refused, never loaded half-way. No warning filters are touched (they
    are process-wide, so recording them races with other sessions' threads)."""
    import h5py

    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise CheckpointError(f"Weights file {weights_path} does not exist.")
    with open(weights_path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):
        raise CheckpointError(
            f"{weights_path} is not an HDF5 file but a zip archive (a whole saved `.keras` model?). Only "
            f"weights saved with model.save_weights (a .weights.h5 file) are accepted: saved models can "
            f"carry Python code (Lambda layers), so they are never loaded."
        )
    if not h5py.is_hdf5(weights_path):
        raise CheckpointError(
            f"{weights_path} is not an HDF5 file; expected Keras weights saved with model.save_weights "
            f"(a .weights.h5 file)."
        )
    try:
        with h5py.File(weights_path, "r") as file:
            arrays = _file_arrays(file)
            stored = _fingerprints(file[name][()] for name, _ in arrays)
    except (OSError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{weights_path} cannot be opened (truncated or damaged?): {exc}") from None
    advice = ("The weights were saved from another configuration (groups, width, units, input channels or "
              "classes): choose that configuration, or weights trained for this one.")
    problem = _shape_mismatch([shape for _, shape in arrays], model.weights)
    if problem is not None:
        raise CheckpointError(f"{weights_path} does not fit model {model.name!r}: {problem}. {advice}")
    try:
        model.load_weights(weights_path)
    except Exception as exc:  # Keras raises ValueError/KeyError/OSError depending on the defect
        raise CheckpointError(
            f"{weights_path} does not fit model {model.name!r} (another architecture or a damaged file): "
            f"{_keras_problem(exc)}. {advice}"
        ) from None
    if _fingerprints(w.numpy() for w in model.weights) != stored:
        raise CheckpointError(
            f"{weights_path} does not fit model {model.name!r}: Keras loaded only part of it (its layers are "
            f"arranged differently). {advice}"
        )


def load_checkpoint_model(checkpoint: Checkpoint | Path | str, config: ShuffleNetConfig | None = None):
    """Build the model of a checkpoint and load its weights.

    When `config` is given it must equal the checkpoint's (else `ConfigMismatchError`)."""
    from .model import build_model

    if not isinstance(checkpoint, Checkpoint):
        checkpoint = read_checkpoint(checkpoint)
    if config is not None:
        check_config(checkpoint, config)
    model = build_model(checkpoint.config)
    load_weights(model, checkpoint.weights_path)
    return model


def shipped_checkpoints(root: Path | str | None = None) -> list[Checkpoint]:
    """All valid checkpoints under `root` (default: assets/checkpoints), sorted by folder name."""
    root = Path(root) if root is not None else SHIPPED_DIR
    if not root.is_dir():
        return []
    found = []
    for manifest in sorted(root.glob(f"*/{MANIFEST_NAME}")):
        try:
            found.append(read_checkpoint(manifest))
        except CheckpointError:
            continue
    return found


def find_shipped_checkpoint(config: ShuffleNetConfig, root: Path | str | None = None) -> Checkpoint | None:
    """The shipped checkpoint trained for exactly `config`, or None."""
    for checkpoint in shipped_checkpoints(root):
        if checkpoint.config == config:
            return checkpoint
    return None
