"""Where weights come from (shufflenet/weights.py): the choices offered for a network, the
preprocessing each kind of weights asks for, and the shipped gallery."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from shufflenet import ShuffleNetConfig, weights
from shufflenet.checkpoints import CheckpointError, shipped_checkpoints
from shufflenet.data import FASHION_MNIST_CLASSES

#: The width, input and classes of the shipped checkpoints.
FASHION = ShuffleNetConfig(groups=3, scale=0.5, input_size=32, channels=1, num_classes=10)


def test_a_shipped_match_comes_before_random_and_random_is_always_offered():
    sources = weights.available_sources(FASHION, "fashion-mnist")
    assert [s.kind for s in sources] == [weights.SHIPPED, weights.RANDOM]
    shipped = sources[0]
    assert shipped.config == FASHION and shipped.checkpoint is not None and 0.5 < shipped.test_accuracy <= 1
    assert f"{100 * shipped.test_accuracy:.1f} %" in shipped.label
    assert shipped.class_names() == list(FASHION_MNIST_CLASSES)
    trained = {"class_names": ["a", "b"], "test_accuracy": 0.5}
    first = weights.available_sources(FASHION.replace(groups=4), "fashion-mnist", trained)[0]
    assert first.kind == weights.SESSION and first.class_names() == ["a", "b"]
    (only,) = weights.available_sources(ShuffleNetConfig(), "imagenet")  # no megvii files here: random only
    assert only.kind == weights.RANDOM and only.test_accuracy is None


def test_shipped_for_groups_prefers_the_same_shuffle_then_the_nearest_width():
    wider = weights.shipped_for_groups(FASHION.replace(scale=0.75))
    assert (wider.config.groups, wider.config.scale, wider.config.shuffle) == (3, 0.5, True)
    ablation = weights.shipped_for_groups(FASHION.replace(shuffle=False, scale=0.25))
    assert (ablation.config.scale, ablation.config.shuffle) == (0.25, False)
    assert weights.shipped_for_groups(FASHION.replace(groups=4, num_classes=7)) is None
    assert all(c.config.num_classes == 10 for c in shipped_checkpoints())


def test_the_weights_choose_the_preprocessing():
    random = weights.WeightsSource(weights.RANDOM, "r", FASHION, "fashion-mnist")
    assert weights.preprocessing_of(random) == "shufflenet.data.preprocess"
    recorded = random._replace(manifest={"preprocessing": {"function": "shufflenet.inference.preprocess"}})
    assert weights.preprocessing_of(recorded) == "shufflenet.inference.preprocess"
    unknown = random._replace(manifest={"preprocessing": {"function": "somewhere.else"}})
    with pytest.raises(CheckpointError, match=r"'somewhere\.else'.*shufflenet\.data\.preprocess"):
        weights.preprocessing_of(unknown)


def test_a_picture_becomes_the_batch_its_weights_expect():
    random = weights.WeightsSource(weights.RANDOM, "r", FASHION, "fashion-mnist")
    pixels = np.full((28, 28), 200, dtype=np.uint8)
    prepared = weights.prepare_picture(pixels, random)
    assert prepared.batch.shape == (1, 32, 32, 1) and prepared.batch.dtype == np.float32
    assert "padded as in training" in prepared.note
    photo = Image.new("RGB", (300, 200), (10, 200, 30))
    imagenet = weights.WeightsSource(weights.RANDOM, "r", ShuffleNetConfig(), "imagenet")
    assert weights.prepare_picture(photo, imagenet).batch.shape == (1, 224, 224, 3)


def test_the_gallery_has_two_labelled_pictures_per_class():
    items = weights.fashion_gallery()
    assert len(items) == 2 * len(FASHION_MNIST_CLASSES)
    for item in items:
        assert item.class_name == FASHION_MNIST_CLASSES[item.label] and item.name.startswith(f"{item.label}_")
        assert item.pixels.shape == (28, 28) and item.pixels.dtype == np.uint8
