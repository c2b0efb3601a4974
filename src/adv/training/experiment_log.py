"""Experiment logging: wandb in offline mode (run folder under RUN_DIR/wandb) plus a metrics.jsonl.

`wandb sync RUN_DIR/wandb/offline-run-*` uploads a run later from a machine with network access.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class ExperimentLog:
    def __init__(self, run_dir: Path, config: dict, name: str = "train", use_wandb: bool = True):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._run = None
        if use_wandb:
            try:
                os.environ.setdefault("WANDB_MODE", "offline")
                os.environ.setdefault("WANDB_SILENT", "true")
                import wandb

                self._run = wandb.init(
                    project="audio-distortion-validator",
                    name=name,
                    config=config,
                    dir=str(run_dir),
                    mode="offline",
                    reinit="finish_previous",
                )
            except Exception as exc:  # noqa: BLE001 - logging must never stop training
                print(f"wandb unavailable ({type(exc).__name__}: {exc}); logging to {self.path} only")

    def log(self, metrics: dict) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"time": time.time(), **metrics}) + "\n")
        if self._run is not None:
            self._run.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))})

    def finish(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None
