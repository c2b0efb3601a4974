"""Extra training music from other packages (configs/sources_extra.toml, [extra_train_sources])."""

import pytest

from adv.config import load_toml
from adv.data.corpus_build import _extra_sources_config
from adv.data.sources import load_sources_config
from adv.errors import ConfigError


def test_shipped_extra_sources_are_disjoint_from_the_main_ones_and_not_reserved():
    main, extra = load_sources_config(), load_sources_config("sources_extra.toml")
    main_names = {p["name"] for p in main["package"]}
    extra_names = [p["name"] for p in extra["package"]]
    assert len(extra_names) == len(set(extra_names)) >= 20
    assert not main_names & set(extra_names)
    assert not set(main["reserved"]) & set(extra_names)
    for p in extra["package"]:
        assert p["licence"] and (p.get("music") or p.get("music_archives")), p["name"]
    table = load_toml("data.toml")["extra_train_sources"]
    assert table["sources"] == "sources_extra.toml" and "plan_seed" in table


def test_extra_sources_config_keeps_the_reserved_lists(tmp_path):
    f = tmp_path / "extra.toml"
    f.write_text('[[package]]\nname = "new-music"\nlicence = "GPL-2+"\nmusic = ["*.ogg"]\n')
    main = {
        "reserved": ["secret-data"],
        "reserved_files": ["hiss.flac"],
        "package": [{"name": "old-music", "licence": "GPL", "music": ["*.ogg"]}],
    }
    cfg = _extra_sources_config(str(f), main, "data.toml")
    assert cfg["reserved"] == ["secret-data"] and cfg["reserved_files"] == ["hiss.flac"]
    assert [p["name"] for p in cfg["package"]] == ["new-music"]


def test_extra_sources_config_refuses_a_package_of_the_main_file_and_a_missing_file(tmp_path):
    f = tmp_path / "extra.toml"
    f.write_text('[[package]]\nname = "old-music"\nlicence = "GPL-2+"\nmusic = ["*.ogg"]\n')
    main = {"package": [{"name": "old-music", "licence": "GPL", "music": ["*.ogg"]}]}
    with pytest.raises(ConfigError, match="old-music"):
        _extra_sources_config(str(f), main, "data.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        _extra_sources_config(str(tmp_path / "nope.toml"), main, "data.toml")


def test_bitrate_gate_rejects_a_low_rate_lossy_file_whole(tmp_path):
    import numpy as np
    import soundfile as sf

    from adv.data.track_scan import Filters, scan_track

    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((44100 * 12, 2))).astype(np.float32)
    ogg, wav = tmp_path / "t.ogg", tmp_path / "t.wav"
    sf.write(ogg, audio, 44100, format="OGG", subtype="VORBIS")
    sf.write(wav, audio, 44100)
    kbps = ogg.stat().st_size * 8 / 1000 / 12
    low = scan_track(str(ogg), 10.0, Filters(min_lossy_kbps={"ogg": kbps * 2}))
    assert low.rejected == {"low_bitrate_source": 1} and low.valid_offsets == []
    assert low.source_kbps == pytest.approx(kbps, rel=0.01)
    ok = scan_track(str(ogg), 10.0, Filters(min_lossy_kbps={"ogg": kbps / 2}))
    assert "low_bitrate_source" not in ok.rejected and ok.valid_offsets
    # lossless files and ungated extensions are not measured; no gate by default
    assert scan_track(str(wav), 10.0, Filters(min_lossy_kbps={"ogg": 1e9})).source_kbps is None
    assert scan_track(str(ogg), 10.0, Filters()).source_kbps is None


def test_packages_named_for_independent_evaluation_are_reserved():
    from adv.data.sources import fetch_package
    from adv.errors import AdvError

    reserved = set(load_sources_config()["reserved"])
    assert {"neverball-common", "freeorion-data", "naev-data", "supertuxkart-data"} <= reserved
    main_names = {p["name"] for p in load_sources_config()["package"]}
    assert not reserved & main_names
    with pytest.raises(AdvError, match="reserved"):
        fetch_package("neverball-common", reserved)
