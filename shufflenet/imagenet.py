"""ImageNet weights for our Keras ShuffleNet v1, imported exactly from megvii's official PyTorch
checkpoints (megvii-model/ShuffleNet-Series, `ShuffleNetV1/`), plus the ImageNet class names,
megvii's evaluation preprocessing and top-5 predictions.

How megvii's network differs from ours, and how the import makes the two compute the same function:

- Widths come from fixed lists (`MEGVII_WIDTHS`). Our width rule reproduces every stage width and
  every stem except 1.5x, whose stem is 24 channels; `megvii_config` sets `stem_channels` there.
- The classifier's FC layer has no bias: `fc_bias=False`.
- The channel shuffle reshapes the channels to (C/g, g) before transposing, the inverse of the
  paper's permutation: `shuffle_layout="transposed"`.
- The shuffle sits after the depthwise conv and its BN; ours (the paper's Fig. 2) sits before. Both
  are per-channel operations, so with the shuffle index array P (``out = z[P]``)
  ``shuffle(BN(DW(x))) = BN'(DW'(shuffle(x)))`` when DW' and BN' use kernel and statistics
  ``[P]``: output channel i of both reads input channel P[i] with the parameters of channel P[i].
  `keras_weights` permutes the depthwise kernel and bn2's four vectors with P.
- A stride-2 unit returns ``cat(avgpool(x), relu(branch))``; ours ``relu(cat(avgpool(x), branch))``.
  They are equal because a unit's input is the output of a ReLU (or of a max pool of one), so
  ``avgpool(x) >= 0`` and the ReLU leaves it unchanged.
- megvii feeds BGR pixels in 0..255 with no mean/std normalisation. The import folds both into
  the stem convolution (it has no bias, so this is exact): our imported model takes RGB in [0, 1],
  the library's convention, and `preprocess` produces it.
- Padding: megvii's max pool pads with -inf and its average pool counts the zero padding
  (PyTorch's default count_include_pad=True); our explicit zero padding matches both, the max
  pool because its input is post-ReLU. megvii's global pool is AvgPool2d(7), our global average
  pool at 224x224.

torch is needed only to read a checkpoint and is imported lazily; everything else here is NumPy.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .config import ShuffleNetConfig
from .paths import assets_dir, runs_dir
from .plan import shuffle_permutation

TASK = "imagenet"
ASSETS_DIR = assets_dir()
#: Where the app looks for imported checkpoints by default (git-ignored: the weights are megvii's,
#: downloaded by each user), e.g. runs/imagenet/g3_1.0x/.
IMPORT_ROOT = runs_dir() / "imagenet"
CLASS_NAMES_PATH = ASSETS_DIR / "imagenet_classes.txt"
NUM_CLASSES = 1000

#: megvii's `stage_out_channels` (ShuffleNetV1/network.py): (stem, stage 2, stage 3, stage 4)
#: per (groups, width multiplier) they publish.
MEGVII_WIDTHS: dict[tuple[int, float], tuple[int, int, int, int]] = {
    (3, 0.5): (12, 120, 240, 480),
    (3, 1.0): (24, 240, 480, 960),
    (3, 1.5): (24, 360, 720, 1440),
    (3, 2.0): (48, 480, 960, 1920),
    (8, 0.5): (16, 192, 384, 768),
    (8, 1.0): (24, 384, 768, 1536),
    (8, 1.5): (24, 576, 1152, 2304),
    (8, 2.0): (48, 768, 1536, 3072),
}
PUBLISHED_GROUPS = (3, 8)
PUBLISHED_SCALES = (0.5, 1.0, 1.5, 2.0)

#: megvii's README (ShuffleNetV1): MFLOPs, parameters (millions), ImageNet top-1 / top-5 error %
#: on the 50,000 validation images, single 224 centre crop.
MEGVII_RESULTS: dict[tuple[int, float], tuple[int, float, float, float]] = {
    (3, 0.5): (38, 0.7, 42.7, 20.0),
    (3, 1.0): (138, 1.9, 32.2, 12.3),
    (3, 1.5): (292, 3.4, 28.4, 9.8),
    (3, 2.0): (524, 5.4, 25.9, 8.6),
    (8, 0.5): (40, 1.0, 41.2, 19.0),
    (8, 1.0): (138, 2.4, 32.0, 13.6),
    (8, 1.5): (290, 4.3, 29.0, 10.4),
    (8, 2.0): (522, 6.5, 27.1, 9.2),
}

#: What `preprocess` does, recorded in every imported manifest.
PREPROCESSING = {
    "function": "shufflenet.imagenet.preprocess",
    "reference": "megvii ShuffleNetV1/train.py validation transform: OpencvResize(256), "
                 "CenterCrop(224), ToBGRTensor()",
    "geometry": "resize the short side to 256 with OpenCV's INTER_LINEAR bilinear interpolation "
                "(half-pixel centres, no antialiasing, 11-bit fixed point; long side "
                "int(256 * long / short + 0.5)), then cut the central 224x224 square (torchvision "
                "CenterCrop offsets)",
    "pixels": "RGB uint8 / 255 -> float32 in [0, 1]; no mean/std normalisation",
    "folded_into_stem": "megvii's network reads BGR pixels in 0..255; the import reverses the stem "
                        "kernel's input channels and multiplies it by 255, so the Keras model reads RGB in [0, 1]",
}

_BN_PARTS = ("weight", "bias", "running_mean", "running_var")  # = Keras gamma, beta, mean, variance


class WeightsImportError(ValueError):
    """A checkpoint cannot be imported; the message says why and what to do."""


# --- presets --------------------------------------------------------------------------------

def _check_preset(groups: Any, scale: Any) -> tuple[int, float]:
    try:
        key = (int(groups), float(scale))
    except (TypeError, ValueError):
        key = None
    if key not in MEGVII_WIDTHS or isinstance(groups, bool):
        raise WeightsImportError(
            f"megvii publishes ShuffleNet v1 ImageNet checkpoints for groups "
            f"{' and '.join(map(str, PUBLISHED_GROUPS))} at widths "
            f"{', '.join(f'{s:g}x' for s in PUBLISHED_SCALES)}. Received: groups={groups!r}, scale={scale!r}."
        )
    return key


def megvii_config(groups: int, scale: float, input_size: int = 224) -> ShuffleNetConfig:
    """The configuration that represents megvii's published `groups`, `scale` model exactly.

    `input_size` other than 224 gives the same weights a different input (our global pool
    adapts; megvii's AvgPool2d(7) assumes 224)."""
    groups, scale = _check_preset(groups, scale)
    stem, *stages = MEGVII_WIDTHS[groups, scale]
    config = ShuffleNetConfig(groups=groups, scale=scale, input_size=input_size, num_classes=NUM_CLASSES,
                              fc_bias=False, shuffle_layout="transposed")
    if config.stem_width != stem:
        config = config.replace(stem_channels=stem)
    if (config.stem_width, *config.stage_widths) != (stem, *stages):  # guards the width rule
        raise RuntimeError(f"The width rule no longer reproduces megvii's widths {stem, *stages}: {config}")
    return config


def _preset_of(config: ShuffleNetConfig) -> tuple[int, float]:
    """(groups, scale) of a configuration that is one of megvii's published models (any input
    size); `WeightsImportError` otherwise."""
    key = (config.groups, config.scale)
    if key in MEGVII_WIDTHS and config.replace(input_size=224) == megvii_config(*key):
        return key
    raise WeightsImportError(
        f"megvii's checkpoints fit only their published models, built with `megvii_config(groups, scale)` "
        f"(groups 3 or 8; widths 0.5x, 1.0x, 1.5x, 2.0x; megvii's stem widths, fc_bias=False, "
        f'shuffle_layout="transposed", blocks (4, 8, 4), reduction 0.25, 1000 classes). Received: {config}'
    )


# --- the tensor table -------------------------------------------------------------------------

#: Our layer part -> megvii's module inside a unit (`features.<i>.` + this), and inside the stem
#: and the classifier. Their unit: branch_main_1 = [1x1 conv, BN, ReLU, 3x3 dw conv, BN],
#: branch_main_2 = [1x1 conv, BN]; the shuffle has no weights.
MEGVII_MODULES = {
    ("unit", "gconv1"): "branch_main_1.0", ("unit", "bn1"): "branch_main_1.1",
    ("unit", "dwconv"): "branch_main_1.3", ("unit", "bn2"): "branch_main_1.4",
    ("unit", "gconv2"): "branch_main_2.0", ("unit", "bn3"): "branch_main_2.1",
    ("stem", "conv"): "first_conv.0", ("stem", "bn"): "first_conv.1", ("classifier", "fc"): "classifier.0",
}


def _weighted_layers(config: ShuffleNetConfig):
    """(layer spec, megvii module prefix) for every layer of the plan that has weights."""
    from .plan import layer_plan

    units: dict[tuple, int] = {}
    for spec in layer_plan(config):
        if not (spec.params or spec.non_trainable):
            continue
        if spec.unit is None:
            yield spec, MEGVII_MODULES[spec.stage, spec.part]
        else:
            index = units.setdefault((spec.stage, spec.unit), len(units))
            yield spec, f"features.{index}.{MEGVII_MODULES['unit', spec.part]}"


def expected_shapes(config: ShuffleNetConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor megvii's state dict has for `config` (PyTorch names and shapes), in order;
    the BatchNorm counters `num_batches_tracked` are left out (they are not weights)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec, module in _weighted_layers(config):
        if spec.op == "batchnorm":
            shapes.update({f"{module}.{p}": (spec.filters,) for p in _BN_PARTS})
        elif spec.op == "fc":
            shapes[f"{module}.weight"] = (spec.filters, spec.input_shape[-1])
        elif spec.op == "dwconv3x3":
            shapes[f"{module}.weight"] = (spec.filters, 1, 3, 3)
        else:  # conv3x3, conv1x1, gconv1x1: PyTorch (out, in / groups, kh, kw)
            k = spec.kernel
            shapes[f"{module}.weight"] = (spec.filters, spec.input_shape[-1] // spec.groups, k, k)
    return shapes


def _shape_of(value) -> tuple[int, ...]:
    return tuple(int(d) for d in np.shape(value))


def matching_presets(state: Mapping[str, Any]) -> list[tuple[int, float]]:
    """The published (groups, scale) pairs whose tensor table `state` matches exactly."""
    found = []
    for key in MEGVII_WIDTHS:
        shapes = expected_shapes(megvii_config(*key))
        if set(shapes) == set(state) and all(_shape_of(state[k]) == s for k, s in shapes.items()):
            found.append(key)
    return found


def _listing(items: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_state_dict(state: Mapping[str, Any], config: ShuffleNetConfig, source: str = "The checkpoint") -> None:
    """Raise `WeightsImportError` unless `state` has exactly the tensors of `config`, in the
    right shapes; the message lists what is missing, unexpected or misshapen and names the
    published model the file does fit, if any."""
    _preset_of(config)
    shapes = expected_shapes(config)
    missing = [k for k in shapes if k not in state]
    unexpected = [k for k in state if k not in shapes]
    wrong = [f"{k} {_shape_of(state[k])} (expected {shapes[k]})"
             for k in shapes if k in state and _shape_of(state[k]) != shapes[k]]
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensor(s) missing: {_listing(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected: {_listing(unexpected)}")
    if wrong:
        parts.append(f"{len(wrong)} of another shape: {_listing(wrong, 3)}")
    fits = matching_presets(state)
    if fits:
        hint = "It fits megvii's " + " / ".join(f"groups={g} scale={s:g}" for g, s in fits) + \
               ": import it with those settings."
    else:
        hint = ("It fits none of megvii's published ShuffleNet v1 models (groups 3 or 8, widths "
                "0.5x, 1.0x, 1.5x, 2.0x); is it a ShuffleNet v1 checkpoint from megvii-model/ShuffleNet-Series?")
    raise WeightsImportError(
        f"{source} does not fit megvii's ShuffleNet v1 {config.scale:g}x with groups={config.groups}: "
        f"{'; '.join(parts)}. {hint}"
    )


# --- reading a checkpoint -------------------------------------------------------------------

def _import_torch():
    try:
        import torch
    except ImportError:
        raise WeightsImportError(
            "Reading a PyTorch checkpoint needs PyTorch, which is not installed. Install the CPU build "
            "with `pip install torch` (only the import needs it; the imported Keras weights do not)."
        ) from None
    return torch


def normalize_state_dict(obj: Any, source: str = "The checkpoint") -> dict[str, np.ndarray]:
    """megvii's wrapping removed: the `state_dict` entry of a training checkpoint, the `module.`
    prefix of nn.DataParallel, and the BatchNorm counters. Values become float32 NumPy arrays."""
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsImportError(
            f"{source} holds {type(obj).__name__}, not a state dict (a mapping of tensor names to tensors)."
        )
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise WeightsImportError(f"{source}: state dict keys must be tensor names. Received: {key!r}.")
        name = key[len("module."):] if key.startswith("module.") else key
        if name.endswith("num_batches_tracked"):
            continue
        if hasattr(value, "detach"):  # a torch.Tensor
            value = value.detach().cpu().float().numpy()
        if not isinstance(value, np.ndarray):
            raise WeightsImportError(f"{source}: {key!r} is {type(value).__name__}, not a tensor.")
        state[name] = np.asarray(value, dtype=np.float32)
    return state


def load_state_dict(path: Path | str) -> dict[str, np.ndarray]:
    """Read a PyTorch checkpoint safely (`torch.load(weights_only=True)`: tensors and plain
    containers only, no code) and return its normalised state dict."""
    path = Path(path)
    if not path.is_file():
        raise WeightsImportError(f"Checkpoint {path} does not exist (or is not a file).")
    torch = _import_torch()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... by defect
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsImportError(
            f"{path} cannot be read as a PyTorch checkpoint with torch.load(weights_only=True) "
            f"(not a checkpoint, damaged, or holding objects other than tensors): {first}"
        ) from None
    return normalize_state_dict(obj, str(path))


# --- the mapping ----------------------------------------------------------------------------

def _group_kernel(w: np.ndarray, groups: int) -> np.ndarray:
    """PyTorch (F, C/g, 1, 1) grouped 1x1 weight -> our GroupConv1x1 kernel (g, C/g, F/g).
    Both put group j's outputs at [j F/g, (j+1) F/g) and read its inputs [j C/g, (j+1) C/g)."""
    f, ci = w.shape[:2]
    return np.ascontiguousarray(w[:, :, 0, 0].reshape(groups, f // groups, ci).transpose(0, 2, 1))


def _bn(state: Mapping[str, np.ndarray], prefix: str, perm: np.ndarray | None = None) -> list[np.ndarray]:
    values = [state[f"{prefix}.{p}"] for p in _BN_PARTS]
    return [v[perm] if perm is not None else v for v in values]


def keras_weights(state: Mapping[str, np.ndarray], config: ShuffleNetConfig) -> dict[str, list[np.ndarray]]:
    """Our layer name -> its weight list (Keras order), computed from megvii's state dict.
    `state` must pass `check_state_dict` for `config`."""
    check_state_dict(state, config)
    weights: dict[str, list[np.ndarray]] = {}
    perms = {}
    for spec, module in _weighted_layers(config):
        if spec.unit is not None and spec.part == "gconv1":
            # megvii shuffles after the depthwise conv and its BN (see the module docstring):
            # those two take their parameters in our shuffled order.
            perms[spec.stage, spec.unit] = (shuffle_permutation(spec.filters, config.groups, config.shuffle_layout)
                                            if config.groups > 1 else None)
        perm = perms.get((spec.stage, spec.unit)) if spec.part in ("dwconv", "bn2") else None
        if spec.op == "batchnorm":
            weights[spec.name] = _bn(state, module, perm)
            continue
        w = state[f"{module}.weight"]
        if spec.op == "conv3x3":  # the stem: (out, in, kh, kw) -> (kh, kw, in, out)
            stem = w.transpose(2, 3, 1, 0)
            # megvii reads BGR in 0..255; we read RGB in [0, 1] (see the module docstring).
            weights[spec.name] = [np.ascontiguousarray(stem[:, :, ::-1, :] * np.float32(255.0))]
        elif spec.op == "dwconv3x3":
            dw = w[:, 0].transpose(1, 2, 0)[..., None]  # (3, 3, C, 1)
            weights[spec.name] = [np.ascontiguousarray(dw[:, :, perm] if perm is not None else dw)]
        elif spec.op == "fc":
            weights[spec.name] = [np.ascontiguousarray(w.T)]
        else:
            weights[spec.name] = [_group_kernel(w, spec.groups)]
    return weights


def set_model_weights(model, weights: Mapping[str, list[np.ndarray]]) -> None:
    """Assign every layer's weights; raise `WeightsImportError` unless every weight of the model
    is set exactly once with the right shape and no converted weight is left over."""
    problems, used = [], set()
    for layer in model.layers:
        if not layer.weights:
            continue
        used.add(layer.name)
        new = weights.get(layer.name)
        if new is None:
            problems.append(f"{layer.name}: no weights in the checkpoint")
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        if [tuple(np.shape(w)) for w in new] != shapes:
            problems.append(f"{layer.name}: checkpoint gives {[tuple(np.shape(w)) for w in new]}, model has {shapes}")
            continue
        layer.set_weights(list(new))
    problems += [f"{name}: not a layer with weights in the model" for name in weights if name not in used]
    if problems:
        raise WeightsImportError(f"The converted weights do not fit model {model.name!r}: {_listing(problems)}.")


def build_imported_model(state: Mapping[str, np.ndarray], config: ShuffleNetConfig):
    """Our Keras model of `config` carrying the weights of megvii's state dict."""
    from .model import build_model

    weights = keras_weights(state, config)
    model = build_model(config)
    set_model_weights(model, weights)
    return model


# --- writing an imported checkpoint ---------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(config: ShuffleNetConfig, source: Path | str, sha256: str | None = None) -> dict:
    """A checkpoint manifest (the `shufflenet.checkpoints` format) for imported megvii weights."""
    from .checkpoints import WEIGHTS_NAME, manifest_header

    groups, scale = _preset_of(config)
    mflops, params_m, top1_err, top5_err = MEGVII_RESULTS[groups, scale]
    return {
        **manifest_header(config, TASK),
        "dataset": {
            "name": "ImageNet (ILSVRC-2012)",
            "classes": NUM_CLASSES,
            "train_images": 1_281_167,
            "test_images": 50_000,
            "test_split": "validation",
        },
        "class_names": list(class_names()),
        "class_names_file": "assets/imagenet_classes.txt",
        "preprocessing": dict(PREPROCESSING, input_size=config.input_size, channels=config.channels),
        # megvii trains for 3e5 iterations of 1,024 images (their train.py defaults): 3e5 * 1024 /
        # 1,281,167 = 239.8 epochs. Not trained here, so training_seconds is 0.
        "epochs": 240,
        "training": {
            "by": "megvii (Zhang et al.), not trained in this project",
            "iterations": 300_000,
            "batch_size": 1024,
            "optimizer": "SGD momentum 0.9, weight decay 4e-5, label smoothing 0.1",
            "learning_rate": "0.5, linear decay to 0",
        },
        "training_seconds": 0,
        "test_accuracy": round(1 - top1_err / 100, 4),
        "test_top5_accuracy": round(1 - top5_err / 100, 4),
        "test_accuracy_source": "published by megvii (ShuffleNet-Series README): ImageNet validation, "
                                "single 224 centre crop; not measured here",
        "published": {"mflops": mflops, "params_millions": params_m, "top1_error": top1_err,
                      "top5_error": top5_err},
        "source_checkpoint": {
            "name": Path(source).name,
            "sha256": sha256,
            "origin": "megvii-model/ShuffleNet-Series, ShuffleNetV1 (PyTorch)",
            "licence": "see megvii-model/ShuffleNet-Series",
        },
        "weights": WEIGHTS_NAME,
    }


def import_checkpoint(path: Path | str, out_dir: Path | str, groups: int | None = None,
                      scale: float | None = None) -> Path:
    """Convert megvii's checkpoint at `path` into `out_dir/model.weights.h5` + `manifest.json`.

    `groups` and `scale` name the published model; when both are None they are read off the
    tensor shapes. Returns `out_dir`."""
    from .checkpoints import save_checkpoint, validate_manifest

    path = Path(path)
    state = load_state_dict(path)
    if groups is None and scale is None:
        fits = matching_presets(state)
        if len(fits) != 1:
            raise WeightsImportError(
                f"{path} fits none of megvii's published ShuffleNet v1 models (groups 3 or 8, widths "
                f"0.5x, 1.0x, 1.5x, 2.0x): its {len(state)} tensors begin {_listing(list(state), 3)}. "
                f"Give --groups and --scale to see which tensors differ."
            )
        groups, scale = fits[0]
    elif groups is None or scale is None:
        raise WeightsImportError("Give both groups and scale, or neither (to read them off the checkpoint).")
    config = megvii_config(groups, scale)
    check_state_dict(state, config, str(path))
    model = build_imported_model(state, config)
    manifest = build_manifest(config, path, _sha256(path))
    validate_manifest(manifest, "the imported manifest")
    return save_checkpoint(model, manifest, out_dir)


def imported_checkpoints(root: Path | str | None = None) -> list:
    """The valid ImageNet checkpoints (imported megvii weights) in the sub-folders of `root`
    (default `IMPORT_ROOT`), sorted by folder name."""
    from .checkpoints import shipped_checkpoints

    return [c for c in shipped_checkpoints(root if root is not None else IMPORT_ROOT)
            if c.manifest.get("task") == TASK]


def find_imported(groups: int, scale: float, root: Path | str | None = None):
    """The imported checkpoint of megvii's `groups`, `scale` model under `root`, or None."""
    for checkpoint in imported_checkpoints(root):
        c = checkpoint.config
        if (c.groups, c.scale) == (groups, scale) and c.num_classes == NUM_CLASSES:
            return checkpoint
    return None


# --- class names, preprocessing, predictions ------------------------------------------------

@functools.lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in index order (ILSVRC-2012's sorted WordNet ids, the
    order every ImageNet model uses): the first name of each synset as in Keras's
    imagenet_class_index.json, underscores as spaces, and the two names it repeats told apart:
    134 "crane (bird)" / 517 "crane (machine)", 638 "maillot" / 639 "maillot (tank suit)"."""
    try:
        names = tuple(CLASS_NAMES_PATH.read_text(encoding="utf-8").splitlines())
    except OSError as exc:
        raise WeightsImportError(f"Cannot read the ImageNet class names {CLASS_NAMES_PATH}: {exc}") from None
    if len(names) != NUM_CLASSES or not all(names):
        raise WeightsImportError(f"{CLASS_NAMES_PATH} must hold {NUM_CLASSES} non-empty lines; it has {len(names)}.")
    return names


_COEF_ONE = 2048  # OpenCV's 11-bit fixed-point interpolation weights (INTER_RESIZE_COEF_SCALE)


def _linear_taps(n_in: int, n_out: int, clamp_weight: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and fixed-point weights of OpenCV's INTER_LINEAR along one axis: half-pixel
    centres in float32, weights rounded to 1/2048. Horizontally a tap outside the picture takes
    the edge pixel at full weight (`clamp_weight`); vertically only the row index is clamped."""
    src = ((np.arange(n_out) + 0.5) * (1.0 / (n_out / n_in)) - 0.5).astype(np.float32)
    i0 = np.floor(src).astype(np.int64)
    frac = src - i0.astype(np.float32)
    if clamp_weight:
        frac[(i0 < 0) | (i0 >= n_in - 1)] = 0.0
    i1 = np.clip(i0 + 1, 0, n_in - 1)
    i0 = np.clip(i0, 0, n_in - 1)
    w1 = np.rint(frac * _COEF_ONE).astype(np.int64)
    w0 = np.rint((1.0 - frac) * _COEF_ONE).astype(np.int64)
    return i0, i1, w0, w1


def resize_bilinear(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)` for a uint8 (H, W, C)
    array, in NumPy: the same fixed-point arithmetic (no antialiasing). It matched
    opencv-python-headless 5.0 bit for bit on 40 random picture sizes, up- and downscaling."""
    y0, y1, b0, b1 = _linear_taps(image.shape[0], height, clamp_weight=False)
    x0, x1, a0, a1 = _linear_taps(image.shape[1], width, clamp_weight=True)
    a0, a1 = a0[None, :, None], a1[None, :, None]

    def horizontal(rows: np.ndarray) -> np.ndarray:  # values x 2048
        s = image[rows].astype(np.int64)
        return s[:, x0] * a0 + s[:, x1] * a1

    r0, r1 = horizontal(y0) >> 4, horizontal(y1) >> 4
    b0, b1 = b0[:, None, None], b1[:, None, None]
    out = (((b0 * r0) >> 16) + ((b1 * r1) >> 16) + 2) >> 2  # 2 x 11 fraction bits, rounded
    return np.clip(out, 0, 255).astype(np.uint8)


def preprocess(image, size: int = 224, resize: int = 256) -> np.ndarray:
    """megvii's evaluation preprocessing for one picture (a PIL image or an RGB uint8 (H, W, 3)
    array), as a (1, size, size, 3) float32 RGB batch in [0, 1] for an imported model.

    Short side to `resize` (long side int(resize * long / short + 0.5)), OpenCV-style bilinear;
    central `size` square with torchvision CenterCrop's offsets. See `PREPROCESSING`.
    """
    if hasattr(image, "convert"):  # PIL: megvii's ImageFolder loader also converts to RGB
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(
            f"Expected a PIL image or an RGB uint8 array (H, W, 3). Received: {array.dtype} {array.shape}."
        )
    if resize < size:
        raise ValueError(f"`resize` ({resize}) must be at least `size` ({size}).")
    h, w = array.shape[:2]
    if h < w:
        new_w, new_h = int(resize / h * w + 0.5), resize
    else:
        new_w, new_h = resize, int(resize / w * h + 0.5)
    resized = resize_bilinear(array, new_w, new_h)
    top, left = round((new_h - size) / 2.0), round((new_w - size) / 2.0)
    crop = resized[top:top + size, left:left + size]
    return (crop.astype(np.float32) / 255.0)[None]


class TopClass(NamedTuple):
    rank: int  # 1-based
    index: int  # ImageNet class index 0..999
    label: str
    probability: float


def top5(probabilities, k: int = 5) -> list[TopClass]:
    """The k most probable ImageNet classes of one prediction, best first, with their names.
    Ties keep the lower class index first."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if p.size != NUM_CLASSES:
        raise ValueError(f"Expected {NUM_CLASSES} ImageNet probabilities. Received: {p.size}.")
    names = class_names()
    order = np.argsort(-p, kind="stable")[:max(1, int(k))]
    return [TopClass(r, int(i), names[i], float(p[i])) for r, i in enumerate(order, start=1)]
