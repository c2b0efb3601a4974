"""Tree ensembles on the signal features: the tensor form gives scikit-learn's predictions (severity
regressors and type classifiers), survives the detector file, and is what the detector reports."""

import numpy as np
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from adv import DISTORTION_KINDS
from adv.models.detector import DistortionDetector, DistortionHead
from adv.models.model_file import load_detector, save_detector
from adv.models.pann import build_pann
from adv.models.tree_ensemble import SeverityTrees, TypeTrees
from adv.training.train_head import HeadData
from adv.training.train_trees import fit_severity_trees, fit_type_trees

N_SIG = 7


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_SIG)).astype(np.float32)
    # each kind's severity depends on different features, non-linearly; about half the clips have it
    sev = np.stack([1 / (1 + np.exp(-(x[:, k] * 2 + np.sin(3 * x[:, k + 1])))) for k in range(5)], axis=1)
    present = rng.random((n, 5)) < 0.5
    sev = np.where(present, sev, 0.0).astype(np.float32)
    labels = np.concatenate([~present.any(axis=1, keepdims=True), present], axis=1).astype(np.float32)
    return HeadData(np.zeros((n, 0), np.float32), x, labels, sev)


@pytest.mark.parametrize("loss", ["absolute_error", "squared_error"])
def test_tensor_trees_give_sklearn_predictions(loss):
    d = _data()
    regs = []
    for k in range(5):
        m = d.severity[:, k] > 0
        regs.append(
            HistGradientBoostingRegressor(loss=loss, max_iter=30, max_leaf_nodes=9, random_state=k).fit(
                d.signal[m], d.severity[m, k]
            )
        )
    trees = SeverityTrees.from_sklearn(regs, N_SIG)
    assert trees.n_trees == sum(r.n_iter_ for r in regs)
    x = _data(seed=1).signal
    want = np.clip(np.stack([r.predict(x) for r in regs], axis=1), 0, 1)
    with torch.no_grad():
        got = trees(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_tensor_trees_give_sklearn_class_probabilities():
    d = _data()
    clfs = [
        HistGradientBoostingClassifier(max_iter=25, max_leaf_nodes=7, random_state=c).fit(d.signal, d.labels[:, c])
        for c in range(6)
    ]
    trees = TypeTrees.from_sklearn(clfs, N_SIG)
    x = _data(seed=1).signal
    want = np.stack([c.predict_proba(x)[:, 1] for c in clfs], axis=1)
    with torch.no_grad():
        got = trees(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    # blending with the heads' probabilities
    head_p = torch.full((len(x), 6), 0.2)
    with torch.no_grad():
        mixed = trees.mix(head_p, torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(mixed, 0.5 * 0.2 + 0.5 * want, atol=1e-5)


def test_multiclass_estimators_are_refused():
    d = _data()
    y = d.labels.argmax(axis=1)
    clf = HistGradientBoostingClassifier(max_iter=3).fit(d.signal, y)
    with pytest.raises(ValueError, match="single-output"):
        TypeTrees.from_sklearn([clf], N_SIG)


def test_fitted_type_trees_separate_the_classes():
    d = _data(n=1500)
    # make the classes learnable: class c present when feature c is high
    lab = np.zeros((1500, 6), np.float32)
    lab[:, 1:] = d.signal[:, :5] > 0.5
    lab[:, 0] = lab[:, 1:].sum(axis=1) == 0
    d = HeadData(d.embedding, d.signal, lab, d.severity)
    trees = fit_type_trees(
        d, {"max_iter": 40, "learning_rate": 0.2, "min_samples_leaf": 10, "trees_blend": 0.3}, seed=0, clean_weight=3.0
    )
    assert float(trees.blend) == pytest.approx(0.3)
    t = _data(n=400, seed=3)
    with torch.no_grad():
        p = trees(torch.from_numpy(t.signal)).numpy()
    want = t.signal[:, :5] > 0.5
    assert ((p[:, 1:] > 0.5) == want).mean() > 0.95


def test_fitted_trees_learn_the_severity_of_present_kinds_only():
    d = _data(n=1500)
    trees = fit_severity_trees(d, {"max_iter": 60, "learning_rate": 0.1, "min_samples_leaf": 10}, seed=0)
    t = _data(n=500, seed=2)
    with torch.no_grad():
        pred = trees(torch.from_numpy(t.signal)).numpy()
    assert pred.shape == (500, len(DISTORTION_KINDS)) and pred.min() >= 0 and pred.max() <= 1
    present = t.severity > 0
    mae = np.abs(pred - t.severity)[present].mean()
    baseline = np.abs(np.median(d.severity[d.severity > 0]) - t.severity)[present].mean()  # a constant guess
    assert mae < 0.5 * baseline, (mae, baseline)


def test_too_few_clips_of_a_kind_is_a_clear_error():
    d = _data(n=40)
    with pytest.raises(ValueError, match="too few training clips"):
        fit_severity_trees(d, {"min_samples_leaf": 20}, seed=0)


def test_detector_file_keeps_the_trees_and_reports_their_outputs(tmp_path):
    d = _data(n=400)
    trees = fit_severity_trees(d, {"max_iter": 20, "min_samples_leaf": 5}, seed=0)
    types = fit_type_trees(d, {"max_iter": 10, "min_samples_leaf": 5}, seed=0)
    backbone = build_pann("MobileNetV1", width_mult=0.25)
    head = DistortionHead(backbone.embedding_dim, N_SIG, hidden=16)
    meta = {"frontend": {"sample_rate": 32000}, "signal_features": [f"f{i}" for i in range(N_SIG)]}
    path = save_detector(tmp_path / "det.pt", "MobileNetV1", {"width_mult": 0.25}, backbone, head, meta, trees, types)
    model, _ = load_detector(path)
    assert isinstance(model, DistortionDetector) and isinstance(model.severity, SeverityTrees)
    assert isinstance(model.type_trees, TypeTrees)
    mel = torch.randn(3, 1, 200, 64)
    sig = torch.from_numpy(d.signal[:3])
    with torch.no_grad():
        probs, sev = model.eval()(mel, sig)
        np.testing.assert_allclose(sev.numpy(), trees(sig).numpy(), atol=1e-6)
        head_p, _ = head.eval().probabilities(model.backbone.forward_logmel(mel)["embedding"], sig)
        np.testing.assert_allclose(probs.numpy(), types.mix(head_p, sig).numpy(), atol=1e-6)
    # a file without trees gives the heads' own outputs
    path2 = save_detector(tmp_path / "det2.pt", "MobileNetV1", {"width_mult": 0.25}, backbone, head, meta)
    plain = load_detector(path2)[0]
    assert plain.severity is None and plain.type_trees is None
