"""adv.training.target_limits: severity from the measured effect, and the learning curve."""

import json

import numpy as np
import pandas as pd
import pytest

from adv.training.target_limits import (
    learning_curve,
    severity_as_measured_effect,
    severity_from_measured_effect,
    summarise_curve,
)
from adv.training.train_head import HeadData


def _manifest(n: int, coupled: bool, seed: int = 0) -> pd.DataFrame:
    """Single-kind eq clips whose measured spectral change follows the severity (coupled) or not."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        sev = float(rng.uniform(0.05, 1.0))
        lsd = 20 * sev if coupled else float(rng.uniform(0, 20))
        p = {
            "kind": "eq",
            "variant": ["shelf_peak", "band_limit"][i % 2],
            "severity": sev,
            "log_spectral_distance_db": lsd,
        }
        rows.append({"clip_id": f"c{i}", "labels": "eq", "source_track": f"t{i % 40}", "params": json.dumps([p])})
    rows.append({"clip_id": "clean", "labels": "clean", "source_track": "t0", "params": "[]"})
    return pd.DataFrame(rows)


def test_severity_follows_a_coupled_measure_and_not_a_random_one():
    coupled = severity_from_measured_effect(_manifest(400, True))["eq"]
    random = severity_from_measured_effect(_manifest(400, False))["eq"]
    assert coupled["n"] == 400 and set(coupled["mae_pp_by_variant"]) == {"band_limit", "shelf_peak"}
    assert coupled["mae_pp_effect"] < 3.0
    # unrelated to the severity: no better than predicting the middle of U(0.05, 1) (MAE ~24 pp)
    assert random["mae_pp_effect"] > 18.0
    # kinds with too few clips are left out
    assert "noise" not in severity_from_measured_effect(_manifest(400, True))


def _data(n: int, rng: np.random.Generator, shift: float = 3.0) -> tuple[HeadData, np.ndarray]:
    cls = rng.integers(0, 6, n)
    labels = np.eye(6)[cls]
    signal = rng.normal(size=(n, 8)).astype(np.float32)
    signal[np.arange(n), cls] += shift  # class c raises feature c
    sev = np.zeros((n, 5))
    sev[cls > 0, cls[cls > 0] - 1] = 0.5
    groups = np.array([f"t{i % 30}" for i in range(n)])
    return HeadData(np.zeros((n, 0), np.float32), signal, labels, sev), groups


def test_learning_curve_rows_and_summary():
    rng = np.random.default_rng(1)
    train, groups = _data(1200, rng)
    val, _ = _data(400, rng)
    test, _ = _data(400, rng)
    tcfg = {"max_iter": 30, "learning_rate": 0.1, "max_leaf_nodes": 7, "min_samples_leaf": 10}
    rows = learning_curve(train, groups, val, test, tcfg, fractions=(0.25, 1.0), draws=2, clean_weight=3.0)
    assert [r["fraction"] for r in rows] == [0.25, 0.25, 1.0]
    assert rows[-1]["tracks"] == 30 and rows[-1]["clips"] == 1200 and rows[0]["tracks"] == 8
    # the separable classes are learnt: far above chance (macro-F1 ~0.17 for six guessed classes)
    assert rows[-1]["macro_f1"] > 0.5
    # the threshold is set on validation to flag 15 % of its clean clips; test lands near it
    assert 0.05 < rows[-1]["clean_false_alarm_rate"] < 0.3
    s = summarise_curve(rows)
    assert set(s["by_fraction"]) == {"0.25", "1.0"} and "macro_f1_gain_per_doubling" in s
    assert s["by_fraction"]["1.0"]["tracks"] == pytest.approx(30)


def test_source_bitrate_bins_and_false_alarms_per_bin():
    from adv.training.target_limits import false_alarms_by_bin, source_bitrate_bin

    assert [
        source_bitrate_bin(c, k)
        for c, k in [
            ("vorbis", 64),
            ("vorbis", 96),
            ("opus", 120),
            ("mp3", 320),
            ("flac", 900),
            ("pcm_s16le", 1411),
            ("vorbis", -1),
        ]
    ] == ["<= 80", "81-100", "101-128", "> 128", "lossless", "lossless", "unknown"]
    flagged = np.array([1, 0, 0, 0, 1, 1], bool)
    clean = np.array([1, 1, 1, 1, 0, 0], bool)
    bins = np.array(["<= 80", "<= 80", "> 128", "> 128", "> 128", "<= 80"])
    rows = {r["source"]: r for r in false_alarms_by_bin(flagged, clean, bins)}
    assert list(rows) == ["<= 80", "> 128"]
    assert rows["<= 80"] == {
        "source": "<= 80",
        "clean_clips": 2,
        "clean_flagged": 0.5,
        "damaged_clips": 1,
        "damaged_flagged": 1.0,
    }
    assert rows["> 128"]["clean_flagged"] == 0.0 and rows["> 128"]["damaged_clips"] == 1


def test_severity_as_measured_effect_learns_a_visible_effect_and_not_a_hidden_setting():
    """The setting is hidden (unrelated to the features); the measured effect is in feature 0: the
    effect-defined label is learnt, the setting is not."""
    rng = np.random.default_rng(3)

    def part(n: int, offset: int):
        rows, sig = [], rng.normal(size=(n + 1, 4)).astype(np.float32)
        for i in range(n):
            lsd = float(rng.uniform(0, 20))
            sig[i, 0] = lsd / 10
            p = {"kind": "eq", "severity": float(rng.uniform(0.05, 1.0)), "log_spectral_distance_db": lsd}
            rows.append({"clip_id": f"c{offset + i}", "labels": "eq", "params": json.dumps([p])})
        rows.append({"clip_id": f"c{offset + n}", "labels": "clean", "params": "[]"})
        man = pd.DataFrame(rows)
        return man, man["clip_id"], sig

    out = severity_as_measured_effect(
        part(600, 0), part(200, 10_000), inputs={"eq": "log_spectral_distance_db", "phase": "mono_loss_db"}
    )
    eq = out["eq"]
    assert eq["n_train"] == 600 and eq["n_test"] == 200 and "phase" not in out
    assert eq["mae_pp_effect_label"] < 5.0
    assert eq["mae_pp_setting_label"] > 0.8 * eq["mae_pp_setting_label_constant"]
