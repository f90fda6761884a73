"""The paper's published results as data (Zhang, Zhou, Lin, Sun, "ShuffleNet: An Extremely
Efficient Convolutional Neural Network for Mobile Devices", CVPR 2018, arXiv 1707.01083).

ImageNet (ILSVRC-2012) top-1 classification error in percent on the validation set, single
224x224 centre crop; complexity in MFLOPs, which in the paper are multiply-adds (MACs).
"""

from __future__ import annotations

#: Table 2: complexity budget per width and error per number of groups g.
TABLE2_MFLOPS = {1.0: 140, 0.5: 38, 0.25: 13}
TABLE2_ERROR = {
    1.0: {1: 33.6, 2: 32.7, 3: 32.6, 4: 32.8, 8: 32.4},
    0.5: {1: 45.1, 2: 44.4, 3: 43.2, 4: 41.6, 8: 42.3},
    0.25: {1: 57.1, 2: 56.8, 3: 55.0, 4: 54.2, 8: 52.7},
}

#: Table 3: error without -> with channel shuffle, per width and g.
TABLE3_ERROR = {
    (1.0, 3): (34.5, 32.6), (1.0, 8): (37.6, 32.4),
    (0.5, 3): (45.7, 43.2), (0.5, 8): (48.1, 42.3),
    (0.25, 3): (56.3, 55.0), (0.25, 8): (56.5, 52.7),
}

CITATION = "Zhang et al., ShuffleNet, CVPR 2018 (arXiv 1707.01083)"


def imagenet_points() -> list[dict]:
    """Every published point of Tables 2 and 3: width, g, shuffle, MFLOPs, error (%), table."""
    points = []
    for scale, errors in TABLE2_ERROR.items():
        for g, err in errors.items():
            points.append({"scale": scale, "groups": g, "shuffle": True, "mflops": TABLE2_MFLOPS[scale],
                           "error": err, "table": "Table 2"})
    for (scale, g), (without, _with) in TABLE3_ERROR.items():
        points.append({"scale": scale, "groups": g, "shuffle": False, "mflops": TABLE2_MFLOPS[scale],
                       "error": without, "table": "Table 3"})
    return points
