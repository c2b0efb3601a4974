"""PANN backbones, log-mel front end and official-checkpoint handling."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest
import torch

from adv.errors import CheckpointError
from adv.models import checkpoints as ckpt
from adv.models.frontend import (
    LogMelFrontEnd,
    dft_kernels,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
)
from adv.models.pann import EMBED_DIMS, Cnn6, Cnn10, MobileNetV1, build_pann

SR = 32000


def _wave(batch=2, seconds=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, int(SR * seconds), generator=g)


def _calibrate_bn(model, x):
    """Give BatchNorm layers data-derived running stats so eval outputs are not degenerate."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: one batch -> exactly its statistics
    model.train()
    with torch.no_grad():
        model(x)
    for bn in bns:
        bn.momentum = 0.1
    return model.eval()


# --------------------------------------------------------------------------
# architectures
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,kw,dim",
    [
        ("Cnn14", {}, 2048),
        ("Cnn10", {}, 512),
        ("Cnn6", {}, 512),
        ("MobileNetV1", {}, 1024),
        ("MobileNetV1", {"width_mult": 0.5}, 512),
    ],
)
def test_architecture_output_shapes(name, kw, dim):
    torch.manual_seed(0)
    model = build_pann(name, **kw).eval()
    x = _wave()
    with torch.no_grad():
        out = model(x)
        out2 = model(x)
    assert out["clipwise_output"].shape == (2, 527)
    assert out["embedding"].shape == (2, dim)
    assert model.embedding_dim == dim
    if not kw:
        assert EMBED_DIMS[name] == dim
    p = out["clipwise_output"]
    assert torch.all((p >= 0) & (p <= 1))
    assert torch.isfinite(out["embedding"]).all()
    # eval mode is deterministic
    assert torch.equal(out["clipwise_output"], out2["clipwise_output"])
    assert torch.equal(out["embedding"], out2["embedding"])


def test_forward_logmel_matches_forward_and_classes_num():
    torch.manual_seed(0)
    model = Cnn6(classes_num=6).eval()
    x = _wave(seconds=0.5)
    with torch.no_grad():
        logmel = model.extract_logmel(x)
        a = model(x)
        b = model.forward_logmel(logmel)
    assert logmel.shape == (2, 1, 1 + x.shape[1] // 320, 64)
    assert a["clipwise_output"].shape == (2, 6)
    assert torch.equal(a["clipwise_output"], b["clipwise_output"])


def test_state_dict_keys_follow_official_layout():
    keys = set(Cnn10().state_dict())
    for k in (
        "spectrogram_extractor.stft.conv_real.weight",
        "spectrogram_extractor.stft.conv_imag.weight",
        "logmel_extractor.melW",
        "bn0.running_mean",
        "conv_block1.conv1.weight",
        "conv_block1.bn1.weight",
        "conv_block4.conv2.weight",
        "fc1.weight",
        "fc_audioset.bias",
    ):
        assert k in keys
    sd = MobileNetV1().state_dict()
    assert sd["features.0.0.weight"].shape == (32, 1, 3, 3)
    assert sd["features.0.2.running_var"].shape == (32,)
    assert sd["features.13.4.weight"].shape == (1024, 1024, 1, 1)
    assert sd["features.13.5.weight"].shape == (1024,)
    assert sd["fc1.weight"].shape == (1024, 1024)
    assert sd["spectrogram_extractor.stft.conv_real.weight"].shape == (513, 1, 1024)
    assert sd["logmel_extractor.melW"].shape == (513, 64)
    # front-end constants are buffers, not trainable parameters
    names = {n for n, _ in MobileNetV1().named_parameters()}
    assert "logmel_extractor.melW" not in names


def test_spec_augment_only_when_enabled_and_training():
    torch.manual_seed(0)
    model = Cnn6(spec_augment=False)
    assert not any(True for _ in model.spec_augmenter.parameters())
    logmel = torch.randn(4, 1, 101, 64)
    model.train()
    torch.manual_seed(1)
    a = model.forward_logmel(logmel)["clipwise_output"]  # dropout only
    model.spec_augment = True
    torch.manual_seed(1)
    b = model.forward_logmel(logmel)["clipwise_output"]
    assert not torch.equal(a, b)
    model.eval()
    with torch.no_grad():
        c = model.forward_logmel(logmel)["clipwise_output"]
        d = model.forward_logmel(logmel)["clipwise_output"]
    assert torch.equal(c, d)


def test_mixup_halves_batch_in_training():
    model = Cnn6().train()
    lam = torch.tensor([0.7, 0.3, 0.4, 0.6])
    out = model.forward_logmel(torch.randn(4, 1, 64, 64), mixup_lambda=lam)
    assert out["clipwise_output"].shape[0] == 2
    model.eval()
    with torch.no_grad():
        out = model.forward_logmel(torch.randn(4, 1, 64, 64), mixup_lambda=lam)
    assert out["clipwise_output"].shape[0] == 4


def test_width_mult_only_for_mobilenet():
    with pytest.raises(ValueError):
        build_pann("Cnn10", width_mult=0.5)
    assert build_pann("cnn6", width_mult=1.0).embedding_dim == 512
    with pytest.raises(ValueError):
        build_pann("ResNet38")


# --------------------------------------------------------------------------
# front end
# --------------------------------------------------------------------------
def test_mel_scale_hand_values():
    # Slaney scale: linear 200/3 Hz per mel up to 1 kHz (= 15 mel), then 27 mel per factor 6.4
    assert hz_to_mel(0.0) == 0.0
    assert hz_to_mel(500.0) == pytest.approx(7.5)
    assert hz_to_mel(1000.0) == pytest.approx(15.0)
    assert hz_to_mel(6400.0) == pytest.approx(42.0)
    assert mel_to_hz(42.0) == pytest.approx(6400.0)
    f = np.array([50.0, 300.0, 999.0, 1000.0, 4000.0, 14000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-12)


def test_mel_filterbank_properties():
    fb = mel_filterbank(SR, 1024, 64, 50, 14000)
    assert fb.shape == (513, 64) and fb.dtype == np.float32
    assert (fb >= 0).all()
    assert (fb.sum(axis=0) > 0).all()  # no empty filter
    peaks = fb.argmax(axis=0)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] > peaks[0]
    freqs = np.linspace(0, SR / 2, 513)
    assert fb[freqs < 50 - 1e-9].max() == 0 and fb[freqs > 14000 + 1e-9].max() == 0
    # Slaney area normalisation: each triangle integrates to ~1 over Hz (well-sampled ones)
    area = fb.sum(axis=0) * (SR / 1024)
    np.testing.assert_allclose(area[32:], 1.0, rtol=0.05)
    # hand-computed: first filter edges (in Hz) on the mel scale, value at one bin
    edges = mel_to_hz(np.linspace(hz_to_mel(50.0), hz_to_mel(14000.0), 66))
    k = int(np.ceil(edges[1] / (SR / 1024)))  # first bin right of the first centre
    fk = k * SR / 1024
    expect = (edges[2] - fk) / (edges[2] - edges[1]) * 2.0 / (edges[2] - edges[0])
    assert fb[k, 0] == pytest.approx(expect, rel=1e-5)


def test_mel_filterbank_matches_librosa_if_available():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=SR, n_fft=1024, n_mels=64, fmin=50, fmax=14000).T
    np.testing.assert_allclose(mel_filterbank(SR, 1024, 64, 50, 14000), ref, atol=1e-7)


def test_stft_kernels_and_logmel_of_a_sine():
    real, imag = dft_kernels(1024)
    assert real.shape == imag.shape == (513, 1, 1024)
    assert np.all(imag[0] == 0) and np.all(np.abs(imag[512]) < 1e-6)
    # a sine at an exact bin frequency lands in that bin
    k = 64
    t = torch.arange(SR) / SR
    x = torch.sin(2 * np.pi * (k * SR / 1024) * t)[None]
    fe = LogMelFrontEnd()
    spec = fe.spectrogram_extractor(x)
    assert spec.shape == (1, 1, 101, 513)
    assert int(spec[0, 0, 50].argmax()) == k
    # numpy reference for one frame (Hann-windowed rfft, reflect-padded)
    xp = np.pad(x[0].numpy().astype(np.float64), 512, mode="reflect")
    frame = xp[50 * 320 : 50 * 320 + 1024] * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024))
    ref = np.abs(np.fft.rfft(frame)) ** 2
    np.testing.assert_allclose(spec[0, 0, 50].numpy(), ref, rtol=1e-3, atol=1e-2)
    logmel = fe(x)
    assert logmel.shape == (1, 1, 101, 64)
    assert torch.isfinite(logmel).all() and logmel.min() >= -100.0  # clamp at 1e-10
    silent = fe(torch.zeros(1, 4000))
    assert torch.all(silent == -100.0)


# --------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------
def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_official_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    src = _calibrate_bn(Cnn10(), _wave(4, 0.5, seed=1))
    path = tmp_path / "Cnn10_mAP=0.380.pth"
    torch.save({"model": src.state_dict(), "iteration": 0}, path)
    digest = _md5(path)
    assert ckpt.md5sum(path) == digest

    torch.manual_seed(123)
    dst = Cnn10()
    assert ckpt.load_pann_checkpoint(dst, path, verify_md5=digest) is dst
    dst.eval()
    x = _wave(seed=2)
    with torch.no_grad():
        a, b = src(x), dst(x)
    assert torch.equal(a["clipwise_output"], b["clipwise_output"])
    assert torch.equal(a["embedding"], b["embedding"])
    assert a["embedding"].abs().max() > 0

    # a bare state dict (any file name) also loads, with verification disabled
    bare = tmp_path / "mine.pt"
    torch.save(src.state_dict(), bare)
    ckpt.load_pann_checkpoint(Cnn10(), bare, verify_md5=None)


def test_official_name_with_wrong_content_fails_auto_md5(tmp_path):
    path = tmp_path / "Cnn10_mAP=0.380.pth"
    torch.save({"model": Cnn10().state_dict(), "iteration": 0}, path)
    with pytest.raises(CheckpointError) as err:
        ckpt.load_pann_checkpoint(Cnn10(), path, verify_md5="auto")
    msg = str(err.value)
    assert "Cnn10_mAP=0.380.pth" in msg
    assert "bfb1f1f9968938fa8ef4012b8471f5f6" in msg and _md5(path) in msg


def test_wrong_architecture_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"model": Cnn10().state_dict(), "iteration": 0}, path)
    with pytest.raises(CheckpointError, match="Cnn10"):
        ckpt.load_pann_checkpoint(MobileNetV1(), path)
    with pytest.raises(CheckpointError, match="shape"):
        ckpt.load_pann_checkpoint(Cnn10(classes_num=6), path)


def test_unreadable_and_foreign_files(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        ckpt.load_pann_checkpoint(Cnn6(), junk)
    other = tmp_path / "other.pth"
    torch.save({"epoch": 3}, other)
    with pytest.raises(CheckpointError, match="not a PANN checkpoint"):
        ckpt.load_pann_checkpoint(Cnn6(), other)
    with pytest.raises(CheckpointError, match="not found"):
        ckpt.load_pann_checkpoint(Cnn6(), tmp_path / "missing.pth")


def test_resolve_checkpoint_order(tmp_path, monkeypatch):
    monkeypatch.setenv("ADV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ADV_PANN_CHECKPOINT", raising=False)
    assert ckpt.cache_dir() == tmp_path / "cache" / "pann"
    assert ckpt.resolve_checkpoint("Cnn14") is None  # nothing there, no download

    cached = ckpt.cache_dir() / "Cnn14_mAP=0.431.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert ckpt.resolve_checkpoint("cnn14") == cached

    env_file = tmp_path / "env.pth"
    env_file.write_bytes(b"y")
    monkeypatch.setenv("ADV_PANN_CHECKPOINT", str(env_file))
    assert ckpt.resolve_checkpoint("Cnn14") == env_file

    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"z")
    assert ckpt.resolve_checkpoint("Cnn14", path=explicit) == explicit

    monkeypatch.setenv("ADV_PANN_CHECKPOINT", str(tmp_path / "gone.pth"))
    with pytest.raises(CheckpointError, match="gone.pth"):
        ckpt.resolve_checkpoint("Cnn14")
    with pytest.raises(CheckpointError):
        ckpt.resolve_checkpoint("NoSuchNet")


def test_registry_urls():
    url = ckpt.checkpoint_url("Cnn14")
    assert url == "https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth?download=1"
    assert ckpt.official_checkpoint("MobileNetV1_mAP=0.389.pth").arch == "MobileNetV1"


def test_download_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "checkpoint_url", lambda name: "http://127.0.0.1:9/x")
    dest = tmp_path / "dl"
    with pytest.raises(CheckpointError, match="could not download"):
        ckpt.download_checkpoint("Cnn6", dest_dir=dest, timeout=5)
    assert list(dest.iterdir()) == []


def test_download_checksum_mismatch_leaves_no_file(tmp_path, monkeypatch):
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"definitely not Cnn6")
    monkeypatch.setattr(ckpt, "checkpoint_url", lambda name: payload.as_uri())
    dest = tmp_path / "dl"
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        ckpt.download_checkpoint("Cnn6", dest_dir=dest)
    assert list(dest.iterdir()) == []


# --------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------
def test_onnx_export_mobilenet_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = _calibrate_bn(MobileNetV1(width_mult=0.5), _wave(4, 1.0, seed=3))
    x = _wave(1, 1.0, seed=4)
    path = tmp_path / "mnv1.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (x,),
            str(path),
            input_names=["waveform"],
            output_names=["clipwise_output", "logits", "embedding"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={"waveform": {0: "batch", 1: "samples"}},
        )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = dict(zip(["clipwise_output", "logits", "embedding"], sess.run(None, {"waveform": x.numpy()})))
    with torch.no_grad():
        ref = model(x)
    assert ref["embedding"].abs().max() > 1e-3  # non-degenerate comparison
    for key in ("clipwise_output", "embedding"):
        np.testing.assert_allclose(got[key], ref[key].numpy(), atol=1e-3, rtol=1e-3)


def test_non_tensor_pickles_need_verified_md5(tmp_path):
    path = tmp_path / "with_sampler.pth"
    torch.save({"model": Cnn6().state_dict(), "iteration": 3, "sampler": {"queue": np.arange(5)}}, path)
    with pytest.raises(CheckpointError, match="not unpickled"):
        ckpt.load_pann_checkpoint(Cnn6(), path)
    # vouched for by md5 -> full unpickling is allowed
    ckpt.load_pann_checkpoint(Cnn6(), path, verify_md5=ckpt.md5sum(path))
