"""Property-based test (hypothesis) over random valid configurations: the model builds, the two
cost counters agree layer by layer, the diagrams render to DOT, the tables sum to the totals."""

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shufflenet import ShuffleNetConfig, build_model, cost_table, stage_table, totals, unit_table
from shufflenet.complexity import keras_cost_table
from shufflenet.diagrams import full_diagram, macro_diagram, micro_diagram

configs = st.builds(
    ShuffleNetConfig,
    groups=st.sampled_from([1, 2, 3, 4, 8]),
    blocks=st.tuples(*(st.integers(1, 4),) * 3),
    reduction=st.sampled_from([0.05, 0.1, 0.25, 0.3, 0.5, 0.75, 1.0]),
    scale=st.sampled_from([0.25, 0.5, 0.75, 1.0, 1.25, 2.0]),
    input_size=st.sampled_from([32, 64]),
    channels=st.sampled_from([1, 3]),
    num_classes=st.integers(2, 50),
    fc_bias=st.booleans(),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_random_configurations_build_and_their_costs_agree(config):
    model = build_model(config)
    analytic = cost_table(config).set_index("name").sort_index()
    walked = keras_cost_table(model).set_index("name").sort_index()
    pd.testing.assert_frame_equal(analytic, walked)
    t = totals(config)
    for table in (cost_table(config), unit_table(config), stage_table(config)):
        assert int(table["macs"].sum()) == t["macs"]
        assert int(table["params"].sum()) == t["params"]
    assert t["params"] + t["non_trainable"] == model.count_params()


@settings(max_examples=40, deadline=None)
@given(configs)
def test_random_configurations_render_to_dot(config):
    for graph in (macro_diagram(config), micro_diagram(config, stage=2, stride=2), full_diagram(config)):
        assert graph.source.startswith("digraph")
    for stage, units in zip((2, 3, 4), config.blocks):
        if units > 1:
            assert "Add" in micro_diagram(config, stage=stage, stride=1).source
