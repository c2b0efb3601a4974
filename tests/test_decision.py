"""The decision rule (adv.inference.decision) and its calibration: verdicts agree with the
probabilities and thresholds they report, and the chosen thresholds keep the clean-track budget."""

import numpy as np
import pytest

from adv import DISTORTION_KINDS
from adv.inference.decision import RUN_WINDOWS, Decision, strong
from adv.inference.windows import summarise
from adv.training.decision_calibration import calibrate, evaluate


def _probs(rng, w):
    p = rng.uniform(0, 1, size=(w, 6)) ** rng.uniform(0.5, 6, size=6)
    return p


def test_thresholds_come_from_the_model_file():
    assert Decision.from_meta({"kind_threshold": 0.55}).thresholds == (0.55,) * 5
    per = {k: 0.1 * (i + 3) for i, k in enumerate(DISTORTION_KINDS)}
    assert Decision.from_meta({"kind_thresholds": per, "kind_threshold": 0.5}).as_dict() == pytest.approx(per)
    assert Decision.from_meta({"kind_thresholds": per}, override=0.9).thresholds == (0.9,) * 5


@pytest.mark.parametrize("seed", range(40))
def test_a_verdict_never_contradicts_its_probabilities(seed):
    rng = np.random.default_rng(seed)
    w = int(rng.integers(1, 30))
    probs = _probs(rng, w)
    sev = rng.uniform(0, 1, size=(w, 5))
    silent = rng.uniform(size=w) < 0.1
    d = Decision(tuple(rng.uniform(0.2, 0.9, size=5)))
    r = summarise(probs, sev, [5.0 * i for i in range(w)], 10.0, 5.0 * w + 5, d, silent)
    for k, t in r["types"].items():
        assert t["threshold"] == pytest.approx(d.as_dict()[k])
        assert t["detected"] == (t["probability"] >= t["threshold"] - 1e-4), (k, t)
    assert r["has_distortion"] == any(t["detected"] for t in r["types"].values())
    assert r["has_distortion"] == bool(r["detected_types"])
    if r["has_distortion"]:
        assert r["distortion_type"] in r["detected_types"]
        assert r["confidence"] == r["types"][r["distortion_type"]]["probability"]
    else:
        assert r["distortion_type"] == "clean" and r["severity"] == 0.0
    for j, seg in enumerate(r["segments"]):
        over = [k for i, k in enumerate(DISTORTION_KINDS) if probs[j, 1 + i] >= d.thresholds[i]]
        assert seg["has_distortion"] == (bool(over) and not silent[j])
        if seg["has_distortion"]:
            assert seg["distortion_type"] in over


def test_a_run_of_clear_windows_flags_a_track_whose_mean_is_clean():
    d = Decision((0.5,) * 5)
    probs = np.full((12, 6), 0.02)
    probs[:, 0] = 0.9
    probs[4 : 4 + RUN_WINDOWS, 3] = strong(0.5) + 0.01  # noise, clearly, in three windows
    r = summarise(probs, np.zeros((12, 5)), [5.0 * i for i in range(12)], 10.0, 65.0, d)
    assert r["has_distortion"] and r["distortion_type"] == "noise"
    assert r["section"] == {"start": 20.0, "end": 40.0, "kind": "noise"}
    probs[5, 3] = 0.4  # the run broken: clean
    assert not summarise(probs, np.zeros((12, 5)), [5.0 * i for i in range(12)], 10.0, 65.0, d)["has_distortion"]


def test_silence_is_clean_and_sure():
    probs = np.full((3, 6), 0.99)
    r = summarise(probs, np.ones((3, 5)), [0.0, 5.0, 10.0], 10.0, 20.0, Decision((0.5,) * 5), np.ones(3, bool))
    assert not r["has_distortion"] and r["confidence"] == 1.0
    assert all(s["silent"] and not s["has_distortion"] for s in r["segments"])


def _rows(rng, n_clean=200, n_damaged=200):
    rows = []
    for i in range(n_clean):
        p = rng.uniform(0, 0.4, size=(6, 6)) * rng.uniform(0.2, 1.0)
        rows.append({"kind": "clean", "window_probs": p.tolist(), "window_silent": [False] * 6})
    for i in range(n_damaged):
        k = i % 5
        p = rng.uniform(0, 0.4, size=(6, 6))
        p[:, 1 + k] = rng.uniform(0.2, 1.0)
        rows.append({"kind": DISTORTION_KINDS[k], "window_probs": p.tolist(), "window_silent": [False] * 6})
    return rows


def test_calibration_keeps_the_budget_and_trades_detections_for_it():
    rows = _rows(np.random.default_rng(0))
    caught = []
    for budget in (0.01, 0.05, 0.2):
        d, m = calibrate(rows, budget)
        assert m["clean_tracks_flagged_pct"] <= 100 * budget
        assert evaluate(d, rows) == {k: v for k, v in m.items() if k != "level"}
        caught.append(m["damaged_tracks_caught_pct"])
    assert caught == sorted(caught) and caught[-1] > caught[0]


def test_measured_clipping_proves_the_window():
    from adv.distortions.clipping import MAX_FRACTION
    from adv.inference.evidence import EVIDENCE_PROBABILITY, apply_evidence
    from adv.inference.evidence import MAX_FRACTION as EVIDENCE_MAX

    assert EVIDENCE_MAX == MAX_FRACTION  # the measured severity is on the generator's map

    probs = np.array([[0.9, 0.05, 0.02, 0.01, 0.01, 0.01]] * 3)
    sevs = np.full((3, 5), 0.2)
    measured = [{"clipped_fraction": 0.0}, {"clipped_fraction": 0.02}, {"clipped_fraction": None}]
    p, s, proved = apply_evidence(probs, sevs, measured)
    assert proved[:, 0].tolist() == [False, True, False] and not proved[:, 1:].any()
    assert p[1, 1] == EVIDENCE_PROBABILITY and p[1, 0] <= 1 - EVIDENCE_PROBABILITY
    assert s[1, 0] == pytest.approx(0.02 / 0.40) and s[0, 0] == 0.2
    assert np.array_equal(p[[0, 2]], probs[[0, 2]]) and probs[1, 1] == 0.05  # inputs untouched


def test_a_hard_clipped_44k_file_is_clipping_and_a_limited_one_is_not(tmp_path):
    """Flat tops measured at the file's own rate decide, whatever the model makes of the resampled audio."""
    import soundfile as sf

    from adv.data.mastering import limit
    from adv.inference.validator import AudioDistortionValidator
    from adv.measurements.synth import music_like

    sr = 44100
    song = music_like(12.0, sr, seed=4)
    song = 0.5 * song / np.abs(song).max()
    v = AudioDistortionValidator(threads=1)
    clipped = np.clip(song * 10 ** (10 / 20), -1, 1)
    sf.write(tmp_path / "clipped.wav", clipped.T, sr, subtype="PCM_16")
    r = v.analyze(tmp_path / "clipped.wav")
    assert r["distortion_type"] == "clipping" and r["types"]["clipping"]["measured_windows"] == len(r["segments"])
    frac = r["measurements"]["clipped_fraction"]
    assert r["severity"] == pytest.approx(100 * frac / 0.40, abs=1.5)
    loud = limit(song.astype(np.float32), sr, -9.0, attack_s=0.002, release_s=0.15)
    sf.write(tmp_path / "loud.wav", (loud * 0.966 / np.abs(loud).max()).T, sr, subtype="PCM_24")
    r = v.analyze(tmp_path / "loud.wav")
    assert r["types"]["clipping"]["measured_windows"] == 0
