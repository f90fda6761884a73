"""The Predictions view uses imported megvii ImageNet weights when they exist for the chosen
network: chosen automatically, megvii's preprocessing, ImageNet class names."""

import json
from pathlib import Path

import pytest
from apptest_support import make_app, no_exception

from shufflenet import build_model, imagenet
from shufflenet.checkpoints import MANIFEST_NAME, WEIGHTS_NAME


def _fake_import(root: Path, groups: int, scale: float) -> Path:
    """An imported checkpoint folder as `import-weights` writes it (random weights, no torch needed)."""
    config = imagenet.megvii_config(groups, scale)
    out = root / f"g{groups}_{scale}x"
    out.mkdir(parents=True)
    build_model(config).save_weights(out / WEIGHTS_NAME)
    source = root / "fake.pth.tar"
    source.write_bytes(b"not read")
    (out / MANIFEST_NAME).write_text(json.dumps(imagenet.build_manifest(config, source, "0" * 64)))
    return out


@pytest.mark.slow
def test_imported_weights_are_offered_and_used(tmp_path, monkeypatch):
    monkeypatch.setattr(imagenet, "IMPORT_ROOT", tmp_path)
    folder = _fake_import(tmp_path, 3, 0.5)
    at = make_app(view="predictions", task="imagenet", groups="3", scale="0.5", timeout_s=180)
    no_exception(at)
    assert at.selectbox(key="pred_weights").value == f"megvii ImageNet weights ({folder.name})"
    assert any("megvii" in s.value and "published" in s.value for s in at.success)
    assert not any("random" in w.value for w in at.warning)
    labels = at.dataframe[-1].value["label"]
    assert labels.isin(imagenet.class_names()).all()
    assert any("megvii's evaluation" in c.value for c in at.caption)
    # another width has no import: random weights, plainly said
    at.slider(key="scale").set_value(1.0).run()
    assert at.selectbox(key="pred_weights").value == "Random initialisation"
    assert any("random" in w.value for w in at.warning)
