"""Delivery-spec rules (--require, --profile): parsing, evaluation on results, shipped profiles,
and the exit code of the CLI on real files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from adv.cli import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, main
from adv.specs import RuleError, check_result, load_profile, parse_rule, profile_names
from adv.specs.rules import NAMES

RESULT = {
    "has_distortion": True,
    "distortion_type": "clipping",
    "severity": 40.0,
    "confidence": 0.9,
    "types": {
        "clipping": {"probability": 0.95, "detected": True, "severity": 40.0},
        "mp3": {"probability": 0.1, "detected": False, "severity": 20.0},
    },
    "measurements": {
        "true_peak_dbtp": -0.2,
        "integrated_lufs": -9.5,
        "lr_correlation": None,
        "polarity_inverted": None,
        "clipped_fraction": 0.03,
    },
}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("true_peak_dbtp <= -1", False),
        ("true_peak_dbtp<=0", True),
        ("integrated_lufs <= -14 or true_peak_dbtp <= -2", False),
        ("integrated_lufs <= -14 or true_peak_dbtp <= 0", True),
        ("clipping.detected == false", False),
        ("mp3.detected == false and mp3.probability < 0.5", True),
        ("distortion_type != clean", True),
        ("clipped_fraction < 0.01", False),
        ("severity >= 40 and confidence > 0.8", True),
    ],
)
def test_rules_evaluate_on_a_result(text, expected):
    assert check_result(RESULT, [parse_rule(text)])["passed"] is expected


def test_null_values_make_a_rule_not_applicable_not_failed():
    checks = check_result(RESULT, [parse_rule("lr_correlation >= 0 and polarity_inverted == false")])
    assert checks == {
        "passed": True,
        "failed": [],
        "not_applicable": ["lr_correlation >= 0 and polarity_inverted == false"],
    }
    # a known term still decides when another is null
    assert not check_result(RESULT, [parse_rule("lr_correlation >= 0 and true_peak_dbtp <= -1")])["passed"]


def test_failed_rules_carry_their_values_and_source():
    rule = parse_rule("true_peak_dbtp <= -1", source="EBU R 128", profile="broadcast")
    (failed,) = check_result(RESULT, [rule])["failed"]
    assert failed == {
        "rule": "true_peak_dbtp <= -1",
        "values": {"true_peak_dbtp": -0.2},
        "source": "EBU R 128",
        "profile": "broadcast",
    }


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bogus < 1",
        "true_peak_dbtp ~ 1",
        "true_peak_dbtp <= loud",
        "clipping.detected < true",
        "distortion_type == hiss",
        "true_peak_dbtp <=",
    ],
)
def test_bad_rules_are_usage_errors_naming_the_problem(text):
    with pytest.raises(RuleError):
        parse_rule(text)


def test_every_measurement_and_kind_can_be_named():
    from adv.measurements import TRACK_KEYS

    assert set(TRACK_KEYS) - {"clipping_per_channel"} <= set(NAMES)
    for kind in ("clipping", "mp3", "noise", "eq", "phase"):
        assert f"{kind}.probability" in NAMES and f"{kind}.detected" in NAMES


def test_shipped_profiles_load_and_every_rule_has_a_source():
    assert {"streaming", "broadcast", "podcast"} <= set(profile_names())
    for name in profile_names():
        profile = load_profile(name)
        assert profile.description and profile.rules
        assert all(r.source and r.why and r.profile == name for r in profile.rules)
    with pytest.raises(RuleError, match="unknown profile"):
        load_profile("nonexistent")


def test_a_profile_file_of_ones_own(tmp_path):
    p = tmp_path / "label.toml"
    p.write_text('description = "our label"\n[[rule]]\nrequire = "integrated_lufs >= -12"\nsource = "house"\n')
    (rule,) = load_profile(str(p)).rules
    assert rule.text == "integrated_lufs >= -12" and rule.profile == "label"
    p.write_text("description = 'no rules'\n")
    with pytest.raises(RuleError, match="at least one"):
        load_profile(str(p))


def _tone(path, gain: float) -> str:
    sr = 44100
    t = np.arange(4 * sr) / sr
    x = gain * (np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 1760 * t)) / 1.3
    sf.write(path, np.stack([x, 0.9 * x], 1), sr, subtype="PCM_24")
    return str(path)


def test_cli_exits_1_when_a_file_breaks_a_rule_and_0_otherwise(tmp_path, capsys):
    hot, quiet = _tone(tmp_path / "hot.wav", 0.99), _tone(tmp_path / "quiet.wav", 0.3)
    assert main(["analyze", quiet, "--require", "true_peak_dbtp<=-1", "--json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["rules"] == ["true_peak_dbtp<=-1"] and doc["results"][0]["checks"]["passed"]
    assert main(["analyze", hot, quiet, "--require", "true_peak_dbtp<=-1", "--json"]) == EXIT_CHECK_FAILED
    doc = json.loads(capsys.readouterr().out)
    hot_r, quiet_r = doc["results"]
    assert [f["rule"] for f in hot_r["checks"]["failed"]] == ["true_peak_dbtp<=-1"]
    assert hot_r["checks"]["failed"][0]["values"]["true_peak_dbtp"] > -1 and quiet_r["checks"]["passed"]
    assert doc["summary"]["failed_spec"] == 1
    # the table lists the failed rule under the file
    assert main(["analyze", hot, "--profile", "broadcast"]) == EXIT_CHECK_FAILED
    out = capsys.readouterr().out
    assert "FAILED true_peak_dbtp <= -1" in out and "[broadcast]" in out
    assert main(["analyze", quiet, "--require", "nonsense>1"]) == EXIT_USAGE


def test_scan_checks_every_file_and_writes_the_failures(tmp_path, capsys):
    music = tmp_path / "music"
    music.mkdir()
    _tone(music / "hot.wav", 0.99)
    _tone(music / "quiet.wav", 0.3)
    code = main(
        [
            "scan",
            str(music),
            "--out",
            str(tmp_path / "out"),
            "--quiet",
            "--no-plots",
            "--require",
            "true_peak_dbtp <= -1",
        ]
    )
    assert code == EXIT_CHECK_FAILED
    assert "1 failed the delivery rules" in capsys.readouterr().out
    rows = (tmp_path / "out" / "results.csv").read_text().splitlines()
    header = rows[0].split(",")
    by_name = {r.split(",")[0].rsplit("/", 1)[-1]: dict(zip(header, r.split(","))) for r in rows[1:]}
    assert by_name["hot.wav"]["spec_failed"] == "true_peak_dbtp <= -1" and by_name["hot.wav"]["spec_passed"] == "False"
    assert by_name["quiet.wav"]["spec_passed"] == "True"
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["schema_version"] == "1.0" and data["rules"] == ["true_peak_dbtp <= -1"]
