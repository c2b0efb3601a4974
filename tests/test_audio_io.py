import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from adv.audio_io import load_audio, resample, sniff_format, validate_samples
from adv.errors import (
    AudioError,
    CorruptAudioError,
    EmptyAudioError,
    FileMissingError,
    InvalidSamplesError,
    NotAudioError,
)

SR = 44100


@pytest.fixture(scope="module")
def stereo():
    t = np.arange(SR) / SR
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = 0.5 * np.sin(2 * np.pi * 660 * t)
    return np.stack([left, right]).astype(np.float32)


@pytest.mark.parametrize(
    "ext,fmt,subtype",
    [
        ("wav", "WAV", "FLOAT"),
        ("wav", "WAV", "PCM_16"),
        ("flac", "FLAC", "PCM_24"),
        ("ogg", "OGG", "VORBIS"),
        ("opus", "OGG", "OPUS"),
        ("mp3", "MP3", "MPEG_LAYER_III"),
    ],
)
def test_decodes_each_format_to_float32_stereo(tmp_path, stereo, ext, fmt, subtype):
    path = tmp_path / f"x.{ext}"
    sr = 48000 if subtype == "OPUS" else SR
    audio = resample(stereo, SR, sr)
    sf.write(path, audio.T, sr, format=fmt, subtype=subtype)
    dec = load_audio(path)
    assert dec.samples.dtype == np.float32
    assert dec.samples.shape[0] == 2
    assert dec.sample_rate == sr
    assert abs(dec.samples.shape[1] - audio.shape[1]) < 0.1 * sr
    # channels stay distinct (stereo kept, not down-mixed)
    assert not np.allclose(dec.samples[0], dec.samples[1])


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_decodes_m4a_via_ffmpeg(tmp_path, stereo):
    wav = tmp_path / "x.wav"
    sf.write(wav, stereo.T, SR)
    m4a = tmp_path / "x.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "128k", str(m4a)], check=True)
    dec = load_audio(m4a, target_sr=32000)
    assert dec.format == "mp4" and dec.samples.shape[0] == 2 and dec.sample_rate == 32000
    assert abs(dec.samples.shape[1] / 32000 - 1.0) < 0.1


def test_float_overshoot_is_not_clipped(tmp_path):
    x = np.zeros((2, SR), np.float32)
    x[:, 100] = 1.7
    path = tmp_path / "hot.wav"
    sf.write(path, x.T, SR, subtype="FLOAT")
    assert load_audio(path).samples.max() == pytest.approx(1.7)


def test_resampling_keeps_channels_and_duration(stereo):
    out = resample(stereo, SR, 32000)
    assert out.shape == (2, 32000) and out.dtype == np.float32


def test_missing_empty_and_non_audio_files_have_clear_errors(tmp_path):
    with pytest.raises(FileMissingError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav")
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    with pytest.raises(EmptyAudioError, match="empty.mp3"):
        load_audio(empty)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio at all, just some text" * 10)
    with pytest.raises(NotAudioError, match="notes.wav"):
        load_audio(text)
    with pytest.raises(NotAudioError):
        load_audio(tmp_path)


def test_truncated_files_are_reported(tmp_path, stereo):
    for ext, subtype in (("wav", "PCM_16"), ("flac", "PCM_16")):
        path = tmp_path / f"full.{ext}"
        sf.write(path, np.tile(stereo, 3).T, SR, subtype=subtype)
        cut = tmp_path / f"cut.{ext}"
        cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        with pytest.raises(AudioError, match=f"cut.{ext}"):
            load_audio(cut)


def test_header_only_wav_is_empty(tmp_path):
    path = tmp_path / "hdr.wav"
    sf.write(path, np.zeros((0, 2), np.float32), SR)
    with pytest.raises((EmptyAudioError, CorruptAudioError)):
        load_audio(path)


def test_validate_samples_rejects_nan_and_accepts_layouts():
    with pytest.raises(InvalidSamplesError, match="NaN"):
        validate_samples(np.array([[0.0, np.nan, 0.1]]))
    assert validate_samples(np.zeros(100)).shape == (1, 100)
    assert validate_samples(np.zeros((100, 2))).shape == (2, 100)
    ints = validate_samples(np.full((2, 10), 16384, np.int16))
    assert ints.dtype == np.float32 and ints.max() == pytest.approx(0.5)


def test_sniffing_ignores_extension():
    assert sniff_format(b"fLaC\x00\x00") == "flac"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVE") == "wav"
    assert sniff_format(b"\x00\x00\x00\x20ftypM4A ") == "mp4"
    assert sniff_format(b"<html>") is None
