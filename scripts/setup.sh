#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine: system tools (ffmpeg, lame, sox,
# fluidsynth + General MIDI soundfont) and a virtual environment at .venv with the `adv` command.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in ffmpeg lame sox fluidsynth fluid-soundfont-gm libsndfile1; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""; [ "$(id -u)" != "0" ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip 2>&1 | grep -v '^WARNING' || true
# torch first and pinned: the CPU build (an unpinned torch pulls a multi-GB CUDA build)
.venv/bin/pip install -q torch==2.13.0 2>&1 | grep -v '^WARNING' || true
.venv/bin/pip install -q -c constraints.txt -e ".[service,report,train,dev]" 2>&1 | grep -v '^WARNING' || true
.venv/bin/adv --help >/dev/null
# export the shipped model to ONNX once (cached), so that the first analysis starts without torch
.venv/bin/python -c "from adv.config import SHIPPED_MODEL; from adv.inference.onnx_backend import cached_onnx; cached_onnx(SHIPPED_MODEL)"
echo "setup complete: .venv/bin/adv"
