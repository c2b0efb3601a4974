"""Detection per bin of the damage size that the generators measured (evaluation report)."""

import json

import numpy as np
import pandas as pd

from adv.training.evaluate import detection_by_measured_effect


def test_detection_is_binned_by_what_the_generator_measured():
    index = pd.DataFrame({"clip_id": ["a", "b", "c", "d", "e"], "labels": ["eq", "eq", "eq", "clean", "eq+noise"]})
    eq = lambda lsd: json.dumps([{"kind": "eq", "log_spectral_distance_db": lsd}])  # noqa: E731
    manifest = pd.DataFrame(
        {
            "clip_id": ["e", "d", "c", "b", "a"],  # another order than the index
            "params": [eq(20.0), "[]", eq(12.0), eq(3.0), eq(1.0)],
        }
    )
    flagged = np.array([False, True, True, True, True])
    out = detection_by_measured_effect(flagged, index, manifest)
    assert list(out) == ["eq"]  # no other kind has single-damage clips here
    rows = {r["range"]: (r["n"], r["flagged"]) for r in out["eq"]["rows"]}
    # a (1 dB) missed, b (3 dB) and c (12 dB) flagged; d is clean and e has two kinds: not counted
    assert rows == {"< 2": (1, 0.0), "2-4": (1, 1.0), ">= 8": (1, 1.0)}
    assert out["eq"]["measure"] == "log_spectral_distance_db"
