"""Two networks of any families side by side: the headline costs of each and their ratio.

MACs say how much arithmetic a network does; memory traffic how many bytes its layers move (see
`complexity`); their quotient, the arithmetic intensity, says which of the two is likely to bound
its speed. ShuffleNet's and MobileNet's papers compare networks by MACs alone (ShuffleNet v1's
Table 5 sets ShuffleNet 1x g=8 against MobileNet 0.5); ShuffleNet v2's point is that the rest
matters too, and this table shows both.
"""

from __future__ import annotations

import pandas as pd

from ..analysis import key_figures
from . import family_config, family_of

#: The columns of `compare_networks`: keys of `analysis.key_figures`.
FIGURES = ("macs", "conv_macs", "params", "traffic_bytes", "intensity", "activation_bytes", "model_bytes", "layers")


def compare_networks(a, b) -> pd.DataFrame:
    """Rows A and B, then "B/A": the network (its label), its family and width, and every figure
    of `FIGURES` (MACs with and without the FC layer, parameters, memory traffic, arithmetic
    intensity in MACs per byte, activation memory, model size, layers). `a` and `b` are
    configurations of any family (a `ShuffleNetConfig` or a `families` configuration). The
    ratio row is a separate frame, `ratios(a, b)`, so each column here keeps one type."""
    rows = []
    for name, config in (("A", a), ("B", b)):
        f = key_figures(config)
        rows.append({"network": name, "label": config.label, "family": family_of(config), "scale": config.scale,
                     **{key: f[key] for key in FIGURES}})
    return pd.DataFrame(rows)


def ratios(a, b) -> pd.DataFrame:
    """One row: B / A of every figure of `FIGURES` (NaN where A's is 0)."""
    fa, fb = key_figures(a), key_figures(b)
    return pd.DataFrame([{key: fb[key] / fa[key] if fa[key] else float("nan") for key in FIGURES}])


def like(config, family: str, scale: float):
    """A network of `family` at width `scale` with the input and classes of `config`, so that the
    two compare like for like (ShuffleNet v1: its paper's other defaults, g = 3)."""
    fields = {"input_size": config.input_size, "channels": config.channels, "num_classes": config.num_classes}
    return family_config(family, scale, **fields)
