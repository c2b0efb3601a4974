#!/usr/bin/env python
"""Chooses the per-kind decision thresholds on whole validation tracks (adv.training.decision_calibration)
and writes them into a detector file.

Input: the JSON of `scripts/track_check.py --split val` (every window's probabilities, clean and
damaged tracks; with --loud-masters files too, to budget for limited masters). Prints the trade-off
table (budget of clean tracks flagged -> thresholds, damaged tracks caught), then writes the
thresholds for --budget into --write (a copy of --model, or the model itself).

    .venv/bin/python scripts/calibrate_decision.py runs/track_check_val.json runs/track_check_val_loud.json \
        --budget 0.05 --write src/adv/assets/detector.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from adv.models.model_file import SHIPPED_MODEL, update_meta
from adv.training.decision_calibration import calibrate, tradeoff


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checks", nargs="+", help="track_check.py --out files of the validation split")
    ap.add_argument("--budget", type=float, default=0.05, help="clean tracks flagged at most (fraction)")
    ap.add_argument("--model", default=str(SHIPPED_MODEL), help="detector file the checks were made with")
    ap.add_argument("--write", default=None, help="write the model with the chosen thresholds here")
    ap.add_argument("--out", default=None, help="the trade-off table as JSON")
    args = ap.parse_args(argv)
    rows, sources = [], []
    for f in args.checks:
        data = json.loads(Path(f).read_text())
        if data["summary"].get("split") != "val":
            print(f"calibrate_decision: {f} is of split {data['summary'].get('split')!r}, not val", file=sys.stderr)
            return 2
        rows += [r for r in data["rows"] if r.get("section") is None]
        sources.append(
            {
                "file": Path(f).name,
                "loud_masters": data["summary"].get("loud_masters", False),
                "tracks": data["summary"].get("tracks"),
            }
        )
    table = tradeoff(rows)
    for r in table:
        print(
            f"budget {r['budget_pct']:>5} %: clean flagged {r['clean_tracks_flagged_pct']:>5} %, damaged caught "
            f"{r['damaged_tracks_caught_pct']:>5} %, typed {r['damaged_typed_correctly_pct']:>5} %  {r['thresholds']}"
        )
    decision, m = calibrate(rows, args.budget)
    print(f"chosen for {100 * args.budget:g} %: {decision.as_dict()} ({m})")
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "budget": args.budget,
                    "chosen": m,
                    "thresholds": decision.as_dict(),
                    "table": table,
                    "sources": sources,
                },
                indent=1,
            )
        )
    if args.write:
        update_meta(
            args.model,
            args.write,
            {
                "kind_thresholds": decision.as_dict(),
                "decision_budget": {
                    "clean_tracks_flagged_max_pct": round(100 * args.budget, 2),
                    "split": "val",
                    "measured": m,
                    "sources": sources,
                },
            },
        )
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
