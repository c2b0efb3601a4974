"""`adv data build`: sources -> screened tracks -> clip plan -> rendered clips + manifest.

Output folder layout:
  tracks.jsonl   every source track with its licence, usable offsets and rejection reasons
  clips/SPLIT/ID.flac   32 kHz stereo clips (24-bit; `storage_gain` in the manifest undoes the
                        scaling applied to clips whose samples exceed 1.0)
  rows.jsonl     one line per finished clip (resume log)
  manifest.csv   the corpus: source, offset, licence, classes, severity per kind, parameters, seed, split
  summary.json   counts, hours, class x severity table, build time
Every step skips work already on disk, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from adv import DISTORTION_KINDS
from adv.audio_io import resample
from adv.config import cache_dir, load_toml
from adv.data import midi_render
from adv.data.corpus_plan import PlannedClip, plan_corpus
from adv.data.mastering import Mastering, master
from adv.data.noise_screen import NoiseFilter, judge_noise, screen_noise_file
from adv.data.sources import SourceFile, collect_sources, load_sources_config
from adv.data.splits import check_no_leakage
from adv.data.storage import Storage, suffix, write_clip
from adv.data.track_scan import Filters, scan_track
from adv.errors import ConfigError
from adv.distortions import SEVERITY_MAPS_VERSION
from adv.levels import PEAK_RANGE_DBFS

MUSIC21_LICENCE = "music21 corpus (public-domain scores, BSD-3 package); rendered with FluidR3_GM (MIT)"


def _jsonl_read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by an interruption
                    pass
    return rows


def _render_one(args: tuple) -> tuple[SourceFile, dict] | None:
    src, kind, out_dir, name, seed, package, licence = args
    try:
        path, params = midi_render.render_source(src, kind, Path(out_dir), name, seed)
    except Exception as exc:  # noqa: BLE001 - one bad score must not stop the build
        tqdm.write(f"skipped {src}: {type(exc).__name__}: {exc}")
        return None
    return SourceFile(str(path), package, licence, "music", src.split("/corpus/")[-1]), params


def midi_sources(
    midi_files: list[SourceFile], n_scores: int, seed: int, workers: int, composers: dict[str, int] | None = None
) -> list[SourceFile]:
    """Renders MIDI files and music21 scores with random instruments (cached in the cache folder)."""
    rng = np.random.default_rng(seed)
    counts = dict(composers or midi_render.CORPUS_COMPOSERS)
    scale = n_scores / sum(counts.values())
    counts = {k: max(1, int(round(v * scale))) for k, v in counts.items()}
    jobs = []
    out_dir = cache_dir() / "renders"
    for i, (composer, path) in enumerate(midi_render.corpus_scores(rng, counts)):
        rel = path.split("/corpus/")[-1].rsplit(".", 1)[0]
        stem = "".join(ch if ch.isalnum() else "_" for ch in rel)
        jobs.append(
            (path, "score", str(out_dir), f"music21_{stem}_{seed + i}", seed + i, "music21-corpus", MUSIC21_LICENCE)
        )
    for i, f in enumerate(midi_files):
        jobs.append(
            (
                f.path,
                "midi",
                str(out_dir),
                f"{f.package}_{Path(f.path).stem}_{seed + 10_000 + i}",
                seed + 10_000 + i,
                f.package,
                f.licence + "; rendered with FluidR3_GM (MIT)",
            )
        )
    out = []
    with ProcessPoolExecutor(workers) as pool:
        for res in tqdm(pool.map(_render_one, jobs), total=len(jobs), desc="render MIDI", unit="score"):
            if res is not None:
                out.append(res[0])
    return out


def _scan_one(args: tuple) -> dict:
    src, clip_seconds, filters = args
    scan = scan_track(src.path, clip_seconds, filters)
    return {
        "track_id": src.track_id,
        "path": src.path,
        "package": src.package,
        "licence": src.licence,
        "origin": src.origin,
        **asdict(scan),
    }


def scan_tracks(
    sources: list[SourceFile], out: Path, clip_seconds: float, filters: Filters, workers: int
) -> list[dict]:
    log = out / "tracks.jsonl"
    done = {r["track_id"]: r for r in _jsonl_read(log)}
    todo = [s for s in sources if s.track_id not in done]
    if todo:
        with ProcessPoolExecutor(workers) as pool, open(log, "a") as fh:
            it = pool.map(_scan_one, [(s, clip_seconds, filters) for s in todo], chunksize=2)
            for row in tqdm(it, total=len(todo), desc="screen tracks", unit="track"):
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                done[row["track_id"]] = row
    return [done[s.track_id] for s in sources if s.track_id in done]


def screen_noise(noise: list[SourceFile], out: Path, filt: NoiseFilter) -> list[SourceFile]:
    """Steady ambience files only (see adv.data.noise_screen); every verdict goes to noise.jsonl.
    Files measured by an earlier run (same folder) are judged again from their recorded length and
    level spread instead of being decoded again."""
    log = out / "noise.jsonl"
    measured = {r["path"]: r for r in _jsonl_read(log) if not str(r.get("reason") or "").startswith("unreadable")}
    rows = []
    for f in tqdm(noise, desc="screen noise", unit="file"):
        m = measured.get(str(f.path))
        rows.append(
            judge_noise(m["path"], m["seconds"], m["spread_db"], filt) if m else screen_noise_file(str(f.path), filt)
        )
    with open(log, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    return [f for f, r in zip(noise, rows) if r["keep"]]


# ---- clip rendering (worker processes) ----
_NOISE_PATHS: list[str] = []
_NOISE_BANKS: dict = {}


def _worker_init(noise_paths: list[str], sample_rate: int) -> None:
    global _NOISE_PATHS
    _NOISE_PATHS = list(noise_paths)
    _NOISE_BANKS.clear()


def noise_bank(sample_rate: int):
    """The worker's noise bank at ``sample_rate`` (one per rate, made on first use; None without noise files)."""
    if not _NOISE_PATHS:
        return None
    if sample_rate not in _NOISE_BANKS:
        from adv.distortions.noise import NoiseBank

        _NOISE_BANKS[sample_rate] = NoiseBank(_NOISE_PATHS, sample_rate=sample_rate)
    return _NOISE_BANKS[sample_rate]


def read_segment(path: str, offset_s: float, seconds: float, sample_rate: int) -> np.ndarray:
    """A [2, N] float32 segment at sample_rate (mono duplicated, extra channels dropped)."""
    with sf.SoundFile(path) as f:
        sr = f.samplerate
        f.seek(int(round(offset_s * sr)))
        data = f.read(int(round(seconds * sr)), dtype="float32", always_2d=True).T
    if data.shape[0] == 1:
        data = np.repeat(data, 2, axis=0)
    data = resample(np.ascontiguousarray(data[:2]), sr, sample_rate)
    n = int(round(seconds * sample_rate))
    if data.shape[1] < n:
        data = np.pad(data, ((0, 0), (0, n - data.shape[1])))
    return data[:, :n]


def render_clip(
    clip: PlannedClip,
    track: dict,
    out: Path,
    sample_rate: int,
    clip_seconds: float,
    mastering: Mastering = Mastering(),
    storage: Storage | None = None,
) -> dict:
    """Renders one clip at its drawn rate and writes it in its drawn format (``storage``; default:
    24-bit FLAC at ``sample_rate``)."""
    from adv.distortions.combine import apply_combination

    storage = storage or Storage.from_config(None, sample_rate)
    sample_rate, fmt = storage.draw(clip.seed)
    rng = np.random.default_rng(clip.seed)
    audio = read_segment(track["path"], clip.offset_s, clip_seconds, sample_rate)
    # a share of the clips is limited like a loud master first (nothing drawn when the share is 0)
    audio, mastered = master(audio, sample_rate, rng, mastering)
    # loudness variety for every clip: peak drawn in PEAK_RANGE_DBFS (adv.levels) before any damage
    peak = float(np.abs(audio).max()) or 1.0
    audio = audio * (10 ** (rng.uniform(*PEAK_RANGE_DBFS) / 20) / peak)
    params = []
    if clip.kinds:
        audio, params = apply_combination(
            list(zip(clip.kinds, clip.severities)),
            audio.astype(np.float32),
            sample_rate,
            rng,
            noise_bank=noise_bank(sample_rate),
        )
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.abs(audio).max())
    gain = 1.0 if peak <= 1.0 else 0.99999 / peak
    rel = Path("clips") / clip.split / f"{clip.clip_id}{suffix(fmt)}"
    dest = out / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.stem + ".part" + suffix(fmt))
    write_clip(tmp, audio * gain, sample_rate, fmt)
    os.replace(tmp, dest)
    sev = {k: 0.0 for k in DISTORTION_KINDS}
    sev.update(dict(zip(clip.kinds, clip.severities)))
    return {
        "clip_id": clip.clip_id,
        "path": str(rel),
        "split": clip.split,
        "fold": clip.fold,
        "labels": "+".join(clip.kinds) or "clean",
        "n_kinds": len(clip.kinds),
        **{f"sev_{k}": v for k, v in sev.items()},
        "severity_bin": clip.severity_bin,
        "variants": "+".join(str(p.get("variant", "")) for p in params),
        "params": json.dumps(params),
        "mastering": json.dumps(mastered),
        "seed": clip.seed,
        "storage_gain": gain,
        "sample_rate": sample_rate,
        "format": fmt,
        "source_track": clip.track_id,
        "source_path": track["origin"],
        "package": track["package"],
        "licence": track["licence"],
        "offset_s": clip.offset_s,
        "duration_s": clip_seconds,
        "source_sample_rate": track["sample_rate"],
        "source_channels": track["channels"],
    }


def _render_job(args: tuple) -> dict:
    clip, track, out, sample_rate, clip_seconds, mastering, storage = args
    try:
        return render_clip(clip, track, Path(out), sample_rate, clip_seconds, mastering, storage)
    except Exception as exc:  # noqa: BLE001 - recorded, the build goes on
        return {"clip_id": clip.clip_id, "error": f"{type(exc).__name__}: {exc}"}


def _extra_sources_config(name: str, main: dict, config) -> dict:
    """The sources file an extra-train table names, with the main file's reserved lists; a package
    in both files would put its tracks in training and in validation/test, so that is refused."""
    try:
        extra = load_sources_config(name)
    except FileNotFoundError as e:
        raise ConfigError(f"{config}: the extra sources file {name} does not exist") from e
    shared = {p["name"] for p in extra.get("package", [])} & {p["name"] for p in main.get("package", [])}
    if shared:
        raise ConfigError(f"{name}: packages also in the main sources file: {', '.join(sorted(shared))}")
    return {
        **extra,
        "reserved": sorted(set(extra.get("reserved", [])) | set(main.get("reserved", []))),
        "reserved_files": sorted(set(extra.get("reserved_files", [])) | set(main.get("reserved_files", []))),
    }


def build_corpus(
    out_dir: str | Path,
    config: str | Path = "data.toml",
    small: bool = False,
    seed: int | None = None,
    workers: int | None = None,
    n_clips: int | None = None,
    extra_train: bool | str = False,
) -> dict:
    """Builds (or resumes) the corpus in ``out_dir``. ``extra_train``: only training clips, drawn with
    the plan seed, class weights, clip count and mastering of the config table it names
    (``True``: ``[extra_train]``) from the same training tracks (the splits stay those of
    ``seed``), as extra training data beside a corpus built without it. A table with ``sources``
    (a sources file, e.g. ``sources_extra.toml``) takes its music from those packages instead, every
    track of them in the training split."""
    t0 = time.time()
    cfg = load_toml(config)
    plan_kw: dict = {}
    extra_sources = None
    if extra_train:
        table = "extra_train" if extra_train is True else str(extra_train)
        if not isinstance(cfg.get(table), dict) or "plan_seed" not in cfg[table]:
            raise ConfigError(f"{config}: no [{table}] table with a plan_seed for --extra-train")
        extra = cfg[table]
        cfg = {
            **cfg,
            "class_weights": extra.get("class_weights", cfg["class_weights"]),
            "filters": {**cfg["filters"], **extra.get("filters", {})},
            "n_clips": extra.get("n_clips", cfg["n_clips"]),
            "mastering": extra.get("mastering", cfg.get("mastering")),
            "extra_train": {"table": table, **extra},
        }
        plan_kw = {"plan_seed": int(extra["plan_seed"]), "id_prefix": f"x{int(extra['plan_seed'])}_"}
        extra_sources = extra.get("sources")
        if extra_sources:
            cfg["splits"] = {"train": 1.0}  # none of these tracks is in validation or test
    mastering = Mastering.from_config(cfg.get("mastering"))
    storage = Storage.from_config(
        (cfg.get("small") or {}).get("storage") if small else cfg.get("storage"), cfg["sample_rate"]
    )
    seed = cfg["seed"] if seed is None else seed
    workers = workers or cfg.get("workers", 2)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sr, clip_s = cfg["sample_rate"], cfg["clip_seconds"]
    filters = Filters(**cfg["filters"])
    if small:
        n_clips = n_clips or cfg["small"]["n_clips"]
        music = midi_sources([], cfg["small"]["music21_scores"], seed, workers, composers={"bach": 1})
        noise: list[SourceFile] = []
    else:
        n_clips = n_clips or cfg["n_clips"]
        sources = load_sources_config()
        files = collect_sources(sources)
        noise = screen_noise(
            sorted((f for f in files if f.role == "noise"), key=lambda f: str(f.path)),
            out,
            NoiseFilter(**cfg.get("noise_filter", {})),
        )
        if extra_sources:
            # music from other packages, all of it for training; the noise bank stays the main one
            music = [
                f for f in collect_sources(_extra_sources_config(extra_sources, sources, config)) if f.role == "music"
            ]
        else:
            music = [f for f in files if f.role == "music"]
            music += midi_sources([f for f in files if f.role == "midi"], cfg["midi"]["music21_scores"], seed, workers)
    tracks = scan_tracks(music, out, clip_s, filters, workers)
    plan = plan_corpus(tracks, cfg, n_clips, seed, **plan_kw)
    if extra_train:
        plan = [c for c in plan if c.split == "train"]
    by_id = {t["track_id"]: t for t in tracks}
    rows_log = out / "rows.jsonl"
    done = {r["clip_id"]: r for r in _jsonl_read(rows_log) if "error" not in r and (out / r["path"]).exists()}
    todo = [c for c in plan if c.clip_id not in done]
    errors = []
    if todo:
        init = (sorted(f.path for f in noise), sr)
        with ProcessPoolExecutor(workers, initializer=_worker_init, initargs=init) as pool, open(rows_log, "a") as fh:
            jobs = [(c, by_id[c.track_id], str(out), sr, clip_s, mastering, storage) for c in todo]
            for row in tqdm(
                pool.map(_render_job, jobs, chunksize=4), total=len(jobs), desc="render clips", unit="clip"
            ):
                if "error" in row:
                    errors.append(row)
                    continue
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                done[row["clip_id"]] = row
    rows = [done[c.clip_id] for c in plan if c.clip_id in done]
    check_no_leakage(rows)
    manifest = pd.DataFrame(rows)
    manifest.to_csv(out / "manifest.csv", index=False)
    summary = summarise(manifest, tracks, noise, time.time() - t0, cfg, small, seed)
    summary["extra_train"] = cfg.get("extra_train") if extra_train else None
    summary["noise_files_rejected"] = dict(
        Counter(r["reason"] for r in _jsonl_read(out / "noise.jsonl") if not r["keep"])
    )
    summary["errors"] = errors[:50]
    summary["n_errors"] = len(errors)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def summarise(
    m: pd.DataFrame, tracks: list[dict], noise: list[SourceFile], seconds: float, cfg: dict, small: bool, seed: int
) -> dict:
    rejected = Counter()
    for t in tracks:
        rejected.update(t["rejected"])
    table = {}
    for kind in DISTORTION_KINDS:
        sev = m.loc[m[f"sev_{kind}"] > 0, f"sev_{kind}"]
        edges = np.linspace(cfg["severity_min"], cfg["severity_max"], cfg["severity_bins"] + 1)
        hist, _ = np.histogram(sev, bins=edges)
        table[kind] = {f"{edges[i]:.2f}-{edges[i + 1]:.2f}": int(h) for i, h in enumerate(hist)}
    return {
        "seed": seed,
        "small": small,
        "severity_maps": SEVERITY_MAPS_VERSION,
        "clips": len(m),
        "hours": round(float(m["duration_s"].sum()) / 3600, 2),
        "source_tracks": int(m["source_track"].nunique()),
        "tracks_screened": len(tracks),
        "tracks_usable": sum(1 for t in tracks if t["valid_offsets"]),
        "packages": sorted(m["package"].unique().tolist()),
        "noise_files": len(noise),
        "windows_rejected": dict(rejected),
        "clips_per_split": m["split"].value_counts().to_dict(),
        "tracks_per_split": m.groupby("split")["source_track"].nunique().to_dict(),
        "clips_per_label": m["labels"].value_counts().to_dict(),
        "mastering": cfg.get("mastering") or {},
        "mastered_clips": int((m["mastering"] != "{}").sum()) if "mastering" in m else 0,
        "class_by_severity_bin": table,
        "build_seconds": round(seconds, 1),
    }
