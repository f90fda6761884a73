"""The Predictions view uses imported megvii ImageNet weights when they exist for the chosen
network: chosen automatically, megvii's preprocessing, ImageNet class names."""


import pytest
from apptest_support import fake_import, make_app, no_exception

from shufflenet import imagenet


@pytest.mark.slow
def test_imported_weights_are_offered_and_used(tmp_path, monkeypatch):
    monkeypatch.setattr(imagenet, "IMPORT_ROOT", tmp_path)
    folder = fake_import(tmp_path, 3, 0.5)
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
