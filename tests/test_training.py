"""Trains a tiny model on the --small corpus (as CI does) and checks it learnt something."""

import json

import numpy as np
import torch
import pytest

from adv.features.feature_cache import CachedSplit
from adv.inference.validator import AudioDistortionValidator
from adv.models.detector import HeadEnsemble, clean_score
from adv.models.model_file import load_detector
from adv.training.metrics import compute_metrics
from adv.training.pipeline import run_training


@pytest.fixture(scope="module")
def small_run(small_corpus, tmp_path_factory):
    corpus, _ = small_corpus
    run = tmp_path_factory.mktemp("run_small")
    report = run_training(
        "train_small.toml", corpus=str(corpus), features=str(corpus / "features"), run_dir=str(run), skip_extras=True
    )
    return corpus, run, report


def test_training_writes_checkpoints_logs_and_a_loadable_model(small_run):
    corpus, run, report = small_run
    for name in (
        "backbone_best.pt",
        "backbone_last.pt",
        "detector.pt",
        "report.json",
        "metrics.jsonl",
        "confusion_test.png",
        "metrics_test.txt",
    ):
        assert (run / name).exists(), name
    history = json.loads((run / "backbone_history.json").read_text())
    assert len(history) >= 1 and np.isfinite(history[-1]["train_loss"])
    v = AudioDistortionValidator(run / "detector.pt")
    x = np.random.default_rng(0).standard_normal((2, 32000 * 4)).astype(np.float32) * 0.1
    r = v.analyze(x, sample_rate=32000)
    assert 0 <= r["severity"] <= 100 and 0 <= r["confidence"] <= 1
    # train_small.toml asks for an ensemble of 2 heads: both are stored and averaged
    model, meta = load_detector(run / "detector.pt")
    assert isinstance(model.head, HeadEnsemble) and len(model.head.heads) == 2
    assert len(meta["calibration"]["temperature"]) == 2
    # the clean score of the model file's decision rule (train_small.toml: mix 0.5) is applied on loading
    assert meta["clean_mix"] == 0.5 and model.clean_mix == 0.5 and meta["kind_threshold"] == 0.6
    assert v.decision.thresholds == (0.6,) * 5 and v.model_info()["kind_thresholds"]["clipping"] == 0.6
    mel, sig = torch.randn(3, 1, 400, 64), torch.from_numpy(CachedSplit(corpus / "features" / "val").signal[:3])
    with torch.inference_mode():
        mixed, _ = model(mel, sig)
        model.clean_mix = 0.0
        raw, _ = model(mel, sig)
    assert torch.allclose(mixed, clean_score(raw, 0.5)) and not torch.allclose(mixed[:, 0], raw[:, 0])


def test_tiny_model_beats_chance_on_validation(small_run):
    corpus, run, _ = small_run
    val = CachedSplit(corpus / "features" / "val")
    v = AudioDistortionValidator(run / "detector.pt")
    from adv.training.evaluate import predict_cached

    probs, sev = predict_cached(v.model, val)
    model = compute_metrics(val.labels, probs, val.severity, sev)
    # chance: the same predictions assigned to random clips (labels permuted), averaged over draws
    rng = np.random.default_rng(0)
    chance = np.mean(
        [
            compute_metrics(val.labels, probs[rng.permutation(len(probs))], val.severity, sev)["macro_f1"]
            for _ in range(200)
        ]
    )
    assert model["macro_f1"] > chance + 0.1, (model["macro_f1"], chance)


def test_resumed_training_does_not_retrain(small_run):
    corpus, run, _ = small_run
    before = (run / "backbone_last.pt").stat().st_mtime
    run_training(
        "train_small.toml", corpus=str(corpus), features=str(corpus / "features"), run_dir=str(run), skip_extras=True
    )
    history = json.loads((run / "backbone_history.json").read_text())
    assert (run / "backbone_last.pt").stat().st_mtime == before
    assert len(history) <= 4


def test_embedding_cache_is_redone_for_another_backbone(small_run, monkeypatch):
    import adv.training.pipeline as pl

    corpus, run, _ = small_run
    np.savez(
        run / "embeddings_val.npz",
        embedding=np.zeros((1, 1), np.float32),
        backbone_md5=np.array("some other checkpoint"),
    )
    calls = []

    def fake_predict(model, logmel):  # stands in for the backbone: only called when the cache is not used
        calls.append(1)
        return {"embedding": np.ones((len(logmel), 3), np.float32)}

    monkeypatch.setattr(pl, "predict_logmel", fake_predict)
    d = pl.embeddings_for(None, corpus / "features", run, "val", "this checkpoint")
    assert len(calls) == 1 and d.embedding.shape[1] == 3
    d = pl.embeddings_for(None, corpus / "features", run, "val", "this checkpoint")  # now cached
    assert len(calls) == 1 and d.embedding.shape[1] == 3


def test_embedding_cache_is_redone_for_other_clips(small_run, monkeypatch, tmp_path):
    """A re-rendered corpus (other signal features under the same split name) is embedded again."""
    import shutil

    import adv.training.pipeline as pl

    corpus, _, _ = small_run
    feats = tmp_path / "features"
    shutil.copytree(corpus / "features" / "val", feats / "val")
    calls = []
    monkeypatch.setattr(
        pl,
        "predict_logmel",
        lambda model, logmel: calls.append(1) or {"embedding": np.ones((len(logmel), 3), np.float32)},
    )
    pl.embeddings_for(None, feats, tmp_path, "val", "ckpt")
    pl.embeddings_for(None, feats, tmp_path, "val", "ckpt")
    assert len(calls) == 1
    sig = np.load(feats / "val" / "signal.npy")
    np.save(feats / "val" / "signal.npy", sig + 1.0)
    pl.embeddings_for(None, feats, tmp_path, "val", "ckpt")
    assert len(calls) == 2


def test_threshold_is_fixed_or_chosen_on_validation():
    from adv.training.pipeline import choose_decision

    rng = np.random.default_rng(0)
    labels = np.zeros((400, 6), np.float32)
    labels[:200, 0] = 1
    labels[200:, 1] = 1
    probs = np.zeros((400, 6), np.float32)
    probs[:200, 0] = rng.uniform(0.3, 1.0, 200)  # clean clips: P(clean) 0.3-1
    probs[200:, 0] = rng.uniform(0.0, 0.32, 200)  # damaged: 0-0.32 -> the best cut is near 0.3
    probs[:, 1] = 1 - probs[:, 0]
    assert choose_decision(0.4, labels, probs) == (0.0, 0.4, [])
    mix, t, table = choose_decision("val_macro_f1", labels, probs)
    assert (mix, t) == (0.0, 0.3) and len(table) == 8 and all(0.25 <= r["threshold"] <= 0.6 for r in table)
    # with a tolerance, of the practically tied pairs the one with the fewest clean false alarms
    probs[:10, 0] = 0.27  # a few clean clips that only the lowest threshold does not flag
    _, t_tol, table = choose_decision("val_macro_f1", labels, probs, tolerance=0.5)
    assert t_tol == 0.25 and table[0]["clean_false_alarm_rate"] < table[1]["clean_false_alarm_rate"]
    # a false-alarm budget: only thresholds that flag at most 3 % of the clean clips (the ten at 0.27
    # are flagged from 0.3 on = 5 %), even though 0.3 has the better macro-F1
    _, t_budget, table = choose_decision("val_macro_f1", labels, probs, max_false_alarm_rate=0.03)
    assert t_budget == 0.25 and table[1]["macro_f1"] > table[0]["macro_f1"]
    with pytest.raises(ValueError):
        choose_decision(1.5, labels, probs)
    with pytest.raises(ValueError):
        choose_decision("val_macro_f1", labels, probs, mixes=[1.5])


def test_clean_mix_is_chosen_when_the_kinds_know_better():
    """When P(clean) itself is uninformative but the damage kinds' probabilities separate the
    clips, the validation search picks a clean score made from the kinds (mix 1)."""
    from adv.training.pipeline import choose_decision

    rng = np.random.default_rng(1)
    labels = np.zeros((400, 6), np.float32)
    labels[:200, 0] = 1
    labels[200:, 3] = 1
    probs = rng.uniform(0.0, 0.2, (400, 6)).astype(np.float32)
    probs[:, 0] = rng.uniform(0.2, 0.8, 400)  # P(clean) says nothing
    probs[200:, 3] = rng.uniform(0.6, 1.0, 200)  # P(noise) is high on the noisy clips only
    mix, t, table = choose_decision("val_macro_f1", labels, probs, tolerance=0.0, mixes=[0.0, 0.5, 1.0])
    assert mix == 1.0 and len(table) == 24
    chosen = next(r for r in table if r["clean_mix"] == mix and r["threshold"] == t)
    # (macro-F1 over six classes with two present: at most 1/3)
    assert chosen["macro_f1"] > max(r["macro_f1"] for r in table if r["clean_mix"] == 0.0) + 0.1
    scored = clean_score(torch.from_numpy(probs), 0.25).numpy()
    expected = 0.75 * probs[:, 0] + 0.25 * (1 - probs[:, 1:].max(axis=1))
    assert np.allclose(scored[:, 0], expected, atol=1e-6) and np.array_equal(scored[:, 1:], probs[:, 1:])


def test_kind_threshold_lists_fewer_side_kinds_and_keeps_the_verdict():
    """A damaged clip lists the kinds whose probability reaches the kind threshold (and always its
    most likely kind); the clean/damaged decision is the clean threshold's alone."""
    from adv.inference.decision import Decision
    from adv.inference.windows import summarise
    from adv.training.metrics import decide
    from adv.training.pipeline import choose_kind_threshold

    probs = np.array(
        [
            [0.1, 0.9, 0.45, 0.0, 0.0, 0.0],  # clipping, with an unsure mp3
            [0.8, 0.0, 0.45, 0.0, 0.0, 0.0],  # clean
            [0.2, 0.0, 0.35, 0.0, 0.0, 0.0],
        ],
        np.float32,
    )  # damaged, mp3 the only candidate
    loose, strict = decide(probs, 0.4), decide(probs, 0.4, kind_threshold=0.6)
    assert loose[0].tolist() == [False, True, True, False, False, False]
    assert strict[0].tolist() == [False, True, False, False, False, False]
    assert np.array_equal(loose[:, 0], strict[:, 0]) and strict[2, 2] and not strict[1, 1:].any()
    sev = np.full((1, 5), 0.5, np.float32)
    track = summarise(probs[:1], sev, [0.0], 10.0, 10.0, Decision((0.6,) * 5))
    assert track["has_distortion"] and track["detected_types"] == ["clipping"]
    assert summarise(probs[:1], sev, [0.0], 10.0, 10.0, Decision((0.4,) * 5))["detected_types"] == ["clipping", "mp3"]
    # chosen on validation: here a listed mp3 is always wrong, so the search goes above 0.45
    labels = np.array([[0, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]], np.float32)
    kt, table = choose_kind_threshold("val_macro_f1", labels, probs, 0.4)
    assert kt == 0.5 and len(table) == 9
    assert choose_kind_threshold("same", labels, probs, 0.4) == (0.4, [])
    assert choose_kind_threshold(0.65, labels, probs, 0.4) == (0.65, [])
    with pytest.raises(ValueError):
        choose_kind_threshold(1.2, labels, probs, 0.4)


def test_extra_training_clips_join_the_heads_training_data(small_run, tmp_path):
    """`extra_train` in the config: the extra corpus's training clips are embedded with the same
    backbone and added to the heads' and trees' training data (validation and test unchanged)."""
    import shutil

    from adv.config import CONFIG_DIR, load_toml

    corpus, run, _ = small_run
    cfg_text = (CONFIG_DIR / "train_small.toml").read_text()
    cfg_file = tmp_path / "train_extra.toml"
    # the small corpus stands in for an extra one (the point is the merge, not new audio)
    cfg_file.write_text(f'extra_train = [{{ corpus = "{corpus}", features = "{corpus / "features"}" }}]\n' + cfg_text)
    assert load_toml(cfg_file)["extra_train"][0]["corpus"] == str(corpus)
    run2 = tmp_path / "run"
    run2.mkdir()
    for name in ("backbone_best.pt", "backbone_last.pt", "backbone_history.json"):
        shutil.copy(run / name, run2 / name)  # the backbone is reused: only the later stages run
    report = run_training(
        cfg_file, corpus=str(corpus), features=str(corpus / "features"), run_dir=str(run2), skip_extras=True
    )
    n_train = len(CachedSplit(corpus / "features" / "train"))
    with np.load(run2 / "embeddings_extra0_train.npz") as z:
        assert z["embedding"].shape[0] == n_train
    assert report["test"]["n"] == len(CachedSplit(corpus / "features" / "test"))


def test_backbone_can_also_learn_from_the_extra_clips(small_run, tmp_path):
    """`[backbone] extra_train = true`: the backbone's epochs run over the main and the extra training
    clips (here the small corpus's own training folder stands in for the extra one)."""
    from adv.training.pipeline import load_train_config
    from adv.training.train_backbone import train_backbone

    corpus, _, _ = small_run
    feats = corpus / "features"
    cfg = load_train_config("train_small.toml", corpus=str(corpus), features=str(feats), run_dir=str(tmp_path))
    cfg["backbone"]["epochs"] = 1
    n_train = len(CachedSplit(feats / "train"))
    train_backbone(cfg, feats, tmp_path / "both", extra_train=[feats / "train"], max_batches=10_000)
    hist = json.loads((tmp_path / "both" / "backbone_history.json").read_text())
    assert hist[0]["train_clips"] == 2 * n_train
    train_backbone(cfg, feats, tmp_path / "main")
    hist = json.loads((tmp_path / "main" / "backbone_history.json").read_text())
    assert hist[0]["train_clips"] == n_train
