"""The `adv` command line: data, train, evaluate, analyze, scan, report, serve, bench, demo.

Exit codes (every command): 0 done, nothing to report; 1 a check failed (``--fail-on`` matched, or
a ``--require`` / ``--profile`` delivery rule failed);
2 usage or configuration error (bad arguments, settings, model file, output folder, or a path that
is not a results store; nothing was analysed); 3 an input could not be analysed (the others were); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_INPUT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES_HELP = (
    "exit codes: 0 ok; 1 --fail-on matched or a --require/--profile rule failed; 2 usage or configuration error; "
    "3 an input could not be analysed; 130 interrupted"
)


def _cmd_data_build(args: argparse.Namespace) -> int:
    from adv.data.corpus_build import build_corpus

    summary = build_corpus(
        args.out,
        config=args.config,
        small=args.small,
        seed=args.seed,
        workers=args.workers,
        n_clips=args.n_clips,
        extra_train=args.extra_train,
    )
    brief = {k: summary[k] for k in ("clips", "hours", "source_tracks", "clips_per_split", "build_seconds", "n_errors")}
    print(json.dumps(brief, indent=2))
    return 0 if summary["clips"] > 0 else 1


def _cmd_train(args: argparse.Namespace) -> int:
    from adv.training.pipeline import run_training

    report = run_training(
        args.config,
        corpus=args.corpus,
        features=args.features,
        run_dir=args.run_dir,
        max_batches=args.max_batches,
        skip_extras=args.quick,
        ship_to=args.ship_to,
    )
    from adv.training.evaluate import format_metrics

    print(format_metrics(report["test"]))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from adv.config import REPO_DIR
    from adv.features.feature_cache import build_feature_cache
    from adv.models.model_file import SHIPPED_MODEL
    from adv.training.evaluate import evaluate_model_on_cache, format_metrics, write_report
    from adv.training.pipeline import _path, load_train_config

    cfg = load_train_config(args.config, corpus=args.corpus, features=args.features)
    feat = _path(cfg["features"], REPO_DIR)
    build_feature_cache(
        _path(cfg["corpus"], REPO_DIR),
        feat,
        splits=(args.split,),
        train_gain_db=cfg.get("train_level_gain_db"),
        seed=cfg["seed"],
    )
    m = evaluate_model_on_cache(
        args.model or SHIPPED_MODEL, feat / args.split, manifest=_path(cfg["corpus"], REPO_DIR) / "manifest.csv"
    )
    report = {"test": m}
    cv_src = Path(_path(cfg["run_dir"], REPO_DIR)) / "report.json"
    if cv_src.exists():
        import json as _json

        cv = _json.loads(cv_src.read_text()).get("cross_validation")
        if cv:
            report["cross_validation"] = cv
    out = Path(args.out)
    write_report(report, out)
    print(format_metrics(m))
    if "cross_validation" in report:
        cv = report["cross_validation"]
        print(f"{len(cv['folds'])}-fold CV macro-F1 {cv['macro_f1_mean']:.4f} ± {cv['macro_f1_std']:.4f}")
    print(f"written to {out}/report.json, {out}/metrics_{args.split}.txt, {out}/confusion_{args.split}.png")
    return 0


def _print_table(results: list[dict]) -> None:
    from adv.report.console import print_table

    print_table(results)


def _rules(args: argparse.Namespace) -> list:
    """The delivery rules of --profile and --require (RuleError, a usage error, when one is bad)."""
    from adv.specs import load_profile, parse_rule

    rules = []
    for name in args.profile or []:
        rules.extend(load_profile(name).rules)
    rules.extend(parse_rule(text) for text in args.require or [])
    return rules


def _exit_code(results: list[dict], fail_on: str | None, min_severity: float) -> int:
    """EXIT_OK: all analysed and nothing to fail on; EXIT_CHECK_FAILED: --fail-on matched or a
    delivery rule failed; EXIT_INPUT_ERROR: some input could not be analysed (it wins)."""
    if any("error" in r for r in results):
        return EXIT_INPUT_ERROR
    if any(not r["checks"]["passed"] for r in results if "checks" in r):
        return EXIT_CHECK_FAILED
    if fail_on:
        for r in results:
            if (
                r["has_distortion"]
                and r["severity"] >= min_severity
                and (fail_on == "any" or fail_on in r["detected_types"])
            ):
                return EXIT_CHECK_FAILED
    return EXIT_OK


def _probability(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {v}")
    return v


def _cmd_analyze(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from adv.inference.validator import AudioDistortionValidator
    from adv.report.console import is_terminal
    from adv.report.json_output import document, dumps_line
    from adv.specs import apply_rules

    rules = _rules(args)
    v = AudioDistortionValidator(args.model, hop_s=args.hop, threshold=args.threshold)
    results = []
    bar = tqdm(
        total=len(args.files),
        unit="file",
        desc="analysing",
        file=sys.stderr,
        disable=len(args.files) < 2 or not is_terminal(sys.stderr),
    )
    with ThreadPoolExecutor(max(1, args.workers)) as pool, bar:
        for r in pool.map(lambda f: v.analyze_batch([f], 1)[0], args.files):  # in input order, as they finish
            if not args.segments:
                r.pop("segments", None)
            apply_rules(r, rules)
            results.append(r)
            bar.update()
            if args.jsonl:
                print(dumps_line(r), flush=True)
    if args.json:
        print(json.dumps(document(results, v.model_info(), [r.text for r in rules]), indent=2, default=str))
    elif not args.jsonl:
        _print_table(results)
    return _exit_code(results, args.fail_on, args.min_severity)


def _cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from adv.demo import explain, make_examples
    from adv.inference.validator import AudioDistortionValidator

    copies = make_examples(Path(args.out))
    print(f"example song and damaged copies written to {args.out}/")
    results = AudioDistortionValidator().analyze_batch([str(c.path) for c in copies])
    _print_table(results)
    print("\nwhat was found:")
    for c, r in zip(copies, results):
        print("  " + explain(c, r, results[0]))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from adv.service.app import serve

    serve(
        host=args.host,
        port=args.port,
        workers=args.workers,
        api_key=args.api_key,
        max_upload_mb=args.max_upload_mb,
        max_concurrent=args.max_concurrent,
    )
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from adv.report.scan import scan_folder

    rules = _rules(args)
    report = scan_folder(
        args.folder,
        args.out,
        model=args.model,
        hop_s=args.hop,
        backend=args.backend,
        threshold=args.threshold,
        rules=rules,
        store=args.store,
        rescan=args.rescan,
        workers=args.workers,
        progress=not args.quiet,
        plots=not args.no_plots,
        max_plots=args.max_plots,
    )
    sm, out = report["summary"], report["outputs"]
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(sm["flagged_by_type"].items()))
    failed = f", {sm['failed_spec']} failed the delivery rules" if "failed_spec" in sm else ""
    print(
        f"{sm['files']} audio files: {sm['analysed']} analysed, {sm['flagged']} flagged"
        f"{f' ({kinds})' if kinds else ''}{failed}, {sm['errors']} could not be analysed; {sm['wall_seconds']:.1f} s"
    )
    print(f"{sm['analysed_now']} analysed now, {sm['reused']} reused from {out['store']}")
    print(f"written: {out['jsonl']}, {out['csv']}, {out['json']}, {out['html']}")
    return _exit_code(report["results"], args.fail_on, args.min_severity)


def _formats(text: str) -> tuple[str, ...]:
    """--format: a comma-separated list of csv, json, jsonl, html."""
    from adv.report.scan import FORMATS

    chosen = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(unknown) or text!r} (choose from {', '.join(FORMATS)})"
        )
    return chosen


def _cmd_report(args: argparse.Namespace) -> int:
    from adv.report.scan import report_from_store

    report = report_from_store(args.store, args.out, args.format, plots=not args.no_plots, max_plots=args.max_plots)
    sm, last = report["summary"], report["last_scan"]
    state = f"; latest scan {last['status']}" if last else "; no scan recorded"
    print(
        f"{report['store']}: {sm['files']} files, {sm['analysed']} analysed, {sm['flagged']} flagged, "
        f"{sm['errors']} could not be analysed{state}"
    )
    print("written: " + ", ".join(str(p) for p in report["outputs"].values()))
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    from adv.bench import BACKENDS, format_bench, run_bench

    backends = BACKENDS if args.backend == "all" else tuple(b.strip() for b in args.backend.split(","))
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or args.runs < 1:
        print(
            f"adv bench: error: unknown backend {unknown} (choose from {', '.join(BACKENDS)}, all)"
            if unknown
            else "adv bench: error: --runs must be >= 1",
            file=sys.stderr,
        )
        return EXIT_USAGE
    report = run_bench(
        backends,
        runs=args.runs,
        model=args.model,
        threads=args.threads,
        batch_files=args.batch_files,
        workers=args.workers,
    )
    print(json.dumps(report, indent=2) if args.json else format_bench(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from adv import RESULT_SCHEMA_VERSION, __version__

    p = argparse.ArgumentParser(prog="adv", description="Audio Distortion Validator", epilog=EXIT_CODES_HELP)
    p.add_argument("--version", action="version", version=f"adv {__version__} (result schema {RESULT_SCHEMA_VERSION})")
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="corpus tools").add_subparsers(dest="data_command", required=True)
    b = data.add_parser("build", help="build the clip corpus (resumable, deterministic per seed)")
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument("--config", default="data.toml", help="config file (default configs/data.toml)")
    b.add_argument("--small", action="store_true", help="tiny corpus for tests, no downloads")
    b.add_argument("--seed", type=int, default=None)
    b.add_argument("--workers", type=int, default=None)
    b.add_argument("--n-clips", type=int, default=None)
    b.add_argument(
        "--extra-train",
        nargs="?",
        const=True,
        default=False,
        metavar="TABLE",
        help="only training clips, new draws from the same training tracks, as set by the config's "
        "[extra_train] table (or the table named)",
    )
    b.set_defaults(func=_cmd_data_build)

    t = sub.add_parser("train", help="train backbone + heads, calibrate, evaluate, write the model file")
    t.add_argument("--config", default="train.toml")
    t.add_argument("--corpus", default=None, help="corpus folder (overrides the config)")
    t.add_argument("--features", default=None, help="feature cache folder (overrides the config)")
    t.add_argument("--run-dir", default=None, help="run folder (overrides the config)")
    t.add_argument("--max-batches", type=int, default=None, help="cap batches per backbone epoch (smoke runs)")
    t.add_argument("--quick", action="store_true", help="skip the ablation and cross-validation")
    t.add_argument("--ship-to", default=None, help="also copy the model file here")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="metrics of a model on a corpus split")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--model", default=None, help="detector file (default: the shipped model)")
    e.add_argument("--config", default="train.toml")
    e.add_argument("--corpus", default=None)
    e.add_argument("--features", default=None)
    e.add_argument("--out", default="runs/eval")
    e.set_defaults(func=_cmd_evaluate)

    a = sub.add_parser("analyze", help="analyse audio files (table or --json)")
    a.add_argument("files", nargs="+")
    out = a.add_mutually_exclusive_group()
    out.add_argument(
        "--json",
        action="store_true",
        help="one JSON document {schema_version, adv_version, model, rules, summary, results} "
        "for any number of files (docs/output_format.md)",
    )
    out.add_argument("--jsonl", action="store_true", help="one JSON result per line, printed as each file is done")
    a.add_argument("--segments", action="store_true", help="include the per-window timeline")
    a.add_argument("--model", default=None, help="detector file (default: shipped model)")
    a.add_argument("--hop", type=float, default=5.0, help="seconds between 10-s windows")
    a.add_argument(
        "--threshold",
        type=_probability,
        default=None,
        help="probability a damage kind needs to be detected, 0-1 (default: each kind's own, chosen on validation; "
        "higher = fewer false alarms)",
    )
    a.add_argument("--workers", type=int, default=2)
    a.add_argument(
        "--fail-on",
        default=None,
        choices=["any", "clipping", "mp3", "noise", "eq", "phase"],
        help="exit 1 when this distortion (or any) is found",
    )
    a.add_argument("--min-severity", type=float, default=0.0, help="with --fail-on: only at or above this %%")
    a.add_argument(
        "--require",
        action="append",
        metavar="EXPR",
        help='delivery rule on a measurement or verdict, e.g. "true_peak_dbtp<=-1" (repeatable; '
        "exit 1 when a file breaks one)",
    )
    a.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help="named rule set: streaming, broadcast, podcast, or a .toml file (repeatable)",
    )
    a.set_defaults(func=_cmd_analyze)

    d = sub.add_parser("demo", help="make an example song with damaged copies and analyse them")
    d.add_argument("--out", default="demo_output")
    d.set_defaults(func=_cmd_demo)

    s = sub.add_parser("serve", help="run the HTTP service (POST /analyze, docs at /docs)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument(
        "--api-key", default=None, help="require this X-API-Key header (prefer the ADV_API_KEY environment variable)"
    )
    s.add_argument("--max-upload-mb", type=float, default=None, help="per-file upload limit (default 100)")
    s.add_argument("--max-concurrent", type=int, default=None, help="analyses at once (default 2)")
    s.add_argument("--workers", type=int, default=1, help="worker processes, each loads the model")
    s.set_defaults(func=_cmd_serve)

    sc = sub.add_parser("scan", help="analyse every audio file under a folder; CSV, JSON and HTML report")
    sc.add_argument("folder")
    sc.add_argument("--out", default="adv_scan", help="output folder (default ./adv_scan)")
    sc.add_argument("--model", default=None, help="detector file (default: shipped model)")
    sc.add_argument("--hop", type=float, default=5.0, help="seconds between 10-s windows")
    sc.add_argument(
        "--threshold",
        type=_probability,
        default=None,
        help="probability a damage kind needs to be detected, 0-1 (default: each kind's own, chosen on validation; "
        "higher = fewer false alarms)",
    )
    sc.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"])
    sc.add_argument("--workers", type=int, default=2, help="files analysed at once")
    sc.add_argument("--no-plots", action="store_true", help="HTML report without spectrograms")
    sc.add_argument("--max-plots", type=int, default=100, help="spectrograms for at most this many flagged files")
    sc.add_argument("--quiet", action="store_true", help="no progress bar")
    sc.add_argument(
        "--fail-on",
        default=None,
        choices=["any", "clipping", "mp3", "noise", "eq", "phase"],
        help="exit 1 when this distortion (or any) is found",
    )
    sc.add_argument("--min-severity", type=float, default=0.0, help="with --fail-on: only at or above this %%")
    sc.add_argument(
        "--require",
        action="append",
        metavar="EXPR",
        help='delivery rule on a measurement or verdict, e.g. "true_peak_dbtp<=-1" (repeatable; '
        "exit 1 when a file breaks one)",
    )
    sc.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help="named rule set: streaming, broadcast, podcast, or a .toml file (repeatable)",
    )
    sc.add_argument(
        "--store", default=None, metavar="PATH", help="results store to reuse and add to (default OUT/results.sqlite)"
    )
    sc.add_argument("--rescan", action="store_true", help="analyse every file again, even those already in the store")
    sc.set_defaults(func=_cmd_scan)

    rp = sub.add_parser("report", help="write the scan outputs from a results store (also while a scan runs)")
    rp.add_argument("store", help="a results.sqlite file, or an adv scan --out folder holding one")
    rp.add_argument("--out", default=None, help="output folder (default: the store's folder)")
    rp.add_argument(
        "--format",
        type=_formats,
        default=("csv", "json", "jsonl", "html"),
        metavar="LIST",
        help="comma-separated: csv, json, jsonl, html (default all)",
    )
    rp.add_argument("--no-plots", action="store_true", help="HTML report without spectrograms")
    rp.add_argument("--max-plots", type=int, default=100, help="spectrograms for at most this many flagged files")
    rp.set_defaults(func=_cmd_report)

    bn = sub.add_parser("bench", help="latency, throughput, memory and model size on this machine")
    bn.add_argument("--runs", type=int, default=20, help="timed runs per latency (after warm-up)")
    bn.add_argument(
        "--backend",
        default="torch,onnx",
        help="torch, onnx, onnx-int8, a comma-separated list, or all (default torch,onnx)",
    )
    bn.add_argument("--threads", type=int, default=None, help="intra-op threads (default: validator default)")
    bn.add_argument("--batch-files", type=int, default=32, help="10-s files in the batch throughput test")
    bn.add_argument("--workers", type=int, default=2, help="analyze_batch workers")
    bn.add_argument("--model", default=None, help="detector file (default: shipped model)")
    bn.add_argument("--json", action="store_true", help="machine-readable output")
    bn.set_defaults(func=_cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors exit with EXIT_USAGE (argparse's 2)
    from adv.errors import AdvError, AudioError

    try:
        return int(args.func(args) or 0)
    except AudioError as exc:
        print(f"adv: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except AdvError as exc:
        print(f"adv: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("adv: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
