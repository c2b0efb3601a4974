"""Background-noise screening: steady ambience is kept, events and short files are dropped."""

import numpy as np
import soundfile as sf

from adv.data.noise_screen import NoiseFilter, level_spread_db, screen_noise_file

SR = 16000


def _write(tmp_path, name, x):
    path = tmp_path / name
    sf.write(path, x.T, SR)
    return str(path)


def test_steady_noise_is_kept_and_events_are_dropped(tmp_path):
    rng = np.random.default_rng(0)
    steady = 0.1 * rng.standard_normal((2, 6 * SR))
    event = np.zeros((2, 6 * SR))
    event[:, 2 * SR : int(3.2 * SR)] = 0.5 * rng.standard_normal((2, int(1.2 * SR)))  # a howl in silence
    event += 1e-4 * rng.standard_normal(event.shape)
    short = 0.1 * rng.standard_normal((2, SR))
    filt = NoiseFilter(min_seconds=3.0, max_spread_db=15.0)
    assert level_spread_db(steady, SR) < 3
    assert screen_noise_file(_write(tmp_path, "steady.wav", steady), filt)["keep"]
    r = screen_noise_file(_write(tmp_path, "event.wav", event), filt)
    assert not r["keep"] and r["reason"] == "unsteady" and r["spread_db"] > 40
    r = screen_noise_file(_write(tmp_path, "short.wav", short), filt)
    assert not r["keep"] and r["reason"] == "too short"
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"not audio at all")
    r = screen_noise_file(str(bad), filt)
    assert not r["keep"] and r["reason"].startswith("unreadable")


def test_a_rebuild_judges_measured_files_again_without_decoding(tmp_path, monkeypatch):
    import adv.data.corpus_build as cb
    from adv.data.sources import SourceFile

    rng = np.random.default_rng(1)
    paths = [
        _write(tmp_path, "a.wav", 0.1 * rng.standard_normal((2, 6 * SR))),
        _write(tmp_path, "b.wav", 0.1 * rng.standard_normal((2, 4 * SR))),
    ]
    files = [SourceFile(p, "pkg", "GPL", "noise", p) for p in paths]
    kept = cb.screen_noise(files, tmp_path, NoiseFilter(min_seconds=3.0, max_spread_db=15.0))
    assert [f.path for f in kept] == paths

    def no_decoding(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cb, "screen_noise_file", no_decoding)
    kept = cb.screen_noise(files, tmp_path, NoiseFilter(min_seconds=5.0, max_spread_db=15.0))
    assert [f.path for f in kept] == paths[:1]  # the 4-s file is now too short
    assert '"too short"' in (tmp_path / "noise.jsonl").read_text()
