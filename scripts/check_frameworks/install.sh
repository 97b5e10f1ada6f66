#!/usr/bin/env bash
# Side environment for `make check-frameworks`: LLaMA-Factory 0.9.5 and TRL 0.24 with their pinned
# data dependencies, CPU-only. Kept apart from .venv so the project's own pins never move.
set -euo pipefail
VENV=${1:-.venv-frameworks}
PYTHON=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
# A CPU build of torch (a bare `torch` pulls several GB of CUDA); off this project's machines the
# CPU wheel index serves the same build.
$PIP install 'torch==2.13.0' || $PIP install 'torch==2.13.0' --index-url https://download.pytorch.org/whl/cpu
# LLaMA-Factory 0.9.5's upper pins: trl<=0.24.0, transformers<=5.6.0, datasets<=4.0.0, peft<=0.18.1.
$PIP install 'trl==0.24.0' 'transformers==4.57.1' 'datasets==4.0.0' 'accelerate==1.11.0' \
  'peft==0.18.1' 'tokenizers' 'gguf' 'sentencepiece' 'tiktoken' 'einops' 'fire' 'omegaconf' \
  'tyro<0.9.0' 'protobuf' 'safetensors' 'scipy' 'pandas' 'matplotlib' 'pyyaml' 'pydantic' 'jinja2' \
  'torchdata==0.11.0'
# No torchvision: its PyPI wheels link the CUDA torch libraries and, without them, fail at import
# (an unconditional fake-op registration), which transformers would then trip over. LLaMA-Factory's data
# and training code does not import it.
$PIP install 'pillow'
"$VENV/bin/python" -m pip uninstall -y -q torchvision 2>/dev/null || true
# torchaudio is imported at module level by LLaMA-Factory; without its native extension it imports
# in its documented no-extension mode, which is all the data code needs.
$PIP install --no-deps 'torchaudio==2.11.0'
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
find "$SITE/torchaudio" -name '*.so' -delete
# LLaMA-Factory itself beside those pins (its gradio/modelscope/av extras are for the web UI).
$PIP install --no-deps 'llamafactory==0.9.5'
"$VENV/bin/python" - <<'PY'
import llamafactory, trl, transformers, datasets, torch
print("side environment:", "llamafactory", llamafactory.__version__, "trl", trl.__version__,
      "transformers", transformers.__version__, "datasets", datasets.__version__, "torch", torch.__version__)
PY
touch "$VENV/.installed"
