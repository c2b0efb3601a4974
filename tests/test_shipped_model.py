"""The shipped model on clips generated at test time: the obvious cases must come out right."""

import numpy as np
import pytest

from adv.data.mastering import limit
from adv.demo import SR, example_song
from adv.distortions import apply_distortion
from adv.inference.validator import AudioDistortionValidator


@pytest.fixture(scope="module")
def validator():
    return AudioDistortionValidator()


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    """10-s excerpts of three Bach chorales rendered with random instruments (fluidsynth), made now."""
    cache = tmp_path_factory.mktemp("render")
    out = [example_song(cache, seed)[:, : 10 * SR] for seed in (3, 11, 29)]
    return [0.5 * s / np.abs(s).max() for s in out]


def _verdicts(validator, songs, kind=None, severity=0.9, variant=None):
    results = []
    for i, song in enumerate(songs):
        audio = song
        if kind:
            audio, _ = apply_distortion(kind, song, SR, severity, np.random.default_rng(i), variant=variant)
        results.append(validator.analyze(audio, sample_rate=SR))
    return results


def test_clean_music_is_clean(validator, songs):
    for r in _verdicts(validator, songs):
        assert not r["has_distortion"], r["types"]


def _loud_master(song, limit_db=-9.0):
    """The song limited like a loud master (look-ahead limiter, no flat tops), peak at -0.3 dBFS."""
    out = limit(song.astype(np.float32), SR, limit_db, attack_s=0.002, release_s=0.15)
    return out * (10 ** (-0.3 / 20) / np.abs(out).max())


@pytest.mark.parametrize("limit_db", [-6.0, -12.0])
def test_loud_master_is_clean(validator, songs, limit_db):
    """Limiting is not clipping: most commercial releases are limited like this (the corpus-v5 model
    flagged one of these three at -6 dB)."""
    for song in songs:
        r = validator.analyze(_loud_master(song, limit_db), sample_rate=SR)
        assert not r["has_distortion"], r["types"]


def test_clipped_loud_master_is_clipping(validator, songs):
    for i, song in enumerate(songs):
        audio, _ = apply_distortion("clipping", _loud_master(song), SR, 0.6, np.random.default_rng(i), variant="hard")
        r = validator.analyze(audio, sample_rate=SR)
        assert r["has_distortion"] and r["distortion_type"] == "clipping", r["types"]


@pytest.mark.parametrize("variant", ["hard", "renormalised"])
def test_hard_clipping_is_clipping(validator, songs, variant):
    for r in _verdicts(validator, songs, "clipping", 0.8, variant):
        assert r["has_distortion"] and r["distortion_type"] == "clipping", r["types"]


def test_polarity_inversion_is_phase(validator, songs):
    for r in _verdicts(validator, songs, "phase", 1.0, "polarity"):
        assert r["has_distortion"] and "phase" in r["detected_types"], r["types"]


def test_loud_noise_is_noise(validator, songs):
    for r in _verdicts(validator, songs, "noise", 0.9, "white"):
        assert r["has_distortion"] and r["distortion_type"] == "noise", r["types"]


def test_low_bitrate_mp3_is_mp3(validator, songs):
    for r in _verdicts(validator, songs, "mp3", 1.0, "lame_cbr"):
        assert r["has_distortion"] and "mp3" in r["detected_types"], r["types"]


def test_telephone_eq_is_flagged(validator, songs):
    for r in _verdicts(validator, songs, "eq", 1.0, "telephone"):
        assert r["has_distortion"], r["types"]


def test_telephone_eq_is_eq(validator, songs):
    """A telephone band-pass removes the highs like a codec, but also the lows: it must be eq, not mp3."""
    for r in _verdicts(validator, songs, "eq", 1.0, "telephone"):
        assert r["distortion_type"] == "eq", r["types"]


def test_severity_grows_with_damage(validator, songs):
    song = songs[0]
    sev = [_verdicts(validator, [song], "noise", s, "white")[0]["types"]["noise"]["severity"] for s in (0.4, 0.95)]
    assert sev[1] > sev[0]


def test_user_threshold_trades_false_alarms_for_detections(songs):
    """One threshold for every kind is the user's sensitivity knob: probabilities do not change, and
    whatever a strict (high) threshold flags, a lenient (low) one flags too."""
    audio, _ = apply_distortion("eq", songs[0], SR, 0.3, np.random.default_rng(0), variant="shelf_peak")
    verdicts = [AudioDistortionValidator(threshold=t).analyze(audio, sample_rate=SR) for t in (0.02, 0.5, 0.98)]
    probs = [r["types"]["eq"]["probability"] for r in verdicts]
    assert max(probs) - min(probs) < 1e-6
    flagged = [r["has_distortion"] for r in verdicts]
    assert flagged == sorted(flagged, reverse=True)  # True..False as the threshold rises
    assert flagged[0]
    for r, t in zip(verdicts, (0.02, 0.5, 0.98)):
        assert all(e["threshold"] == t for e in r["types"].values())
    with pytest.raises(ValueError):
        AudioDistortionValidator(threshold=1.5)


def test_a_clipped_section_is_found_and_located(validator, songs):
    """25 s of hard clipping inside a 130-s track (the three 10-s chorales, four times, then the first
    again): a run of clearly clipped windows flags the track and `section` says where."""
    track = np.concatenate(songs * 4 + songs[:1], axis=1)
    a, b = 30 * SR, 55 * SR
    clipped, _ = apply_distortion("clipping", track[:, a:b], SR, 0.8, np.random.default_rng(0), variant="hard")
    damaged = track.copy()
    damaged[:, a:b] = clipped
    r = validator.analyze(damaged, sample_rate=SR)
    t = r["types"]["clipping"]["threshold"]
    assert np.mean([s["probabilities"]["clipping"] for s in r["segments"]]) < t  # the mean alone says clean
    assert r["has_distortion"] and r["distortion_type"] == "clipping", r["types"]
    sec = r["section"]
    assert sec["kind"] == "clipping"
    assert sec is not None and 25.0 <= sec["start"] <= 35.0 and 50.0 <= sec["end"] <= 60.0, sec
    clean = validator.analyze(track, sample_rate=SR)
    assert clean["section"] is None
