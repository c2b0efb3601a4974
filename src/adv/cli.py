"""The `adv` command line: data, train, evaluate, analyze, scan, serve, bench."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_data_build(args: argparse.Namespace) -> int:
    from adv.data.corpus_build import build_corpus

    summary = build_corpus(args.out, config=args.config, small=args.small, seed=args.seed,
                           workers=args.workers, n_clips=args.n_clips)
    brief = {k: summary[k] for k in ("clips", "hours", "source_tracks", "clips_per_split", "build_seconds", "n_errors")}
    print(json.dumps(brief, indent=2))
    return 0 if summary["clips"] > 0 else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adv", description="Audio Distortion Validator")
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="corpus tools").add_subparsers(dest="data_command", required=True)
    b = data.add_parser("build", help="build the clip corpus (resumable, deterministic per seed)")
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument("--config", default="data.toml", help="config file (default configs/data.toml)")
    b.add_argument("--small", action="store_true", help="tiny corpus for tests, no downloads")
    b.add_argument("--seed", type=int, default=None)
    b.add_argument("--workers", type=int, default=None)
    b.add_argument("--n-clips", type=int, default=None)
    b.set_defaults(func=_cmd_data_build)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from adv.errors import AdvError

    try:
        return int(args.func(args) or 0)
    except AdvError as exc:
        print(f"adv: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
