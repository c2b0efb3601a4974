import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from adv import DISTORTION_KINDS
from adv.data.corpus_build import _jsonl_read, build_corpus
from adv.data.corpus_plan import plan_corpus
from adv.data.splits import assign_folds, assign_splits, check_no_leakage
from adv.config import load_toml


def _tracks(n, packages=3, windows=20):
    return [
        {
            "track_id": f"p{i % packages}:t{i}",
            "package": f"p{i % packages}",
            "valid_offsets": [2.5 * j for j in range(windows)],
        }
        for i in range(n)
    ]


def test_splits_are_grouped_by_track_and_proportional():
    tracks = [(f"p{i % 4}:t{i}", f"p{i % 4}") for i in range(200)]
    split = assign_splits(tracks, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=1)
    counts = pd.Series(split).value_counts()
    assert abs(counts["train"] - 140) <= 4 and abs(counts["val"] - 30) <= 4 and abs(counts["test"] - 30) <= 4
    # every package reaches every split
    for p in range(4):
        assert {split[t] for t, g in tracks if g == f"p{p}"} == {"train", "val", "test"}
    folds = assign_folds([t for t, _ in tracks], 5, seed=1)
    assert sorted(pd.Series(folds).value_counts().tolist()) == [40] * 5


def test_leakage_check_catches_a_shared_track():
    rows = [{"source_track": "a", "split": "train"}, {"source_track": "a", "split": "test"}]
    with pytest.raises(AssertionError, match="track a"):
        check_no_leakage(rows)


def test_plan_is_deterministic_balanced_and_leak_free():
    cfg = load_toml("data.toml")
    tracks = _tracks(60)
    a = plan_corpus(tracks, cfg, 1200, seed=7)
    b = plan_corpus(tracks, cfg, 1200, seed=7)
    assert [(c.track_id, c.offset_s, c.kinds, c.severities, c.seed) for c in a] == [
        (c.track_id, c.offset_s, c.kinds, c.severities, c.seed) for c in b
    ]
    c = plan_corpus(tracks, cfg, 1200, seed=8)
    assert [x.kinds for x in a] != [x.kinds for x in c]
    check_no_leakage([{"source_track": x.track_id, "split": x.split} for x in a])
    df = pd.DataFrame(
        {
            "split": [x.split for x in a],
            "label": ["+".join(x.kinds) or "clean" for x in a],
            "n": [len(x.kinds) for x in a],
            "bin": [x.severity_bin for x in a],
        }
    )
    singles = df[df.n <= 1]
    # classes balanced within every split (stratified), severities spread over all strata
    for split, part in singles.groupby("split"):
        counts = part.label.value_counts()
        assert len(counts) == 6 and counts.max() - counts.min() <= 2, (split, counts)
    assert set(df[df.n >= 1].bin) == {0, 1, 2, 3}
    assert (df.n == 2).mean() == pytest.approx(cfg["combo_fraction"], abs=0.02)
    sev = np.array([s for x in a for s in x.severities])
    assert sev.min() >= cfg["severity_min"] and sev.max() <= cfg["severity_max"]


def test_another_plan_seed_draws_new_clips_in_the_same_splits():
    """Extra training data (`adv data build --extra-train`): same track splits and folds, new
    segments, labels and clip seeds, distinct clip ids."""
    cfg = load_toml("data.toml")
    tracks = _tracks(60)
    a = plan_corpus(tracks, cfg, 1200, seed=7)
    x = plan_corpus(tracks, cfg, 1200, seed=7, plan_seed=1, id_prefix="x1_")
    split_a = {c.track_id: (c.split, c.fold) for c in a}
    assert all(split_a[c.track_id] == (c.split, c.fold) for c in x)
    assert not {c.clip_id for c in a} & {c.clip_id for c in x} and x[0].clip_id.startswith("x1_")
    assert [(c.track_id, c.offset_s, c.kinds, c.seed) for c in a] != [
        (c.track_id, c.offset_s, c.kinds, c.seed) for c in x
    ]


def test_small_build_writes_a_consistent_corpus(small_corpus):
    out, summary = small_corpus
    m = pd.read_csv(out / "manifest.csv")
    assert len(m) == summary["clips"] >= 60
    for col in ("source_track", "source_path", "offset_s", "licence", "labels", "params", "seed", "split", "fold"):
        assert col in m.columns
    assert set(m.split) == {"train", "val", "test"}
    check_no_leakage(m.to_dict("records"))
    assert set(m.labels) >= {"clean", *DISTORTION_KINDS}
    for kind in DISTORTION_KINDS:
        has = m.labels.str.contains(kind)
        assert (m.loc[has, f"sev_{kind}"] > 0).all() and (m.loc[~has, f"sev_{kind}"] == 0).all()
    # every clip at its drawn rate and in its drawn format, as the manifest says ([small] storage)
    assert set(m.sample_rate) == {32000, 44100, 48000} and set(m.format) == {"flac24", "wav16", "wavfloat"}
    subtypes = {"flac24": ("FLAC", "PCM_24"), "wav16": ("WAV", "PCM_16"), "wavfloat": ("WAV", "FLOAT")}
    for row in m.groupby("format").head(2).itertuples():
        info = sf.info(out / row.path)
        assert info.samplerate == row.sample_rate and info.channels == 2
        assert (info.format, info.subtype) == subtypes[row.format]
        assert info.duration == pytest.approx(10.0, abs=0.01)
    params = json.loads(m.loc[m.labels == "mp3", "params"].iloc[0])
    assert params[0]["kind"] == "mp3" and "bitrate_kbps" in json.dumps(params)
    assert summary["class_by_severity_bin"]["noise"]


def test_build_resumes_without_redoing_work(small_corpus):
    out, summary = small_corpus
    before = len(_jsonl_read(out / "rows.jsonl"))
    again = build_corpus(out, small=True)
    assert len(_jsonl_read(out / "rows.jsonl")) == before
    assert again["clips"] == summary["clips"]
    m1 = pd.read_csv(out / "manifest.csv")
    assert m1.clip_id.is_unique


def test_same_seed_gives_identical_clips(small_corpus, tmp_path):
    out, _ = small_corpus
    again = tmp_path / "again"
    build_corpus(again, small=True)
    m1, m2 = pd.read_csv(out / "manifest.csv"), pd.read_csv(again / "manifest.csv")
    cols = ["clip_id", "source_track", "offset_s", "labels", "params", "seed", "split"]
    pd.testing.assert_frame_equal(m1[cols], m2[cols])
    for rel in m1.path[:12]:  # audio of the first clips; parameters of all clips compared above
        a, _ = sf.read(out / rel)
        b, _ = sf.read(again / rel)
        assert np.array_equal(a, b), rel


def test_storage_draws_are_seeded_and_validated():
    from adv.data.storage import Storage
    from adv.errors import ConfigError

    s = Storage.from_config({"rates": {"44100": 3, "96000": 1}, "formats": {"flac16": 1, "wavfloat": 1}}, 32000)
    draws = [s.draw(i) for i in range(400)]
    assert draws == [s.draw(i) for i in range(400)]
    rates = [r for r, _ in draws]
    assert 0.65 < rates.count(44100) / 400 < 0.85 and set(rates) == {44100, 96000}
    assert Storage.from_config(None, 32000).draw(7) == (32000, "flac24")
    for bad in (
        {"rates": {"44100": 1}, "formats": {"mp3": 1}},
        {"rates": {"fast": 1}, "formats": {"flac16": 1}},
        {"rates": {"1000": 1}, "formats": {"flac16": 1}},
        {"rates": {}, "formats": {"flac16": 1}},
    ):
        with pytest.raises(ConfigError):
            Storage.from_config(bad, 32000)
