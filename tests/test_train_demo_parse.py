"""The demo benchmark reads the accuracy back from the training panel's success line."""

import pytest
import train_demo

from explorer.views.training_panel import result_text

MANIFEST = {"training_seconds": 41.6, "dataset": {"train_images": 60000}, "test_accuracy": 0.8734, "test_images": 1000}


def test_the_panels_own_success_line_is_parsed():
    for stopped, other in ((False, None), (True, "ShuffleNet 0.5x (g=8)")):
        text = result_text(MANIFEST, stopped, other)
        accuracy, images = train_demo.parse_result(text)
        assert accuracy == pytest.approx(0.8734) and images == 1000, text


def test_the_line_as_the_browser_gives_it():
    # the page's innerText of the success alert (no-break spaces, a line break where it wrapped)
    shown = ("Trained in 24 s on 60,000 images: test accuracy 84.00\u00a0% on the first 1,000\ntest images. "
             "Pick \u201cTrained in this session\u201d as weights above.")
    assert train_demo.parse_result(shown) == (pytest.approx(0.84), 1000)


def test_the_weights_selectors_line_as_a_real_demo_run_showed_it():
    shown = "Trained weights (Trained in this session); test accuracy recorded in its manifest: 87.10 %."
    assert train_demo.parse_result(shown) == (pytest.approx(0.871), None)
    panel = result_text(MANIFEST, False)
    assert train_demo.best_result([shown, panel]) == (pytest.approx(0.8734), 1000)  # the panel's, with its count
    assert train_demo.best_result([shown]) == (pytest.approx(0.871), None)
    assert train_demo.best_result([]) == (None, None)


def test_text_without_the_figures_gives_none():
    assert train_demo.parse_result("Trained in this session") == (None, None)
    assert train_demo.parse_result("") == (None, None)
