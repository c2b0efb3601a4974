"""adv.training.package_holdout: split a corpus by package; score a detector on held-out packages."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from adv.training.package_holdout import metrics_on_packages, split_by_package


def _corpus(root):
    root.mkdir()
    (root / "clips").mkdir()
    (root / "clips" / "c0.flac").write_bytes(b"x")
    rows = [
        {
            "clip_id": f"c{i}",
            "path": f"clips/c{i}.flac",
            "split": "train",
            "labels": ["clean", "eq"][i % 2],
            "source_track": f"{p}:track{i % 3}",
            "package": p,
            "duration_s": 10.0,
            "mastering": "{}" if i % 4 else json.dumps({"limit_db": -6}),
        }
        for i, p in enumerate(["pa", "pb", "pc"] * 4)
    ]
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    (root / "summary.json").write_text(
        json.dumps(
            {
                "clips": 12,
                "packages": ["pa", "pb", "pc"],
                "hours": 0.03,
                "class_by_severity_bin": {"eq": {}},
                "plan": "kept",
            }
        )
    )
    return root


def test_split_by_package_writes_two_linked_corpora_and_changes_nothing(tmp_path):
    corpus = _corpus(tmp_path / "src")
    before = (corpus / "manifest.csv").read_text()
    res = split_by_package(corpus, ["pa", "pc"], tmp_path / "a", tmp_path / "b")
    assert res["a"]["packages"] == ["pa", "pc"] and res["b"]["packages"] == ["pb"]
    a = pd.read_csv(tmp_path / "a" / "manifest.csv")
    b = pd.read_csv(tmp_path / "b" / "manifest.csv")
    assert len(a) == 8 and len(b) == 4 and set(a["clip_id"]).isdisjoint(b["clip_id"])
    assert (tmp_path / "a" / "clips" / "c0.flac").read_bytes() == b"x"  # a link to the source clips
    s = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert s["clips"] == 4 and s["packages"] == ["pb"] and s["hours"] == round(40 / 3600, 2)
    assert (
        s["plan"] == "kept"
        and "class_by_severity_bin" not in s
        and s["source_tracks"] == b["source_track"].nunique() == 1
    )
    assert s["mastered_clips"] == int((b["mastering"] != "{}").sum())
    assert (corpus / "manifest.csv").read_text() == before


def test_split_by_package_refuses_unknown_packages_and_existing_folders(tmp_path):
    corpus = _corpus(tmp_path / "src")
    with pytest.raises(ValueError, match="nope"):
        split_by_package(corpus, ["pa", "nope"], tmp_path / "a", tmp_path / "b")
    with pytest.raises(ValueError, match="part b"):
        split_by_package(corpus, ["pa", "pb", "pc"], tmp_path / "a2", tmp_path / "b2")
    (tmp_path / "a3").mkdir()
    with pytest.raises(FileExistsError):
        split_by_package(corpus, ["pa"], tmp_path / "a3", tmp_path / "b3")


class _Fake(torch.nn.Module):
    """P(clean) is signal feature 0; severities zero."""

    def forward(self, mel, sig):
        p = torch.zeros(len(sig), 6)
        p[:, 0] = sig[:, 0]
        p[:, 5] = 1 - sig[:, 0]
        return p, torch.zeros(len(sig), 5)


def test_metrics_on_packages_counts_false_alarms_per_package(tmp_path):
    split = tmp_path / "train"
    split.mkdir()
    n = 8
    clean = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    pclean = np.array(
        [0.9, 0.1, 0.8, 0.9, 0.1, 0.2, 0.05, 0.6], np.float32
    )  # one clean flagged (pa), one damaged missed
    labels = np.zeros((n, 6), np.float32)
    labels[clean == 1, 0] = 1
    labels[clean == 0, 5] = 1
    np.save(split / "logmel.npy", np.zeros((n, 4, 64), np.float32))
    np.save(split / "signal.npy", np.stack([pclean, np.zeros(n, np.float32)], 1))
    np.save(split / "labels.npy", labels)
    np.save(split / "severity.npy", np.zeros((n, 5), np.float32))
    pd.DataFrame(
        {"clip_id": [f"c{i}" for i in range(n)], "source_track": [f"{p}:t" for p in ["pa", "pa", "pb", "pb"] * 2]}
    ).to_csv(split / "index.csv", index=False)
    r = metrics_on_packages(_Fake(), {"threshold": 0.5, "kind_threshold": 0.5}, split)
    assert r["clips"] == 8 and r["packages"] == 2
    assert r["clean_false_alarm_rate"] == 0.25
    assert r["clean_false_alarms_by_package"] == {"pa": 0.5, "pb": 0.0}
    assert r["roc_auc"] == pytest.approx(13.5 / 16, abs=1e-4)  # 13 of the 16 damaged/clean pairs ordered, one tie
