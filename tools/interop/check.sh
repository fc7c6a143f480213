#!/usr/bin/env bash
# Interoperability check: jtune against Hugging Face transformers on the same checkpoints.
#   - a bf16 checkpoint written by PyTorch (model/src/test/resources/fixtures/tiny-bf16-llama), fp32 and bf16
#   - a checkpoint written by `./launch.sh init-model` (transformers must load it, tokenizer included)
# transformers, torch and safetensors come from this machine's local wheel mirror (pip's configured
# find-links / extra-index-url, no network); where they are absent the check says SKIPPED and exits 0.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
venv="$root/target/interop-venv"
work="$root/target/interop"
mkdir -p "$work"

links=()
for d in /opt/wheels /opt/pypi/files /opt/pypi-more/files; do [[ -d "$d" ]] && links+=(--find-links "$d"); done

if ! "$venv/bin/python" -c "import transformers, torch" >/dev/null 2>&1; then
  echo "interop: installing torch + transformers from the local wheel mirror into target/interop-venv ..."
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >"$work/pip.log" 2>&1 \
     || ! "$venv/bin/pip" install -q --no-index "${links[@]}" torch "transformers==5.18.0" safetensors >>"$work/pip.log" 2>&1; then
    echo "interop: SKIPPED — torch/transformers wheels are not available offline on this machine (see $work/pip.log)"
    exit 0
  fi
fi
py="$venv/bin/python"
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error TQDM_DISABLE=1

check() { # name model input dtype rtol
  echo "interop: $1 ($4)"
  ./launch.sh score --model "$2" --input "$3" --dtype "$4" >"$work/$1-$4.jsonl"
  "$py" tools/interop/hf_score.py "$2" "$3" "$4" "$work/$1-$4.jsonl" "$5"
}

fixture=model/src/test/resources/fixtures/tiny-bf16-llama
check pytorch-bf16-checkpoint "$fixture" "$fixture/inputs.jsonl" fp32 1e-5
check pytorch-bf16-checkpoint "$fixture" "$fixture/inputs.jsonl" bf16 5e-3
./launch.sh init-model --preset tiny --out "$work/tiny" --seed 1 --force >/dev/null
check jtune-init-model "$work/tiny" configs/score-sample.jsonl fp32 1e-5
echo "interop: jtune agrees with transformers"
