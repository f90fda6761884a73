"""ShuffleNet v1 (Zhang et al., CVPR 2018, arXiv 1707.01083): a paper-exact Keras model,
its complexity accounting and its diagrams. Never imports Streamlit."""

from .complexity import cost_table, stage_table, totals, unit_table
from .config import ALLOWED_GROUPS, ShuffleNetConfig
from .naming import layer_name, parse_layer_name

__version__ = "0.1.0"

__all__ = [
    "ALLOWED_GROUPS", "ShuffleNetConfig", "__version__", "build_model", "cost_table", "layer_name",
    "parse_layer_name", "stage_table", "totals", "unit_table",
]


def __getattr__(name):
    # TensorFlow takes seconds to import: load the model builder only when it is asked for.
    if name == "build_model":
        from .model import build_model

        return build_model
    raise AttributeError(f"module 'shufflenet' has no attribute {name!r}")
