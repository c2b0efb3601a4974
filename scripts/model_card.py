"""Writes the model card (src/adv/assets/MODEL_CARD.md) from a training run and its corpus.

usage: .venv/bin/python scripts/model_card.py RUN_DIR CORPUS_DIR [--external JSON] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from adv import CLASSES, DISTORTION_KINDS
from adv.config import REPO_DIR
from adv.inference.decision import RUN_STRENGTH, RUN_WINDOWS, Decision
from adv.levels import PEAK_RANGE_DBFS


def _table(rows: list[dict], cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(out)


def _extra_line(cfg: dict) -> str:
    """The extra training clips (`adv data build --extra-train`) the heads and trees also learnt from."""
    parts = []
    for e in cfg["extra_train"]:
        corpus = Path(e["corpus"]) if Path(e["corpus"]).is_absolute() else REPO_DIR / e["corpus"]
        s = json.loads((corpus / "summary.json").read_text())
        m = s.get("mastering") or {}
        mastered = (
            f", {s['mastered_clips']} of them limited like loud masters before their damage (limiter "
            f"{m['limit_db'][1]:g} to {m['limit_db'][0]:g} dB below the peak; adv.data.mastering)"
            if s.get("mastered_clips")
            else ""
        )
        where = (
            f"{s['source_tracks']} tracks of {len(s['packages'])} other packages ({s['extra_train']['sources']},"
            " all in training)"
            if s["extra_train"].get("sources")
            else f"the same {s['source_tracks']} training tracks"
        )
        parts.append(
            f"{s['clips']} clips ({s['hours']} h) from {where}, drawn "
            f"with plan seed {s['extra_train']['plan_seed']} and class weights "
            + ", ".join(f"{k} {v:g}" for k, v in s["extra_train"]["class_weights"].items())
            + mastered
        )
    return (
        "- Extra training clips for the heads and trees (not the backbone; validation and test unchanged): "
        + "; ".join(parts)
        + "."
    )


def _extra_build_command(extra: dict) -> str:
    corpus = Path(extra["corpus"]) if Path(extra["corpus"]).is_absolute() else REPO_DIR / extra["corpus"]
    table = json.loads((corpus / "summary.json").read_text())["extra_train"].get("table", "extra_train")
    return (
        f"adv data build --extra-train{'' if table == 'extra_train' else ' ' + table} "
        f"--out ../{Path(extra['corpus']).name}"
    )


def _loud_mp3_line(loud_path: str) -> list[str]:
    """How often an MP3 made from a loud master is flagged, and how often it is named `clipping`."""
    rows = [r for r in json.loads(Path(loud_path).read_text())["rows"] if r.get("kind") == "mp3" and "error" not in r]
    if not rows:
        return []
    as_clip = sum(r["predicted"] == "clipping" for r in rows) / len(rows)
    flagged = sum(r["has_distortion"] for r in rows) / len(rows)
    return [
        f"- MP3s made from loud masters (external check --loud-masters, {len(rows)} cases) are flagged {flagged:.0%}"
        f" of the time, but {as_clip:.0%} of them are named `clipping` rather than `mp3`."
    ]


def _external_section(path: str, loud_path: str | None) -> list[str]:
    """The external check's table; with ``loud_path`` (the same clips made loud masters first) two
    more columns."""
    ext = json.loads(Path(path).read_text())["summary"]
    loud = json.loads(Path(loud_path).read_text())["summary"] if loud_path else None
    rows = []
    for i, r in enumerate(ext["per_variant"]):
        row = {
            "kind": r["kind"],
            "variant": f"{r['tool']} {r['variant']}",
            "n": r["n"],
            "flagged %": r["detected_pct"],
            "typed correctly %": r["typed_correctly_pct"],
        }
        if loud:
            lr = loud["per_variant"][i]
            row.update(
                {
                    "loud masters: flagged %": lr["detected_pct"],
                    "loud masters: typed correctly %": lr["typed_correctly_pct"],
                }
            )
        rows.append(row)

    def totals(s: dict) -> str:
        return f"macro-F1 over the six classes {s['macro_f1']:.3f}, clean false-alarm rate {s['clean_false_alarm_rate']:.3f}"

    return [
        "## Damage made by other tools (scripts/external_check.py)",
        f"{ext['per_variant'][0]['n']} clean test clips, each also damaged by audiomentations, pedalboard and numpy"
        " effects that the training generators did not make, and made a loud master (audiomentations Limiter"
        " 3-12 dB below the peak: a clean clip)"
        + ("; the last two columns: the same with every clip made a loud master first (--loud-masters)" if loud else "")
        + ":",
        "",
        _table(rows, list(rows[0])),
        "",
        f"All cases: {totals(ext)}" + (f"; loud masters: {totals(loud)}" if loud else "") + " (clean cases pooled).",
        "",
    ]


def _limits_section(path: str, test: dict) -> list[str]:
    """The "What limits the targets" section from scripts/target_limits.py's JSON."""
    lim = json.loads(Path(path).read_text())
    strata = [
        {
            "damage counted": "all" if float(k) == 0 else f"severity >= {float(k):g}",
            "clips": v["n"],
            "binary F1": v["binary_f1"],
            "macro-F1": v["macro_f1"],
            **{f"F1 {c}": v["per_class_f1"][c] for c in ("clean", "eq", "phase")},
        }
        for k, v in lim["test_by_min_severity"].items()
    ]
    top = lim["test_by_min_severity"][max(lim["test_by_min_severity"], key=float)]
    sev = [
        {
            "kind": k,
            "detector (test) MAE pp": round(test["severity_mae_pp"][k], 1) if k in test["severity_mae_pp"] else "",
            "from the measured effect, MAE pp": v["mae_pp_effect"],
            "measured effect + variant, MAE pp": v["mae_pp_effect_and_variant"],
            "measured": ", ".join(v["inputs"]),
        }
        for k, v in lim["severity_from_measured_effect"].items()
    ]
    lc = lim["learning_curve"]
    lx = lim.get("learning_curve_with_extra", {}).get("by_fraction", {})
    curve = [
        {
            "share of training tracks": f"{float(f):.0%}",
            "tracks": round(v["tracks"]),
            "clips": round(v["clips"]),
            "binary F1": round(v["binary_f1"], 4),
            "macro-F1": round(v["macro_f1"], 4),
            **(
                {
                    "with extra: clips": round(lx[f]["clips"]),
                    "with extra: binary F1": round(lx[f]["binary_f1"], 4),
                    "with extra: macro-F1": round(lx[f]["macro_f1"], 4),
                }
                if f in lx
                else {}
            ),
        }
        for f, v in lc["by_fraction"].items()
    ]
    full = lc["by_fraction"][max(lc["by_fraction"], key=float)]
    gain = lc.get("macro_f1_gain_per_doubling", 0.0)
    lines = [
        "## What limits the targets (scripts/target_limits.py)",
        "The targets are binary F1 >= 0.97, macro-F1 >= 0.93, every class F1 >= 0.85 and severity MAE <= 5 points"
        " on the test split. What stands in the way, measured:",
        "",
        "1. Faint damage is not the whole gap. Test metrics when only clean clips and damage of at least a"
        " severity count (the same detector and threshold):",
        "",
        _table(strata, list(strata[0])),
        "",
        f"With only the strongest damage counted, EQ F1 is still {strata[-1]['F1 eq']} and the clean false-alarm"
        f" rate stays {top['clean_false_alarm_rate']:.1%}: the misses are EQ curves that shape the spectrum as"
        " a mastering choice can (shelves, peaks, a cabinet; see the variants below), and clean music whose own"
        f" spectrum looks equalised ({test['confusion'][0][4]} of the {sum(test['confusion'][0][1:])} single-label"
        " clean test clips flagged are called eq).",
        "",
        "2. Severity: gradient-boosted trees that know what the generator measured against the undamaged"
        " original (which the detector never has) predict the severity of single-kind corpus clips this well"
        " (5-fold, grouped by source track). Clipping and noise severities are functions of such a measure"
        " (clipped fraction, SNR), so the detector's error there is its estimate of it without the original"
        " (noise: the SNR of ambience under music). EQ and phase severities are the effect's setting (a"
        " stop-band depth or gain, a phase fault's strength), and the same setting changes different music by"
        " different amounts: even the measurement leaves an error of this size.",
        "",
        _table(sev, list(sev[0])),
        "",
        *_effect_severity_lines(lim.get("severity_as_measured_effect", {})),
        "3. More source music helps, slowly against the gap. The type trees alone (signal features; threshold flagging 15 % of the"
        " clean validation clips) trained on a share of the main corpus's training tracks (random draws"
        ' below 100 %; the clips come with their tracks; "with extra": also the extra training clips drawn'
        " from the same tracks), on the test split:",
        "",
        _table(curve, list(curve[0])),
        "",
    ]
    if "0.5" in lx and "1.0" in lc["by_fraction"]:
        half, main_all = lx["0.5"], lc["by_fraction"]["1.0"]
        lines += [
            f"Tracks count more than clips: half the tracks with the extra clips ({round(half['clips']):,} clips)"
            f" reach macro-F1 {half['macro_f1']:.3f}; all the tracks with their main-corpus clips only"
            f" ({round(main_all['clips']):,} clips), {main_all['macro_f1']:.3f}.",
            "",
        ]
    if gain > 0:
        need = 2 ** ((0.93 - full["macro_f1"]) / gain)
        lines += [
            f"Macro-F1 gains {gain:.3f} per doubling of the tracks; at that rate (an extrapolation) 0.93 would"
            f" take about {need:,.0f} times the {round(full['tracks'])} training tracks.",
            "",
        ]
    br = lim.get("by_source_bitrate", {})
    if "test" in br:
        val = {r["source"]: r for r in br.get("val", [])}
        rows = [
            {
                "source file": r["source"] + (" kbit/s" if r["source"][0] in "<>0123456789" else ""),
                "val clean clips": val.get(r["source"], {}).get("clean_clips", ""),
                "val flagged %": _pct(val.get(r["source"], {}).get("clean_flagged")),
                "test clean clips": r["clean_clips"],
                "test flagged %": _pct(r["clean_flagged"]),
                "test damaged detected %": _pct(r["damaged_flagged"]),
            }
            for r in br["test"]
        ]
        lines += [
            '4. Some "clean" clips are not clean. Most game soundtracks ship as lossy files, some at low bit'
            " rates, and the corpus screen only rejects windows with no energy above 12 kHz. Clean clips"
            " flagged (validation and test) by the bit rate of the source file they were cut from:",
            "",
            _table(rows, list(rows[0])),
            "",
            "Music from files above 128 kbit/s is flagged least; part of the clean class's false alarms are"
            " codec damage in the source that the label does not know about (the lossless files are the"
            " project's MIDI renders). The extra-sources build now"
            " leaves low-rate files out (`min_lossy_kbps`); the main corpus does not yet.",
            "",
        ]
    un = lim.get("unseen_packages")
    if un:
        worst = sorted(un["clean_false_alarms_by_package"].items(), key=lambda kv: -kv[1])[:4]
        other = un.get("model", lim.get("model")) != lim.get("model")
        lines += [
            f"5. Packages never seen. On {un['clips']:,} clips from {un['packages']} Debian packages that no"
            " training, validation or test clip came from (`adv data build --extra-train extra_train_sources`,"
            " before its bit-rate gate)"
            + (f", measured with `{un['model']}`, a model that never learnt from them" if other else "")
            + f": binary F1 {un['binary_f1']:.4f}, macro-F1 {un['macro_f1']:.4f}, clean"
            f" false alarms {un['clean_false_alarm_rate']:.1%}, per-class F1 "
            + ", ".join(f"{k} {v:.3f}" for k, v in un["per_class_f1"].items())
            + "; severity MAE "
            + ", ".join(f"{k} {v:.1f}" for k, v in un["severity_mae_pp"].items())
            + ". The false alarms gather in a few packages: "
            + ", ".join(f"{k} {v:.0%}" for k, v in worst)
            + " of their clean clips.",
            "",
        ]
    return lines


def _effect_severity_lines(eff: dict) -> list[str]:
    """Item 2's second table: eq / phase severity defined by the measured effect instead of the setting."""
    if not eff:
        return []
    rows = [
        {
            "kind": k,
            "measured effect": v["input"],
            "train / test clips": f"{v['n_train']} / {v['n_test']}",
            "rank correlation with the setting": v["spearman_effect_setting"],
            "setting label: test MAE pp": v["mae_pp_setting_label"],
            "effect label: test MAE pp": v["mae_pp_effect_label"],
            "constant guess: MAE pp (setting / effect)": f"{v['mae_pp_setting_label_constant']} / {v['mae_pp_effect_label_constant']}",
        }
        for k, v in eff.items()
    ]
    return [
        "If severity were defined by the measured effect instead of the setting (its rank among the"
        " training clips mapped onto the same 0-1 distribution as the settings), severity trees on the"
        " signal features, as the detector's, trained on the main corpus's single-kind training clips,"
        " would predict it on the test clips this well:",
        "",
        _table(rows, list(rows[0])),
        "",
        "The corpus labels are still the settings: what severity means would change for every kind's"
        " users, the corpus and the model, so this is measured, not adopted.",
        "",
    ]


def _pct(x) -> str | float:
    return "" if x is None or x == "" else round(100 * x, 1)


def decision_line(meta: dict) -> str:
    """The decision rule and its thresholds, from the model file (adv.inference.decision)."""
    d = Decision.from_meta(meta)
    budget = meta.get("decision_budget") or {}
    chosen = (
        f" (chosen on {budget.get('measured', {}).get('clean_tracks', '?')} clean validation tracks, plain and"
        f" loud-mastered, for at most {budget['clean_tracks_flagged_max_pct']:g} % of clean tracks flagged:"
        " every kind's threshold at one quantile level of the clean tracks' scores, `scripts/calibrate_decision.py`)"
        if budget
        else " (the model file's one kind threshold for every kind)"
    )
    return (
        "- Decision: a window or a track has a damage kind when the kind's probability reaches its threshold "
        f"({', '.join(f'{k} {t:g}' for k, t in d.as_dict().items())}){chosen}; a track's probability of a kind is "
        f"the mean over its 10-s windows (hop 5 s), and a track also has a kind present with probability above "
        f"1 - (1 - threshold) x {RUN_STRENGTH:.3g} in {RUN_WINDOWS} consecutive windows (`section` gives the span);"
        " `has_distortion` exactly when some kind is detected; digitally silent windows carry no evidence."
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("corpus_dir")
    ap.add_argument("--external", default=None, help="JSON written by scripts/external_check.py")
    ap.add_argument(
        "--external-loud-masters",
        default=None,
        help="JSON written by scripts/external_check.py --loud-masters (same clips): extra columns",
    )
    ap.add_argument(
        "--track-check", nargs="*", default=[], help="JSON(s) written by scripts/track_check.py (one per split)"
    )
    ap.add_argument(
        "--training-note", default="", help="a line added to the Training section (e.g. where the backbone came from)"
    )
    ap.add_argument(
        "--features",
        default=None,
        help="feature cache of corpus_dir: measures detection by the size of "
        "the damage when the run's report lacks it (runs from before that was reported)",
    )
    ap.add_argument(
        "--metrics-note",
        default="",
        help="a line added to the test-split metrics (e.g. the same clips through the validator)",
    )
    ap.add_argument(
        "--limits",
        default=None,
        help="JSON written by scripts/target_limits.py: the section on what limits the targets",
    )
    ap.add_argument("--limits-note", default="", help="a paragraph added to the section on what limits the targets")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "src/adv/assets/MODEL_CARD.md"))
    args = ap.parse_args()
    run, corpus = Path(args.run_dir), Path(args.corpus_dir)
    report = json.loads((run / "report.json").read_text())
    summary = json.loads((corpus / "summary.json").read_text())
    history = json.loads((run / "backbone_history.json").read_text())
    model = run / "detector.pt"
    meta = torch.load(model, map_location="cpu", weights_only=True)["meta"]
    t = report["test"]
    cfg = meta["config"]
    scfg = cfg.get("severity", {})
    tcfg = cfg.get("types", {})
    sev_lo = min(
        float(stratum.split("-")[0]) for strata in summary["class_by_severity_bin"].values() for stratum in strata
    )
    lines = [
        "# Model card: Audio Distortion Validator detector",
        "",
        f"Version {meta['version']}; file `src/adv/assets/detector.pt`, {model.stat().st_size / 1e6:.2f} MB "
        "(backbone weights stored in float16).",
        "",
        "## What it is",
        f"- Backbone: PANN {cfg['backbone']['name']} (width x{cfg['backbone']['width_mult']}), log-mel front end "
        "(32 kHz, 1024-point window, hop 320, 64 mel bins, 50 Hz-14 kHz), trained from scratch by this project "
        "(official PANN weights are not reachable here; pass `pann_checkpoint` to start from them).",
        f"- Signal features: {len(meta['signal_features'])} (stereo, high band, clipping statistics, spectral,"
        " long-term spectral shape).",
        f"- Heads: {cfg['head'].get('ensemble', 1)} MLP(s) from different seeds on [embedding, signal features]"
        " -> six type probabilities (clean, clipping, mp3, noise, eq, phase; multi-label) and five severities in"
        " [0, 1]; per-class temperature scaling fitted on validation for each; the heads' outputs are averaged.",
        *(
            [
                f"- Type trees: one gradient-boosted binary classifier per class (scikit-learn"
                f" HistGradientBoostingClassifier, {tcfg.get('max_iter')} trees of up to {tcfg.get('max_leaf_nodes')} leaves)"
                f" on the signal features; the detector's probabilities are {1 - tcfg.get('trees_blend', 0.5):.2g} x the"
                f" heads' + {tcfg.get('trees_blend', 0.5):.2g} x the trees'"
                + (
                    f" (test with the heads alone: binary F1 {report['test_heads_only']['binary_f1']:.4f}, macro-F1 "
                    f"{report['test_heads_only']['macro_f1']:.4f})"
                    if "test_heads_only" in report
                    else ""
                )
                + "."
            ]
            if tcfg.get("trees")
            else []
        ),
        *(
            [
                f"- Severity: one gradient-boosted tree ensemble per kind (scikit-learn HistGradientBoostingRegressor, "
                f"{scfg.get('loss', 'absolute_error')} loss, {scfg.get('max_iter')} trees of up to "
                f"{scfg.get('max_leaf_nodes')} leaves) on the signal features, trained on the clips that have the kind."
                " They replace the heads' severity output"
                + (
                    " (test MAE with the heads' output instead: "
                    + ", ".join(f"{k} {v:.1f}" for k, v in report["severity_mae_pp_head_only"].items())
                    + ")"
                    if "severity_mae_pp_head_only" in report
                    else ""
                )
                + "."
            ]
            if scfg.get("model") == "trees"
            else []
        ),
        *(
            ["- The tree ensembles are stored as tensors in the model file and run inside the ONNX graph."]
            if tcfg.get("trees") or scfg.get("model") == "trees"
            else []
        ),
        f"- Level: the validator scales each analysis window whose peak lies outside {PEAK_RANGE_DBFS[0]:g} to"
        f" {PEAK_RANGE_DBFS[1]:g} dBFS (the range every training clip was drawn in) to the nearest end of it"
        " (`adv.levels`): full-scale masters and quiet passages were otherwise flagged as damaged most of the time."
        + (
            " The feature cache does the same to every corpus clip, training clips after a random gain of"
            f" {cfg['train_level_gain_db'][0]:g} to {cfg['train_level_gain_db'][1]:g} dB (`train_level_gain_db`), so"
            " clean clips too sit at both ends of the range and level is no cue."
            if cfg.get("train_level_gain_db")
            else ""
        ),
        decision_line(meta),
        "",
        "## Data",
        f"- Corpus: {summary['clips']} ten-second clips ({summary['hours']} h) from {summary['source_tracks']} source"
        f" tracks of {len(summary['packages'])} sources (Debian game-soundtrack packages and music21 scores rendered"
        " with fluidsynth); real ambience noise recordings from Debian game data.",
        "- Splits grouped by source track: "
        + ", ".join(
            f"{k} {summary['clips_per_split'][k]} clips / {summary['tracks_per_split'][k]} tracks"
            for k in ("train", "val", "test")
            if k in summary["clips_per_split"]
        )
        + ".",
        f"- Labels: clean or one kind (88 %) or two kinds at once (12 %); severities uniform in"
        f" [{sev_lo}, 1] in four strata, on severity maps v{summary.get('severity_maps', 1)} (v2: any severity"
        " above 0 is already audible; see README, Corpus).",
        (
            f"- The heads are trained without clips whose strongest damage is below "
            f"{cfg['head'].get('min_train_severity', 0)} (near-imperceptible)"
            if cfg["head"].get("min_train_severity", 0)
            else "- The heads are trained on every clip"
        )
        + f", with clean clips weighted {cfg['head'].get('clean_weight', 1.0)}x; the backbone saw every clip.",
        *([_extra_line(cfg)] if cfg.get("extra_train") else []),
        "",
        "## Training",
        "```",
        "adv data build --out ../corpus",
        *([_extra_build_command(e) for e in cfg.get("extra_train", [])]),
        "adv train --config configs/train.toml --ship-to src/adv/assets/detector.pt",
        "```",
        f"Backbone epochs run: {len(history)} (best validation macro-F1 "
        f"{max(h['val_macro_f1'] for h in history):.4f}, log-mel only); backbone training "
        f"{sum(h['epoch_seconds'] for h in history) / 60:.0f} min on 2 CPU cores; the last `adv train` invocation took "
        f"{report.get('train_seconds', 0) / 60:.0f} min wall clock (runs resume: when the backbone is already trained,"
        " only embeddings, heads, trees, evaluation, ablation and cross-validation are redone).",
        *([args.training_note] if args.training_note else []),
        "",
        f"## Test-split metrics ({t['n']} clips from tracks never seen in training)",
        *([args.metrics_note] if args.metrics_note else []),
        f"- binary F1 {t['binary_f1']:.4f} (precision {t['binary_precision']:.4f}, recall {t['binary_recall']:.4f})",
        f"- macro-F1 (six classes) {t['macro_f1']:.4f}",
        "- per-class F1: " + ", ".join(f"{c} {t['per_class_f1'][c]:.3f}" for c in CLASSES),
        "- severity MAE (percentage points, clips where the kind is present): "
        + ", ".join(f"{k} {t['severity_mae_pp'][k]:.1f}" for k in DISTORTION_KINDS if k in t["severity_mae_pp"]),
        f"- clean clips wrongly flagged as damaged (false-alarm rate): {t.get('clean_false_alarm_rate', float('nan')):.3f}",
        "- damaged clips detected, by strongest severity: "
        + ", ".join(f"{k}: {v:.1%}" for k, v in t.get("detection_rate_by_severity", {}).items()),
        f"- calibration (validation, mean one-vs-rest ECE): {report['calibration']['val_ece_before']:.4f} before, "
        f"{report['calibration']['val_ece_after']:.4f} after temperature scaling"
        + (
            f", {report['calibration']['val_ece_blended_with_trees']:.4f} blended with the type trees"
            if "val_ece_blended_with_trees" in report["calibration"]
            else ""
        ),
    ]
    if "cross_validation" in report:
        cv = report["cross_validation"]
        lines.append(
            f"- {len(cv['folds'])}-fold cross-validation of the heads on train+val (grouped by track): "
            f"macro-F1 {cv['macro_f1_mean']:.4f} ± {cv['macro_f1_std']:.4f}, binary F1 "
            f"{cv['binary_f1_mean']:.4f} ± {cv['binary_f1_std']:.4f}"
        )
    if "test_above_floor" in report:
        f = report["test_above_floor"]
        lines += [
            "",
            f"Test split without near-imperceptible damage ({f['split']}, {f['n']} clips): binary F1 "
            f"{f['binary_f1']:.4f}, macro-F1 {f['macro_f1']:.4f}, per-class F1 "
            + ", ".join(f"{c} {f['per_class_f1'][c]:.3f}" for c in CLASSES)
            + ", severity MAE "
            + ", ".join(f"{k} {v:.1f}" for k, v in f["severity_mae_pp"].items())
            + ".",
        ]
    lines += ["", "Confusion (single-label test clips; rows true, columns predicted):", "```"]
    from adv.training.metrics import format_confusion

    lines += [format_confusion(t["confusion"]), "```", ""]
    if "ablation" in report:
        floor = cfg["head"].get("min_train_severity", 0)
        scope = f"severity >= {floor}" if floor else "all clips"
        lines += [
            f"## Ablation (one head retrained per feature subset, frozen backbone; test split, {scope})",
            "",
            "The severity MAE here is the head's own severity output (the severity regressors are not"
            " part of the ablation).",
            "",
            _table(
                report["ablation"],
                ["features", "macro_f1", "binary_f1", "severity_mae_pp"] + [f"f1_{c}" for c in CLASSES],
            ),
            "",
        ]
    if t.get("threshold_tradeoff"):
        lines += [
            "## Decision threshold (test split)",
            "`has_distortion` when the clean score < threshold; `AudioDistortionValidator(threshold=...)` or "
            "`--threshold` sets it. Lower thresholds trade detections for fewer false alarms:",
            "",
            _table(
                t["threshold_tradeoff"],
                ["threshold", "clean_false_alarm_rate", "binary_recall", "binary_f1", "macro_f1"],
            ),
            "",
        ]
    if args.external:
        lines += _external_section(args.external, args.external_loud_masters)
    if args.track_check:
        rows = []
        for f in args.track_check:
            tc = json.loads(Path(f).read_text())["summary"]
            rows.append(
                {
                    "split": tc["split"] + (", loud masters" if tc.get("loud_masters") else ""),
                    "tracks": tc["tracks"],
                    "clean windows flagged %": tc["clean_windows_flagged_pct"],
                    "clean tracks flagged %": tc["clean_tracks_flagged_pct"],
                    "damaged tracks flagged %": tc["damaged_tracks_flagged_pct"],
                    **{f"{k} %": v for k, v in tc["damaged_flagged_pct_by_kind"].items()},
                    "track ROC AUC": tc.get("track_roc_auc", ""),
                    "one quarter damaged: tracks flagged %": tc.get("partial_tracks_flagged_pct", ""),
                    "its windows flagged %": tc.get("partial_windows_inside_flagged_pct", ""),
                }
            )
        lines += [
            "## Whole tracks (scripts/track_check.py)",
            f"The validator on every source track of a split (whole files up to {tc['seconds_max']:g} s, at their"
            " own level), clean, with two random damages from the project's generators over the whole track,"
            ' and (--partial 0.25) with one damage over a random quarter of it; "loud masters": every track'
            " limited 3-12 dB below its peak first (--loud-masters):",
            "",
            _table(rows, list(rows[0])),
            "",
        ]
    measured = t.get("detection_by_measured_effect")
    if measured is None and args.features:
        from adv.training.evaluate import evaluate_model_on_cache

        measured = evaluate_model_on_cache(model, Path(args.features) / "test", manifest=corpus / "manifest.csv").get(
            "detection_by_measured_effect"
        )
    if measured:
        lines += [
            "## Detection by the measured size of the damage (test split, clips with one kind)",
            "What each generator measured on the clip it made, against the share of those clips flagged as damaged:",
            "",
            _table(
                [
                    {
                        "kind": k,
                        "measure": f"{d['measure']}: {d['unit']}",
                        "range": r["range"],
                        "n": r["n"],
                        "flagged %": round(100 * r["flagged"], 1),
                    }
                    for k, d in measured.items()
                    for r in d["rows"]
                ],
                ["kind", "measure", "range", "n", "flagged %"],
            ),
            "",
        ]
    if args.limits:
        lines += _limits_section(args.limits, t) + ([args.limits_note, ""] if args.limits_note else [])
    var = t.get("detection_rate_by_variant", {})
    weak = sorted(((v["detected"], k, v["n"]) for k, v in var.items() if v["n"] >= 10))[:8]
    lines += [
        "## Known weaknesses",
        "- Detection rate of the weakest generator variants on the test split (damaged clips flagged as damaged):",
        *[f"  - {k}: {d:.0%} of {n}" for d, k, n in weak],
        "- The lowest severities are subtle by design (MP3 near 128 kbps shows no cut-off below 16 kHz at the"
        " 32 kHz analysis rate; an EQ whose stop band is 4-8 dB down is within the spread of real masters).",
        "- Damage made by other tools: see `scripts/external_check.py` (README) for the measured detection of"
        " audiomentations / pedalboard effects on clean test clips.",
        *(_loud_mp3_line(args.external_loud_masters) if args.external_loud_masters else []),
        "- Trained on game soundtracks and rendered MIDI (orchestral, electronic, chiptune, rock); genres far from"
        " these (speech, live recordings) are less certain.",
        *(
            [
                f"- Loud (limited) masters are in the training data (extra clips above). Soft clipping at low drive"
                " sounds and measures much like a fast limiter: it is the clipping missed most (test split: "
                f"{var['soft']['detected']:.0%} of {var['soft']['n']} soft-clipped clips flagged)."
            ]
            if "soft" in var
            else []
        ),
        "- Damage in one section of a track is found only when it is clear in at least"
        f" {RUN_WINDOWS} consecutive windows (about {5 * RUN_WINDOWS + 5} s) or moves the mean of all"
        " windows: with one random quarter of each track damaged, about two thirds of the tracks are flagged"
        " (EQ about a third; see Whole tracks); flagged windows are in the timeline (`segments`) either way.",
        "- Mono inputs cannot show phase problems; inputs with more than two channels are judged on the first two.",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
