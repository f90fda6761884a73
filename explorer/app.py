"""ShuffleNet Explorer: `streamlit run explorer/app.py`.

Page set-up, the sidebar and the dispatch to the chosen view; everything else lives in
`explorer/` (UI) and `shufflenet/` (the library). After the view is sent, the background
builder is asked for the configuration's Keras model (`cache.request_model`), so every view's
network gets built without any page waiting for it.
"""

import sys
from pathlib import Path

# `streamlit run explorer/app.py` puts explorer/ on sys.path, not the repository root.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shufflenet.settings import quiet_tensorflow  # noqa: E402 - needs the root on the path; imports nothing heavy

quiet_tensorflow()  # before anything imports TensorFlow


def main() -> None:
    import streamlit as st

    import explorer.lesson as lesson  # the lecture: the lesson's steps and presenter mode
    import explorer.presenter as presenter
    from explorer import _streamlit_compat, cache, sidebar, url
    from explorer.views import VIEW_MODULES
    from shufflenet import serving

    _streamlit_compat.keep_keras_between_runs()  # once per process: Keras's state stays between runs

    with serving.ACTIVITY.running():  # the background builder waits while pages are computed
        serving.freeze_after_import()  # once, after whichever page or thread imported TensorFlow
        serving.COLLECTOR.install()  # full garbage collections at quiet moments, by the builder's thread
        st.set_page_config(page_title="ShuffleNet Explorer", page_icon="🔀", layout="wide")

        url.seed_from_url()  # the link's values, on the session's first run, before anything reads them
        presenter.start()  # before the sidebar: its toggle on top, the collapsed sidebar, the larger type
        lesson.start()  # before the sidebar: a link's step sets it; the lesson's button
        selection = sidebar.render()
        st.title(f"ShuffleNet Explorer · {selection.view}")
        st.caption("ShuffleNet v1 (Zhang, Zhou, Lin, Sun, CVPR 2018, arXiv 1707.01083): every number and diagram "
                   "here is computed from the configuration in the sidebar.")
        for message in selection.warnings:
            st.warning(message)
        lesson.render(selection)  # the step's text, question and Previous/Next, above the view
        VIEW_MODULES[selection.view].render(selection)
        cache.request_model(selection.config)


# `streamlit run` executes this file as __main__ on every rerun. A training started from a page
# runs in a process that multiprocessing starts by importing this file again, as __mp_main__:
# there it must not draw a page nor start the background builder (whose TensorFlow import would
# deadlock with the training's own).
if __name__ == "__main__":
    main()
