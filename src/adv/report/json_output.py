"""The JSON document of `adv analyze --json` (one shape for any number of files) and the lines of
`--jsonl`; the shape is described in docs/output_format.md."""

from __future__ import annotations

import json

from adv import RESULT_SCHEMA_VERSION, __version__

MODEL_KEYS = ("model_version", "model_path", "backbone", "backend", "kind_thresholds", "window_s", "hop_s")


def summary(results: list[dict]) -> dict:
    ok = [r for r in results if "error" not in r]
    checked = [r for r in ok if "checks" in r]
    out = {
        "files": len(results),
        "analysed": len(ok),
        "errors": len(results) - len(ok),
        "flagged": sum(bool(r["has_distortion"]) for r in ok),
    }
    if checked:
        out["failed_spec"] = sum(not r["checks"]["passed"] for r in checked)
    return out


def document(results: list[dict], model_info: dict, rules: list[str] | None = None) -> dict:
    """``{"schema_version", "adv_version", "model", "rules", "summary", "results"}``."""
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "adv_version": __version__,
        "model": {k: model_info.get(k) for k in MODEL_KEYS},
        "rules": list(rules or []),
        "summary": summary(results),
        "results": results,
    }


def dumps_line(result: dict) -> str:
    """One JSONL line: the result with its schema version (error entries included)."""
    return json.dumps({"schema_version": RESULT_SCHEMA_VERSION, **result}, default=str)
